"""The Graph page through Streamlit's AppTest, on a store built here with the test-hashing embedder."""

from __future__ import annotations

import json

import pytest

from core import NewMemory
from core.models import NewRelationship
from tests.apptest import open_page, texts

CONTENTS = [
    "Alice prefers window seats on long flights",  # 0
    "Alice booked a flight to Lisbon for the conference",  # 1
    "The Lisbon conference runs from the third to the sixth",  # 2
    "Alice said she hates aisle seats",  # 3
    "Bob is allergic to peanuts",  # 4
    "Bob orders vegetarian meals",  # 5
    "hotel near central station booked for march trip to paris",  # 6
    "hotel near central station booked for march trip to paris again",  # 7: near duplicate of 6
    "The office moves to the fourth floor in June",  # 8
    "Quarterly report due Friday",  # 9
    "Carmen uses a standing desk",  # 10
    "<b>bold</b> **stars** kept literal",  # 11
]


@pytest.fixture
def graph_store(svc, store):
    """12 memories: a chain 0→1→2→3 (related_to 0.9, related_to 0.5, contradicts 0.2), 4→5 (supports 0.8),
    and six orphans, two of which (6, 7) are near duplicates."""
    added = svc.add_memories(
        store.id,
        [NewMemory(c, memory_type="preference" if i % 3 == 0 else "fact", importance=0.2 + 0.05 * i) for i, c in enumerate(CONTENTS)],
    )
    ids = [str(m.id) for m in added]
    svc.add_relationships(
        [
            NewRelationship(ids[0], ids[1], "related_to", 0.9),
            NewRelationship(ids[1], ids[2], "related_to", 0.5),
            NewRelationship(ids[2], ids[3], "contradicts", 0.2),
            NewRelationship(ids[4], ids[5], "supports", 0.8),
        ]
    )
    return ids


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def chart(at) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def test_graph_page_shows_the_facts_and_the_figure(graph_store, tenant, user) -> None:
    at = open_page("graph", tenant=tenant.name, user=user.name, store="default")
    assert not at.exception and not at.error
    m = metrics(at)
    assert (m["Memories"], m["Relationships"], m["Components"], m["Largest component"], m["Orphans"]) == ("12", "4", "8", "4", "6")
    spec = chart(at)
    node_ids = {c for t in spec["data"] for c in (t.get("customdata") or [])}
    assert node_ids == set(graph_store)
    legend = {t["name"] for t in spec["data"] if t.get("showlegend", True)}
    assert {"preference", "fact", "related_to", "contradicts", "supports"} <= legend
    hover = json.dumps([t.get("hovertext") for t in spec["data"]])
    assert "&lt;b&gt;bold&lt;/b&gt; **stars**" in hover and "<b>bold</b>" not in hover
    most_connected = at.dataframe[0].value
    assert set(most_connected["relationships"]) == {2, 1} and len(most_connected) == 5


def test_filters_change_the_edge_count(graph_store, tenant, user) -> None:
    at = open_page("graph", tenant=tenant.name, user=user.name, store="default")
    at.slider(key="graph-strength").set_value(0.3).run()
    assert not at.exception
    assert (metrics(at)["Relationships"], metrics(at)["Orphans"]) == ("3", "7")
    assert at.query_params["min_strength"] == "0.3"
    at.multiselect[0].set_value(["related_to"]).run()
    assert metrics(at)["Relationships"] == "2"
    edge_traces = [t for t in chart(at)["data"] if t.get("mode") == "lines"]
    assert {t["name"] for t in edge_traces} == {"related_to"}


