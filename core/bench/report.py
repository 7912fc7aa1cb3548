"""What `memex bench` says: progress on stderr, the machine it ran on, and the result as a table
or as one JSON object (stdout then holds nothing else, so it can be piped)."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from typing import Any


def log(message: str) -> None:
    """Progress, on stderr: stdout is kept for the result."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages: figures taken on a busy machine say so."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    """CPUs, memory, load and Python: what the figures depend on besides memex."""
    memory = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            memory = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "memory_gb": memory,
        "load_average_at_start": load_average(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def print_json(result: dict[str, Any]) -> None:
    """The whole result as one JSON object on one line."""
    print(json.dumps(result, default=str))


def print_table(r: dict[str, Any]) -> None:
    """The headline figures, then search by store size (and the crossover table when measured)."""
    s = r["scenario"]
    print(
        f"memex bench: {s['memories']:,} memories, {r['stores']} stores ({r['tenants']} tenants), dim {s['dim']},"
        f" {r['queries']} queries, k = {r['k']}"
    )
    print(f"PostgreSQL {r['postgresql']}, pgvector {r['pgvector']}, {r['machine']['cpus']} CPUs, {r['machine']['memory_gb']} GB")
    lines = [
        ("ingest (binary COPY, no vector index)", f"{r['ingest_rows_per_s']:,} rows/s ({r['ingest_workers']} workers)"),
        (
            "ingest with the HNSW index present",
            f"{r['ingest_with_index_rows_per_s']:,} rows/s" if "ingest_with_index_rows_per_s" in r else "n/a",
        ),
        ("HNSW index build", f"{r['index_build_s']} s ({r['index_mb']} MB)"),
        ("search p50 / p95 / p99", f"{r['search_p50_ms']} / {r['search_p95_ms']} / {r['search_p99_ms']} ms"),
        (
            "search with / without the retrieval log",
            f"p50 {r['search_logged_p50_ms']} / {r['search_unlogged_p50_ms']} ms, p99 {r['search_logged_p99_ms']} / {r['search_unlogged_p99_ms']} ms",
        ),
        *(
            (f"{mode} mode p50 / p99 (search_memories)", f"{r[f'search_{mode}_mode_p50_ms']} / {r[f'search_{mode}_mode_p99_ms']} ms")
            for mode in ("vector", "text", "hybrid")
        ),
        ("recall@10", f"{r['recall_at_10']}"),
        ("short results", f"{r['short_results']}"),
        ("seed ivfflat recall@10", f"{r.get('seed_ivfflat_recall_at_10', 'n/a')} (short results: {r.get('seed_short_results', 'n/a')})"),
        ("4 threads", f"{r['concurrent_qps']} searches/s"),
        ("local model", f"{r['embed_texts_per_s']} texts/s" if "embed_texts_per_s" in r else "not measured"),
        ("counts exact", f"{r['counts_exact']}"),
    ]
    for name, value in lines:
        print(f"  {name:<40} {value}")
    print(
        f"\n  {'store size':<10} {'path':<6} {'queries':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'recall':>7} {'short':>6} {'seed recall':>12}"
    )
    for name, row in r["by_store_size"].items():
        print(
            f"  {name:<10} {row['path']:<6} {row['queries']:>7} {row['p50_ms']:>8} {row['p95_ms']:>8} {row['p99_ms']:>8}"
            f" {row['recall_at_10']:>7} {row['short_results']:>6} {row.get('seed_recall_at_10', ''):>12}"
        )
    if "crossover" in r:
        print(f"\n  {'store size':<10} {'exact p50':>10} {'exact recall':>13} {'hnsw p50':>9} {'hnsw recall':>12} {'hnsw short':>11}")
        for name, row in r["crossover"].items():
            print(
                f"  {name:<10} {row['exact_p50_ms']:>10} {row['exact_recall_at_10']:>13} {row['hnsw_p50_ms']:>9}"
                f" {row['hnsw_recall_at_10']:>12} {row['hnsw_short_results']:>11}"
            )
