"""The benchmark's synthetic data: what a scenario holds, and memories and queries shaped like
sentence embeddings.

Unit vectors around a few hundred cluster centres grouped in topics, each cluster with a
low-dimensional spread plus isotropic noise: uniform noise is what no embedding model produces
and no index can search well, so it would measure nothing real. Stores sit in many tenants and
users; one store holds a tenth of the memories, a ladder of stores of 2k to 50k shows where exact
search stops paying, the rest are ~1k. 5% of the memories are expired and 1% archived, so the
filters matter. Everything is drawn from seeded generators: a scenario and its seed always make
the same rows and queries (a `--reuse` run relies on it).
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

import numpy as np

from core import MemoryColumns
from core.errors import InvalidInput

MODELS_BY_DIM = {
    384: "all-MiniLM-L6-v2",
    1536: "text-embedding-3-small",
    1024: "text-embedding-3-small",
    512: "text-embedding-3-small",
    256: "text-embedding-3-small",
}
LADDER = (2_000, 5_000, 10_000, 20_000, 50_000)
EXPIRED_SHARE = 0.05
ARCHIVED_SHARE = 0.01
TOPICS, SUBTOPICS = 30, 10  # 300 cluster centres
SPREAD_RANK = 24  # intrinsic dimensions of a cluster's spread


def parse_count(value: str) -> int:
    """10k, 100k, 1m, 2.5k or a plain integer."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", str(value))
    if not match:
        raise argparse.ArgumentTypeError(f"expected a count like 10k, 100k, 1m or 5000, not {value!r}")
    number = float(match.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    if number < 1 or number != int(number):
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of memories")
    return int(number)


@dataclass(frozen=True)
class Scenario:
    """What `memex bench` builds: memories over stores, of one dimension; queries measured; seed."""

    memories: int
    stores: int
    dim: int
    queries: int = 200
    seed: int = 0

    @property
    def model(self) -> str:
        """The embedding model the stores declare (a model of this dimension)."""
        return MODELS_BY_DIM[self.dim]

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
    """The name figures are grouped under: ~1k, 2k, 5k, ... (a store's size, rounded)."""
    for bound, name in ((1_500, "~1k"), (3_000, "2k"), (7_000, "5k"), (15_000, "10k"), (30_000, "20k"), (70_000, "50k"), (150_000, "100k")):
        if size <= bound:
            return name
    return f"{round(size / 1000)}k"


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


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


@dataclass
class BenchStore:
    """A store of the benchmark: its place in the scenario, its ids, and what its memories are about."""

    index: int
    size: int
    tenant_id: UUID
    store_id: UUID
    clusters: np.ndarray = field(repr=False)  # the clusters this store's memories come from
    weights: np.ndarray = field(repr=False)
    live: int = 0  # memories search may return (set once the rows are counted)

    def mixture_rng(self, seed: int, purpose: int) -> np.random.Generator:
        return np.random.default_rng([seed, self.index, purpose])


def store_mixture(universe: Universe, seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """A user's memories are about a handful of topics: 4 to 24 clusters, unevenly."""
    rng = np.random.default_rng([seed, index, 0])
    count = int(rng.integers(4, 25))
    clusters = rng.choice(universe.n_clusters, size=count, replace=False)
    return clusters, rng.dirichlet(np.ones(count))


@dataclass(frozen=True, eq=False)
class Query:
    """A query vector about what one store holds; `n`, its place in its list, keys its exact answer."""

    n: int
    store: BenchStore
    vector: np.ndarray = field(repr=False)


_SUBJECTS = ["The user", "Alice", "Bob", "The customer", "Our client", "Dana", "The team lead", "Mr. Okafor", "Priya", "The agent"]
_VERBS = ["prefers", "mentioned", "asked about", "dislikes", "booked", "is planning", "reported", "wants", "forgot", "recommended"]
_OBJECTS = [
    "window seats on long flights",
    "green tea in the morning",
    "the quarterly budget review",
    "a vegetarian menu",
    "the Lisbon conference",
    "weekly status emails",
    "a standing desk",
    "the Python migration",
    "early meetings",
    "hotel rooms with a gym",
    "the new pricing plan",
    "jazz concerts",
    "dark mode in every app",
    "the invoice from March",
    "trains over planes",
    "a refund for order 4417",
    "short answers",
    "the onboarding checklist",
    "Italian food",
    "password resets by SMS",
]
_TAILS = [
    "",
    " last week",
    " during the support call",
    " in the kickoff meeting",
    " according to the CRM",
    " and asked us to remember it",
    " twice this month",
    " before the trip to Berlin",
    " since the reorganisation",
    " while discussing the renewal",
]
_TYPES = ["fact", "preference", "event", "instruction", "observation"]
_TYPE_P = [0.4, 0.25, 0.2, 0.1, 0.05]
_SOURCES = ["chat", "email", "import", "meeting", None]


def sentences(rng: np.random.Generator, n: int, *, numbered: bool = False) -> list[str]:
    """n short memory-like sentences; `numbered` makes each distinct (rows of a store)."""
    picks = rng.integers(0, [len(_SUBJECTS), len(_VERBS), len(_OBJECTS), len(_TAILS)], size=(n, 4))
    return [
        f"{_SUBJECTS[a]} {_VERBS[b]} {_OBJECTS[c]}{_TAILS[d]}{f' (note {i})' if numbered else ''}." for i, (a, b, c, d) in enumerate(picks)
    ]


def make_rows(universe: Universe, store: BenchStore, seed: int, now: datetime) -> MemoryColumns:
    """A store's synthetic memories, as columns for the service's bulk ingest."""
    rng = store.mixture_rng(seed, 1)
    n = store.size
    clusters = store.clusters[rng.choice(len(store.clusters), size=n, p=store.weights)]
    vectors = universe.sample(rng, clusters)
    contents = sentences(rng, n, numbered=True)
    fate = rng.random(n)
    hours = rng.uniform(1, 24 * 30, n)
    expires = [
        now - timedelta(hours=h) if f < EXPIRED_SHARE else (now + timedelta(days=h / 24 + 30) if f > 0.9 else None)
        for f, h in zip(fate, hours)
    ]
    created = [now - timedelta(days=d) for d in rng.uniform(0, 180, n)]
    return MemoryColumns(
        content=contents,
        embedding=vectors,
        memory_type=[_TYPES[t] for t in rng.choice(len(_TYPES), size=n, p=_TYPE_P)],
        source=[_SOURCES[s] for s in rng.integers(0, len(_SOURCES), n)],
        importance=np.round(rng.uniform(0, 1, n), 2),
        metadata=[{"conversation": f"c-{int(c)}"} if c < 300 else None for c in rng.integers(0, 1000, n)],
        expires_at=expires,
        created_at=created,
        archived=(rng.random(n) < ARCHIVED_SHARE).tolist(),
    )


def make_queries(universe: Universe, stores: Sequence[BenchStore], count: int, seed: int) -> list[Query]:
    """Queries about what a store holds (new points of its clusters): a quarter on the biggest
    store, a quarter on the ladder stores, half on ~1k stores (all the same size class when the
    scenario has only one)."""
    rng = np.random.default_rng([seed, 99])
    big = [stores[0]] if len(stores) > 1 else list(stores)
    ladder = [s for s in stores[1:] if s.size in LADDER]
    small = [s for s in stores[1:] if s.size not in LADDER] or list(stores)
    groups = [(big, 0.25), (ladder, 0.25), (small, 0.5)] if ladder else [(big, 0.3), (small, 0.7)]
    picks: list[BenchStore] = []
    for _ in range(count):
        members = groups[int(rng.choice(len(groups), p=[w for _, w in groups]))][0]
        picks.append(members[int(rng.integers(len(members)))])
    out = []
    for n, store in enumerate(picks):
        cluster = np.array([store.clusters[int(rng.choice(len(store.clusters), p=store.weights))]])
        out.append(Query(n, store, universe.sample(rng, cluster)[0]))
    return out
