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

Rows go in through core.bulk (binary COPY, in each store's tenant transaction); searches go
through MemoryService.search_by_embedding (memex_app, RLS, tenant context, store, expiry and
archive filters) with k = 10 and min_similarity = -1. Recall@10 is measured against the same
query run exactly (index scans off) with the same filters. Beside it, the seed's layout (one
vector(D) column, ivfflat lists = 100 created on the empty table, btree on store_id) on the same
rows, with the seed's query. Figures and how to read them: docs/BENCHMARKS.md.

With --json, stdout gets exactly one JSON object; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
from sqlalchemy import Engine, event, text

from core.errors import InvalidInput

K = 10
MODELS_BY_DIM = {384: "all-MiniLM-L6-v2", 1536: "text-embedding-3-small", 1024: "text-embedding-3-small",
                 512: "text-embedding-3-small", 256: "text-embedding-3-small"}
LADDER = (2_000, 5_000, 10_000, 20_000, 50_000)
EXPIRED_SHARE = 0.05
ARCHIVED_SHARE = 0.01
TOPICS, SUBTOPICS = 30, 10  # 300 cluster centres
SPREAD_RANK = 24  # intrinsic dimensions of a cluster's spread


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_count(value: str) -> int:
    """10k, 100k, 1m, 2.5k or a plain integer."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", str(value))
    if not match:
        raise argparse.ArgumentTypeError(f"expected a count like 10k, 100k, 1m or 5000, not {value!r}")
    number = float(match.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    if number < 1 or number != int(number):
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of memories")
    return int(number)


# Scenario -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    memories: int
    stores: int
    dim: int
    queries: int = 200
    seed: int = 0

    def store_sizes(self) -> list[int]:
        """One store of a tenth of the memories, the ladder sizes below it, the rest even."""
        n, s = self.memories, self.stores
        if s < 1 or n < s:
            raise InvalidInput(f"{n} memories cannot fill {s} stores")
        if s == 1:
            return [n]
        big = max(n // 10, math.ceil(n / s))
        ladder = [size for size in LADDER if size < big]
        while ladder and (s - 1 - len(ladder) < 1 or n - big - sum(ladder) < 100 * (s - 1 - len(ladder))):
            ladder.pop()
        rest_stores = s - 1 - len(ladder)
        rest = n - big - sum(ladder)
        if rest_stores == 0:
            return [big + rest, *ladder]
        base, extra = divmod(rest, rest_stores)
        return [big, *ladder, *([base + 1] * extra), *([base] * (rest_stores - extra))]


def size_class(size: int) -> str:
    for bound, name in ((1_500, "~1k"), (3_000, "2k"), (7_000, "5k"), (15_000, "10k"), (30_000, "20k"),
                        (70_000, "50k"), (150_000, "100k")):
        if size <= bound:
            return name
    return f"{round(size / 1000)}k"


class Universe:
    """Cluster centres in topics, each cluster with its own low-rank spread: sentence-embedding-like."""

    def __init__(self, dim: int, seed: int):
        rng = np.random.default_rng([seed, 7])
        self.dim = dim
        common = _unit(rng.standard_normal(dim))  # embeddings share a direction (anisotropy)
        topics = _unit(rng.standard_normal((TOPICS, dim)) / math.sqrt(dim) + 1.0 * common)
        sub = rng.standard_normal((TOPICS, SUBTOPICS, dim)) / math.sqrt(dim)
        self.centres = _unit((topics[:, None, :] + 0.8 * sub).reshape(-1, dim))
        self.n_clusters = len(self.centres)
        # each cluster spreads along SPREAD_RANK directions (scale ~0.9 in norm) plus small isotropic noise
        self.spread = rng.standard_normal((self.n_clusters, SPREAD_RANK, dim)).astype(np.float32) * (0.9 / math.sqrt(SPREAD_RANK * dim))
        self.spread_scale = rng.uniform(0.7, 1.3, self.n_clusters).astype(np.float32)
        self.noise = 0.4 / math.sqrt(dim)

    def sample(self, rng: np.random.Generator, clusters: np.ndarray) -> np.ndarray:
        """Unit vectors, one per entry of `clusters` (cluster indices)."""
        out = np.empty((len(clusters), self.dim), dtype=np.float32)
        for c in np.unique(clusters):
            where = np.flatnonzero(clusters == c)
            z = rng.standard_normal((len(where), SPREAD_RANK)).astype(np.float32) * self.spread_scale[c]
            eps = rng.standard_normal((len(where), self.dim)).astype(np.float32) * self.noise
            out[where] = self.centres[c] + z @ self.spread[c] + eps
        return _unit(out)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@dataclass
class BenchStore:
    index: int
    size: int
    tenant_id: UUID
    store_id: UUID
    clusters: np.ndarray = field(repr=False)  # the clusters this store's memories come from
    weights: np.ndarray = field(repr=False)
    live: int = 0

    def mixture_rng(self, seed: int, purpose: int) -> np.random.Generator:
        return np.random.default_rng([seed, self.index, purpose])


def store_mixture(universe: Universe, seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """A user's memories are about a handful of topics: 4 to 24 clusters, unevenly."""
    rng = np.random.default_rng([seed, index, 0])
    count = int(rng.integers(4, 25))
    clusters = rng.choice(universe.n_clusters, size=count, replace=False)
    return clusters, rng.dirichlet(np.ones(count))


