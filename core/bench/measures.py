"""What `memex bench` measures on a built Bench. Each measure returns its figures keyed as in the
JSON report (docs/BENCHMARKS.md reads them).

Search is timed through the service and graded against the exact answer of the same query with
the same filters (recall@10, and "short results": fewer than k rows where the store had k live
ones). Variants of search (the ef_search sweep, exact against HNSW per store size) are a
SearchTuning handed to the search, never a change to core.search. The explorer's measures import
its packages inside themselves, so the rest runs without them.
"""

from __future__ import annotations

import os
import re
import statistics
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4, uuid5

import numpy as np

from core.bench.harness import Bench, K
from core.bench.report import log
from core.bench.synth import BenchStore, Query, Universe, make_queries, make_rows, sentences, size_class, store_mixture
from core.search import SearchTuning

# (kind, relation) of each scan in an EXPLAIN plan
_SCAN = re.compile(r"((?:Bitmap Heap|Bitmap Index|Index Only|Index|Seq) Scan) (?:Backward )?(?:using|on) (\w+)")


@dataclass(frozen=True)
class QueryOutcome:
    """One timed search: its store, milliseconds, rows returned and recall against the truth."""

    store: BenchStore
    ms: float
    returned: int
    recall: float

    @property
    def short(self) -> bool:
        """Fewer rows than asked although the store had enough live ones: a filter starved the index."""
        return self.returned < min(K, self.store.live)


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else float("nan")


def recall_of(got: Sequence[UUID], truth: Sequence[UUID]) -> float:
    """Share of the true nearest found (1 when the store has nothing live to find)."""
    if not truth:
        return 1.0
    return len(set(got) & set(truth)) / len(truth)


def latency(ms: Sequence[float], quantiles: Sequence[int] = (50, 95, 99), prefix: str = "") -> dict[str, float]:
    """{prefix}p50_ms, ... rounded to 0.01 ms."""
    return {f"{prefix}p{q}_ms": round(percentile(ms, q), 2) for q in quantiles}


def accuracy(outcomes: Sequence[QueryOutcome]) -> dict[str, Any]:
    """recall_at_10 (mean) and short_results (count)."""
    return {"recall_at_10": round(statistics.fmean(o.recall for o in outcomes), 4), "short_results": sum(o.short for o in outcomes)}


def figures(outcomes: Sequence[QueryOutcome], quantiles: Sequence[int] = (50, 95, 99)) -> dict[str, Any]:
    """Latency percentiles, then recall and short results, of a group of searches."""
    return {**latency([o.ms for o in outcomes], quantiles), **accuracy(outcomes)}


def timed(bench: Bench, queries: Sequence[Query], tuning: SearchTuning | None = None) -> list[QueryOutcome]:
    """Each query searched once through the service, with `tuning` (default: the bench's)."""
    outcomes = []
    for q in queries:
        ids, ms = bench.search(q, tuning)
        outcomes.append(QueryOutcome(q.store, ms, len(ids), recall_of(ids, bench.truth(q))))
    return outcomes


# search ----------------------------------------------------------------------------------------


def measure_search(bench: Bench, queries: Sequence[Query], *, seed: bool) -> tuple[list[QueryOutcome], list[QueryOutcome] | None]:
    """The queries through the service in steady state, then (with `seed`) through the seed's
    layout: (service outcomes, seed outcomes or None)."""
    for q in queries:  # exact answers first: their scans would otherwise evict the index between timed searches
        bench.truth(q)
    # steady state: other searches of the same stores first, as a served index is warm. The
    # cluster starts cold with each run (and a new index is written around shared_buffers):
    # 600 warm-up searches left the 1M index's tail cold (p99 197 ms vs 9 ms once warm).
    warm_up = min(max(2_000, 3 * len(queries)), 5_000)
    for q in make_queries(bench.universe, bench.stores, warm_up, bench.scenario.seed + 1):
        bench.search(q)
    outcomes = timed(bench, queries)
    if not seed:
        return outcomes, None
    seed_outcomes = []
    for q in queries:
        t0 = time.perf_counter()
        ids = bench.seed_search(q)
        seed_outcomes.append(QueryOutcome(q.store, (time.perf_counter() - t0) * 1000, len(ids), recall_of(ids, bench.truth(q))))
    return outcomes, seed_outcomes


