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


def test_a_query_is_placed_among_its_nearest_memories() -> None:
    ids, vectors = clusters()
    projection = fit_projection(ids, vectors, PARAMS)
    at = projection.place([("m0", 0.9), ("m2", 0.8), ("absent", 0.99)])
    assert at.shape == (2,) and np.isfinite(at).all()
    even = projection.coords[::2].mean(0)
    odd = projection.coords[1::2].mean(0)
    assert np.linalg.norm(at - even) < np.linalg.norm(at - odd)
    weighted = (projection.coords[0] * 0.9 + projection.coords[2] * 0.8) / 1.7
    assert at == pytest.approx(weighted)
    assert projection.place([("absent", 1.0)]) is None


def test_umap_kernels_are_kept_on_disk_and_load_from_there() -> None:
    """import_umap turns numba's cache on for umap's kernels (umap-learn leaves it off on those
    every fit runs): a fit writes them under NUMBA_CACHE_DIR, and a new process loads every kernel
    it needs from there instead of compiling it."""
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json, numpy as np\n"
        "from core.explorer.projection import fit_projection, ProjectionParams, import_umap\n"
        "umap = import_umap()\n"
        "from numba.core.dispatcher import Dispatcher\n"
        "import umap.umap_, umap.layouts, umap.utils, umap.distances\n"
        "kernels = [umap.umap_.smooth_knn_dist, umap.umap_.compute_membership_strengths, umap.layouts._nb_optimize_layout_euclidean_single_epoch]\n"
        "x = np.random.default_rng(0).standard_normal((60, 8)).astype(np.float32)\n"
        "fit_projection([str(i) for i in range(60)], x, ProjectionParams(n_neighbors=5))\n"
        "print(json.dumps({'cached': [not type(k._cache).__name__ == 'NullCache' for k in kernels],"
        " 'hits': sum(sum(k.stats.cache_hits.values()) for k in kernels), 'misses': sum(sum(k.stats.cache_misses.values()) for k in kernels)}))\n"
    )
    from pathlib import Path

    cache = Path(os.environ["NUMBA_CACHE_DIR"])  # conftest: kept between sessions, so only a first session compiles
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    run = lambda: json.loads(
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=900).stdout
    )
    first, second = run(), run()
    assert all(first["cached"]) and any(cache.rglob("*.nbi"))  # caching on, kernels written to disk
    assert second["misses"] == 0 and second["hits"] >= 3  # the second process compiled none of them, it loaded them


def test_a_kept_map_comes_back_and_a_changed_store_is_patched_meanwhile(svc, store, tenant) -> None:
    from core.explorer.projection import FitJobs, keep, kept, meanwhile, patched, preview

    svc.add_memories(store.id, [NewMemory(f"memory number {i}") for i in range(8)])
    key_ = projection_key(tenant.id, store, memory_frame(svc.all_memories(store.id)), PARAMS)
    assert kept(svc, key_, 100) == (None, None)
    ids, vectors = svc.store_vectors(store.id)
    fitted = fit_projection(ids, vectors, PARAMS)
    keep(svc, key_, fitted, 100)
    again, stored = kept(svc, key_, 100)
    assert again is not None and again.ids == fitted.ids and again.coords == pytest.approx(fitted.coords, abs=1e-5)
    assert stored is not None and stored.memory_count == 8
    svc.add_memory(store.id, "memory number 3 again")
    changed = projection_key(tenant.id, store, memory_frame(svc.all_memories(store.id)), PARAMS)
    current, old = kept(svc, changed, 100)
    assert current is None and old is not None  # the store moved past it
    shown = meanwhile(svc, changed, old, 100)
    assert shown.method == "stale" and len(shown.ids) == 9
    assert shown.coords[shown.ids.index(fitted.ids[0])] == pytest.approx(fitted.coords[0], abs=1e-5)
    assert preview(ids, vectors, PARAMS).coords.shape == (8, 2)
    coords = patched(["a", "b"], np.array([[0.0, 0.0], [10.0, 0.0]]), ["a", "c"], np.array([[1.0, 0.0], [1.0, 0.1]]))
    assert coords[0] == pytest.approx([0, 0]) and coords[1] == pytest.approx([0, 0])
    jobs = FitJobs()
    job = jobs.start(changed, lambda job: fit_projection(*svc.store_vectors(store.id), PARAMS))
    job.thread.join(600)
    assert job.result is not None and len(job.result.ids) == 9 and jobs.start(changed, lambda job: 1 / 0) is job
    with svc.transaction() as conn:  # another tenant never sees it (row-level security)
        from sqlalchemy import text

        assert conn.scalar(text("SELECT count(*) FROM store_projections")) == 1


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


