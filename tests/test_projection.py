"""core.projection: UMAP maps of a store's embeddings, their sampling, their cache, their figure."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from core import NewMemory
from core.errors import InvalidInput
from core.explorer.frames import memory_frame
from core.explorer.projection import (
    ProjectionCache,
    ProjectionKey,
    ProjectionParams,
    fit_projection,
    map_figure,
    points_frame,
    projection_key,
    sample_indices,
)

PARAMS = ProjectionParams(n_neighbors=5, min_dist=0.1)


def key(store: str) -> ProjectionKey:
    return ProjectionKey("tenant", store, "test-hashing/384", 12, "2026-01-01T00:00:00+00:00", PARAMS)


def clusters(n: int = 12, dim: int = 16) -> tuple[list[str], np.ndarray]:
    """Two well separated groups of vectors around two directions."""
    rng = np.random.default_rng(3)
    centres = np.eye(dim)[:2] * 5
    vectors = np.vstack([centres[i % 2] + rng.normal(scale=0.3, size=dim) for i in range(n)])
    return [f"m{i}" for i in range(n)], vectors


def test_projection_has_one_point_per_memory_and_is_deterministic() -> None:
    ids, vectors = clusters()
    first = fit_projection(ids, vectors, PARAMS)
    assert first.coords.shape == (12, 2) and first.ids == ids and not first.sampled
    assert np.array_equal(first.coords, fit_projection(ids, vectors, PARAMS).coords)
    three = fit_projection(ids, vectors, ProjectionParams(n_neighbors=5, dims=3))
    assert three.coords.shape == (12, 3)


def test_the_map_keeps_the_two_groups_apart() -> None:
    ids, vectors = clusters()
    coords = fit_projection(ids, vectors, PARAMS).coords
    even, odd = coords[::2], coords[1::2]
    spread = max(np.linalg.norm(even - even.mean(0), axis=1).max(), np.linalg.norm(odd - odd.mean(0), axis=1).max())
    assert np.linalg.norm(even.mean(0) - odd.mean(0)) > spread


def test_tiny_stores_clip_n_neighbors_and_fewer_than_five_are_refused() -> None:
    ids, vectors = clusters(5)
    projection = fit_projection(ids, vectors, ProjectionParams(n_neighbors=15))
    assert projection.coords.shape == (5, 2) and projection.n_neighbors == 4
    assert np.isfinite(projection.coords).all()
    with pytest.raises(InvalidInput, match="at least 5"):
        fit_projection(ids[:4], vectors[:4], PARAMS)


def test_large_stores_are_sampled_to_the_cap_with_a_fixed_seed() -> None:
    assert list(sample_indices(5, cap=10)) == [0, 1, 2, 3, 4]
    picked = sample_indices(100, cap=10, seed=1)
    assert len(set(picked)) == 10 and list(picked) == sorted(picked) and list(picked) == list(sample_indices(100, cap=10, seed=1))
    ids, vectors = clusters(12)
    projection = fit_projection(ids, vectors, PARAMS, cap=8)
    assert projection.sampled and projection.total == 12 and len(projection.ids) == 8
    assert projection.coords.shape == (8, 2) and set(projection.ids) <= set(ids)


def test_a_query_is_placed_through_the_fitted_model() -> None:
    ids, vectors = clusters()
    projection = fit_projection(ids, vectors, PARAMS)
    at = projection.place(vectors[0] * 3)  # scale does not matter: cosine
    assert at.shape == (2,) and np.isfinite(at).all()
    even = projection.coords[::2].mean(0)
    odd = projection.coords[1::2].mean(0)
    assert np.linalg.norm(at - even) < np.linalg.norm(at - odd)


def test_the_cache_returns_the_same_projection_without_refitting() -> None:
    ids, vectors = clusters()
    cache = ProjectionCache()
    loads = []

    def load():
        loads.append(1)
        return ids, vectors

    key_ = key("store")
    first, cached_first = cache.get_or_fit(key_, load)
    second, cached_second = cache.get_or_fit(key_, load)
    assert (cached_first, cached_second) == (False, True)
    assert second is first and np.array_equal(second.coords, first.coords)
    assert cache.fits == 1 and len(loads) == 1 and cache.get(key_) is first
    cache.drop(key_)
    assert cache.get(key_) is None
    again, cached = cache.get_or_fit(key_, load)
    assert not cached and cache.fits == 2 and np.array_equal(again.coords, first.coords)


def test_two_sessions_asking_together_fit_once() -> None:
    ids, vectors = clusters()
    cache = ProjectionCache()
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_fit(key("k"), lambda: (ids, vectors)))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.fits == 1 and sorted(cached for _, cached in results) == [False, True, True]


def test_the_cache_forgets_the_least_recently_used() -> None:
    ids, vectors = clusters(6)
    cache = ProjectionCache(max_entries=2)
    for name in ("a", "b"):
        cache.get_or_fit(key(name), lambda: (ids, vectors))
    cache.get(key("a"))
    cache.get_or_fit(key("c"), lambda: (ids, vectors))
    assert cache.get(key("b")) is None and cache.get(key("a")) is not None and cache.get(key("c")) is not None


def test_the_key_changes_when_the_store_changes(svc, store, tenant) -> None:
    svc.add_memories(store.id, [NewMemory(f"memory number {i}") for i in range(5)])
    before = projection_key(tenant.id, store, memory_frame(svc.all_memories(store.id)), PARAMS)
    assert before == projection_key(tenant.id, store, memory_frame(svc.all_memories(store.id)), PARAMS)
    assert before != projection_key(tenant.id, store, memory_frame(svc.all_memories(store.id)), ProjectionParams(n_neighbors=6))
    added = svc.add_memory(store.id, "one more")
    after_add = projection_key(tenant.id, store, memory_frame(svc.all_memories(store.id)), PARAMS)
    assert after_add.count == before.count + 1
    svc.update_memory(added.id, content="one more, edited")
    assert projection_key(tenant.id, store, memory_frame(svc.all_memories(store.id)), PARAMS) != after_add


def test_points_and_figure_from_a_real_store(svc, store) -> None:
    added = svc.add_memories(
        store.id,
        [
            NewMemory(f"<b>memory</b> {w}", memory_type="fact" if i % 2 else "event", source=None if i == 0 else "chat")
            for i, w in enumerate("alpha beta gamma delta epsilon zeta".split())
        ],
    )
    svc.set_archived([added[0].id], True)
    memories, vectors = svc.store_embeddings(store.id)
    projection = fit_projection([str(m.id) for m in memories], vectors, PARAMS)
    points = points_frame(memory_frame(svc.all_memories(store.id)), projection)
    assert len(points) == 6 and set(points["status"]) == {"archived", "live"}
    assert (points["age_days"] >= 0).all() and "(none)" in set(points["source"])
    fig = map_figure(points, "memory_type", title="t")
    assert sorted(t.name for t in fig.data) == ["event", "fact"] and all(t.type == "scattergl" for t in fig.data)
    assert "<b>memory</b>" not in " ".join(h for t in fig.data for h in t.hovertext)
    fig = map_figure(points, "importance", title="t", query=("q", projection.coords[0], [str(added[1].id), "absent"]))
    names = [t.name for t in fig.data]
    assert names[-2:] == ["its top 1 results", "the query (placed approximately)"]
    ring, star = fig.data[-2], fig.data[-1]
    result = points.set_index("id").loc[str(added[1].id)]
    assert list(ring.x) == [pytest.approx(result["x"])] and list(ring.text) == ["1"]  # ringed where it lies
    assert list(star.x) == [pytest.approx(projection.coords[0][0])]
    assert not fig.layout.xaxis.showticklabels and not fig.layout.yaxis.showticklabels  # coordinates mean nothing
    three = fit_projection([str(m.id) for m in memories], vectors, ProjectionParams(n_neighbors=5, dims=3))
    fig3 = map_figure(
        points_frame(memory_frame(svc.all_memories(store.id)), three), "status", title="t", query=("q", three.coords[0], [str(added[1].id)])
    )
    assert {t.type for t in fig3.data} == {"scatter3d"}