def summarise(outcomes: Sequence[QueryOutcome], seed_outcomes: Sequence[QueryOutcome] | None, exact_max_rows: int) -> dict[str, Any]:
    """Overall figures, the seed's beside them, and both by store size class (with the path,
    exact or HNSW, that search takes for that size)."""
    out: dict[str, Any] = {"queries": len(outcomes), **latency([o.ms for o in outcomes], prefix="search_"), **accuracy(outcomes)}
    if seed_outcomes:
        seed = accuracy(seed_outcomes)
        out.update(
            seed_ivfflat_recall_at_10=seed["recall_at_10"],
            seed_short_results=seed["short_results"],
            **latency([o.ms for o in seed_outcomes], (50,), prefix="seed_search_"),
        )
    by_size: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(size_class(o.store.size) for o in sorted(outcomes, key=lambda o: o.store.size)):
        picks = [i for i, o in enumerate(outcomes) if size_class(o.store.size) == name]
        group = [outcomes[i] for i in picks]
        row = {"queries": len(group), "path": "exact" if group[0].store.size <= exact_max_rows else "hnsw", **figures(group)}
        if seed_outcomes:
            row.update({f"seed_{key}": value for key, value in accuracy([seed_outcomes[i] for i in picks]).items()})
        by_size[name] = row
    out["by_store_size"] = by_size
    return out


def measure_concurrency(bench: Bench, queries: Sequence[Query], threads: int = 4) -> dict[str, Any]:
    """Searches per second with `threads` clients searching at once."""
    latencies: list[float] = []
    lock = threading.Lock()

    def run(part: Sequence[Query]) -> None:
        mine = [bench.search(q)[1] for q in part]
        with lock:
            latencies.extend(mine)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, [queries[i::threads] for i in range(threads)]))
    seconds = time.perf_counter() - t0
    return {
        "concurrent_threads": threads,
        "concurrent_qps": round(len(queries) / seconds, 1),
        **latency(latencies, (50, 99), prefix="concurrent_"),
    }


def measure_record_access(bench: Bench, queries: Sequence[Query]) -> dict[str, Any]:
    """The same searches with access counting on (the seed's default): an UPDATE per search."""
    return latency([bench.search(q, record_access=True)[1] for q in queries], (50,), prefix="search_record_access_")


def measure_log(bench: Bench, queries: Sequence[Query]) -> dict[str, Any]:
    """What the retrieval log costs a search: the same searches with and without it, alternated
    query by query so both see the same load and the same warm pages."""
    logged: list[float] = []
    unlogged: list[float] = []
    for n, q in enumerate(queries):
        first, second = (True, False) if n % 2 else (False, True)
        for flag in (first, second):
            (logged if flag else unlogged).append(bench.search(q, log=flag)[1])
    out = {**latency(logged, (50, 99), prefix="search_logged_"), **latency(unlogged, (50, 99), prefix="search_unlogged_")}
    out["log_cost_p50_ms"] = round(out["search_logged_p50_ms"] - out["search_unlogged_p50_ms"], 2)
    return out


def measure_modes(bench: Bench, queries: Sequence[Query], modes: Sequence[str] = ("vector", "text", "hybrid")) -> dict[str, Any]:
    """Search latency per mode through search_memories, as agents and the Search page call it (the
    query's text and its vector; no log, no access counting). The texts are sentences of the
    synthetic memories' vocabulary, so the text side matches many memories of a big store: its
    lookup is bounded by SearchTuning.text_budget (core.bm25)."""
    texts = sentences(np.random.default_rng(len(queries)), len(queries))
    out: dict[str, Any] = {}
    for mode in modes:
        ms = []
        for q, query in zip(queries, texts, strict=True):
            svc = bench.service(q.store.tenant_id)
            t0 = time.perf_counter()
            svc.search_memories(
                q.store.store_id, query, K, 0.0, mode=mode, query_embedding=q.vector, record_access=False, log=False, tuning=bench.tuning
            )
            ms.append((time.perf_counter() - t0) * 1000)
        out.update(latency(ms, (50, 99), prefix=f"search_{mode}_mode_"))
    return out


