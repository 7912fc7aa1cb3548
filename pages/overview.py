"""Overview, the first screen: what memex is, what it holds across tenants, and the selected store in figures."""

import pandas as pd
import plotly.express as px
import streamlit as st

from core.explorer.auth import Viewer
from core.explorer.frames import creation_timeline
from core.explorer.labels import markdown_literal, plot_text
from core.explorer.state import current_scope, guard, open_tenants, service_for
from core.explorer.widgets import ROW_WRAP, TEXT_COLUMNS, data_version, date_columns, store_frame, store_type_colours


@st.cache_data(ttl=60, show_spinner=False)
def totals(_viewer: Viewer, who: str | None, version: int) -> dict[str, int]:
    """Tenants, users, stores and memories across the tenants this viewer may open (`who`, their
    email, keys the cache), one service per tenant."""
    tenants = open_tenants(_viewer)
    users = stores = memories = 0
    for tenant_id in tenants.values():
        svc = service_for(_viewer, tenant_id)
        users += len(svc.list_users())
        held = svc.list_stores()
        stores += len(held)
        memories += sum(s.total_memories for s in held)
    return {"tenants": len(tenants), "users": users, "stores": stores, "memories": memories}


st.title("Memex explorer")
st.markdown(
    "**memex is long-term memory for AI agents**: what each agent remembers about the people it works for, stored per "
    "tenant, user and store, and found again by meaning and by words. Here you can see what is stored, why a search "
    "returns what it does, and clean up what misleads it."
)
with guard("Could not count the tenants"):
    viewer = st.session_state["viewer"]
    held = totals(viewer, viewer.email, data_version())
    across = st.columns(4)
    across[0].metric("Tenants", held["tenants"], help="Organisations whose memories are kept apart from each other's.")
    across[1].metric("Users", held["users"], help="The people the agents remember things about, across the tenants you may open.")
    across[2].metric("Memory stores", held["stores"], help="Separate collections of one user's memories (one per agent or purpose).")
    across[3].metric("Memories in all", f"{held['memories']:,}")

scope = current_scope()
st.subheader("The selected store")
st.caption(
    markdown_literal(f"Tenant {scope.tenant.name} · user {scope.user.name} · store {scope.store.store_name} (change them in the sidebar)")
)

with guard("Could not read the store"):
    stats = scope.svc.store_stats(scope.store.id)
    frame = store_frame(scope)
    cols = st.columns(6)
    cols[0].metric("Memories", stats.total)
    cols[1].metric("Live", stats.live)
    cols[2].metric("Expired", stats.expired)
    cols[3].metric("Archived", stats.archived)
    cols[4].metric("Relationships", sum(stats.relationships_by_type.values()))
    cols[5].metric("Mean importance", f"{stats.mean_importance:.2f}" if stats.mean_importance is not None else "–")
    if frame.empty:
        st.info("This store holds no memories yet. Add some on the Memories page or import a JSONL file.")
        st.stop()

    # types, sources and relationship types are user text: escaped before plotly reads them as HTML
    colours = {plot_text(t): c for t, c in store_type_colours(scope).items()}  # as on every page
    top = frame.sort_values("access_count", ascending=False).head(10)
    frame = frame.assign(memory_type=frame["memory_type"].map(plot_text), source=frame["source"].fillna("(none)").map(plot_text))
    left, right = st.columns(2)
    with left:
        by_type = frame.groupby(["memory_type", "status"]).size().reset_index(name="memories")
        st.plotly_chart(
            px.bar(
                by_type,
                x="memory_type",
                y="memories",
                color="status",
                title="By type",
                labels={"memory_type": "type"},
                color_discrete_map={"live": "#4f46e5", "expired": "#f59e0b", "archived": "#9ca3af"},
            )
        )
        st.plotly_chart(px.histogram(frame, x="importance", nbins=20, title="Importance", range_x=[0, 1]))
        rels = pd.DataFrame([(plot_text(k), v) for k, v in stats.relationships_by_type.items()], columns=["type", "relationships"])
        if not rels.empty:
            st.plotly_chart(px.bar(rels, x="type", y="relationships", title="Relationships by type"))
    with right:
        by_source = frame.groupby("source").size().reset_index(name="memories").sort_values("memories", ascending=False)
        st.plotly_chart(px.bar(by_source, x="source", y="memories", title="By source"))
        st.plotly_chart(px.histogram(frame, x="access_count", nbins=30, title="Access count", labels={"access_count": "times retrieved"}))
        timeline = creation_timeline(frame, "memory_type", "W")
        st.plotly_chart(
            px.bar(
                timeline,
                x="period",
                y="memories",
                color="memory_type",
                color_discrete_map=colours,
                title="Created per week",
                labels={"period": "week", "memory_type": "type"},
            )
        )

    st.subheader("Most accessed")
    st.dataframe(
        top[["content", "memory_type", "access_count", "last_accessed", "importance"]].rename(
            columns={"memory_type": "type", "access_count": "times retrieved", "last_accessed": "last retrieved"}
        ),
        hide_index=True,
        row_height=ROW_WRAP,
        placeholder="never",
        column_config={
            **TEXT_COLUMNS,
            **date_columns("last retrieved"),
            "importance": st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.2f"),
        },
    )
