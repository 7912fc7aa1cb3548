"""Graph: the store's relationships as a network, its shape in figures, and links worth adding."""

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from core.explorer import graph as g
from core.explorer.labels import count
from core.explorer.state import Scope, current_scope, guard, param, set_params, url_number
from core.explorer.widgets import ROW_WRAP, data_version, done, memory_detail, show_flash, store_frame, store_type_colours
from core.models import NewRelationship, Relationship

SCOPE_HASH: dict[str | type[Any], Callable[[Any], Any]] = {"core.explorer.state.Scope": lambda s: (str(s.tenant.id), str(s.store.id))}


@st.cache_data(ttl=60, show_spinner=False, hash_funcs=SCOPE_HASH)
def relationships(scope: Scope, version: int) -> list[Relationship]:
    return scope.svc.list_relationships(scope.store.id)


@st.cache_data(max_entries=64, show_spinner="Laying out the graph…")
def positions(nodes: tuple, edges: tuple) -> dict:
    return g.layout(nodes, edges)


@st.cache_data(ttl=60, show_spinner="Comparing every memory's embedding with its nearest neighbours…", hash_funcs=SCOPE_HASH)
def suggestions(scope: Scope, version: int, min_similarity: float) -> list[g.LinkSuggestion]:
    memories, vectors = scope.svc.store_embeddings(scope.store.id)
    existing = g.related_pairs(scope.svc.list_relationships(scope.store.id))
    return g.suggest_links([str(m.id) for m in memories], vectors, existing, min_similarity)


def pick_table(title: str, rows: Sequence[tuple[str, float]], value: str, fmt: str, key: str) -> str | None:
    """A small table of memories; returns the id of the row the user selected."""
    st.caption(title)
    if not rows:
        st.text("None in this view.")
        return None
    table = g.memory_table(frame, rows, value)
    event = st.dataframe(
        table,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key=key,
        row_height=ROW_WRAP,
        column_config={  # half the page at 1400 px: the type and the number stay in view
            "id": None,
            "memory": st.column_config.TextColumn(width=240),
            "type": st.column_config.TextColumn(width=90),
            value: st.column_config.NumberColumn(format=fmt, width=80),
        },
    )
    return table.iloc[event.selection.rows[0]]["id"] if event.selection.rows else None


def select(memory_id: str | None) -> None:
    if memory_id and memory_id != selected:
        set_params(memory=memory_id)
        st.rerun()


scope = current_scope()
st.title("Graph")
st.caption(
    "Memories are nodes (colour = type, size = importance), relationships are arrows (colour and dash = type, "
    "width = strength). Click a memory to open it."
)
show_flash()