def test_a_memory_in_the_url_is_opened_and_its_neighbourhood_drawn(graph_store, tenant, user) -> None:
    at = open_page("graph", tenant=tenant.name, user=user.name, store="default", memory=graph_store[1], depth="1")
    assert not at.exception and not at.error
    assert CONTENTS[1] in texts(at)  # memory_detail shows the content
    assert metrics(at)["Memories"] == "3" and metrics(at)["Relationships"] == "2"
    at.slider(key="graph-depth").set_value(2).run()
    assert metrics(at)["Memories"] == "4"
    assert at.query_params["depth"] == "2" and at.query_params["memory"] == graph_store[1]
    at.toggle(key="graph-ego").set_value(False).run()
    assert metrics(at)["Memories"] == "12" and "depth" not in at.query_params


def test_selecting_a_row_of_the_facts_opens_that_memory(graph_store, tenant, user) -> None:
    at = open_page("graph", tenant=tenant.name, user=user.name, store="default")
    assert "memory" not in at.query_params
    table = at.dataframe[0]
    first = table.value.iloc[0]
    at.session_state[table.key] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert at.query_params["memory"] in graph_store
    assert CONTENTS[graph_store.index(at.query_params["memory"])] in texts(at)
    assert first["memory"] in CONTENTS


def test_saving_suggested_links_writes_relationships(graph_store, svc, store, tenant, user) -> None:
    at = open_page("graph", tenant=tenant.name, user=user.name, store="default")
    at.toggle(key="graph-suggest").set_value(True).run()
    assert not at.exception and not at.error
    editor = at.data_editor[0].value
    pairs = {frozenset((s, t)) for s, t in zip(editor["source"], editor["target"])}
    assert frozenset((graph_store[6], graph_store[7])) in pairs
    assert frozenset((graph_store[0], graph_store[1])) not in pairs  # already related
    assert all(s >= 0.8 for s in editor["similarity"])
    assert not any(r.relationship_type == "similar_to" for r in svc.list_relationships(store.id))  # nothing saved yet
    save = next(b for b in at.button if b.label.startswith("Save"))
    assert save.label == f"Save {len(editor)} selected link{'s' if len(editor) != 1 else ''}"
    save.click().run()
    assert not at.exception and not at.error
    saved = {
        frozenset((str(r.source_memory_id), str(r.target_memory_id))): r.strength
        for r in svc.list_relationships(store.id)
        if r.relationship_type == "similar_to"
    }
    assert set(saved) == pairs
    expected = dict(zip(map(frozenset, zip(editor["source"], editor["target"])), editor["similarity"]))
    assert all(saved[p] == round(expected[p], 2) for p in pairs)
    assert "Saved" in " ".join(t.value for t in at.toast)
    assert metrics(at)["Relationships"] == str(4 + len(pairs))


def test_unticked_suggestions_are_not_saved(graph_store, svc, store, tenant, user) -> None:
    at = open_page("graph", tenant=tenant.name, user=user.name, store="default")
    at.toggle(key="graph-suggest").set_value(True).run()
    editor = at.data_editor[0]
    at.session_state[editor.key] = {"edited_rows": {0: {"save": False}}, "added_rows": [], "deleted_rows": []}
    at.run()
    save = next(b for b in at.button if b.label.startswith("Save"))
    assert save.label == f"Save {len(editor.value) - 1} selected link{'s' if len(editor.value) != 2 else ''}"


def test_another_tenants_store_never_shows(graph_store, other, tenant, user) -> None:
    at = open_page("graph", tenant=tenant.name, user=user.name, store="default")
    assert "launch code" not in json.dumps(chart(at)) and "launch code" not in texts(at)


def test_a_mangled_link_still_opens_the_page(graph_store, tenant, user) -> None:
    at = open_page("graph", tenant=tenant.name, user=user.name, store="default", memory="not-an-id", depth="x", min_strength="lots")
    assert not at.exception and not at.error
    assert metrics(at)["Relationships"] == "4" and "memory" not in at.query_params


def test_an_empty_store_says_what_to_do(svc, store, tenant, user) -> None:
    at = open_page("graph", tenant=tenant.name, user=user.name, store="default")
    assert not at.exception and not at.error
    assert "no memories yet" in at.info[0].value
