"""The memex explorer: `streamlit run app.py` (or `make run`)."""

import streamlit as st

from core.explorer import auth, startup, state

st.set_page_config(page_title="Memex explorer", page_icon=":material/neurology:", layout="wide")

viewer = None
with state.guard("Could not open the database"):  # a database this memex cannot read: say why, open nothing
    viewer = auth.sign_in(state.database())
if viewer is None:
    st.stop()
st.session_state["viewer"] = viewer
st.session_state["scope"] = None  # set on every run of app.py, even when the sidebar fails
with state.guard():
    st.session_state["scope"] = state.sidebar_scope(viewer)

PAGES = {
    "Inspect": [
        st.Page("pages/overview.py", title="Overview", icon=":material/monitoring:", default=True),
        st.Page("pages/memories.py", title="Memories", icon=":material/table_rows:"),
        st.Page("pages/search.py", title="Search", icon=":material/manage_search:"),
        st.Page("pages/retrievals.py", title="Retrievals", icon=":material/history_edu:"),
        st.Page("pages/graph.py", title="Graph", icon=":material/hub:"),
        st.Page("pages/map.py", title="Embedding map", icon=":material/scatter_plot:"),
    ],
    "Improve": [
        st.Page("pages/quality.py", title="Quality", icon=":material/cleaning_services:"),
        st.Page("pages/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
    ],
    "Manage": [
        # operators manage every tenant, a tenant's admins its users, stores and keys; viewers and editors do neither
        *([st.Page("pages/admin.py", title="Admin", icon=":material/admin_panel_settings:")] if state.may_administer(viewer) else []),
        st.Page("pages/import_export.py", title="Import / export", icon=":material/swap_vert:"),
    ],
}

page = st.navigation(PAGES)
scope = st.session_state["scope"]  # read now: after the page, a rerun the browser asked for stops any st call
try:
    page.run()
finally:  # after the first page, which it would slow down: once per server, UMAP warmed up and pending rows indexed
    with state.guard():
        startup.start(state.database())
        if scope is not None:  # the model of the store in view, loaded before its first search
            startup.warm_model(scope.store.embedding_model, scope.store.embedding_dim, after=startup.AFTER_PAGE_S)
