"""Search, the retrieval debugger: what a query returns, every score, and why the rest did not come back."""

import pandas as pd
import streamlit as st

from core import MemoryService
from core.embeddings import warm_embedder
from core.errors import InvalidInput, NotFound
from core.explain import Explanation, ordinal
from core.explorer import debugger as dx
from core.explorer import startup
from core.explorer.labels import count, markdown_literal, short
from core.explorer.state import current_scope, guard, param, set_params, url_number
from core.explorer.widgets import (
    ROW_WRAP,
    TEXT_COLUMNS,
    add_to_eval_set,
    data_changed,
    data_version,
    link_to_memory,
    memory_detail,
    store_frame,
)
from core.ranking import MODES, Weights
from core.search import Filters, SearchParams
from core.supersede import KEEP, POLICIES, POLICY_LABELS

SERVICE_THRESHOLD, TOP = 0.7, 30
WHY_NOT_CHOICES = 1000
scope = current_scope()
st.title("Search")
st.caption("The retrieval debugger: what a query returns, with every score, and why each other memory of the store did not come back.")
startup.warm_model(scope.store.embedding_model, scope.store.embedding_dim)  # loading while the query is typed


@st.cache_resource(show_spinner="Loading the embedding model…")
def warm(model: str, dim: int) -> None:
    warm_embedder(model, dim)


@st.cache_resource(ttl=60, max_entries=32, show_spinner="Searching…")  # not cache_data: no pickling of every candidate
def explain(tenant: str, store: str, query: str, key: str, version: int, _svc: MemoryService, _params: SearchParams) -> Explanation:
    return _svc.explain_search(store, query, _params)


def run(query: str, params: SearchParams) -> Explanation | None:
    with guard("Could not run the search"):
        warm(scope.store.embedding_model, scope.store.embedding_dim)
        return explain(str(scope.tenant.id), str(scope.store.id), query, repr(params), data_version(), scope.svc, params)
    return None


def choice_label(content: str, rank: int | None, status: str) -> str:
    """A memory in the "Why not this memory?" picker: its content's start, rank and status."""
    return f"{short(content, 100)} · {ordinal(rank) if rank else 'unranked'}, {status}"


