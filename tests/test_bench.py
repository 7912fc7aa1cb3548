"""`memex bench` on the smallest scenario.

No timing is asserted (CI machines differ): only that the benchmark runs end to end, reports
every figure and finds what exact search finds.
"""

from __future__ import annotations

import json

from core.bench.synth import Scenario, parse_count
from core.cli import main

KEYS = {
    "ingest_rows_per_s",
    "index_build_s",
    "search_p50_ms",
    "search_logged_p50_ms",
    "search_unlogged_p50_ms",
    "log_cost_p50_ms",
    "search_p95_ms",
    "search_p99_ms",
    "recall_at_10",
    "short_results",
    "seed_ivfflat_recall_at_10",
    "concurrent_qps",
    "by_store_size",
    "counts_exact",
    "plans",
}


def test_bench_smallest_scenario_reports_every_figure(capsys) -> None:
    code = main(["bench", "--memories", "10k", "--stores", "10", "--dim", "384", "--json", "--queries", "60", "--skip-embed"])
    out = capsys.readouterr().out
    assert code == 0
    result = json.loads(out)  # stdout holds exactly one JSON object
    assert KEYS <= set(result)
    assert result["recall_at_10"] >= 0.9
    assert result["short_results"] == 0
    assert result["counts_exact"] is True
    assert result["rows_total"] == 10_000
    assert result["stores"] == 10 and result["queries"] == 60
    assert 0.9 < result["live_share"] < 0.97  # ~5% expired, ~1% archived
    assert result["plans"]["~1k"]["indexes"] == ["memories_pkey", "memories_store_created"]  # small stores: exact, by store


def test_counts_and_store_sizes() -> None:
    assert [parse_count(v) for v in ("10k", "100k", "1m", "2500", "1.5k")] == [10_000, 100_000, 1_000_000, 2_500, 1_500]
    sizes = Scenario(1_000_000, 1000, 384).store_sizes()
    assert len(sizes) == 1000 and sum(sizes) == 1_000_000
    assert sizes[0] == 100_000 and {2_000, 5_000, 10_000, 20_000, 50_000} <= set(sizes)
    assert Scenario(10_000, 10, 384).store_sizes() == [1_000] * 10
