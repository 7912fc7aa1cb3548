"""The benchmark database: a PostgreSQL cluster of its own, the scenario's stores loaded into it,
and the three ways the benchmark asks it for a store's nearest memories.

The cluster is set up like the embedded one (same postgresql.conf, same migrations) in a
temporary data directory or --data-dir, never in the user's data. `Bench.search` is memex's own
search (MemoryService.search_by_embedding: memex_app, RLS, tenant context, store, expiry and
archive filters); `Bench.truth` the same query answered exactly by the superuser, which search is
graded against; `Bench.seed_search` the seed's layout and query on the same rows. The superuser's
SQL is in core.sql.bench. This is the only module of the benchmark that uses the owner connection
(migrations, tenants), as docs/RELIABILITY.md lists.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine

from core.admin import create_tenant, find_tenant
from core.bench.report import log
from core.bench.synth import LADDER, BenchStore, Query, Scenario, Universe, make_rows, size_class, store_mixture
from core.db import APP_ROLE, OWNER_ROLE, Database, EmbeddedServer, make_engine
from core.errors import InvalidInput
from core.models import MemoryStore, Tenant
from core.search import EXACT_MAX_ROWS, SearchTuning
from core.service import MemoryService
from core.sql import bench as sql

K = 10  # results per search; recall is recall@K
# Build figures a `--reuse` run reports again (the rest it measures anew).
_BUILD_KEYS = ("tenants", "users", "stores", "store_sizes", "generate_s", "vacuum_analyze_s", "table_mb", "index_mb", "seed_table_s")


class BenchDatabase:
    """A cluster of its own, migrated; `db` is memex's Database on it, `su` a superuser engine for
    what only the benchmark does (core.sql.bench)."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        started = time.perf_counter()
        self.server = EmbeddedServer(data_dir)
        self.db = Database(self.server.url(APP_ROLE), self.server.url(OWNER_ROLE), embedded=self.server)
        self.db.migrate()
        self.db.check_app_role()
        self.su: Engine = make_engine(self.server.url("postgres"))
        self.setup_s = time.perf_counter() - started

    @contextmanager
    def superuser(self) -> Iterator[Connection]:
        """One transaction as the superuser (outside row-level security: every tenant's rows)."""
        with self.su.begin() as conn:
            yield conn

    def close(self) -> None:
        self.su.dispose()
        self.db.dispose()


@contextmanager
def bench_database(data_dir: str | None, keep: bool, reuse: bool = False) -> Iterator[BenchDatabase]:
    """The benchmark cluster in `data_dir` (kept), or in a temporary directory removed afterwards
    unless `keep`. A directory holding a database is refused unless `reuse`."""
    if data_dir:
        path = Path(data_dir).expanduser().resolve()
        if (path / "pg").exists() and not reuse:
            raise InvalidInput(f"{path} already holds a database; give an empty or new directory (or --reuse)")
        path.mkdir(parents=True, exist_ok=True)
        remove = False
    else:
        path = Path(tempfile.mkdtemp(prefix="memex-bench-"))
        remove = not keep
    bdb = BenchDatabase(path)
    try:
        yield bdb
    finally:
        bdb.close()
        if remove:
            bdb.server.stop()
            shutil.rmtree(path, ignore_errors=True)
        else:
            log(f"benchmark database kept in {path}")


def _logged(notices: list[str]) -> list[str]:
    for notice in notices:
        log(f"server notice: {notice}")
    return notices


