"""Search, the retrieval debugger: what a query returns, every score, and why the rest did not come back."""

import pandas as pd
import streamlit as st

from core import MemoryService
from core.embeddings import get_embedder
from core.errors import InvalidInput, NotFound
from core.evaluation import EvalCase
from core.explain import Explanation, ordinal
from core.explorer import debugger as dx
from core.explorer.labels import short
from core.explorer.state import current_scope, guard, param, set_params, url_number
from core.explorer.widgets import data_changed, data_version, memory_detail, store_frame
from core.ranking import MODES, Weights
from core.search import Filters, SearchParams

SEED_THRESHOLD, TOP, NUMBERS = 0.7, 30, ("score", "text rank", "fused", "importance", "recency", "mmr")
WHY_NOT_CHOICES = 1000
scope = current_scope()
st.title("Search")
st.caption("The retrieval debugger: what a query returns, with every score, and why each other memory of the store did not come back.")


@st.cache_resource(show_spinner="Loading the embedding model…")
def warm(model: str, dim: int) -> None:
    getattr(get_embedder(model, dim), "warm", lambda: None)()


@st.cache_resource(ttl=60, max_entries=32, show_spinner="Searching…")  # not cache_data: no pickling of every candidate
def explain(tenant: str, store: str, query: str, key: str, version: int, _svc: MemoryService, _params: SearchParams) -> Explanation:
    return _svc.explain_search(store, query, _params)


def run(query: str, params: SearchParams) -> Explanation | None:
    with guard("Could not run the search"):
        warm(scope.store.embedding_model, scope.store.embedding_dim)
        return explain(str(scope.tenant.id), str(scope.store.id), query, repr(params), data_version(), scope.svc, params)
    return None


def table(frame: pd.DataFrame, key: str, shown: list[str] | None = None) -> None:
    """A results table; selecting a row (anew) opens that memory in "Why not this memory?" below."""
    shown = shown or [c for c in frame.columns if c != "id" and (c in ("content", "rank") or frame[c].notna().any())]
    event = st.dataframe(
        frame,
        hide_index=True,
        column_order=shown,
        on_select="rerun",
        selection_mode="single-row",
        key=key,
        column_config={
            "similarity": st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.3f"),
            "content": st.column_config.TextColumn(width="large"),
            **{c: st.column_config.NumberColumn(format="%.3f") for c in NUMBERS},
        },
    )
    rows = [r for r in event.selection.rows if r < len(frame)]
    picked = frame["id"].iloc[rows[0]] if rows else None
    if picked and st.session_state.get(f"{key}_seen") != picked:
        st.session_state["whynot"] = picked
    st.session_state[f"{key}_seen"] = picked


frame = store_frame(scope)
if frame.empty:
    st.info("This store holds no memories yet: add some on the Memories page or import a JSONL file, then search them here.")
    st.stop()
query = st.text_input("Query", value=param("q") or "", key="q", placeholder="Ask as an agent would: where does she like to sit on a plane?")
settings = st.columns([2, 3, 3, 2])
mode = settings[0].selectbox(
    "Mode",
    MODES,
    index=MODES.index(param("mode")) if param("mode") in MODES else 0,
    key="mode",
    help="vector: cosine similarity · text: full-text words · hybrid: both fused (RRF) · weighted: similarity + importance + recency",
)
threshold = settings[1].slider(
    "Similarity threshold",
    0.0,
    1.0,
    url_number("threshold", 0.3, 0.0, 1.0),
    0.01,
    key="threshold",
    help=f"The vector side must reach this cosine similarity. The seed's default is {SEED_THRESHOLD}; "
    "0.3 suits the local model better. Text matches need no threshold.",
)
limit = settings[2].slider("Limit", 1, 50, url_number("limit", 5, 1, 50, int), key="limit")
record = settings[3].toggle(
    "Record access",
    key="record",
    help="On: this search counts as an access, like an agent's "
    "(access count and last access change). Off: inspect without changing the statistics.",
)
with st.expander("Mode settings and filters"):
    w = st.columns(4)
    weights = (
        w[0].slider("Relevance weight", 0.0, 1.0, 1.0, key="w_rel"),
        w[1].slider("Importance weight", 0.0, 1.0, 0.2, key="w_imp"),
        w[2].slider("Recency weight", 0.0, 1.0, 0.1, key="w_rec"),
        w[3].number_input("Half-life (hours)", 1.0, 100_000.0, 720.0, key="w_half"),
    )
    st.caption("Weights apply in weighted mode: a weighted mean of similarity, importance and recency (halving every half-life).")
    mmr = st.columns([1, 3])
    lam = (
        mmr[1].slider("MMR lambda (1 = relevance only, 0 = diversity only)", 0.0, 1.0, 0.5, key="mmr")
        if mmr[0].toggle("Diversify (MMR)", key="use_mmr")
        else None
    )
    f = st.columns(2)
    types = f[0].multiselect("Types", sorted(frame["memory_type"].unique()), key="types", placeholder="All types")
    sources = f[1].multiselect(
        "Sources",
        sorted(frame["source"].fillna("").unique()),
        key="sources",
        placeholder="All sources",
        format_func=lambda s: s or "(no source)",
    )
if not query.strip():
    set_params(q=None, mode=mode, threshold=threshold, limit=limit)
    st.info("Type a query to see what the store returns for it, and why the other memories did not come back.")
    st.stop()
