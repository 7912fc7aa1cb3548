"""A store's relationship graph: build it, measure it, draw it, and suggest missing links.

Memories are nodes, relationships are directed edges of a networkx MultiDiGraph (two memories may
be linked by several relationship types). The facts analysts ask first (is the store one web or
islands? which memories hold it together? what is linked to nothing?) are computed on the
undirected view, because a relationship connects its memories whichever way it points.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.explorer.colours import NODE_COLOURS, palette, type_colours
from core.explorer.labels import plot_text
from core.models import Relationship
from core.vectors import TOLERANCE, cosine_blocks

EDGE_COLOURS = ("#334155", "#b45309", "#047857", "#b91c1c", "#6d28d9", "#0e7490", "#be185d", "#4d7c0f")
EDGE_DASHES = ("solid", "dot", "dash", "longdash", "dashdot", "longdashdot")
# Strength bands: one plotly trace draws one width, so edges are grouped by how strong they are.
STRENGTH_BANDS = ((0.0, 0.34, 1.0, 0.35), (0.34, 0.67, 2.2, 0.6), (0.67, 1.01, 3.6, 0.9))  # low, high, width, opacity
MAX_DRAWN = 800  # beyond this an SVG graph stops being readable (and responsive)


@dataclass(frozen=True)
class GraphFacts:
    memories: int
    relationships: int
    components: int  # connected groups, an orphan counting as a group of one
    largest_component: int
    orphans: int  # memories without any relationship (in the filtered graph)
    most_connected: list[tuple[str, int]]  # (memory id, relationships touching it), most first
    most_central: list[tuple[str, float]]  # (memory id, betweenness), most first


@dataclass(frozen=True)
class LinkSuggestion:
    source_id: str
    target_id: str
    similarity: float


def build_graph(
    frame: pd.DataFrame,
    relationships: Iterable[Relationship],
    *,
    types: Collection[str] | None = None,
    min_strength: float = 0.0,
) -> nx.MultiDiGraph:
    """Every memory of `frame` (a store frame) as a node, and the relationships of the chosen
    types at or above `min_strength` as edges. Edges to memories outside the frame (another
    store) are left out and counted in graph.graph["outside"]."""
    graph: nx.MultiDiGraph = nx.MultiDiGraph(outside=0)
    for memory_id, content, memory_type, importance in zip(frame["id"], frame["content"], frame["memory_type"], frame["importance"]):
        graph.add_node(str(memory_id), content=content, memory_type=memory_type, importance=float(importance))
    for rel in relationships:
        if types is not None and rel.relationship_type not in types:
            continue
        if rel.strength < min_strength:
            continue
        source, target = str(rel.source_memory_id), str(rel.target_memory_id)
        if source not in graph or target not in graph:
            graph.graph["outside"] += 1
            continue
        graph.add_edge(source, target, key=str(rel.id), relationship_type=rel.relationship_type, strength=rel.strength)
    return graph


def graph_facts(graph: nx.MultiDiGraph, top: int = 5) -> GraphFacts:
    """Components, orphans, the memories with most relationships and the ones that bridge most.

    Centrality is betweenness on the undirected simple graph: a memory scores high when many
    shortest paths between other memories pass through it. On large graphs it is estimated from
    500 sampled sources (fixed seed) to stay interactive."""
    undirected: nx.Graph = nx.Graph(graph.to_undirected(as_view=True))
    components = list(nx.connected_components(undirected)) if len(undirected) else []
    degree = sorted(((n, int(d)) for n, d in graph.degree()), key=lambda item: (-item[1], item[0]))
    k = None if len(undirected) <= 1000 else 500
    betweenness = nx.betweenness_centrality(undirected, k=k, seed=0) if undirected.number_of_edges() else {}
    central = sorted(((n, float(b)) for n, b in betweenness.items() if b > 0), key=lambda item: (-item[1], item[0]))
    return GraphFacts(
        memories=graph.number_of_nodes(),
        relationships=graph.number_of_edges(),
        components=len(components),
        largest_component=max((len(c) for c in components), default=0),
        orphans=sum(1 for _, d in degree if d == 0),
        most_connected=[item for item in degree if item[1] > 0][:top],
        most_central=central[:top],
    )


def ego(graph: nx.MultiDiGraph, center: str, depth: int) -> nx.MultiDiGraph:
    """The memories within `depth` relationships of `center` (either direction) and the
    relationships among them."""
    nodes = nx.ego_graph(graph.to_undirected(as_view=True), center, radius=depth).nodes
    return graph.subgraph(nodes).copy()


def drawable(graph: nx.MultiDiGraph, limit: int = MAX_DRAWN) -> nx.MultiDiGraph:
    """At most `limit` memories to draw: the most connected first (orphans last)."""
    if graph.number_of_nodes() <= limit:
        return graph
    keep = [n for n, _ in sorted(graph.degree(), key=lambda item: (-item[1], item[0]))[:limit]]
    return graph.subgraph(keep).copy()


def layout(nodes: Sequence[str], edges: Sequence[tuple[str, str]], seed: int = 7) -> dict[str, tuple[float, float]]:
    """Positions for the nodes, the same for the same graph (fixed seed). Each component is laid
    out on its own (Kamada-Kawai up to 60 memories, tidier; a spring layout beyond, faster) in a
    square scaled to its size; squares are packed in rows, largest first, and orphans follow in a
    grid, so islands never pile up on top of the main web."""
    graph: nx.Graph = nx.Graph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    components = sorted(nx.connected_components(graph), key=lambda c: (-len(c), min(c)))
    linked = [c for c in components if len(c) > 1]
    orphans = sorted(n for c in components if len(c) == 1 for n in c)
    sides = [math.sqrt(len(c)) for c in linked]
    width = max([1.3 * math.sqrt(sum(s * s for s in sides) + 0.25 * len(orphans))] + sides)
    gap = 0.4
    pos: dict[str, tuple[float, float]] = {}
    x = y = row_height = 0.0
    for component, side in zip(linked, sides):
        if x > 0 and x + side > width:
            x, y, row_height = 0.0, y - row_height - gap, 0.0
        sub = graph.subgraph(component)
        local = nx.kamada_kawai_layout(sub) if len(sub) <= 60 else nx.spring_layout(sub, seed=seed, k=1.5 / math.sqrt(len(sub)))
        xy = np.array([local[n] for n in sorted(sub)])
        xy = (xy - xy.min(0)) / np.where(np.ptp(xy, 0) > 0, np.ptp(xy, 0), 1)
        for n, (px, py) in zip(sorted(sub), xy):
            pos[n] = (x + side * px, y - side * py)
        x, row_height = x + side + gap, max(row_height, side)
    if orphans:
        y = y - row_height - gap if pos else 0.0
        per_row = max(1, int(width / 0.5) + 1)
        for i, n in enumerate(orphans):
            pos[n] = (0.5 * (i % per_row), y - 0.5 * (i // per_row))
    return {n: (float(px), float(py)) for n, (px, py) in pos.items()}


def figure(
    graph: nx.MultiDiGraph,
    pos: dict[str, tuple[float, float]],
    *,
    selected: str | None = None,
    title: str = "Relationship graph",
    rel_types: Sequence[str] = (),
    type_colour: dict[str, str] | None = None,
) -> go.Figure:
    """Nodes coloured by memory type and sized by importance; edges coloured and dashed by
    relationship type, wider and more opaque when stronger, with a small arrowhead marker that
    shows the direction and carries the edge's hover. Nodes carry their memory id in customdata.
    All user text goes through plot_text (escaped)."""
    fig = go.Figure()
    edge_colour = palette(rel_types or [d["relationship_type"] for *_, d in graph.edges(data=True)], EDGE_COLOURS)
    dash = {t: EDGE_DASHES[i % len(EDGE_DASHES)] for i, t in enumerate(sorted(edge_colour))}
    for rel_type in sorted({d["relationship_type"] for *_, d in graph.edges(data=True)}):
        edges = [(u, v, d) for u, v, d in graph.edges(data=True) if d["relationship_type"] == rel_type and u in pos and v in pos]
        shown = False
        for low, high, width, opacity in STRENGTH_BANDS:
            band = [(u, v) for u, v, d in edges if low <= d["strength"] < high]
            if not band:
                continue
            xs = [c for u, v in band for c in (pos[u][0], pos[v][0], None)]
            ys = [c for u, v in band for c in (pos[u][1], pos[v][1], None)]
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    name=plot_text(rel_type),
                    legendgroup=f"rel-{rel_type}",
                    showlegend=not shown,
                    legendgrouptitle_text="Relationships" if not fig.data else None,
                    line=dict(width=width, color=edge_colour[rel_type], dash=dash[rel_type]),
                    opacity=opacity,
                    hoverinfo="skip",
                )
            )
            shown = True
        heads = [(u, v, d) for u, v, d in edges]
        fig.add_trace(
            go.Scatter(
                x=[pos[u][0] + 0.62 * (pos[v][0] - pos[u][0]) for u, v, _ in heads],
                y=[pos[u][1] + 0.62 * (pos[v][1] - pos[u][1]) for u, v, _ in heads],
                mode="markers",
                legendgroup=f"rel-{rel_type}",
                showlegend=False,
                name=plot_text(rel_type),
                marker=dict(
                    symbol="triangle-up",
                    size=8,
                    color=edge_colour[rel_type],
                    angle=[math.degrees(math.atan2(pos[v][0] - pos[u][0], pos[v][1] - pos[u][1])) for u, v, _ in heads],
                ),
                hovertext=[f"{plot_text(rel_type)} · strength {d['strength']:.2f}" for *_, d in heads],
                hovertemplate="%{hovertext}<extra></extra>",
                unselected=dict(marker=dict(opacity=1)),
            )
        )
    node_colour = type_colour or type_colours(d["memory_type"] for _, d in graph.nodes(data=True))
    first = True
    for memory_type in sorted({d["memory_type"] for _, d in graph.nodes(data=True)}):
        nodes = [(n, d) for n, d in graph.nodes(data=True) if d["memory_type"] == memory_type and n in pos]
        fig.add_trace(
            go.Scatter(
                x=[pos[n][0] for n, _ in nodes],
                y=[pos[n][1] for n, _ in nodes],
                mode="markers",
                name=plot_text(memory_type),
                legendgroup=f"type-{memory_type}",
                legendgrouptitle_text="Memory types" if first else None,
                marker=dict(
                    size=[8 + 22 * d["importance"] for _, d in nodes],
                    color=node_colour.get(memory_type, NODE_COLOURS[-1]),
                    line=dict(width=1, color="white"),
                ),
                customdata=[n for n, _ in nodes],
                hovertext=[
                    f"<b>{plot_text(memory_type)}</b> · importance {d['importance']:.2f} · "
                    f"{graph.degree(n)} relationships<br>{plot_text(d['content'])}"
                    for n, d in nodes
                ],
                hovertemplate="%{hovertext}<extra></extra>",
                unselected=dict(marker=dict(opacity=1)),
            )
        )
        first = False
    if selected in pos:
        fig.add_trace(
            go.Scatter(
                x=[pos[selected][0]],
                y=[pos[selected][1]],
                mode="markers",
                name="selected",
                showlegend=False,
                customdata=[selected],
                hoverinfo="skip",
                marker=dict(symbol="circle-open", size=14 + 22 * graph.nodes[selected]["importance"], color="#111827", line=dict(width=3)),
            )
        )
    axis = dict(showgrid=False, zeroline=False, showticklabels=False, title=None)
    fig.update_layout(
        title=title,
        height=620,
        margin=dict(l=10, r=10, t=50, b=10),
        hovermode="closest",
        xaxis=axis,
        yaxis=dict(axis, scaleanchor="x", scaleratio=1),
        clickmode="event+select",
        dragmode="pan",
    )
    return fig


def memory_table(frame: pd.DataFrame, rows: Sequence[tuple[str, float]], value: str) -> pd.DataFrame:
    """(memory id, number) pairs as a table to pick from: short content, type, the number, id."""
    content, kind = frame.set_index("id")["content"], frame.set_index("id")["memory_type"]
    return pd.DataFrame(
        {
            "memory": [str(content[i]) for i, _ in rows],
            "type": [kind[i] for i, _ in rows],
            value: [v for _, v in rows],
            "id": [i for i, _ in rows],
        }
    )


def suggestion_table(frame: pd.DataFrame, found: Sequence[LinkSuggestion]) -> pd.DataFrame:
    """Suggestions to review: a "save" tick (on), the similarity, both memories' content, their ids."""
    content = frame.set_index("id")["content"]
    return pd.DataFrame(
        {
            "save": [True] * len(found),
            "similarity": [s.similarity for s in found],
            "memory": [content.get(s.source_id, "") for s in found],
            "similar memory": [content.get(s.target_id, "") for s in found],
            "source": [s.source_id for s in found],
            "target": [s.target_id for s in found],
        }
    )


