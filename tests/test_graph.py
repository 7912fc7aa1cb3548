"""core.graph: the relationship graph of a store, its facts, ego graphs, drawing and link suggestions."""

from __future__ import annotations

import numpy as np
import pytest

from core import NewMemory
from core.explorer.frames import memory_frame
from core.explorer.graph import build_graph, drawable, ego, figure, graph_facts, layout, related_pairs, suggest_links
from core.models import NewRelationship


@pytest.fixture
def chain(svc, store):
    """a → b → c → d (types and strengths vary), e → f, and g, h alone."""
    names = "abcdefgh"
    added = svc.add_memories(
        store.id,
        [NewMemory(f"memory {n}", memory_type="fact" if n < "e" else "event", importance=0.1 * (i + 1)) for i, n in enumerate(names)],
    )
    ids = {n: str(m.id) for n, m in zip(names, added)}
    svc.add_relationships(
        [
            NewRelationship(ids["a"], ids["b"], "related_to", 0.9),
            NewRelationship(ids["b"], ids["c"], "related_to", 0.5),
            NewRelationship(ids["c"], ids["d"], "contradicts", 0.2),
            NewRelationship(ids["e"], ids["f"], "supports", 0.8),
        ]
    )
    return ids, memory_frame(svc.all_memories(store.id)), svc.list_relationships(store.id)


def test_facts_of_a_known_graph(chain) -> None:
    ids, frame, rels = chain
    facts = graph_facts(build_graph(frame, rels))
    assert (facts.memories, facts.relationships, facts.components, facts.largest_component, facts.orphans) == (8, 4, 4, 4, 2)
    assert {m for m, d in facts.most_connected[:2]} == {ids["b"], ids["c"]}
    assert [d for _, d in facts.most_connected] == [2, 2, 1, 1, 1]  # the top 5, orphans never
    # on the path a-b-c-d, b and c carry every shortest path between the ends
    assert {m for m, _ in facts.most_central} == {ids["b"], ids["c"]}


def test_filters_by_type_and_strength_change_edges_and_components(chain) -> None:
    ids, frame, rels = chain
    strong = graph_facts(build_graph(frame, rels, min_strength=0.3))
    assert (strong.relationships, strong.components, strong.orphans) == (3, 5, 3)
    related = build_graph(frame, rels, types={"related_to"})
    assert sorted(d["relationship_type"] for *_, d in related.edges(data=True)) == ["related_to", "related_to"]
    assert graph_facts(build_graph(frame, rels, types=set())).relationships == 0


def test_ego_graph_follows_relationships_both_ways_to_the_depth(chain) -> None:
    ids, frame, rels = chain
    graph = build_graph(frame, rels)
    assert set(ego(graph, ids["b"], 1)) == {ids["a"], ids["b"], ids["c"]}
    assert set(ego(graph, ids["b"], 2)) == {ids["a"], ids["b"], ids["c"], ids["d"]}
    assert set(ego(graph, ids["d"], 1)) == {ids["c"], ids["d"]}  # against the arrow's direction too
    assert set(ego(graph, ids["g"], 3)) == {ids["g"]}
    assert ego(graph, ids["b"], 1).number_of_edges() == 2


def test_relationships_to_another_store_are_counted_not_drawn(svc, user, store, chain) -> None:
    ids, frame, _ = chain
    elsewhere = svc.get_or_create_store(user.id, "elsewhere", embedding_model="test-hashing")
    outside = svc.add_memory(elsewhere.id, "in another store")
    svc.add_relationship(ids["a"], outside.id, "related_to", 0.5)
    graph = build_graph(frame, svc.list_relationships(store.id))
    assert graph.graph["outside"] == 1 and str(outside.id) not in graph


def test_layout_is_deterministic_and_covers_every_node(chain) -> None:
    _, frame, rels = chain
    graph = build_graph(frame, rels)
    nodes, edges = tuple(sorted(graph)), tuple(sorted((u, v) for u, v in graph.edges()))
    assert layout(nodes, edges) == layout(nodes, edges)
    assert set(layout(nodes, edges)) == set(nodes)
    big = tuple(f"n{i}" for i in range(80))
    assert layout(big, (("n0", "n1"),)) == layout(big, (("n0", "n1"),))