class Bench:
    """The scenario's stores in the benchmark database: built (or loaded from an earlier run),
    then searched. Build steps return the figures they measured, keyed as in the JSON report."""

    def __init__(self, scenario: Scenario, bdb: BenchDatabase, workers: int, tuning: SearchTuning | None = None):
        self.scenario = scenario
        self.bdb = bdb
        self.workers = workers
        self.tuning = tuning or SearchTuning()  # what searches use unless a measure varies it
        self.universe = Universe(scenario.dim, scenario.seed)
        self.stores: list[BenchStore] = []
        self.index_name = f"memories_embedding_{scenario.dim}_hnsw"
        self._truth: dict[int, list[UUID]] = {}
        self._services: dict[UUID, MemoryService] = {}

    def service(self, tenant_id: UUID) -> MemoryService:
        """The tenant's MemoryService (one per tenant, shared by threads: it holds no connection)."""
        if tenant_id not in self._services:
            self._services[tenant_id] = MemoryService(self.bdb.db, tenant_id)
        return self._services[tenant_id]

    def tenant(self, name: str) -> Tenant:
        """A tenant by name, created if missing (an earlier `--reuse` run may have made it)."""
        return find_tenant(self.bdb.db, name, create=True)

    def versions(self) -> tuple[str, str]:
        """(PostgreSQL, pgvector) versions of the benchmark cluster."""
        with self.bdb.superuser() as conn:
            return sql.server_versions(conn)

    def has_seed_table(self) -> bool:
        with self.bdb.superuser() as conn:
            return sql.has_seed_table(conn)

    # building ----------------------------------------------------------------------------------

    def create_stores(self) -> dict[str, Any]:
        """max(1, stores/10) tenants of one or two users each; the stores dealt round the tenants."""
        sizes = self.scenario.store_sizes()
        tenants = max(1, self.scenario.stores // 10)
        users_per_tenant = 2 if self.scenario.stores >= 2 * tenants else 1
        services, users = [], []
        for t in range(tenants):
            svc = self.service(create_tenant(self.bdb.db, f"bench-tenant-{t}").id)
            services.append(svc)
            users.append([svc.create_user(f"user-{u}") for u in range(users_per_tenant)])
        for i, size in enumerate(sizes):
            t = i % tenants
            user = users[t][(i // tenants) % users_per_tenant]
            store = self.add_store(services[t].tenant_id, user.id, f"store-{i}")
            clusters, weights = store_mixture(self.universe, self.scenario.seed, i)
            self.stores.append(BenchStore(i, size, services[t].tenant_id, store.id, clusters, weights))
        classes = dict.fromkeys(size_class(s) for s in sizes)
        return {
            "tenants": tenants,
            "users": tenants * users_per_tenant,
            "stores": len(self.stores),
            "store_sizes": {c: sum(1 for s in sizes if size_class(s) == c) for c in classes},
        }

    def ingest(self) -> dict[str, Any]:
        """Generate every store's rows, then load: the first ones with the HNSW index in place,
        the rest after dropping it, then build the index, as a bulk load should."""
        out: dict[str, Any] = {}
        now = datetime.now(UTC)
        started = time.perf_counter()
        rows = [make_rows(self.universe, s, self.scenario.seed, now) for s in self.stores]
        out["generate_s"] = round(time.perf_counter() - started, 2)
        log(f"generated {self.scenario.memories:,} memories in {out['generate_s']} s")

        def add(i: int) -> int:
            store = self.stores[i]
            return self.service(store.tenant_id).bulk_add_memories(store.store_id, rows[i])

        def load(batch: Sequence[int]) -> tuple[int, float]:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(self.workers) as pool:
                done = sum(pool.map(add, batch))
            return done, time.perf_counter() - t0

        # with the index: the first stores up to a tenth of the rows (at most 20k)
        sample_target = min(max(self.scenario.memories // 10, 1), 20_000)
        # ~1k stores first (the sample with the index), then the ladder, the big store last
        order = sorted(range(1, len(self.stores)), key=lambda i: self.stores[i].size in LADDER) + [0]
        with_index, total = [], 0
        while order and total < sample_target and len(order) > 1:
            i = order.pop(0)
            with_index.append(i)
            total += self.stores[i].size
        if with_index:
            done, seconds = load(with_index)
            out["ingest_with_index_rows"] = done
            out["ingest_with_index_rows_per_s"] = round(done / seconds)
            log(f"ingest with the HNSW index present: {done:,} rows, {done / seconds:,.0f} rows/s")
        with self.bdb.superuser() as conn:
            definition = sql.index_definition(conn, self.index_name)
        _logged(sql.drop_index(self.bdb.su, self.index_name))
        done, seconds = load(order)
        out["ingest_rows"] = done
        out["ingest_s"] = round(seconds, 2)
        out["ingest_rows_per_s"] = round(done / seconds)
        out["ingest_workers"] = self.workers
        log(
            f"bulk ingest without the vector index: {done:,} rows in {seconds:.1f} s, {done / seconds:,.0f} rows/s ({self.workers} workers)"
        )
        # rows bulk writes leave out of the HNSW graph (migration 010): the big stores' go in before
        # the graph is built, by the service's own step (a plain UPDATE while there is no index)
        t0 = time.perf_counter()
        flagged = sum(self.service(s.tenant_id).index_pending(s.store_id, batch=100_000) for s in self.stores if s.size > EXACT_MAX_ROWS)
        out["index_flag_rows"], out["index_flag_s"] = flagged, round(time.perf_counter() - t0, 2)
        log(f"{flagged:,} rows of stores above {EXACT_MAX_ROWS:,} memories marked for the graph in {out['index_flag_s']} s")
        t0 = time.perf_counter()
        notices = _logged(sql.create_index(self.bdb.su, definition))
        out["index_build_s"] = round(time.perf_counter() - t0, 2)
        out["index_build_notices"] = notices
        log(f"HNSW index built in {out['index_build_s']} s")
        t0 = time.perf_counter()
        _logged(sql.vacuum_analyze(self.bdb.su, "memories", "memory_stores"))
        out["vacuum_analyze_s"] = round(time.perf_counter() - t0, 2)
        with self.bdb.superuser() as conn:
            index_bytes, table_bytes = sql.relation_bytes(conn, self.index_name, "memories")
        out["index_mb"] = round(index_bytes / 2**20)
        out["table_mb"] = round(table_bytes / 2**20)
        return out

    def check_counts(self) -> dict[str, Any]:
        """Whether every store holds its rows and its counter says so; each store's live rows."""
        with self.bdb.superuser() as conn:
            counts = sql.store_counts(conn)
        expected = {s.store_id: s.size for s in self.stores}
        rows_total = int(sum(counts.rows.values()))
        for s in self.stores:
            s.live = int(counts.live.get(s.store_id, 0))
        return {
            "counts_exact": all(counts.rows.get(i, 0) == n and counts.counters.get(i) == n for i, n in expected.items()),
            "rows_total": rows_total,
            "live_share": round(sum(s.live for s in self.stores) / max(1, rows_total), 4),
        }

    def build_seed_table(self) -> dict[str, Any]:
        """The seed's layout and index on the same rows (core.sql.bench.create_seed_table)."""
        t0 = time.perf_counter()
        _logged(sql.create_seed_table(self.bdb.su, self.scenario.dim))
        return {"seed_table_s": round(time.perf_counter() - t0, 2)}

    def add_store(self, tenant_id: UUID, user_id: UUID, name: str) -> MemoryStore:
        """One more store of the scenario's model, outside the measured ones."""
        return self.service(tenant_id).get_or_create_store(
            user_id, name, embedding_model=self.scenario.model, embedding_dim=self.scenario.dim
        )

    # reuse -------------------------------------------------------------------------------------

    def save(self, result: dict[str, Any]) -> None:
        """What a later `--reuse` run needs to measure this database again without rebuilding it."""
        meta = {
            "scenario": asdict(self.scenario),
            "build": {k: v for k, v in result.items() if k != "scenario"},
            "stores": [[s.index, s.size, str(s.tenant_id), str(s.store_id)] for s in self.stores],
        }
        with self.bdb.superuser() as conn:
            sql.save_meta(conn, meta)

    def load(self) -> dict[str, Any] | None:
        """The stores of an earlier run on this database, if it was built for the same scenario,
        and the build figures it measured; None when the database holds no earlier run."""
        with self.bdb.superuser() as conn:
            meta = sql.load_meta(conn)
        if meta is None:
            return None
        if not meta or meta["scenario"] | {"queries": 0} != asdict(self.scenario) | {"queries": 0}:
            raise InvalidInput(f"{self.bdb.data_dir} was built for another scenario: {meta and meta['scenario']}")
        for index, size, tenant_id, store_id in meta["stores"]:
            clusters, weights = store_mixture(self.universe, self.scenario.seed, index)
            self.stores.append(BenchStore(index, size, UUID(tenant_id), UUID(store_id), clusters, weights))
        build = {k: v for k, v in meta["build"].items() if k in _BUILD_KEYS or k.startswith(("ingest", "index_build"))}
        return {**build, "reused_database": True}

    # asking ------------------------------------------------------------------------------------

    def search(
        self, query: Query, tuning: SearchTuning | None = None, *, record_access: bool = False, log: bool = True
    ) -> tuple[list[UUID], float]:
        """memex's search of the query's store (k = K, no threshold), logged as any caller's search
        is unless `log` is False: the ids found and the ms taken."""
        svc = self.service(query.store.tenant_id)
        t0 = time.perf_counter()
        hits = svc.search_by_embedding(
            query.store.store_id,
            query.vector,
            limit=K,
            min_similarity=-1,
            record_access=record_access,
            tuning=tuning or self.tuning,
            log=log,
        )
        return [h.memory.id for h in hits], (time.perf_counter() - t0) * 1000

    def api_keys(self) -> dict[UUID, str]:
        """One API key per tenant of the benchmark (`memex bench --api` searches over HTTP with them)."""
        from core.admin import create_key

        return {tenant_id: create_key(self.bdb.db, tenant_id, name="bench")[1] for tenant_id in {s.tenant_id for s in self.stores}}

    def truth(self, query: Query) -> list[UUID]:
        """The true K nearest live memories of the query's store, computed once per query."""
        if query.n not in self._truth:
            with self.bdb.superuser() as conn:
                self._truth[query.n] = sql.exact_nearest(conn, query.store.store_id, query.vector, self.scenario.dim, K)
        return self._truth[query.n]

    def explain(self, query: Query) -> list[str]:
        """EXPLAIN (ANALYZE, BUFFERS) of the vector query search sends for this query: the search
        is run once while its statements are recorded, then replayed in one tenant transaction.
        Unlogged, and after the log writer has written the entries of the searches before: its
        statements would be recorded too, and replayed (a second INSERT of the same entries)."""
        self.service(query.store.tenant_id).flush_log()
        with sql.recorded_statements(self.bdb.db.app) as statements:
            self.search(query, log=False)
        with self.bdb.db.app.begin() as conn:
            return sql.explain_replay(conn, statements)

    def seed_search(self, query: Query) -> list[UUID]:
        """The seed's query on the seed's layout (built by build_seed_table)."""
        with self.bdb.superuser() as conn:
            return sql.seed_nearest(conn, query.store.store_id, query.vector, self.scenario.dim, K)