_SUBJECTS = ["The user", "Alice", "Bob", "The customer", "Our client", "Dana", "The team lead", "Mr. Okafor", "Priya", "The agent"]
_VERBS = ["prefers", "mentioned", "asked about", "dislikes", "booked", "is planning", "reported", "wants", "forgot", "recommended"]
_OBJECTS = ["window seats on long flights", "green tea in the morning", "the quarterly budget review", "a vegetarian menu",
            "the Lisbon conference", "weekly status emails", "a standing desk", "the Python migration", "early meetings",
            "hotel rooms with a gym", "the new pricing plan", "jazz concerts", "dark mode in every app", "the invoice from March",
            "trains over planes", "a refund for order 4417", "short answers", "the onboarding checklist", "Italian food",
            "password resets by SMS"]
_TAILS = ["", " last week", " during the support call", " in the kickoff meeting", " according to the CRM",
          " and asked us to remember it", " twice this month", " before the trip to Berlin", " since the reorganisation",
          " while discussing the renewal"]
_TYPES = ["fact", "preference", "event", "instruction", "observation"]
_TYPE_P = [0.4, 0.25, 0.2, 0.1, 0.05]
_SOURCES = ["chat", "email", "import", "meeting", None]


def make_rows(universe: Universe, store: BenchStore, seed: int, now: datetime) -> Any:
    """A store's synthetic memories as core.bulk.MemoryColumns."""
    from core.bulk import MemoryColumns

    rng = store.mixture_rng(seed, 1)
    n = store.size
    clusters = store.clusters[rng.choice(len(store.clusters), size=n, p=store.weights)]
    vectors = universe.sample(rng, clusters)
    picks = rng.integers(0, [len(_SUBJECTS), len(_VERBS), len(_OBJECTS), len(_TAILS)], size=(n, 4))
    contents = [f"{_SUBJECTS[a]} {_VERBS[b]} {_OBJECTS[c]}{_TAILS[d]} (note {i})." for i, (a, b, c, d) in enumerate(picks)]
    fate = rng.random(n)
    hours = rng.uniform(1, 24 * 30, n)
    expires = [now - timedelta(hours=h) if f < EXPIRED_SHARE else (now + timedelta(days=h / 24 + 30) if f > 0.9 else None)
               for f, h in zip(fate, hours)]
    created = [now - timedelta(days=d) for d in rng.uniform(0, 180, n)]
    return MemoryColumns(
        contents=contents,
        embeddings=vectors,
        memory_types=[_TYPES[t] for t in rng.choice(len(_TYPES), size=n, p=_TYPE_P)],
        sources=[_SOURCES[s] for s in rng.integers(0, len(_SOURCES), n)],
        importance=np.round(rng.uniform(0, 1, n), 2),
        metadata=[{"conversation": f"c-{int(c)}"} if c < 300 else None for c in rng.integers(0, 1000, n)],
        expires_at=expires,
        created_at=created,
        archived=(rng.random(n) < ARCHIVED_SHARE).tolist(),
    )


def make_queries(universe: Universe, stores: Sequence[BenchStore], count: int, seed: int) -> list[tuple[BenchStore, np.ndarray]]:
    """Queries about what a store holds (new points of its clusters): a quarter on the biggest
    store, a quarter on the ladder stores, half on ~1k stores (all the same size class when the
    scenario has only one)."""
    rng = np.random.default_rng([seed, 99])
    big = [stores[0]] if len(stores) > 1 else list(stores)
    ladder = [s for s in stores[1:] if s.size in LADDER]
    small = [s for s in stores[1:] if s.size not in LADDER] or list(stores)
    groups = [(big, 0.25), (ladder, 0.25), (small, 0.5)] if ladder else [(big, 0.3), (small, 0.7)]
    picks: list[BenchStore] = []
    for i in range(count):
        members = groups[int(rng.choice(len(groups), p=[w for _, w in groups]))][0]
        picks.append(members[int(rng.integers(len(members)))])
    out = []
    for store in picks:
        cluster = np.array([store.clusters[int(rng.choice(len(store.clusters), p=store.weights))]])
        out.append((store, universe.sample(rng, cluster)[0]))
    return out


# The benchmark database ----------------------------------------------------------------------


class BenchDatabase:
    """A cluster of its own, migrated; `db` is memex's Database on it, `su` a superuser engine for
    what only the benchmark does (drop/create the vector index, the seed table, exact answers)."""

    def __init__(self, data_dir: Path):
        from core.db import APP_ROLE, OWNER_ROLE, Database, EmbeddedServer, make_engine
        from core.migrate import migrate

        self.data_dir = data_dir
        started = time.perf_counter()
        self.server = EmbeddedServer(data_dir)
        self.db = Database(self.server.url(APP_ROLE), self.server.url(OWNER_ROLE), embedded=self.server)
        migrate(self.db)
        self.db.check_app_role()
        self.su: Engine = make_engine(self.server.url("postgres"))
        self.setup_s = time.perf_counter() - started

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.su.begin() as conn:
            return conn.execute(text(sql), params).scalar()

    def run(self, *statements: str) -> list[str]:
        """Statements in autocommit; returns the server's notices (an HNSW build reports there
        when its graph outgrows maintenance_work_mem)."""
        notices: list[str] = []
        with self.su.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            raw = conn.connection.driver_connection
            handler = lambda diag: notices.append(str(diag.message_primary))  # noqa: E731
            raw.add_notice_handler(handler)
            try:
                for sql in statements:
                    conn.execute(text(sql))
            finally:
                raw.remove_notice_handler(handler)
        for notice in notices:
            log(f"server notice: {notice}")
        return notices

    def close(self) -> None:
        self.su.dispose()
        self.db.dispose()


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else float("nan")


@dataclass
class QueryOutcome:
    store: BenchStore
    ms: float
    returned: int
    recall: float
    seed_ms: float | None = None
    seed_returned: int | None = None
    seed_recall: float | None = None


