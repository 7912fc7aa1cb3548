"""`memex bench` on the smallest scenario.

No timing is asserted (CI machines differ): only that the benchmark runs end to end, reports
every figure and finds what exact search finds.
"""

from __future__ import annotations

import json

import pytest

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


def test_the_api_bench_client_posts_json_with_the_key_and_reads_the_answer() -> None:
    """`memex bench --api`'s client: the key and JSON go out, the answer comes back decoded; an
    error status raises; after a response that closes the connection, the next request opens one."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from core.bench.api import Fetch

    seen: list[tuple[str, str, dict]] = []

    class Echo(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, self.headers["Authorization"], body))
            answer = json.dumps({"results": [{"id": "m1", "n": len(body["embedding"])}]}).encode()
            self.send_response(200 if body["embedding"] else 422)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            if body.get("close"):
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        fetch = Fetch(f"http://127.0.0.1:{server.server_address[1]}", "mx_key")
        assert fetch.post("/v1/search", {"embedding": [0.5, 0.25]}) == {"results": [{"id": "m1", "n": 2}]}
        assert seen[-1] == ("/v1/search", "Bearer mx_key", {"embedding": [0.5, 0.25]})
        assert fetch.post("/v1/search", {"embedding": [1.0], "close": True})["results"][0]["n"] == 1
        assert fetch.post("/v1/search", {"embedding": [1.0, 2.0, 3.0]})["results"][0]["n"] == 3  # reconnected
        with pytest.raises(RuntimeError, match="422"):
            fetch.post("/v1/search", {"embedding": []})
        fetch.close()
    finally:
        server.shutdown()
        server.server_close()