def test_layout_keeps_components_and_orphans_apart() -> None:
    edges = [("a1", "a2"), ("a2", "a3"), ("a3", "a1"), ("b1", "b2"), ("c1", "c2"), ("c2", "c3")]
    nodes = ("a1", "a2", "a3", "b1", "b2", "c1", "c2", "c3", "o1", "o2")
    pos = layout(nodes, edges)
    boxes = []
    for group in (("a1", "a2", "a3"), ("b1", "b2"), ("c1", "c2", "c3"), ("o1",), ("o2",)):
        xs, ys = [pos[n][0] for n in group], [pos[n][1] for n in group]
        boxes.append((min(xs), max(xs), min(ys), max(ys)))
    for i, (x0, x1, y0, y1) in enumerate(boxes):
        for u0, u1, v0, v1 in boxes[i + 1 :]:
            assert x1 < u0 or u1 < x0 or y1 < v0 or v1 < y0  # no two groups' boxes overlap


def test_drawable_keeps_the_most_connected(chain) -> None:
    ids, frame, rels = chain
    kept = drawable(build_graph(frame, rels), limit=2)
    assert set(kept) == {ids["b"], ids["c"]}


def test_figure_escapes_content_and_carries_ids(svc, store) -> None:
    a = svc.add_memory(store.id, "<b>bold</b> **not markdown**", memory_type="<i>odd</i>")
    b = svc.add_memory(store.id, "plain", memory_type="fact")
    svc.add_relationship(a.id, b.id, "<u>rel</u>", 0.7)
    graph = build_graph(memory_frame(svc.all_memories(store.id)), svc.list_relationships(store.id))
    fig = figure(graph, layout(tuple(graph), tuple(graph.edges())), selected=str(a.id))
    shown = " ".join(str(t.name) + " " + " ".join(t.hovertext or ()) for t in fig.data)
    assert "<b>bold</b>" not in shown and "&lt;b&gt;bold&lt;/b&gt; **not markdown**" in shown
    assert "<i>odd</i>" not in shown and "<u>rel</u>" not in shown
    assert {c for t in fig.data for c in (t.customdata if t.customdata is not None else ())} == {str(a.id), str(b.id)}
    legend = {t.name for t in fig.data if t.showlegend is not False}
    assert {"&lt;i&gt;odd&lt;/i&gt;", "fact", "&lt;u&gt;rel&lt;/u&gt;"} <= legend


def test_suggest_links_finds_exact_pairs() -> None:
    ids = ["a", "b", "c", "d", "e", "f"]
    vectors = np.array(
        [
            [1.0, 0, 0, 0],
            [2.0, 0.2, 0, 0],  # same direction as a, not unit length: normalised
            [0, 1.0, 0, 0],
            [0, 0.8, 0.6, 0],  # cos(c, d) = 0.8 exactly
            [0, 0, 0.6, 0.8],  # cos(d, e) = 0.36
            [0, 0, 0, 0],  # a zero vector is similar to nothing
        ]
    )
    found = suggest_links(ids, vectors, set(), min_similarity=0.8)
    assert [(s.source_id, s.target_id) for s in found] == [("a", "b"), ("c", "d")]
    assert found[0].similarity == pytest.approx(2 / np.sqrt(4.04), abs=1e-5)
    assert found[1].similarity == pytest.approx(0.8, abs=1e-5)
    # already related (any type, either direction) pairs are left out; a higher bar keeps fewer
    assert [(s.source_id, s.target_id) for s in suggest_links(ids, vectors, {frozenset(("b", "a"))})] == [("c", "d")]
    assert [(s.source_id, s.target_id) for s in suggest_links(ids, vectors, set(), min_similarity=0.9)] == [("a", "b")]
    assert len(suggest_links(ids, vectors, set(), min_similarity=0.8, limit=1)) == 1
    assert suggest_links(["a"], vectors[:1], set()) == []


def test_suggest_links_limits_each_memory_to_its_nearest_neighbours() -> None:
    ids = [str(i) for i in range(6)]
    vectors = np.ones((6, 3)) + np.arange(6)[:, None] * np.array([0, 0, 0.05])  # six near duplicates
    pairs = {(s.source_id, s.target_id) for s in suggest_links(ids, vectors, set(), neighbours=1)}
    assert all(a < b for a, b in pairs) and 3 <= len(pairs) <= 5
    assert len(suggest_links(ids, vectors, set(), neighbours=5)) == 15  # every unordered pair once


def test_related_pairs_are_unordered(chain) -> None:
    ids, _, rels = chain
    pairs = related_pairs(rels)
    assert frozenset((ids["b"], ids["a"])) in pairs and len(pairs) == 4