with guard("Could not read the store's graph"):
    frame = store_frame(scope)
    rels = relationships(scope, data_version())
    if frame.empty:
        st.info("This store holds no memories yet. Add some on the Memories page or import a JSONL file.")
        st.stop()
    full = g.build_graph(frame, rels)
    selected = param("memory") if param("memory") in full else None
    all_types = sorted({r.relationship_type for r in rels})

    left, middle, right = st.columns([3, 2, 2])
    types = left.multiselect(
        "Relationship types",
        all_types,
        default=all_types,
        placeholder="No relationship types selected",
        key=f"graph-types-{hash(tuple(all_types))}",
    )  # a new type (a saved link) starts selected
    min_strength = middle.slider(
        "Minimum strength",
        0.0,
        1.0,
        url_number("min_strength", 0.0, 0.0, 1.0),
        0.05,
        key="graph-strength",
        help="Hide relationships weaker than this.",
    )
    ego = right.toggle(
        "Neighbourhood only",
        value=param("depth") is not None,
        disabled=selected is None,
        key="graph-ego",
        help="Show only the memories around the selected one (select one first: click a node or a row).",
    )
    depth = (
        right.slider(
            "Depth",
            1,
            3,
            int(url_number("depth", 1, 1, 3)),
            key="graph-depth",
            help="Relationships to follow from the selected memory, either direction.",
        )
        if ego and selected
        else None
    )
    set_params(memory=selected, depth=depth, min_strength=min_strength or None)

    view = g.build_graph(frame, rels, types=set(types), min_strength=min_strength)
    if depth and selected:
        view = g.ego(view, selected, depth)
    facts = g.graph_facts(view)
    cols = st.columns(5)
    cols[0].metric("Memories", facts.memories)
    cols[1].metric("Relationships", facts.relationships, help="Relationships shown after the filters.")
    cols[2].metric("Components", facts.components, help="Groups of memories linked to each other; an orphan is a group of one.")
    cols[3].metric("Largest component", facts.largest_component)
    cols[4].metric("Orphans", facts.orphans, help="Memories without any relationship in this view.")
    if view.graph["outside"]:
        outside = view.graph["outside"]
        st.caption(f"{count(outside, 'relationship')} {'leads' if outside == 1 else 'lead'} to memories in other stores, not drawn.")

    drawn = g.drawable(view)
    if len(drawn) < len(view):
        st.caption(
            f"Drawing the {len(drawn):,} most connected of {len(view):,} memories; use the filters or a neighbourhood to look closer."
        )
    nodes = tuple(sorted(drawn))
    edges = tuple(sorted({(u, v) for u, v in full.subgraph(nodes).edges()}))
    title = f"Neighbourhood of the selected memory, depth {depth}" if depth else "Relationship graph"
    fig = g.figure(
        drawn, positions(nodes, edges), selected=selected, title=title, rel_types=all_types, type_colour=store_type_colours(scope)
    )
    event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key=f"graph-chart-{selected}")
    clicked = [p.get("customdata") for p in event.selection.points]
    clicked = [c[0] if isinstance(c, list) else c for c in clicked]
    select(next((c for c in clicked if c in full), None))

    left, right = st.columns(2)
    with left:
        select(
            pick_table(
                "Most connected (relationships touching the memory)",
                facts.most_connected,
                "relationships",
                "%d",
                f"graph-connected-{selected}",
            )
        )
    with right:
        select(
            pick_table(
                "Most central (betweenness: the memories that bridge the rest)",
                facts.most_central,
                "betweenness",
                "%.3f",
                f"graph-central-{selected}",
            )
        )

    st.subheader("Selected memory")
    if selected:
        select(memory_detail(scope, scope.svc.get_memory(selected), key="graph"))
    else:
        st.info("Click a node in the graph, or a row in the tables above, to open that memory here.", icon=":material/touch_app:")

    st.subheader("Suggest links")
    st.caption(
        "Pairs of memories whose embeddings are nearest neighbours but that no relationship links yet. "
        "Review them; nothing is saved until you press Save."
    )
    with guard("Could not compute link suggestions"):
        threshold = st.slider("Minimum cosine similarity", 0.5, 1.0, 0.8, 0.01, key="graph-threshold")
        if st.toggle("Suggest links from embeddings", key="graph-suggest"):
            found = suggestions(scope, data_version(), threshold)
            if not found:
                st.info("No unlinked pair of memories is that similar. Lower the threshold to see more.")
            else:
                edited = st.data_editor(
                    g.suggestion_table(frame, found),
                    hide_index=True,
                    key=f"graph-suggestions-{threshold}-{data_version()}",
                    disabled=["similarity", "memory", "similar memory"],
                    row_height=ROW_WRAP,
                    column_config={
                        "memory": st.column_config.TextColumn(width="large"),
                        "similar memory": st.column_config.TextColumn(width="large"),
                        "save": st.column_config.CheckboxColumn("save", help="Untick the pairs you do not want."),
                        "similarity": st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.2f"),
                        "source": None,
                        "target": None,
                    },
                )
                chosen = edited[edited["save"]]
                if scope.svc.may("write") and st.button(
                    f"Save {count(len(chosen), 'selected link')}", type="primary", disabled=chosen.empty, icon=":material/add_link:"
                ):
                    pairs = zip(chosen["source"], chosen["target"], chosen["similarity"])
                    scope.svc.add_relationships(
                        [NewRelationship(str(a), str(b), "similar_to", round(min(1.0, float(sim)), 2)) for a, b, sim in pairs]
                    )
                    done(f"Saved {count(len(chosen), 'link')} (type similar_to).")
