"""The Embedding map page through Streamlit's AppTest, on a store built here with the test-hashing embedder."""

from __future__ import annotations

import json
import threading

import pytest
import streamlit as st

from core import NewMemory
from core.explorer import projection as proj
from tests.apptest import open_page, texts

WORDS = "flight seat window aisle hotel paris lisbon conference peanuts vegetarian desk report".split()


@pytest.fixture(autouse=True)
def umap_loaded() -> None:
    """UMAP imported, as after the explorer's warm-up: small maps are then fitted while the page waits."""
    proj.import_umap()


@pytest.fixture
def map_store(svc, store):
    added = svc.add_memories(
        store.id,
        [
            NewMemory(
                f"memory about {w} and {WORDS[(i + 1) % len(WORDS)]}" + (" <b>x</b>" if i == 0 else ""),
                memory_type="fact" if i % 2 else "preference",
                source="chat" if i % 3 else None,
                importance=0.1 + 0.07 * i,
            )
            for i, w in enumerate(WORDS)
        ],
    )
    return [str(m.id) for m in added]


def chart(at) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def points(spec: dict) -> set[str]:
    return {c for t in spec["data"] for c in (t.get("customdata") or [])}


def test_map_shows_every_memory_then_reuses_the_kept_projection(map_store, tenant, user, svc, store) -> None:
    at = open_page("map", tenant=tenant.name, user=user.name, store="default", nn="5")
    assert not at.exception and not at.error
    spec = chart(at)
    assert points(spec) == set(map_store)
    assert {t["type"] for t in spec["data"]} == {"scattergl"}
    assert {t["name"] for t in spec["data"]} == {"fact", "preference"}
    assert "&lt;b&gt;x&lt;/b&gt;" in json.dumps(spec) and "<b>x</b>" not in json.dumps(spec)
    assert "Showing the map computed" not in texts(at)
    reopened = open_page("map", tenant=tenant.name, user=user.name, store="default", nn="5")  # another session
    assert not reopened.exception
    assert "Showing the map computed" in texts(reopened)
    assert chart(reopened)["data"][0]["x"] == spec["data"][0]["x"]
    reopened.button[0].click().run()  # Recompute
    assert "Showing the map computed" not in texts(reopened) and not reopened.exception
    kept = svc.load_map(store.id, proj.ProjectionParams(n_neighbors=5).label())
    assert kept is not None and set(kept.ids) == set(map_store)  # in the database: a restart draws it without UMAP


def test_a_kept_map_is_drawn_after_a_restart_without_fitting(map_store, tenant, user, monkeypatch) -> None:
    open_page("map", tenant=tenant.name, user=user.name, store="default", nn="5")
    st.cache_resource.clear()  # as a new server process: nothing of the fit left in memory
    monkeypatch.setattr(proj, "fit_projection", lambda *a, **kw: pytest.fail("fitted again"))
    at = open_page("map", tenant=tenant.name, user=user.name, store="default", nn="5")
    assert not at.exception and not at.error and points(chart(at)) == set(map_store)
    assert "Showing the map computed" in texts(at)


def test_a_big_store_shows_a_preview_while_its_map_is_fitted_in_the_background(map_store, tenant, user, monkeypatch) -> None:
    monkeypatch.setattr(proj, "INLINE_MAX", 4)
    go, fit = threading.Event(), proj.fit_projection
    monkeypatch.setattr(proj, "fit_projection", lambda *a, **kw: go.wait(60) and fit(*a, **kw))
    st.cache_resource.clear()
    at = open_page("map", tenant=tenant.name, user=user.name, store="default", nn="5")
    assert not at.exception and not at.error
    assert "linear preview" in at.info[0].value and "PCA preview" in json.dumps(chart(at))
    assert "n_neighbors" not in json.dumps(chart(at)["layout"]["title"])  # a preview has no UMAP settings
    assert points(chart(at)) == set(map_store)
    go.set()
    for thread in threading.enumerate():  # the background fit (FitJobs)
        if thread.name.startswith("memex-map-"):
            thread.join(600)
    at.run()  # what the progress fragment does once the fit is done
    assert not at.exception and not at.error
    assert "PCA preview" not in json.dumps(chart(at)) and "Showing the map computed" in texts(at)
    assert points(chart(at)) == set(map_store)


def test_3d_colour_and_a_query_overlay(map_store, tenant, user, svc, store) -> None:
    at = open_page(
        "map", tenant=tenant.name, user=user.name, store="default", nn="5", dims="3D", colour="Importance", q="window seat", k="3"
    )
    assert not at.exception and not at.error
    spec = chart(at)
    assert {t["type"] for t in spec["data"]} == {"scatter3d"}
    names = [t.get("name") for t in spec["data"]]
    assert "the query (placed approximately)" in names and "its top 3 results" in names
    rings = next(t for t in spec["data"] if t.get("name") == "its top 3 results")
    assert rings["text"] == ["1", "2", "3"]  # each result ringed where it lies, with its rank
    assert "true nearest" in texts(at)
    assert spec["data"][0]["marker"]["colorbar"]["title"]["text"] == "Importance"
    shown = [t.value for t in at.text]
    assert len(shown) == 3 and shown[0].startswith("memory about")
    assert [c.value.split(" · ")[0] for c in at.caption if c.value[:1].isdigit()] == ["1", "2", "3"]
    assert all(m.access_count == 0 for m in svc.list_memories(store.id).items)  # inspecting counts no access
    assert svc.retrievals(store.id).total == 0  # and is not an agent's retrieval: nothing in the log
    at.selectbox(key="map-colour").set_value("Type").run()
    assert at.query_params["colour"] == "Type"


def test_large_stores_are_sampled_and_the_page_says_so(map_store, tenant, user, monkeypatch) -> None:
    monkeypatch.setattr(proj, "SAMPLE_CAP", 8)
    at = open_page("map", tenant=tenant.name, user=user.name, store="default", nn="4")
    assert not at.exception and not at.error
    assert "Showing 8 of 12 memories, sampled" in at.warning[0].value
    assert len(points(chart(at))) == 8 and points(chart(at)) <= set(map_store)


def test_a_store_with_fewer_than_five_memories_says_a_map_needs_five(svc, store, tenant, user) -> None:
    svc.add_memories(store.id, [NewMemory(f"memory {i}") for i in range(3)])
    at = open_page("map", tenant=tenant.name, user=user.name, store="default")
    assert not at.exception and not at.error
    assert "at least 5" in at.info[0].value and not at.get("plotly_chart")


def test_changed_memories_refit_the_map(map_store, svc, store, tenant, user) -> None:
    open_page("map", tenant=tenant.name, user=user.name, store="default", nn="5")
    svc.add_memory(store.id, "a thirteenth memory about trains")  # written outside the explorer (an agent)
    st.cache_data.clear()  # as when the store frame's one-minute cache expires
    at = open_page("map", tenant=tenant.name, user=user.name, store="default", nn="5")
    assert "cached projection" not in texts(at)
    assert len(points(chart(at))) == 13


def test_another_tenants_memories_never_reach_the_map(map_store, other, tenant, user) -> None:
    at = open_page("map", tenant=tenant.name, user=user.name, store="default", nn="5", q="launch code")
    assert not at.exception and not at.error
    assert "launch code of the other tenant" not in json.dumps(chart(at))
    assert all("launch code" not in t.value for t in at.text)
