"""`memex bench --api`: the benchmark's searches over HTTP against `memex serve`, beside the same
searches in process, one client and then several at once.

The server runs as a subprocess on the benchmark cluster, connected as the application role only
(as in production); each request carries its tenant's API key, which PostgreSQL checks in every
transaction. Requests send the query's vector (as agents that embed themselves do), so the
difference from the in-process figure is the API's own cost: HTTP, JSON, the key, the threadpool.
Each query is searched both ways, one after the other, the order alternating (as measure_log
does): the two figures were taken a minute apart before, and a shared machine's load moved the
difference between +1.5 and +8 ms from one run to the next.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import orjson

from core.bench.harness import Bench, K
from core.bench.measures import latency
from core.bench.report import log
from core.bench.synth import Query
from core.db import API_ROLE


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _server(bench: Bench, workers: int) -> Iterator[str]:
    """`memex serve` on the benchmark cluster (application role only); its base URL once /readyz
    says ready (the default model loaded: no measured search runs beside that load)."""
    import httpx

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("MEMEX_ADMIN_DATABASE_URL", "MEMEX_DATABASE_POOLER")}
    env["DATABASE_URL"] = bench.bdb.server.url(API_ROLE).render_as_string(hide_password=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"memex serve stopped: {process.stderr.read().decode()[-500:] if process.stderr else ''}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(20)


class Fetch:
    """POST JSON with an API key over one kept-alive HTTP/1.1 connection; the decoded answer."""

    def __init__(self, base: str, key: str, timeout: float = 30):
        host, _, port = base.removeprefix("http://").partition(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Accept": "application/json"}

    def post(self, path: str, body: dict[str, Any]) -> Any:
        payload = orjson.dumps(body)
        try:
            response = self._send(path, payload)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.connection.close()  # the server closed an idle connection: open a new one, once
            response = self._send(path, payload)
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"POST {path}: {response.status} {data[:300]!r}")
        return orjson.loads(data)

    def _send(self, path: str, payload: bytes) -> http.client.HTTPResponse:
        self.connection.request("POST", path, payload, self.headers)
        return self.connection.getresponse()

    def close(self) -> None:
        self.connection.close()


def _body(query: Query) -> dict[str, Any]:
    return {
        "embedding": query.vector.tolist(),
        "store": str(query.store.store_id),
        "limit": K,
        "min_similarity": -1,
        "mode": "vector",
        "record_access": False,
    }


def measure_api(bench: Bench, queries: Sequence[Query], clients: int = 4, workers: int = 1) -> dict[str, Any]:
    """The queries in process and over HTTP (one client) alternated, then `clients` at once over HTTP."""
    keys = bench.api_keys()
    with _server(bench, workers) as base:
        sessions = {tenant: Fetch(base, key) for tenant, key in keys.items()}
        for q in queries[: min(50, len(queries))]:  # warm the server: pools, code paths, caches
            sessions[q.store.tenant_id].post("/v1/search", _body(q))
        # the same query in process and over HTTP, alternated query by query (as measure_log does):
        # both see the same load, so their difference is the API's, not the minute between them
        inprocess: list[float] = []
        one: list[float] = []
        for n, q in enumerate(queries):
            for over_http in (n % 2 == 0, n % 2 == 1):
                if over_http:
                    t0 = time.perf_counter()
                    sessions[q.store.tenant_id].post("/v1/search", _body(q))
                    one.append((time.perf_counter() - t0) * 1000)
                else:
                    inprocess.append(bench.search(q)[1])
        latencies: list[float] = []
        lock = threading.Lock()

        def run(part: Sequence[Query]) -> None:
            own = {tenant: Fetch(base, key) for tenant, key in keys.items()}
            mine = []
            for q in part:
                t0 = time.perf_counter()
                own[q.store.tenant_id].post("/v1/search", _body(q))
                mine.append((time.perf_counter() - t0) * 1000)
            for fetch in own.values():
                fetch.close()
            with lock:
                latencies.extend(mine)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(run, [queries[i::clients] for i in range(clients)]))
        seconds = time.perf_counter() - t0
        for fetch in sessions.values():
            fetch.close()
    result = {
        **latency(inprocess, (50, 99), prefix="api_inprocess_"),
        **latency(one, (50, 99), prefix="api_search_"),
        "api_workers": workers,
        "api_concurrent_clients": clients,
        "api_concurrent_rps": round(len(queries) / seconds, 1),
        **latency(latencies, (50, 99), prefix="api_concurrent_"),
    }
    result["api_overhead_p50_ms"] = round(result["api_search_p50_ms"] - result["api_inprocess_p50_ms"], 2)
    log(
        f"API: p50 {result['api_search_p50_ms']} ms (in process {result['api_inprocess_p50_ms']}), "
        f"{result['api_concurrent_rps']} requests/s with {clients} clients"
    )
    return result