def explain_plans(bench: Bench, queries: Sequence[Query], verbose: bool) -> dict[str, Any]:
    """EXPLAIN ANALYZE of the service's own vector query, once per store size class: which
    indexes each uses (small stores must not touch the HNSW index); plans on stderr if `verbose`."""
    plans: dict[str, Any] = {}
    for q in sorted(queries, key=lambda q: q.store.size):
        name = size_class(q.store.size)
        if name in plans:
            continue
        plan = "\n".join(bench.explain(q))
        # what ran: row-level security plans a subquery over memory_stores that only an API key's
        # scope executes ("never executed" otherwise)
        ran = "\n".join(line for line in plan.splitlines() if "(never executed)" not in line)
        scans = sorted(set(_SCAN.findall(ran)))
        execution = re.search(r"Execution Time: ([\d.]+) ms", plan)
        plans[name] = {
            "store_size": q.store.size,
            "indexes": sorted({rel for _, rel in scans if rel != "memories"}),
            "scans": [f"{kind} on {rel}" for kind, rel in scans],
            "execution_ms": float(execution.group(1)) if execution else None,
        }
        if verbose:
            log(f"EXPLAIN ANALYZE, store of {q.store.size:,} memories:\n" + plan)
    return plans


# variants of search ----------------------------------------------------------------------------


def sweep_ef(bench: Bench, queries: Sequence[Query], values: Sequence[int]) -> dict[str, Any]:
    """Recall and latency of the HNSW path at several hnsw.ef_search values (big stores only)."""
    hnsw = [q for q in queries if q.store.size > bench.tuning.exact_max_rows]
    if not hnsw:
        return {}
    rows = {}
    for ef in values:
        rows[str(ef)] = figures(timed(bench, hnsw, replace(bench.tuning, ef_search=int(ef))), (50, 99))
        log(f"ef_search {ef}: {rows[str(ef)]}")
    return {"ef_search_sweep": {"queries": len(hnsw), "by_ef": rows}}


def crossover(bench: Bench, queries: Sequence[Query], per_size: int = 40) -> dict[str, Any]:
    """Every store size searched both ways (exact, HNSW) with the same queries: where exact search
    stops paying (SearchTuning.exact_max_rows)."""
    by_size: dict[str, list[Query]] = {}
    for q in queries:
        by_size.setdefault(size_class(q.store.size), []).append(q)
    table = {}
    for name, group in sorted(by_size.items(), key=lambda kv: kv[1][0].store.size):
        group = group[:per_size]
        row: dict[str, Any] = {"store_size": group[0].store.size, "queries": len(group)}
        for path, limit in (("exact", 10**12), ("hnsw", -1)):
            tuning = replace(bench.tuning, exact_max_rows=limit)
            for q in group[:3]:  # warm this path's pages
                bench.search(q, tuning)
            row.update({f"{path}_{key}": value for key, value in figures(timed(bench, group, tuning), (50, 99)).items()})
        table[name] = row
        log(f"crossover {name}: {row}")
    return table