def test_the_explorer_start_keeps_the_maps_of_small_stores_that_have_none(db, svc, store, user, tenant) -> None:
    from core.explorer.startup import keep_small_maps

    svc.add_memories(store.id, [NewMemory(f"memory number {i}") for i in range(6)])
    tiny = svc.get_or_create_store(user.id, "tiny", embedding_model="test-hashing")
    svc.add_memories(tiny.id, [NewMemory("too few for a map")])
    assert keep_small_maps(db, [tenant.id]) == 1
    assert svc.load_map(store.id, ProjectionParams().label()) is not None and svc.load_map(tiny.id, ProjectionParams().label()) is None
    assert keep_small_maps(db, [tenant.id]) == 0  # kept already


def test_the_explorer_start_up_work_ends_with_the_server_that_started_it() -> None:
    """A server stopped by its service manager (SIGTERM to the server alone) must not leave its
    start-up process compiling and fitting beside the next server: the process watches its parent."""
    import subprocess
    import sys
    from pathlib import Path

    import psutil

    # the "server": starts a process that sleeps for minutes under the start-up work's watch, then is killed
    child = (
        "import sys, threading, time; from core.explorer.startup import _end_with; "
        "threading.Thread(target=_end_with, args=(int(sys.argv[1]),), daemon=True).start(); time.sleep(300)"
    )
    server_code = (
        f"import os, subprocess, sys; c = subprocess.Popen([sys.executable, '-c', {child!r}, str(os.getpid())]);"
        " print(c.pid, flush=True); c.wait()"
    )
    root = Path(__file__).resolve().parents[1]
    server = subprocess.Popen([sys.executable, "-c", server_code], stdout=subprocess.PIPE, text=True, cwd=root)
    assert server.stdout is not None
    work = psutil.Process(int(server.stdout.readline()))
    try:
        assert work.is_running()
        server.kill()
        server.wait()
        work.wait(timeout=30)  # psutil.TimeoutExpired (the test fails) if it sleeps on
    finally:
        if work.is_running():
            work.kill()


def test_the_explorer_start_up_work_waits_while_the_browser_draws_the_first_page(db, monkeypatch) -> None:
    """The start-up process (imports, compiling, fitting) slowed Chromium's first plotly chart by
    ~0.9 s even at the lowest priority: app.py starts it after the first page, and it begins
    AFTER_PAGE_S later, once per process."""
    from core.config import get_settings
    from core.explorer import startup

    started: list[int] = []
    monkeypatch.setattr(startup, "_start_work", lambda: started.append(1))
    monkeypatch.setattr(startup, "_started", threading.Event())
    monkeypatch.setattr(startup, "AFTER_PAGE_S", 3.0)
    monkeypatch.setenv("MEMEX_EXPLORER_START_WORK", "1")
    get_settings.cache_clear()
    monkeypatch.setattr(db, "background_index", False)
    try:
        startup.start(db)
        startup.start(db)  # every page asks; one start
        assert started == [] and db.background_index  # not while the first page is being drawn
        waiting = [t for t in threading.enumerate() if t.name == "memex-start-work"]
        assert len(waiting) == 1
        waiting[0].join(30)
        assert started == [1]
    finally:
        get_settings.cache_clear()