def table(frame: pd.DataFrame, key: str, params: SearchParams) -> None:
    """A results table; selecting a row (anew) opens that memory in "Why not this memory?" below."""
    score = dx.score_name(params)
    # type is in the memory's detail below: without it the table fits 1400 px with the content widest
    shown = [c for c in frame.columns if c not in ("id", "status", "type") and (c in ("content", "rank", score) or frame[c].notna().any())]
    event = st.dataframe(
        frame,
        hide_index=True,
        column_order=shown,
        on_select="rerun",
        selection_mode="single-row",
        key=key,
        row_height=ROW_WRAP,
        placeholder="",
        column_config={
            **TEXT_COLUMNS,
            "content": st.column_config.TextColumn("content", width=370, help=TEXT_COLUMNS["content"]["help"]),
            "rank": st.column_config.TextColumn("rank", width=45),
            score: st.column_config.NumberColumn(
                score, width=100, format="%.4f" if params.mode == "hybrid" else "%.3f", help=dx.SCORES[params.mode][1]
            ),
            **{
                c: st.column_config.NumberColumn(c, width=80, format="%.3f", help=dx.COMPONENT_HELP[c])
                for c in dx.COMPONENT_HELP
                if c != score and c not in dx.TEXT_COMPONENTS
            },
            **{c: st.column_config.TextColumn(c, width=200, help=dx.COMPONENT_HELP[c]) for c in dx.TEXT_COMPONENTS},
            "diversified": st.column_config.NumberColumn("diversified", width=80, format="%.3f", help=dx.MMR_HELP),
            "reason": st.column_config.TextColumn("reason", width="medium"),
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
    index=MODES.index(param("mode") if param("mode") in MODES else "hybrid"),
    key="mode",
    help="vector: by meaning (cosine similarity of the embeddings) · text: by the query's words · hybrid (the best measured, docs/RETRIEVAL.md): "
    "both fused by score, with the conversation around the candidates · weighted: similarity, importance and recency combined",
)
threshold = settings[1].slider(
    "Similarity threshold",
    0.0,
    1.0,
    url_number("threshold", 0.3, 0.0, 1.0),
    0.01,
    key="threshold",
    help=f"A memory must be at least this similar to the query (cosine similarity of the embeddings) to be found by "
    f"meaning. An agent that does not choose gets {SERVICE_THRESHOLD}; 0.3 suits the local model better. Text matches need no threshold.",
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
    wanted_policy = param("superseded")
    policy = st.selectbox(
        "Superseded memories",
        POLICIES,
        index=POLICIES.index(wanted_policy) if wanted_policy in POLICIES else 0,
        format_func=lambda p: POLICY_LABELS[p],
        key="superseded",
        help="A memory is superseded when a newer memory updates or contradicts it. Search keeps it where it ranks "
        "unless told otherwise: moving superseded memories down puts the current ones first (docs/RETRIEVAL.md measures it).",
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
    set_params(q=None, mode=mode, threshold=threshold, limit=limit, superseded=None if policy == KEEP else policy)
    st.info("Type a query to see what the store returns for it, and why the other memories did not come back.")
    st.stop()
set_params(q=query, mode=mode, threshold=threshold, limit=limit, superseded=None if policy == KEEP else policy)
params = None
with guard("Check the settings"):
    params = SearchParams(
        limit, threshold, mode, Filters(tuple(types), tuple(sources)), Weights(*weights), mmr_lambda=lam, superseded=policy
    )
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
            superseded=policy,
        )
        st.session_state["counted"] = (query, repr(params))
        data_changed()
st.caption(
    f"Of the store's {count(len(ex.candidates), 'memory')}: "
    + ", ".join(f"{n} {status}" for status, n in ex.counts().items())
    + ". Select a row to see that memory and why it ranked where it did."
)

st.subheader(f"Results ({len(results)})")
st.caption(markdown_literal(dx.score_sentence(params)))
if not results:
    st.info("Nothing passed. Lower the threshold, widen the filters or try another mode: the near misses show what came closest.")
table(dx.results_frame(results, params, ex.superseded, link_to_memory), "results_table", params)
stale = [r for r in results if r.memory.id in ex.superseded]
if stale:
    st.warning(
        f"{count(len(stale), 'result')} {'is' if len(stale) == 1 else 'are'} superseded: a newer memory updates or contradicts "
        f"{'it' if len(stale) == 1 else 'them'} (the link in the table opens the newer one). "
        "Under “Mode settings and filters”, “Superseded memories” can move them below current ones or leave them out.",
        icon=":material/history:",
    )

if policy != KEEP:
    st.caption(
        "Superseded memories are "
        + ("moved below every current one" if policy == "demote" else "left out")
        + " in this search: the near misses and the chart show where they went."
    )

st.subheader("Near misses")
st.caption("The best memories not returned that the filters allow, in the search's order, with the reason.")
table(dx.candidates_frame(ex.near_misses(10), params, ex.superseded, link_to_memory), "misses_table", params)
chart = dx.score_chart(ex, TOP)
st.plotly_chart(chart)
if any(c.memory.id in ex.superseded for c in ex.candidates[:TOP]):
    st.caption("A red outline marks a superseded memory: a newer memory updates or contradicts it.")

st.subheader("Why not this memory?")
if "whynot_next" in st.session_state:
    st.session_state["whynot"] = st.session_state.pop("whynot_next")
st.session_state.setdefault("whynot", param("memory"))
# The best candidates, and the memory a link or a table row chose: a list of a whole large store
# would cost the page a second to build and nobody scrolls through it.
wanted = st.session_state["whynot"]
labels = {str(c.id): choice_label(c.content + (" …" if c.cut else ""), c.rank, c.status) for c in ex.choices(WHY_NOT_CHOICES)}
if wanted and wanted not in labels:
    try:
        x = ex.why_not(wanted)
        labels[wanted] = choice_label(x.memory.content, x.rank, x.status)
    except (InvalidInput, NotFound):
        pass  # a link to a memory this store no longer holds: the picker starts empty
if wanted not in labels:
    st.session_state["whynot"] = None
chosen = st.selectbox(
    f"Memory (the {min(WHY_NOT_CHOICES, len(ex.candidates)):,} best candidates; or select a row in a table above)",
    list(labels),
    index=None,
    key="whynot",
    format_func=lambda i: labels[i],
    placeholder="Type words of a memory, or pick one",
    filter_mode="contains",  # "aller" finds "allergic", not any label with a, l, l, e, r in that order
)
set_params(memory=chosen)
if chosen:
    why = ex.why_not(chosen)
    score = dx.score_name(params)
    facts: list[tuple[str, str, str | None]] = [("Rank", ordinal(why.rank) if why.rank else "unranked", None)]
    if mode != "vector":
        facts.append((score.capitalize(), f"{why.score:.4f}" if why.score is not None else "not scored", dx.SCORES[mode][1]))
    facts += [
        ("Similarity", f"{why.similarity:.3f}", dx.SCORES["vector"][1]),
        ("Text rank", f"{why.text_rank:.3f}" if why.text_match else "no match", dx.COMPONENT_HELP["text rank"]),
        ("Status", why.status, None),
    ]
    for column, (label, value, explained) in zip(st.columns(len(facts)), facts):
        column.metric(label, value, help=explained)
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
        run(query_b, SearchParams(limit, threshold_b, mode_b, params.filters, params.weights, mmr_lambda=lam, superseded=policy))
        if query_b.strip()
        else None
    )
    if ex_b is not None:
        frame_a, frame_b = dx.compare_frames(results, ex_b.results, params, ex_b.params)
        both = int((frame_a["in the other list"] != "not returned").sum())
        st.caption(f"{both} of the {count(len(frame_a), 'result')} of A {'is' if both == 1 else 'are'} also in B.")
        a, b = st.columns(2)
        for side, letter, frame_x, px_ in ((a, "A", frame_a, params), (b, "B", frame_b, ex_b.params)):
            side.caption(markdown_literal(f"{letter}: {px_.mode} search, threshold {px_.min_similarity:.2f}, by {dx.score_name(px_)}"))
            side.dataframe(
                frame_x,
                hide_index=True,
                key=f"compare_{letter.lower()}",
                row_height=ROW_WRAP,
                column_config={
                    **TEXT_COLUMNS,
                    "rank": st.column_config.NumberColumn("rank", width=50),
                    dx.score_name(px_): st.column_config.NumberColumn(
                        format="%.4f" if px_.mode == "hybrid" else "%.3f", help=dx.SCORES[px_.mode][1]
                    ),
                },
            )

if scope.svc.may("write"):
    with st.expander("Add this query to an evaluation set"), guard("Could not add the case"):
        add_to_eval_set(scope, query, {i: labels[i] for i in dict.fromkeys([*list(labels)[:50], *([chosen] if chosen else [])])}, "eval")