def related_pairs(relationships: Iterable[Relationship]) -> set[frozenset[str]]:
    """Unordered pairs of memories already linked by a relationship of any type."""
    return {frozenset((str(r.source_memory_id), str(r.target_memory_id))) for r in relationships}


def suggest_links(
    ids: Sequence[str],
    vectors: np.ndarray,
    existing_pairs: Collection[frozenset[str]],
    min_similarity: float = 0.8,
    limit: int = 100,
    neighbours: int = 5,
) -> list[LinkSuggestion]:
    """Pairs where one memory is among the other's `neighbours` nearest (cosine) at or above
    `min_similarity`, not already related, each unordered pair once (source = the earlier id
    in `ids`), most similar first."""
    if len(ids) < 2:
        return []
    found: dict[tuple[int, int], float] = {}
    threshold = min_similarity - TOLERANCE
    for start, block in cosine_blocks(vectors):
        for r, row in enumerate(block):
            i = start + r
            candidates = np.nonzero(row >= threshold)[0]
            taken = 0
            for j in candidates[np.argsort(-row[candidates], kind="stable")]:
                if taken >= neighbours:
                    break
                if j == i or frozenset((ids[i], ids[j])) in existing_pairs:
                    continue
                taken += 1
                pair = (i, int(j)) if i < j else (int(j), i)
                found[pair] = float(min(1.0, row[j]))
    ranked = sorted(found.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [LinkSuggestion(ids[a], ids[b], s) for (a, b), s in ranked]