class Bench:
    def __init__(self, scenario: Scenario, bdb: BenchDatabase, workers: int):
        self.scenario = scenario
        self.bdb = bdb
        self.workers = workers
        self.universe = Universe(scenario.dim, scenario.seed)
        self.stores: list[BenchStore] = []
        self.result: dict[str, Any] = {}
        self.index_name = f"memories_embedding_{scenario.dim}_hnsw"
        self._truth: dict[int, list[UUID]] = {}

    # building ----------------------------------------------------------------------------------

    def create_stores(self) -> None:
        from core.admin import create_tenant
        from core.service import MemoryService

        sizes = self.scenario.store_sizes()
        tenants = max(1, self.scenario.stores // 10)
        users_per_tenant = 2 if self.scenario.stores >= 2 * tenants else 1
        model = MODELS_BY_DIM[self.scenario.dim]
        services, users = [], []
        for t in range(tenants):
            tenant = create_tenant(self.bdb.db, f"bench-tenant-{t}")
            svc = MemoryService(self.bdb.db, tenant.id)
            services.append(svc)
            users.append([svc.create_user(f"user-{u}") for u in range(users_per_tenant)])
        for i, size in enumerate(sizes):
            t = i % tenants
            svc = services[t]
            user = users[t][(i // tenants) % users_per_tenant]
            store = svc.get_or_create_store(user.id, f"store-{i}", embedding_model=model, embedding_dim=self.scenario.dim)
            clusters, weights = store_mixture(self.universe, self.scenario.seed, i)
            self.stores.append(BenchStore(i, size, svc.tenant_id, store.id, clusters, weights))
        self.result["tenants"] = tenants
        self.result["users"] = tenants * users_per_tenant
        self.result["stores"] = len(self.stores)
        self.result["store_sizes"] = {c: sum(1 for s in sizes if size_class(s) == c) for c in dict.fromkeys(size_class(s) for s in sizes)}

    def service(self, store: BenchStore) -> Any:
        from core.service import MemoryService

        return MemoryService(self.bdb.db, store.tenant_id)

    def ingest(self) -> None:
        """Generate every store's rows, then load: the first ones with the HNSW index in place,
        the rest after dropping it, then build the index, as a bulk load should."""
        from core.bulk import bulk_add_memories

        now = datetime.now(timezone.utc)
        started = time.perf_counter()
        rows = [make_rows(self.universe, s, self.scenario.seed, now) for s in self.stores]
        self.result["generate_s"] = round(time.perf_counter() - started, 2)
        log(f"generated {self.scenario.memories:,} memories in {self.result['generate_s']} s")

        def load(batch: Sequence[int]) -> tuple[int, float]:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(self.workers) as pool:
                done = sum(pool.map(lambda i: bulk_add_memories(self.service(self.stores[i]), self.stores[i].store_id, rows[i]), batch))
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
            self.result["ingest_with_index_rows"] = done
            self.result["ingest_with_index_rows_per_s"] = round(done / seconds)
            log(f"ingest with the HNSW index present: {done:,} rows, {done / seconds:,.0f} rows/s")
        definition = self.bdb.scalar("SELECT indexdef FROM pg_indexes WHERE indexname = :n", n=self.index_name)
        self.bdb.run(f"DROP INDEX {self.index_name}")
        done, seconds = load(order)
        self.result["ingest_rows"] = done
        self.result["ingest_s"] = round(seconds, 2)
        self.result["ingest_rows_per_s"] = round(done / seconds)
        self.result["ingest_workers"] = self.workers
        log(f"bulk ingest without the vector index: {done:,} rows in {seconds:.1f} s, {done / seconds:,.0f} rows/s ({self.workers} workers)")
        t0 = time.perf_counter()
        notices = self.bdb.run(definition)
        self.result["index_build_s"] = round(time.perf_counter() - t0, 2)
        self.result["index_build_notices"] = notices
        log(f"HNSW index built in {self.result['index_build_s']} s")
        t0 = time.perf_counter()
        self.bdb.run("VACUUM ANALYZE memories", "VACUUM ANALYZE memory_stores")
        self.result["vacuum_analyze_s"] = round(time.perf_counter() - t0, 2)
        self.result["index_mb"] = round(self.bdb.scalar(f"SELECT pg_relation_size('{self.index_name}')") / 2**20)
        self.result["table_mb"] = round(self.bdb.scalar("SELECT pg_table_size('memories')") / 2**20)

    def check_counts(self) -> None:
        with self.bdb.su.begin() as conn:
            real = dict(conn.execute(text("SELECT store_id, count(*) FROM memories GROUP BY 1")).all())
            counters = dict(conn.execute(text("SELECT id, total_memories FROM memory_stores")).all())
            live = dict(conn.execute(text(
                "SELECT store_id, count(*) FROM memories WHERE (expires_at IS NULL OR expires_at > now()) AND NOT archived GROUP BY 1"
            )).all())
        expected = {s.store_id: s.size for s in self.stores}
        self.result["counts_exact"] = all(real.get(i, 0) == n and counters.get(i) == n for i, n in expected.items())
        self.result["rows_total"] = int(sum(real.values()))
        for s in self.stores:
            s.live = int(live.get(s.store_id, 0))
        self.result["live_share"] = round(sum(s.live for s in self.stores) / max(1, self.result["rows_total"]), 4)

    def build_seed_table(self) -> None:
        """The seed's layout and index on the same live rows: vector(D), ivfflat (lists = 100)
        created while the table is empty, then the rows, then a btree on store_id."""
        dim = self.scenario.dim
        t0 = time.perf_counter()
        self.bdb.run(
            "DROP TABLE IF EXISTS seed_memories",
            f"CREATE TABLE seed_memories (id uuid PRIMARY KEY, store_id uuid NOT NULL, embedding vector({dim}), expires_at timestamptz)",
            "CREATE INDEX seed_memories_embedding ON seed_memories USING ivfflat (embedding vector_cosine_ops) WITH (lists = 100)",
            "CREATE INDEX seed_memories_store ON seed_memories (store_id)",
            f"INSERT INTO seed_memories SELECT id, store_id, embedding::vector({dim}), expires_at FROM memories WHERE NOT archived",
            "VACUUM ANALYZE seed_memories",
        )
        self.result["seed_table_s"] = round(time.perf_counter() - t0, 2)

    # measuring ---------------------------------------------------------------------------------

    def exact(self, store: BenchStore, q: np.ndarray) -> list[UUID]:
        """The true 10 nearest live memories of the store: the service's filters, no index scan."""
        dim = self.scenario.dim
        with self.bdb.su.begin() as conn:
            conn.execute(text("SET LOCAL enable_indexscan = off"))
            return list(conn.execute(text(
                f"SELECT id FROM memories WHERE store_id = :s AND embedding_dim = {dim}"
                " AND (expires_at IS NULL OR expires_at > now()) AND NOT archived"
                f" ORDER BY embedding::vector({dim}) <=> :q, id LIMIT {K}"
            ), {"s": store.store_id, "q": q}).scalars())

    def seed_search(self, store: BenchStore, q: np.ndarray) -> list[UUID]:
        """The seed's query (probes left at ivfflat's default of 1, as the seed did), planned for
        each call as node-postgres' unnamed statements are (psycopg would switch to a generic plan)."""
        dim = self.scenario.dim
        with self.bdb.su.begin() as conn:
            conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
            return list(conn.execute(text(
                f"SELECT id, 1 - (embedding <=> CAST(:q AS vector({dim}))) AS similarity FROM seed_memories"
                " WHERE store_id = :s AND (expires_at IS NULL OR expires_at > now())"
                f" AND 1 - (embedding <=> CAST(:q AS vector({dim}))) >= -1"
                f" ORDER BY embedding <=> CAST(:q AS vector({dim})) LIMIT {K}"
            ), {"s": store.store_id, "q": q}).scalars())

    def search(self, store: BenchStore, q: np.ndarray, svc: Any = None) -> tuple[list[UUID], float]:
        svc = svc or self.service(store)
        t0 = time.perf_counter()
        hits = svc.search_by_embedding(store.store_id, q, limit=K, min_similarity=-1, record_access=False)
        return [h.memory.id for h in hits], (time.perf_counter() - t0) * 1000

    def truth(self, n: int, store: BenchStore, q: np.ndarray) -> list[UUID]:
        if n not in self._truth:
            self._truth[n] = self.exact(store, q)
        return self._truth[n]

    def measure_search(self, queries: Sequence[tuple[BenchStore, np.ndarray]], *, seed: bool = True) -> list[QueryOutcome]:
        services = {s.tenant_id: self.service(s) for s, _ in queries}
        # exact answers first: their scans would otherwise evict the index between timed searches
        truths = [self.truth(n, store, q) for n, (store, q) in enumerate(queries)]
        # steady state: other searches of the same stores first, as a served index is warm. The
        # cluster starts cold with each run (and a new index is written around shared_buffers):
        # 600 warm-up searches left the 1M index's tail cold (p99 197 ms vs 9 ms once warm).
        warm_up = min(max(2_000, 3 * len(queries)), 5_000)
        for store, q in make_queries(self.universe, self.stores, warm_up, self.scenario.seed + 1):
            self.search(store, q, services.get(store.tenant_id))
        outcomes = []
        for n, (store, q) in enumerate(queries):
            ids, ms = self.search(store, q, services[store.tenant_id])
            outcomes.append(QueryOutcome(store, ms, len(ids), _recall(ids, truths[n])))
        if seed:
            for n, (store, q) in enumerate(queries):
                t0 = time.perf_counter()
                seed_ids = self.seed_search(store, q)
                outcomes[n].seed_ms = (time.perf_counter() - t0) * 1000
                outcomes[n].seed_returned = len(seed_ids)
                outcomes[n].seed_recall = _recall(seed_ids, truths[n])
        return outcomes

    def summarise(self, outcomes: Sequence[QueryOutcome]) -> None:
        ms = [o.ms for o in outcomes]
        self.result.update(
            queries=len(outcomes),
            search_p50_ms=round(percentile(ms, 50), 2),
            search_p95_ms=round(percentile(ms, 95), 2),
            search_p99_ms=round(percentile(ms, 99), 2),
            recall_at_10=round(statistics.fmean(o.recall for o in outcomes), 4),
            short_results=sum(1 for o in outcomes if o.returned < min(K, o.store.live)),
        )
        if outcomes and outcomes[0].seed_recall is not None:
            self.result.update(
                seed_ivfflat_recall_at_10=round(statistics.fmean(o.seed_recall for o in outcomes), 4),  # type: ignore[misc]
                seed_short_results=sum(1 for o in outcomes if (o.seed_returned or 0) < min(K, o.store.live)),
                seed_search_p50_ms=round(percentile([o.seed_ms for o in outcomes], 50), 2),  # type: ignore[misc]
            )
        by_size: dict[str, dict[str, Any]] = {}
        for name in dict.fromkeys(size_class(o.store.size) for o in sorted(outcomes, key=lambda o: o.store.size)):
            group = [o for o in outcomes if size_class(o.store.size) == name]
            row = {
                "queries": len(group),
                "path": "exact" if group[0].store.size <= _exact_max() else "hnsw",
                "p50_ms": round(percentile([o.ms for o in group], 50), 2),
                "p95_ms": round(percentile([o.ms for o in group], 95), 2),
                "p99_ms": round(percentile([o.ms for o in group], 99), 2),
                "recall_at_10": round(statistics.fmean(o.recall for o in group), 4),
                "short_results": sum(1 for o in group if o.returned < min(K, o.store.live)),
            }
            if group[0].seed_recall is not None:
                row["seed_recall_at_10"] = round(statistics.fmean(o.seed_recall for o in group), 4)  # type: ignore[misc]
                row["seed_short_results"] = sum(1 for o in group if (o.seed_returned or 0) < min(K, o.store.live))
            by_size[name] = row
        self.result["by_store_size"] = by_size

    def measure_concurrency(self, queries: Sequence[tuple[BenchStore, np.ndarray]], threads: int = 4) -> None:
        services = {s.tenant_id: self.service(s) for s, _ in queries}
        parts = [queries[i::threads] for i in range(threads)]
        latencies: list[float] = []
        lock = threading.Lock()

        def run(part: Sequence[tuple[BenchStore, np.ndarray]]) -> None:
            mine = [self.search(store, q, services[store.tenant_id])[1] for store, q in part]
            with lock:
                latencies.extend(mine)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(run, parts))
        seconds = time.perf_counter() - t0
        self.result["concurrent_threads"] = threads
        self.result["concurrent_qps"] = round(len(queries) / seconds, 1)
        self.result["concurrent_p50_ms"] = round(percentile(latencies, 50), 2)
        self.result["concurrent_p99_ms"] = round(percentile(latencies, 99), 2)

    def measure_record_access(self, queries: Sequence[tuple[BenchStore, np.ndarray]]) -> None:
        """The same searches with access counting on (the seed's default): an UPDATE per search."""
        ms = []
        for store, q in queries:
            svc = self.service(store)
            t0 = time.perf_counter()
            svc.search_by_embedding(store.store_id, q, limit=K, min_similarity=-1)
            ms.append((time.perf_counter() - t0) * 1000)
        self.result["search_record_access_p50_ms"] = round(percentile(ms, 50), 2)

    def explain(self, queries: Sequence[tuple[BenchStore, np.ndarray]], verbose: bool) -> None:
        """EXPLAIN ANALYZE of the service's own vector query for the smallest and the biggest store:
        which index each uses, and the plans on stderr with --explain."""
        plans: dict[str, Any] = {}
        seen: set[str] = set()
        for store, q in sorted(queries, key=lambda sq: sq[0].size):
            name = size_class(store.size)
            if name in seen:
                continue
            seen.add(name)
            lines = explain_service_search(self.bdb.db, self.service(store), store.store_id, q)
            plan = "\n".join(lines)
            scans = sorted(set(re.findall(r"((?:Bitmap Heap|Bitmap Index|Index Only|Index|Seq) Scan) (?:Backward )?(?:using|on) (\w+)", plan)))
            indexes = sorted({name for _, name in scans if name != "memories"})
            execution = re.search(r"Execution Time: ([\d.]+) ms", plan)
            plans[name] = {"store_size": store.size, "indexes": indexes, "scans": [f"{kind} on {rel}" for kind, rel in scans],
                           "execution_ms": float(execution.group(1)) if execution else None}
            if verbose:
                log(f"EXPLAIN ANALYZE, store of {store.size:,} memories:\n" + plan)
        self.result["plans"] = plans

    # sweeps ------------------------------------------------------------------------------------

    def sweep_ef(self, queries: Sequence[tuple[BenchStore, np.ndarray]], values: Sequence[int]) -> None:
        """Recall and latency of the HNSW path at several hnsw.ef_search values (big stores only)."""
        from core import search

        hnsw = [(n, sq) for n, sq in enumerate(queries) if sq[0].size > _exact_max()]
        if not hnsw:
            return
        original = search._ITERATIVE_SCAN
        rows = {}
        try:
            for ef in values:
                search._ITERATIVE_SCAN = text(original.text.replace(
                    f"greatest(CAST(:ef AS int), {search.HNSW_EF_SEARCH})", f"greatest(CAST(:ef AS int), {int(ef)})"
                ))
                assert search._ITERATIVE_SCAN.text != original.text or ef == search.HNSW_EF_SEARCH
                outcomes = []
                for n, (store, q) in hnsw:
                    ids, ms = self.search(store, q)
                    outcomes.append((ms, _recall(ids, self.truth(n, store, q)), len(ids) < min(K, store.live)))
                rows[str(ef)] = {
                    "p50_ms": round(percentile([o[0] for o in outcomes], 50), 2),
                    "p99_ms": round(percentile([o[0] for o in outcomes], 99), 2),
                    "recall_at_10": round(statistics.fmean(o[1] for o in outcomes), 4),
                    "short_results": sum(o[2] for o in outcomes),
                }
                log(f"ef_search {ef}: {rows[str(ef)]}")
        finally:
            search._ITERATIVE_SCAN = original
        self.result["ef_search_sweep"] = {"queries": len(hnsw), "by_ef": rows}

    def crossover(self, queries: Sequence[tuple[BenchStore, np.ndarray]], per_size: int = 40) -> None:
        """Every store size searched both ways (exact, HNSW) with the same queries."""
        from core import search

        original = search.EXACT_SEARCH_MAX_ROWS
        by_size: dict[str, list[tuple[int, BenchStore, np.ndarray]]] = {}
        for n, (store, q) in enumerate(queries):
            by_size.setdefault(size_class(store.size), []).append((n, store, q))
        table = {}
        try:
            for name, group in sorted(by_size.items(), key=lambda kv: kv[1][0][1].size):
                group = group[:per_size]
                row: dict[str, Any] = {"store_size": group[0][1].size, "queries": len(group)}
                for path, limit in (("exact", 10**12), ("hnsw", -1)):
                    search.EXACT_SEARCH_MAX_ROWS = limit
                    for _, store, q in group[:3]:
                        self.search(store, q)
                    outcomes = []
                    for n, store, q in group:
                        ids, ms = self.search(store, q)
                        outcomes.append((ms, _recall(ids, self.truth(n, store, q)), len(ids) < min(K, store.live)))
                    row[f"{path}_p50_ms"] = round(percentile([o[0] for o in outcomes], 50), 2)
                    row[f"{path}_p99_ms"] = round(percentile([o[0] for o in outcomes], 99), 2)
                    row[f"{path}_recall_at_10"] = round(statistics.fmean(o[1] for o in outcomes), 4)
                    row[f"{path}_short_results"] = sum(o[2] for o in outcomes)
                table[name] = row
                log(f"crossover {name}: {row}")
        finally:
            search.EXACT_SEARCH_MAX_ROWS = original
        self.result["crossover"] = table

    def insert_with_full_index(self, rows_to_add: int = 2_000) -> None:
        """Steady state: an agent adding memories while the full HNSW index is there (into a
        store of its own, deleted afterwards, so the measured stores stay as they were)."""
        from core.bulk import bulk_add_memories

        first = self.stores[0]
        svc = self.service(first)
        user_id = svc.get_store(first.store_id).user_id
        model = MODELS_BY_DIM[self.scenario.dim]
        store = svc.get_or_create_store(user_id, f"insert-probe-{time.time_ns()}", embedding_model=model, embedding_dim=self.scenario.dim)
        probe = BenchStore(len(self.stores), rows_to_add, first.tenant_id, store.id, first.clusters, first.weights)
        rows = make_rows(self.universe, probe, self.scenario.seed + 1, datetime.now(timezone.utc))
        t0 = time.perf_counter()
        bulk_add_memories(svc, store.id, rows)
        seconds = time.perf_counter() - t0
        svc.delete_store(store.id)
        self.result["insert_with_full_index_rows_per_s"] = round(rows_to_add / seconds)

    # reuse -------------------------------------------------------------------------------------

    def save(self) -> None:
        """What a later `--reuse` run needs to measure this database again without rebuilding it."""
        meta = {"scenario": asdict(self.scenario), "build": {k: v for k, v in self.result.items() if k not in ("scenario",)},
                "stores": [[s.index, s.size, str(s.tenant_id), str(s.store_id)] for s in self.stores]}
        with self.bdb.su.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS bench_meta (id int PRIMARY KEY, meta jsonb NOT NULL)"))
            conn.execute(text("INSERT INTO bench_meta VALUES (1, CAST(:m AS jsonb)) ON CONFLICT (id) DO UPDATE SET meta = EXCLUDED.meta"),
                         {"m": json.dumps(meta, default=str)})

    def load(self) -> bool:
        """The stores of an earlier run on this database, if it was built for the same scenario."""
        with self.bdb.su.begin() as conn:
            if not conn.execute(text("SELECT to_regclass('bench_meta')")).scalar():
                return False
            meta = conn.execute(text("SELECT meta FROM bench_meta WHERE id = 1")).scalar()
        if not meta or meta["scenario"] | {"queries": 0} != asdict(self.scenario) | {"queries": 0}:
            raise InvalidInput(f"{self.bdb.data_dir} was built for another scenario: {meta and meta['scenario']}")
        for index, size, tenant_id, store_id in meta["stores"]:
            clusters, weights = store_mixture(self.universe, self.scenario.seed, index)
            self.stores.append(BenchStore(index, size, UUID(tenant_id), UUID(store_id), clusters, weights))
        build = {k: v for k, v in meta["build"].items()
                 if k in ("tenants", "users", "stores", "store_sizes", "generate_s", "vacuum_analyze_s", "table_mb", "index_mb", "seed_table_s")
                 or k.startswith(("ingest", "index_build"))}
        self.result.update(build)
        self.result["reused_database"] = True
        return True


def _exact_max() -> int:
    from core import search

    return search.EXACT_SEARCH_MAX_ROWS


def _recall(got: Sequence[UUID], truth: Sequence[UUID]) -> float:
    if not truth:
        return 1.0
    return len(set(got) & set(truth)) / len(truth)


def explain_service_search(db: Any, svc: Any, store_id: UUID, q: np.ndarray) -> list[str]:
    """Run the service's search once while recording its statements, then replay them in one
    tenant transaction with EXPLAIN (ANALYZE, BUFFERS) on the vector query."""
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(db.app, "before_cursor_execute", record)
    try:
        svc.search_by_embedding(store_id, q, limit=K, min_similarity=-1, record_access=False)
    finally:
        event.remove(db.app, "before_cursor_execute", record)
    vector = [i for i, (sql, _) in enumerate(statements) if "<=>" in sql][-1]
    with db.app.begin() as conn:
        for sql, params in statements[:vector]:
            if not sql.lstrip().upper().startswith("SELECT PG_ADVISORY"):
                conn.exec_driver_sql(sql, params)
        sql, params = statements[vector]
        return [r[0] for r in conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)]


# Explorer timings ------------------------------------------------------------------------------


def measure_umap(universe: Universe, sizes: Sequence[int], seed: int) -> dict[str, Any]:
    """UMAP fit time (cosine, n_neighbors 15) cold, and the cached answer, per number of points."""
    from core.projection import ProjectionCache, ProjectionKey, ProjectionParams

    out: dict[str, Any] = {}
    rng = np.random.default_rng([seed, 5])
    import umap  # the first fit of a process also compiles umap's numba code: timed on its own

    t0 = time.perf_counter()
    umap.UMAP(n_neighbors=15, metric="cosine", random_state=42, n_jobs=1).fit_transform(universe.sample(rng, rng.choice(universe.n_clusters, size=300)))
    out["first_fit_300_points_s"] = round(time.perf_counter() - t0, 2)
    log(f"umap: first fit of the process (300 points, numba compilation included): {out['first_fit_300_points_s']} s")
    for n in sizes:
        clusters = rng.choice(universe.n_clusters, size=n)
        vectors = universe.sample(rng, clusters)
        ids = [str(i) for i in range(n)]
        cache = ProjectionCache()
        key = ProjectionKey("bench", f"store-{n}", "bench", n, "", ProjectionParams())
        t0 = time.perf_counter()
        fitted, hit = cache.get_or_fit(key, lambda: (ids, vectors))
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, hit2 = cache.get_or_fit(key, lambda: (ids, vectors))
        cached = time.perf_counter() - t0
        out[str(n)] = {"via": "core.projection.ProjectionCache.get_or_fit", "points_fitted": len(fitted.ids),
                       "cold_s": round(cold, 2), "cached_ms": round(cached * 1000, 3), "cache_hit": hit2 and not hit}
        if len(fitted.ids) < n:  # the explorer samples; what fitting every point would cost
            t0 = time.perf_counter()
            umap.UMAP(n_neighbors=15, metric="cosine", random_state=42, n_jobs=1).fit_transform(vectors)
            out[str(n)]["all_points_direct_s"] = round(time.perf_counter() - t0, 2)
        log(f"umap {n}: {out[str(n)]}")
    return out


def measure_explorer(bench: Bench, store_size: int = 20_000) -> dict[str, Any]:
    """Time to first render of the explorer's Search and Map pages on a store of `store_size`
    memories, with streamlit.testing's AppTest (in process, no browser: the server-side run only)."""
    import os

    from core.admin import find_tenant
    from core.bulk import bulk_add_memories
    from core.service import MemoryService

    tenant = find_tenant(bench.bdb.db, "bench-explorer", create=True)
    svc = MemoryService(bench.bdb.db, tenant.id)
    user = svc.find_user("analyst", create=True)
    model = MODELS_BY_DIM[bench.scenario.dim]
    store = svc.get_or_create_store(user.id, "big", embedding_model=model, embedding_dim=bench.scenario.dim)
    if store.total_memories < store_size:  # an earlier --reuse run may have made it
        clusters, weights = store_mixture(bench.universe, bench.scenario.seed, 10_000)
        extra = BenchStore(10_000, store_size - store.total_memories, tenant.id, store.id, clusters, weights)
        bulk_add_memories(svc, store.id, make_rows(bench.universe, extra, bench.scenario.seed, datetime.now(timezone.utc)))
    from streamlit.testing.v1 import AppTest

    app = str(Path(__file__).resolve().parent.parent / "app.py")
    params = {"tenant": tenant.name, "user": user.name, "store": store.store_name}  # the sidebar's URL state
    out: dict[str, Any] = {"store_memories": store_size, "how": "streamlit.testing AppTest, server-side script run, no browser"}
    saved = {k: os.environ.get(k) for k in ("MEMEX_DATA_DIR", "DATABASE_URL", "MEMEX_ADMIN_DATABASE_URL")}
    os.environ["MEMEX_DATA_DIR"] = str(bench.bdb.data_dir)
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("MEMEX_ADMIN_DATABASE_URL", None)
    from core.config import get_settings
    from core.db import get_database

    get_settings.cache_clear()
    get_database.cache_clear()
    try:
        # the Search page empty; answering a query (first: the model loads; second: another query, model
        # warm, nothing cached); the Map page (first: UMAP fits; second: the cached projection)
        queries = {"first": "what does the user prefer when travelling?", "second": "which tools does the user use at work?"}
        views = (("search", "search", {}), ("search_query", "search", {"q": None}), ("map", "map", {}))
        for name, page, view_params in views:
            for attempt in ("first", "second"):
                extra = {k: queries[attempt] if v is None else v for k, v in view_params.items()}
                at = AppTest.from_file(app, default_timeout=900)
                for key, value in params.items():
                    at.query_params[key] = value
                at.run()
                at.switch_page(f"pages/{page}.py")
                for key, value in {**params, **extra}.items():
                    at.query_params[key] = value
                t0 = time.perf_counter()
                at.run()
                seconds = time.perf_counter() - t0
                errors = [str(e.value)[:200] for e in at.exception] + [str(e.value)[:200] for e in at.error]
                out[f"{name}_{attempt}_render_s"] = round(seconds, 2)
                out[f"{name}_shows"] = {"headers": [str(e.value)[:60] for e in list(at.title) + list(at.header)][:4],
                                        "elements": len(list(at.main)) if hasattr(at, "main") else None}
                if errors:
                    out[f"{name}_errors"] = errors
                log(f"explorer {name} ({attempt} run): {seconds:.2f} s{' errors: ' + str(errors) if errors else ''}")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
        get_database.cache_clear()
    return out


def measure_embedding(texts: int = 512) -> dict[str, Any]:
    """The local model: load once, then texts/s embedding alone (no database)."""
    from core.embeddings import get_embedder

    t0 = time.perf_counter()
    embedder = get_embedder("all-MiniLM-L6-v2")
    embedder.embed(["warm up"])
    load = time.perf_counter() - t0
    rng = np.random.default_rng(3)
    picks = rng.integers(0, [len(_SUBJECTS), len(_VERBS), len(_OBJECTS), len(_TAILS)], size=(texts, 4))
    batch = [f"{_SUBJECTS[a]} {_VERBS[b]} {_OBJECTS[c]}{_TAILS[d]}." for a, b, c, d in picks]
    t0 = time.perf_counter()
    embedder.embed(batch)
    seconds = time.perf_counter() - t0
    return {"embed_model_load_s": round(load, 2), "embed_texts_per_s": round(texts / seconds, 1)}


# The command -----------------------------------------------------------------------------------


@contextmanager
def bench_database(data_dir: str | None, keep: bool, reuse: bool = False) -> Iterator[BenchDatabase]:
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


def machine() -> dict[str, Any]:
    import os
    import platform

    memory = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            memory = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "memory_gb": memory, "load_average_at_start": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(), "machine": platform.machine()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    scenario = Scenario(args.memories, args.stores, args.dim, args.queries, args.seed)
    if args.dim not in MODELS_BY_DIM:
        raise InvalidInput(f"--dim must be one of {', '.join(map(str, sorted(MODELS_BY_DIM)))}")
    result: dict[str, Any] = {"scenario": asdict(scenario), "k": K, "machine": machine()}
    started = time.perf_counter()
    with bench_database(args.data_dir, args.keep, args.reuse) as bdb:
        bench = Bench(scenario, bdb, args.workers)
        bench.result = result
        with bdb.su.connect() as conn:
            result["postgresql"] = conn.execute(text("SHOW server_version")).scalar()
            result["pgvector"] = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar()
        result["setup_s"] = round(bdb.setup_s, 2)
        log(f"benchmark cluster in {bdb.data_dir} ready in {bdb.setup_s:.1f} s; {scenario}")
        if not (args.reuse and bench.load()):
            bench.create_stores()
            bench.ingest()
            bench.check_counts()
            if not args.no_seed:
                bench.build_seed_table()
                log(f"seed table (ivfflat lists=100 built empty) filled in {result['seed_table_s']} s")
            bench.save()
        else:
            bench.check_counts()
            log(f"reusing the database built earlier in {bdb.data_dir}")
        from core import search

        result["exact_search_max_rows"] = search.EXACT_SEARCH_MAX_ROWS
        queries = make_queries(bench.universe, bench.stores, scenario.queries, scenario.seed)
        has_seed = not args.no_seed and bool(bdb.scalar("SELECT to_regclass('seed_memories') IS NOT NULL"))
        outcomes = bench.measure_search(queries, seed=has_seed)
        bench.summarise(outcomes)
        log(f"search: p50 {result['search_p50_ms']} ms, p99 {result['search_p99_ms']} ms, recall@10 {result['recall_at_10']}")
        bench.explain(queries, args.explain)
        bench.measure_concurrency(queries)
        log(f"{result['concurrent_qps']} searches/s with 4 threads")
        bench.measure_record_access(queries[: min(100, len(queries))])
        if args.ef_sweep:
            bench.sweep_ef(queries, [int(v) for v in args.ef_sweep.split(",")])
        if args.crossover:
            bench.crossover(queries)
        bench.insert_with_full_index()
        if not args.skip_embed:
            result.update(measure_embedding())
            log(f"local model: {result['embed_texts_per_s']} texts/s")
        if args.umap:
            result["umap"] = measure_umap(bench.universe, [int(v) for v in args.umap.split(",")], scenario.seed)
        if args.explorer:
            result["explorer"] = measure_explorer(bench)
        result["total_s"] = round(time.perf_counter() - started, 1)
        result["load_average_at_end"] = [round(x, 2) for x in __import__("os").getloadavg()]
    return result


def print_table(r: dict[str, Any]) -> None:
    s = r["scenario"]
    print(f"memex bench: {s['memories']:,} memories, {r['stores']} stores ({r['tenants']} tenants), dim {s['dim']},"
          f" {r['queries']} queries, k = {r['k']}")
    print(f"PostgreSQL {r['postgresql']}, pgvector {r['pgvector']}, {r['machine']['cpus']} CPUs, {r['machine']['memory_gb']} GB")
    lines = [
        ("ingest (binary COPY, no vector index)", f"{r['ingest_rows_per_s']:,} rows/s ({r['ingest_workers']} workers)"),
        ("ingest with the HNSW index present", f"{r.get('ingest_with_index_rows_per_s', 'n/a'):,} rows/s" if "ingest_with_index_rows_per_s" in r else "n/a"),
        ("HNSW index build", f"{r['index_build_s']} s ({r['index_mb']} MB)"),
        ("search p50 / p95 / p99", f"{r['search_p50_ms']} / {r['search_p95_ms']} / {r['search_p99_ms']} ms"),
        ("recall@10", f"{r['recall_at_10']}"),
        ("short results", f"{r['short_results']}"),
        ("seed ivfflat recall@10", f"{r.get('seed_ivfflat_recall_at_10', 'n/a')} (short results: {r.get('seed_short_results', 'n/a')})"),
        ("4 threads", f"{r['concurrent_qps']} searches/s"),
        ("local model", f"{r['embed_texts_per_s']} texts/s" if "embed_texts_per_s" in r else "not measured"),
        ("counts exact", f"{r['counts_exact']}"),
    ]
    for name, value in lines:
        print(f"  {name:<40} {value}")
    print(f"\n  {'store size':<10} {'path':<6} {'queries':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'recall':>7} {'short':>6} {'seed recall':>12}")
    for name, row in r["by_store_size"].items():
        print(f"  {name:<10} {row['path']:<6} {row['queries']:>7} {row['p50_ms']:>8} {row['p95_ms']:>8} {row['p99_ms']:>8}"
              f" {row['recall_at_10']:>7} {row['short_results']:>6} {row.get('seed_recall_at_10', ''):>12}")
    if "crossover" in r:
        print(f"\n  {'store size':<10} {'exact p50':>10} {'exact recall':>13} {'hnsw p50':>9} {'hnsw recall':>12} {'hnsw short':>11}")
        for name, row in r["crossover"].items():
            print(f"  {name:<10} {row['exact_p50_ms']:>10} {row['exact_recall_at_10']:>13} {row['hnsw_p50_ms']:>9}"
                  f" {row['hnsw_recall_at_10']:>12} {row['hnsw_short_results']:>11}")


def cmd_bench(args: argparse.Namespace) -> None:
    result = run(args)
    if args.json:
        print(json.dumps(result, default=str))
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
