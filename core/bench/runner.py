"""`memex bench` itself: build or reuse the benchmark database and run the measures asked for
(the package's docstring says what and how)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from core.bench import measures
from core.bench.harness import Bench, K, bench_database
from core.bench.report import load_average, log, machine
from core.bench.synth import MODELS_BY_DIM, Scenario, make_queries
from core.errors import InvalidInput


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