set_params(q=query, mode=mode, threshold=threshold, limit=limit)
params = None
with guard("Check the settings"):
    params = SearchParams(limit, threshold, mode, Filters(tuple(types), tuple(sources)), Weights(*weights), mmr_lambda=lam)
ex = run(query, params) if params else None
if ex is None:
    st.stop()
results = ex.results
if not record:
    st.session_state.pop("counted", None)
elif st.session_state.get("counted") != (query, repr(params)):
    with guard("Could not record the access"):
        results = scope.svc.search_memories(
            scope.store.id,
            query,
            limit,
            threshold,
            record_access=True,
            memory_types=types,
            sources=sources,
            mode=mode,
            weights=params.weights,
            mmr_lambda=lam,
            query_embedding=ex.vector,
        )
        st.session_state["counted"] = (query, repr(params))
        data_changed()
st.caption(" · ".join(f"{status} {n}" for status, n in ex.counts().items()))

left, right = st.columns(2)
with left:
    st.subheader(f"Results ({len(results)})")
    if not results:
        st.info("Nothing passed. Lower the threshold, widen the filters or try another mode: the near misses show what came closest.")
    table(dx.results_frame(results), "results_table")
with right:
    st.subheader("Near misses")
    st.caption("The best memories not returned that the filters allow, with the reason.")
    table(dx.candidates_frame(ex.near_misses(10)), "misses_table", ["rank", "similarity", "reason", "content"])
st.plotly_chart(dx.similarity_chart(ex, TOP))

st.subheader("Why not this memory?")
if "whynot_next" in st.session_state:
    st.session_state["whynot"] = st.session_state.pop("whynot_next")
st.session_state.setdefault("whynot", param("memory"))
# The best candidates, and the memory a link or a table row chose: a list of a whole large store
# would cost the page a second to build and nobody scrolls through it.
wanted = st.session_state["whynot"]
offered = ex.candidates[:WHY_NOT_CHOICES]
if wanted and wanted not in {str(x.memory.id) for x in offered}:
    try:
        offered.append(ex.why_not(wanted))
    except (InvalidInput, NotFound):
        pass  # a link to a memory this store no longer holds: the picker starts empty
labels = {str(x.memory.id): f"{ordinal(x.rank) if x.rank else '–'} · {x.status} · {short(x.memory.content, 100)}" for x in offered}
if wanted not in labels:
    st.session_state["whynot"] = None
chosen = st.selectbox(
    f"Memory (the {min(WHY_NOT_CHOICES, len(ex.candidates)):,} best candidates; or select a row in a table above)",
    list(labels),
    index=None,
    key="whynot",
    format_func=lambda i: labels[i],
    placeholder="Pick a memory of the store",
)
set_params(memory=chosen)
if chosen:
    why = ex.why_not(chosen)
    facts = st.columns(4)
    facts[0].metric("Similarity", f"{why.similarity:.3f}")
    facts[1].metric("Rank", ordinal(why.rank) if why.rank else "unranked")
    facts[2].metric("Text rank", f"{why.text_rank:.3f}" if why.text_match else "no match")
    facts[3].metric("Status", why.status)
    (st.success if why.returned else st.warning)(why.reason[0].upper() + why.reason[1:] + ".")
    with st.expander("The memory", expanded=True), guard("Could not show the memory"):
        related = memory_detail(scope, why.memory, key="search")
        if related:
            st.session_state["whynot_next"] = related
            st.rerun()

with st.expander("Compare with another query, mode or threshold"):
    compare = st.columns([3, 1, 2])
    query_b = compare[0].text_input("Query B", value=query, key="q_b")
    mode_b = compare[1].selectbox("Mode B", MODES, index=MODES.index(mode), key="mode_b")
    threshold_b = compare[2].slider("Threshold B", 0.0, 1.0, threshold, 0.01, key="threshold_b")
    ex_b = (
        run(query_b, SearchParams(limit, threshold_b, mode_b, params.filters, params.weights, mmr_lambda=lam)) if query_b.strip() else None
    )
    if ex_b is not None:
        frame_a, frame_b = dx.compare_frames(results, ex_b.results)
        st.caption(f"{(frame_a['in both'] == '✓').sum()} of the results are in both; ✓ marks them.")
        a, b = st.columns(2)
        a.caption(f"A: {mode} at {threshold:.2f}")
        a.dataframe(frame_a, hide_index=True, key="compare_a")
        b.caption(f"B: {mode_b} at {threshold_b:.2f}")
        b.dataframe(frame_b, hide_index=True, key="compare_b")

with st.expander("Add this query to an evaluation set"), guard("Could not add the case"):
    st.caption("Mark the memories that should come back for this query; the Evaluate page then measures every mode on such cases.")
    options = list(dict.fromkeys([*list(labels)[:50], *([chosen] if chosen else [])]))
    expected = st.multiselect("Memories that should come back", options, format_func=lambda i: labels[i], key="expected")
    sets = {str(s.id): s.name for s in scope.svc.list_eval_sets(scope.store.id)}
    target = st.selectbox("Evaluation set", [None, *sets], format_func=lambda i: sets[i] if i else "A new set…", key="eval_set")
    name = None if target else st.text_input("Name of the new set", key="eval_name", placeholder="e.g. travel questions")
    if st.button("Add to evaluation set", disabled=not expected, icon=":material/playlist_add:"):
        case = EvalCase.checked(query, expected)
        if target:
            scope.svc.add_eval_case(target, case)
        else:
            scope.svc.save_eval_set(scope.store.id, name or "", [case])
        data_changed()
        st.success("Added: run the set on the Evaluate page.")