def insert_with_full_index(bench: Bench, rows_to_add: int = 2_000) -> dict[str, Any]:
    """Steady state: an agent adding memories while the full HNSW index is there, into a store of
    its own (deleted afterwards, so the measured stores stay as they were), and into the biggest
    store (its rows stay out of the graph until index_pending, timed too; deleted afterwards)."""
    first = bench.stores[0]
    svc = bench.service(first.tenant_id)
    store = bench.add_store(first.tenant_id, svc.get_store(first.store_id).user_id, f"insert-probe-{time.time_ns()}")
    probe = BenchStore(len(bench.stores), rows_to_add, first.tenant_id, store.id, first.clusters, first.weights)
    rows = make_rows(bench.universe, probe, bench.scenario.seed + 1, datetime.now(UTC))
    t0 = time.perf_counter()
    svc.bulk_add_memories(store.id, rows)
    seconds = time.perf_counter() - t0
    svc.delete_store(store.id)
    out: dict[str, Any] = {"insert_with_full_index_rows_per_s": round(rows_to_add / seconds)}
    if first.size > bench.tuning.exact_max_rows:
        rows = make_rows(bench.universe, probe, bench.scenario.seed + 2, datetime.now(UTC))
        rows.id = [uuid4() for _ in range(rows_to_add)]
        t0 = time.perf_counter()
        svc.bulk_add_memories(first.store_id, rows)
        out["insert_into_big_store_rows_per_s"] = round(rows_to_add / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        merged = svc.index_pending(first.store_id)
        out["index_pending_rows_per_s"] = round(merged / max(time.perf_counter() - t0, 1e-9))
        svc.delete_memories(rows.id)
    return out


_LINE_FIELDS = ("content", "memory_type", "source", "importance", "metadata", "expires_at", "created_at", "archived")


def _plain(value: Any) -> Any:
    """A column value as JSON reads it (export lines carry ISO timestamps)."""
    if isinstance(value, datetime):
        return value.isoformat()
    return value.item() if isinstance(value, np.generic) else value


def measure_import(bench: Bench, lines: int, text_lines: int = 0) -> dict[str, Any]:
    """`memex import` as a user runs it, a process of its own (start included) while the bench
    holds the server (as a running explorer would): a file of `lines` memories with their vectors
    into a new store, then into the scenario's biggest store (its rows deleted afterwards); with
    `text_lines`, a file without vectors, embedded by the local model, against the model alone."""
    import subprocess
    import sys

    import orjson

    first = bench.stores[0]
    tenant_name = "bench-import"
    bench.tenant(tenant_name)
    big = bench.service(first.tenant_id).get_store(first.store_id)
    probe = BenchStore(len(bench.stores) + 1, lines, first.tenant_id, first.store_id, first.clusters, first.weights)
    rows = make_rows(bench.universe, probe, bench.scenario.seed + 3, datetime.now(UTC))
    ids = [uuid4() for _ in range(lines)]
    path = bench.bdb.data_dir / f"import-{lines}.jsonl"
    with path.open("wb") as f:
        for i in range(lines):
            line = {name: _plain(getattr(rows, name)[i]) for name in _LINE_FIELDS if getattr(rows, name) is not None}
            line.update(id=str(ids[i]), embedding=rows.embedding[i].tolist())
            f.write(orjson.dumps(line) + b"\n")
    env = {**os.environ, "MEMEX_DATA_DIR": str(bench.bdb.data_dir)}
    env.pop("DATABASE_URL", None)
    env.pop("MEMEX_ADMIN_DATABASE_URL", None)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")

    def run(*argv: str) -> float:
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "core", "import", *argv], env=env, capture_output=True, text=True, cwd=root)
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(f"memex import failed: {done.stderr.strip()[-500:]}")
        return seconds

    out: dict[str, Any] = {"import_lines": lines, "import_file_mb": round(path.stat().st_size / 2**20, 1)}
    new_store = f"new-{time.time_ns()}"
    model = bench.scenario.model
    seconds = run(str(path), "--tenant", tenant_name, "--user", "importer", "--store", new_store, "--create", "--embedding-model", model)
    out["import_new_store_s"] = round(seconds, 2)
    out["import_new_store_rows_per_s"] = round(lines / seconds)
    log(f"memex import of {lines:,} lines with vectors into a new store: {seconds:.1f} s, {lines / seconds:,.0f} rows/s")
    svc_new = bench.service(bench.tenant(tenant_name).id)
    store_new = svc_new.find_store(svc_new.find_user("importer").id, new_store)
    if store_new is not None:
        svc_new.delete_store(store_new.id)
    # into the biggest store: the same file with new ids (--new-ids), its rows left for index_pending
    seconds = run(str(path), "--tenant", str(first.tenant_id), "--user", str(big.user_id), "--store", big.store_name, "--new-ids")
    out["import_big_store_memories"] = big.total_memories
    out["import_big_store_s"] = round(seconds, 2)
    out["import_big_store_rows_per_s"] = round(lines / seconds)
    log(f"memex import of {lines:,} lines into the store of {big.total_memories:,}: {seconds:.1f} s, {lines / seconds:,.0f} rows/s")
    svc = bench.service(first.tenant_id)
    out["import_big_store_pending_index"] = svc.pending_index(first.store_id)
    from core.jsonl import _ID_NAMESPACE

    t0 = time.perf_counter()  # taking an import back: one call deleting its rows from the big store
    svc.delete_memories([uuid5(_ID_NAMESPACE, f"{first.store_id}:{i}") for i in ids])
    out["delete_imported_s"] = round(time.perf_counter() - t0, 2)
    log(f"delete_memories of those {lines:,} rows from the store of {big.total_memories + lines:,}: {out['delete_imported_s']} s")
    if text_lines:  # a quarter of the lines, then all: the difference is the import's own pace, without its fixed costs
        times = {}
        for n in (max(1, text_lines // 4), text_lines):
            texts = sentences(np.random.default_rng(4), n)
            text_path = bench.bdb.data_dir / f"import-text-{n}.jsonl"
            text_path.write_bytes(b"".join(orjson.dumps({"content": t}) + b"\n" for t in texts))
            store_name = f"text-{time.time_ns()}"
            times[n] = run(
                str(text_path),
                "--tenant",
                tenant_name,
                "--user",
                "importer",
                "--store",
                store_name,
                "--create",
                "--embedding-model",
                "all-MiniLM-L6-v2",
            )
            text_path.unlink(missing_ok=True)
            store_text = svc_new.find_store(svc_new.find_user("importer").id, store_name)
            if store_text is not None:
                svc_new.delete_store(store_text.id)
        small, large = sorted(times)
        out["import_text_lines"] = large
        out["import_text_s"] = round(times[large], 2)
        out["import_text_texts_per_s"] = round(large / times[large], 1)
        out["import_text_marginal_texts_per_s"] = round((large - small) / max(times[large] - times[small], 1e-9), 1)
        log(
            f"memex import of {large:,} lines without vectors (local model): {times[large]:.1f} s, {large / times[large]:,.1f} texts/s;"
            f" {out['import_text_marginal_texts_per_s']} texts/s past the fixed costs (process, model load)"
        )
    path.unlink(missing_ok=True)
    return out


def measure_embedding(texts: int = 512) -> dict[str, Any]:
    """The local model: load once, then texts/s embedding alone (no database)."""
    from core.embeddings import get_embedder

    t0 = time.perf_counter()
    embedder = get_embedder("all-MiniLM-L6-v2")
    embedder.embed(["warm up"])
    load = time.perf_counter() - t0
    batch = sentences(np.random.default_rng(3), texts)
    t0 = time.perf_counter()
    embedder.embed(batch)
    seconds = time.perf_counter() - t0
    return {"embed_model_load_s": round(load, 2), "embed_texts_per_s": round(texts / seconds, 1)}


# the explorer ----------------------------------------------------------------------------------


def measure_umap(universe: Universe, sizes: Sequence[int], seed: int) -> dict[str, Any]:
    """UMAP fit time (cosine, n_neighbors 15) cold, and the cached answer, per number of points."""
    from core.explorer.projection import ProjectionCache, ProjectionKey, ProjectionParams, import_umap

    t0 = time.perf_counter()
    umap = import_umap()  # numba's kernels from the on-disk cache when an earlier run wrote them
    import_s = round(time.perf_counter() - t0, 2)

    def fit(vectors: np.ndarray) -> float:
        t0 = time.perf_counter()
        umap.UMAP(n_neighbors=15, metric="cosine", random_state=42, n_jobs=1).fit_transform(vectors)
        return round(time.perf_counter() - t0, 2)

    out: dict[str, Any] = {"import_umap_s": import_s}
    rng = np.random.default_rng([seed, 5])
    out["first_fit_300_points_s"] = fit(universe.sample(rng, rng.choice(universe.n_clusters, size=300)))
    log(f"umap: first fit of the process (300 points, numba compilation included): {out['first_fit_300_points_s']} s")
    for n in sizes:
        vectors = universe.sample(rng, rng.choice(universe.n_clusters, size=n))
        ids = [str(i) for i in range(n)]
        cache = ProjectionCache()
        key = ProjectionKey("bench", f"store-{n}", "bench", n, "", ProjectionParams())
        load = lambda ids=ids, vectors=vectors: (ids, vectors)
        t0 = time.perf_counter()
        fitted, hit = cache.get_or_fit(key, load)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, hit2 = cache.get_or_fit(key, load)
        cached = time.perf_counter() - t0
        out[str(n)] = {
            "via": "core.explorer.projection.ProjectionCache.get_or_fit",
            "points_fitted": len(fitted.ids),
            "cold_s": round(cold, 2),
            "cached_ms": round(cached * 1000, 3),
            "cache_hit": hit2 and not hit,
        }
        if len(fitted.ids) < n:  # the explorer samples; what fitting every point would cost
            out[str(n)]["all_points_direct_s"] = fit(vectors)
        log(f"umap {n}: {out[str(n)]}")
    return out


@contextmanager
def _app_environment(data_dir: Path) -> Iterator[None]:
    """The explorer, run in this process, on the benchmark cluster instead of the user's database."""
    from core.config import get_settings
    from core.db import forget_database

    saved = {k: os.environ.get(k) for k in ("MEMEX_DATA_DIR", "DATABASE_URL", "MEMEX_ADMIN_DATABASE_URL", "MEMEX_MAPS_AT_START")}
    os.environ["MEMEX_DATA_DIR"] = str(data_dir)
    os.environ["MEMEX_MAPS_AT_START"] = "0"  # the pages timed here fit their own maps
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("MEMEX_ADMIN_DATABASE_URL", None)
    get_settings.cache_clear()
    forget_database()
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
        forget_database()


def measure_explorer(bench: Bench, store_size: int = 20_000) -> dict[str, Any]:
    """Time to first render of the explorer's Search and Map pages on a store of `store_size`
    memories, with streamlit.testing's AppTest (in process, no browser: the server-side run only)."""
    from streamlit.testing.v1 import AppTest

    tenant = bench.tenant("bench-explorer")
    svc = bench.service(tenant.id)
    user = svc.find_user("analyst", create=True)
    store = bench.add_store(tenant.id, user.id, "big")
    if store.total_memories < store_size:  # an earlier --reuse run may have made it
        clusters, weights = store_mixture(bench.universe, bench.scenario.seed, 10_000)
        extra = BenchStore(10_000, store_size - store.total_memories, tenant.id, store.id, clusters, weights)
        svc.bulk_add_memories(store.id, make_rows(bench.universe, extra, bench.scenario.seed, datetime.now(UTC)))
    t0 = time.perf_counter()
    indexed = svc.index_pending(store.id)  # as a running explorer does in the background after an import
    if indexed:
        log(f"explorer store: {indexed:,} rows put into the HNSW graph in {time.perf_counter() - t0:.1f} s")
    app = str(Path(__file__).resolve().parents[2] / "app.py")
    params = {"tenant": tenant.name, "user": user.name, "store": store.store_name}  # the sidebar's URL state
    out: dict[str, Any] = {"store_memories": store_size, "how": "streamlit.testing AppTest, server-side script run, no browser"}
    # the Search page empty; answering a query (first: the model loads; second: another query, model
    # warm, nothing cached); the Map page (first: UMAP fits; second: the cached projection)
    queries = {"first": "what does the user prefer when travelling?", "second": "which tools does the user use at work?"}
    views: tuple[tuple[str, str, dict[str, str | None]], ...] = (
        ("search", "search", {}),
        ("search_query", "search", {"q": None}),
        ("map", "map", {}),
    )
    demo = _demo_size_store(bench, tenant.id, user.id)
    with _app_environment(bench.bdb.data_dir):
        out["map_first_page_of_a_new_process"] = _first_maps(bench, tenant.name, user.name, demo)
        for name, page, view_params in views:
            for attempt in ("first", "second"):
                view = {k: queries[attempt] if v is None else v for k, v in view_params.items()}
                at = AppTest.from_file(app, default_timeout=900)
                for key, value in params.items():
                    at.query_params[key] = value
                at.run()
                at.switch_page(f"pages/{page}.py")
                for key, value in {**params, **view}.items():
                    at.query_params[key] = value
                t0 = time.perf_counter()
                at.run()
                seconds = time.perf_counter() - t0
                errors = [str(e.value)[:200] for e in at.exception] + [str(e.value)[:200] for e in at.error]
                out[f"{name}_{attempt}_render_s"] = round(seconds, 2)
                out[f"{name}_shows"] = {
                    "headers": [str(e.value)[:60] for e in list(at.title) + list(at.header)][:4],
                    "elements": len(list(at.main)) if hasattr(at, "main") else None,
                }
                if errors:
                    out[f"{name}_errors"] = errors
                log(f"explorer {name} ({attempt} run): {seconds:.2f} s{' errors: ' + str(errors) if errors else ''}")
                if name == "map" and attempt == "first":  # a big store: a preview, and the fit in the background
                    out.update(_map_kept(at, store_size))
    return out


def _map_kept(at: Any, store_size: int) -> dict[str, Any]:
    """After the Map page's first render of the big store: the background fit's time, then the
    page in a new process (nothing of the fit in memory: st.cache_resource cleared) drawing the
    map kept in the database."""
    import streamlit as st

    t0 = time.perf_counter()
    for thread in threading.enumerate():
        if thread.name.startswith("memex-map-"):
            thread.join(1800)
    out: dict[str, Any] = {"map_background_fit_wait_s": round(time.perf_counter() - t0, 2)}
    st.cache_resource.clear()
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        at.run()
        runs.append(round(time.perf_counter() - t0, 2))
        st.cache_resource.clear()
    out["map_kept_render_s"] = runs
    shown = " ".join(str(e.value) for e in at.caption)
    out["map_kept_drawn_from_database"] = "Showing the map computed" in shown
    log(f"explorer map of {store_size:,} kept in the database, new process each time: {runs} s")
    return out


def _demo_size_store(bench: Bench, tenant_id: UUID, user_id: UUID, size: int = 376) -> str:
    """A store the size of the demo data's (376 memories), for the first map of a new process."""
    store = bench.add_store(tenant_id, user_id, "demo-size")
    if store.total_memories < size:
        clusters, weights = store_mixture(bench.universe, bench.scenario.seed, 20_000)
        extra = BenchStore(20_000, size - store.total_memories, tenant_id, store.id, clusters, weights)
        bench.service(tenant_id).bulk_add_memories(store.id, make_rows(bench.universe, extra, bench.scenario.seed, datetime.now(UTC)))
    return store.store_name


def _first_maps(bench: Bench, tenant: str, user: str, store: str) -> dict[str, Any]:
    """The Map page as the first page of a new explorer process (core.bench.first_map), three
    times: UMAP's kernels not yet on disk (if this database's numba cache is new), on disk, and
    with the map kept in the database by the run before."""
    import json
    import subprocess
    import sys

    svc = bench.service(bench.tenant("bench-explorer").id)
    store_id = svc.find_store(svc.find_user(user).id, store).id  # type: ignore[union-attr]
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cache = Path(os.environ.get("NUMBA_CACHE_DIR") or bench.bdb.data_dir / "numba-cache")
    out: dict[str, Any] = {"store_memories": 376, "numba_cache_files_before": sum(1 for _ in cache.rglob("*.nbi")) if cache.exists() else 0}
    for name, forget in (("kernels_as_found", True), ("kernels_on_disk", True), ("map_kept", False)):
        if forget:
            svc.forget_maps(store_id)
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "core.bench.first_map", tenant, user, store], env=env, capture_output=True, text=True, cwd=root
        )
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            out[name] = {"error": done.stderr.strip()[-400:]}
            continue
        out[name] = {**json.loads(done.stdout.strip().splitlines()[-1]), "process_wall_s": round(wall, 2)}
        log(f"explorer map as the first page of a new process ({name}): {out[name]}")
    return out
