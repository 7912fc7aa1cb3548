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
from collections.abc import Callable

from core.bench.synth import parse_count

__all__ = ["add_command", "cmd_bench"]


def cmd_bench(args: argparse.Namespace) -> None:
    from core.bench.report import print_json, print_table
    from core.bench.runner import run

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
