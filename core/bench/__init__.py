"""`memex bench`: build a benchmark database, load it through the bulk path, measure search.

    memex bench --memories 1m --stores 1000 --dim 384 [--json] [--queries 500] [--data-dir PATH]

Everything happens in a PostgreSQL cluster of its own (a temporary data directory, or --data-dir),
set up like the embedded one (same postgresql.conf, same migrations), never in the user's data.
The data is synthetic but shaped like sentence embeddings: unit vectors around a few hundred
cluster centres grouped in topics, each cluster with a low-dimensional spread plus isotropic noise
(not uniform noise, which no index can search well and no embedding model produces). Stores sit
in many tenants and users; one store holds a tenth of the memories, a ladder of stores of 2k to
50k shows where exact search stops paying, the rest are ~1k. 5% of the memories are expired and
1% archived, so the filters matter.

Rows go in through MemoryService.bulk_add_memories (binary COPY, in each store's tenant
transaction); searches go through MemoryService.search_by_embedding (memex_app, RLS, tenant
context, store, expiry and archive filters) with k = 10 and min_similarity = -1. Recall@10 is
measured against the same query run exactly (index scans off) with the same filters. Beside it,
the seed's layout (one vector(D) column, ivfflat lists = 100 created on the empty table, btree on
store_id) on the same rows, with the seed's query. Variants of search are a SearchTuning passed to
it. Figures and how to read them: docs/BENCHMARKS.md.

The modules: synth (the scenario and its data), harness (the benchmark database, built or
reused, and how it is searched), measures (what is timed), report (progress, table, JSON); the
superuser's SQL is core.sql.bench. With --json, stdout gets exactly one JSON object; progress
goes to stderr.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from core.bench import measures
from core.bench.harness import Bench, K, bench_database
from core.bench.report import load_average, log, machine, print_json, print_table
from core.bench.synth import MODELS_BY_DIM, Scenario, make_queries, parse_count
from core.errors import InvalidInput

__all__ = ["add_command", "cmd_bench", "run"]


def _explorer_measure(result: dict[str, Any], key: str, measure: Callable[[], dict[str, Any]]) -> None:
    """result[key] = measure(), or one line saying which packages it lacks: the explorer's measures
    need the explorer's own (streamlit, umap-learn, plotly, pandas), the rest of the bench does not."""
    try:
        result[key] = measure()
    except ImportError as exc:
        if (exc.name or "core").partition(".")[0] == "core":
            raise  # memex itself is broken, not an extra missing
        log(f"{key} not measured: it needs the explorer's packages (memex's explorer extra); {exc.name} is not installed")
        result[key] = {"skipped": f"{exc.name} is not installed"}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build (or, with --reuse, load) the benchmark database and measure it: the JSON report."""
    scenario = Scenario(args.memories, args.stores, args.dim, args.queries, args.seed)
    if args.dim not in MODELS_BY_DIM:
        raise InvalidInput(f"--dim must be one of {', '.join(map(str, sorted(MODELS_BY_DIM)))}")
    result: dict[str, Any] = {"scenario": asdict(scenario), "k": K, "machine": machine()}
    started = time.perf_counter()
    with bench_database(args.data_dir, args.keep, args.reuse) as bdb:
        bench = Bench(scenario, bdb, args.workers)
        result["postgresql"], result["pgvector"] = bench.versions()
        result["setup_s"] = round(bdb.setup_s, 2)
        log(f"benchmark cluster in {bdb.data_dir} ready in {bdb.setup_s:.1f} s; {scenario}")
        reused = bench.load() if args.reuse else None
        if reused is None:
            result.update(bench.create_stores())
            result.update(bench.ingest())
            result.update(bench.check_counts())
            if not args.no_seed:
                result.update(bench.build_seed_table())
                log(f"seed table (ivfflat lists=100 built empty) filled in {result['seed_table_s']} s")
            bench.save(result)
        else:
            result.update(reused)
            result.update(bench.check_counts())
            log(f"reusing the database built earlier in {bdb.data_dir}")

        result["exact_search_max_rows"] = bench.tuning.exact_max_rows
        queries = make_queries(bench.universe, bench.stores, scenario.queries, scenario.seed)
        outcomes, seed_outcomes = measures.measure_search(bench, queries, seed=not args.no_seed and bench.has_seed_table())
        result.update(measures.summarise(outcomes, seed_outcomes, bench.tuning.exact_max_rows))
        log(f"search: p50 {result['search_p50_ms']} ms, p99 {result['search_p99_ms']} ms, recall@10 {result['recall_at_10']}")
        result["plans"] = measures.explain_plans(bench, queries, args.explain)
        result.update(measures.measure_concurrency(bench, queries))
        log(f"{result['concurrent_qps']} searches/s with 4 threads")
        result.update(measures.measure_record_access(bench, queries[: min(100, len(queries))]))
        result.update(measures.measure_log(bench, queries))
        log(
            f"retrieval log: p50 {result['search_logged_p50_ms']} ms with it, {result['search_unlogged_p50_ms']} ms without"
            f" (+{result['log_cost_p50_ms']} ms); p99 {result['search_logged_p99_ms']} / {result['search_unlogged_p99_ms']} ms"
        )
        result.update(measures.measure_modes(bench, queries))
        log(
            "per mode, p50 / p99: "
            + ", ".join(
                f"{m} {result[f'search_{m}_mode_p50_ms']} / {result[f'search_{m}_mode_p99_ms']} ms" for m in ("vector", "text", "hybrid")
            )
        )
        if args.ef_sweep:
            result.update(measures.sweep_ef(bench, queries, [int(v) for v in args.ef_sweep.split(",")]))
        if args.crossover:
            result["crossover"] = measures.crossover(bench, queries)
        if args.api:
            from core.bench.api import measure_api

            result.update(measure_api(bench, queries, workers=args.api_workers))
        result.update(measures.insert_with_full_index(bench))
        if not args.skip_embed or args.import_text:
            result.update(measures.measure_embedding())
            log(f"local model: {result['embed_texts_per_s']} texts/s")
        if args.import_lines or args.import_text:
            result.update(measures.measure_import(bench, args.import_lines or 0, args.import_text or 0))
        if args.umap:
            sizes = [int(v) for v in args.umap.split(",")]
            _explorer_measure(result, "umap", lambda: measures.measure_umap(bench.universe, sizes, scenario.seed))
        if args.explorer:
            _explorer_measure(result, "explorer", lambda: measures.measure_explorer(bench))
        result["total_s"] = round(time.perf_counter() - started, 1)
        result["load_average_at_end"] = load_average()
    return result


def cmd_bench(args: argparse.Namespace) -> None:
    result = run(args)
    if args.json:
        print_json(result)
    else:
        print_table(result)


def add_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Register `memex bench` with the CLI's subcommand helper."""
    p = command("bench", cmd_bench, "build a benchmark database and measure ingest, search latency and recall")
    p.add_argument("--memories", type=parse_count, default=10_000, help="10k, 100k, 1m or a number (default 10k)")
    p.add_argument("--stores", type=int, default=10, help="stores, over max(1, stores/10) tenants (default 10)")
    p.add_argument("--dim", type=int, default=384, help="vector dimension: 384 or 1536 (also 256, 512, 1024)")
    p.add_argument("--queries", type=int, default=200, help="searches measured (default 200)")
    p.add_argument("--json", action="store_true", help="print one JSON object, nothing else, on stdout")
    p.add_argument("--data-dir", help="where to create the benchmark cluster (an empty directory; kept afterwards)")
    p.add_argument("--keep", action="store_true", help="keep the temporary benchmark cluster")
    p.add_argument("--reuse", action="store_true", help="with --data-dir: measure again a database built by an earlier run")
    p.add_argument("--workers", type=int, default=2, help="parallel bulk loaders, one store each (default 2)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the synthetic data")
    p.add_argument("--no-seed", action="store_true", help="skip the seed ivfflat comparison")
    p.add_argument("--skip-embed", action="store_true", help="skip timing the local embedding model")
    p.add_argument("--ef-sweep", help="also measure these hnsw.ef_search values on big stores, e.g. 40,64,100")
    p.add_argument("--crossover", action="store_true", help="also search every store size both exactly and by HNSW")
    p.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the service's search to stderr")
    p.add_argument("--umap", help="also time UMAP projections of these sizes, e.g. 5000,20000,50000")
    p.add_argument("--explorer", action="store_true", help="also time the explorer's Search and Map pages on a 20k store")
    p.add_argument(
        "--import", dest="import_lines", type=parse_count, help="also time `memex import` of this many lines with vectors (e.g. 20k)"
    )
    p.add_argument("--import-text", type=parse_count, help="also time `memex import` of this many lines without vectors (local model)")
    p.add_argument("--api", action="store_true", help="also search over HTTP against memex serve (1 and 4 clients)")
    p.add_argument("--api-workers", type=int, default=1, help="uvicorn workers of that server (default 1)")
