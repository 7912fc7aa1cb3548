"""The hybrid mode's ranking: cosine similarity and BM25 fused over their candidates, then the
conversation around them. Pure: search (core.service.search, from SQL) and the retrieval debugger
(core.explain, from a scan of the whole store) gather the same `Pool` and rank it here, so the
debugger always shows what search did.

For one query (settings: core.ranking.Fusion, core.bm25.Bm25):

1. Vector side: the `depth` nearest memories at or above the threshold (cosine similarity v).
2. Text side: the `depth` best BM25 scores among memories holding a driving query term (core.bm25),
   ties by id.
3. Fusion, over the candidates C: s = w z(v) + (1 - w) z(bm25), z-scores with the candidates' mean
   and population standard deviation (1 when 0; for BM25 at least `bm25_spread`); memories outside
   C are scored with the same ones.
4. Neighbour lift: a memory within `neighbour_window` turns of a candidate of its session (same
   source, no gap over 30 minutes, migration 011) joins the pool, and moves `neighbour_lift` of the
   way up to the best such candidate: s1 = s + lift * max(0, s(c) - s).
5. Session bonus: s2 = s1 + bonus * max(0, best s1 of a candidate in its session), for sessions of
   two or more memories.
6. Dates: s3 = s2 + date_boost when the memory was created on a date the query names (core.dates).
7. Order: s3 (+ 1e-7 v to break exact ties toward the closer memory), then id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from uuid import UUID

import numpy as np

from core.dates import Named, named_on
from core.models import Memory
from core.search import Candidate, Hit, SearchParams, diversify
from core.turns import Turns

VECTOR, TEXT, BOTH, NEIGHBOUR = "vector", "text", "vector+text", "neighbour"
TIE = 1e-7
SESSION_GAP = 30 * 60 * 1_000_000  # microseconds: a longer silence starts a new session
SESSION_REACH = 64  # turns: candidates farther apart in their source's order share no session
K = TypeVar("K")


@dataclass(frozen=True)
class Signals:
    """What search knows of one memory for one query."""

    memory: Memory
    similarity: float  # cosine to the query
    bm25: float  # 0 when it holds no query term
    terms: Mapping[str, float]  # the query lexemes it holds, each with its share of bm25
    allowed: bool  # the search's filters (status, type, source) let it through
    embedding: np.ndarray | None = None

    @property
    def id(self) -> UUID:
        return self.memory.id


@dataclass(frozen=True)
class Around(Generic[K]):
    """A candidate's conversation: its session (named by one of the candidates in it), whether the
    session holds another memory, and the memories before and after it in it, nearest first (every
    status: an archived turn is still a turn), up to the window."""

    session: K
    shared: bool
    before: tuple[K, ...] = ()
    after: tuple[K, ...] = ()


@dataclass
class Pool:
    """Everything hybrid ranking needs for one query."""

    vector: list[UUID]  # vector candidates, best v first
    text: list[UUID]  # text candidates, best BM25 first
    signals: dict[UUID, Signals]  # every candidate and every allowed neighbour
    around: dict[UUID, Around[UUID]] = field(default_factory=dict)  # per candidate (conversational fusion only)

    @property
    def candidates(self) -> list[UUID]:
        return list(dict.fromkeys([*self.vector, *self.text]))

    def neighbours(self, window: int) -> set[UUID]:
        """Memories within `window` turns of a candidate in its session."""
        return {n for a in self.around.values() for n in (*a.before[:window], *a.after[:window])}


def conversation(runs: Sequence[Sequence[tuple[K, int]]] | Turns[K], candidates: Sequence[K], window: int) -> dict[K, Around[K]]:
    """Each candidate's conversation (Around) from runs of turns (or the Turns indexed from them):
    each run a stretch of one source's order, (id, created_at in microseconds) as the turns follow
    each other with none left out.
    The debugger passes every memory of the store; search passes what core.sql.hybrid.around_signals read:
    `window` turns each side of every candidate, and the turns from each candidate up to the next
    candidate of its source when that one is at most SESSION_REACH turns away. Both give the same
    answer: before and after are the turns within `window` with no gap over SESSION_GAP; a candidate
    shares its session with the next candidate of its source when the walk between them takes at
    most SESSION_REACH steps with no gap over SESSION_GAP (so a session is known at a bounded
    cost however long it is); Around.session names each group of such candidates by one of them."""
    turns = runs if isinstance(runs, Turns) else Turns.of(runs)
    keys, index, at, prev, nxt = turns.keys, turns.index, turns.at, turns.prev, turns.nxt

    def walk(i: int, links: list[int], steps: int) -> list[int]:
        out: list[int] = []
        while len(out) < steps and links[i] >= 0 and abs(at[links[i]] - at[i]) <= SESSION_GAP:
            i = links[i]
            out.append(i)
        return out

    wanted = [index[c] for c in dict.fromkeys(candidates) if c in index]
    group = {c: c for c in wanted}

    def root(c: int) -> int:
        while group[c] != c:
            c = group[c]
        return c

    for c in wanted:
        for step in walk(c, nxt, SESSION_REACH):
            if step in group:
                group[root(step)] = root(c)
                break
    out: dict[K, Around[K]] = {}
    for c in wanted:
        before, after = walk(c, prev, max(window, 1)), walk(c, nxt, max(window, 1))
        out[keys[c]] = Around(
            keys[root(c)], bool(before or after), tuple(keys[i] for i in before[:window]), tuple(keys[i] for i in after[:window])
        )
    return out


def vector_side(nearest: Sequence[Signals], params: SearchParams) -> list[UUID]:
    """The vector candidates from the nearest memories (nearest first): the `pool` nearest at or
    above the threshold."""
    passed = [s for s in nearest if s.allowed and s.similarity >= params.min_similarity]
    return [s.id for s in passed[: params.pool]]


def _z(values: np.ndarray) -> tuple[float, float]:
    mean = float(values.mean()) if len(values) else 0.0
    sd = float(values.std()) if len(values) else 0.0
    return mean, (sd if sd > 0 else 1.0)


def rank(pool: Pool, params: SearchParams, dates: Sequence[Named]) -> list[Candidate]:
    """The pool in hybrid order, every memory with the parts of its score (the whole pool: search
    keeps the first `limit`, the debugger explains the rest); MMR re-orders it when asked."""
    fusion = params.fusion
    signals = pool.signals
    candidates = pool.candidates
    if not candidates:
        return []
    in_vector = {i: n for n, i in enumerate(pool.vector, start=1)}
    in_text = {i: n for n, i in enumerate(pool.text, start=1)}
    v_mean, v_sd = _z(np.array([signals[i].similarity for i in candidates]))
    t_mean, t_sd = _z(np.array([signals[i].bm25 for i in candidates]))
    t_sd = max(t_sd, fusion.bm25_spread)

    def fused(s: Signals) -> float:
        return fusion.vector_weight * (s.similarity - v_mean) / v_sd + (1 - fusion.vector_weight) * (s.bm25 - t_mean) / t_sd

    base = {i: fused(signals[i]) for i in candidates}
    members = list(candidates)
    session = {i: pool.around[i].session for i in candidates if i in pool.around}
    shared = {pool.around[i].session for i in candidates if i in pool.around and pool.around[i].shared}
    lenders: dict[UUID, list[UUID]] = {}
    if fusion.conversational:
        window = fusion.neighbour_window
        for c in candidates:
            around = pool.around.get(c, Around(c, False))
            for n in (*around.before[:window], *around.after[:window]):
                lenders.setdefault(n, []).append(c)
                if n not in base and n in signals and signals[n].allowed:
                    base[n] = fused(signals[n])
                    members.append(n)
                    session[n] = around.session
    lifted = dict(base)
    lift: dict[UUID, tuple[float, UUID]] = {}
    if fusion.neighbour_lift > 0:
        for m in members:
            lending = [c for c in lenders.get(m, []) if c != m]
            if lending:
                best = max(lending, key=lambda c: (base[c], -c.int))
                gain = fusion.neighbour_lift * max(0.0, base[best] - base[m])
                lifted[m] = base[m] + gain
                lift[m] = (gain, best)
    best_of: dict[UUID, float] = {}
    for c in candidates:
        if c in session:
            best_of[session[c]] = max(best_of.get(session[c], 0.0), lifted[c])
    out: list[Candidate] = []
    for m in members:
        s = signals[m]
        bonus = fusion.session_bonus * best_of.get(session[m], 0.0) if fusion.session_bonus > 0 and session.get(m) in shared else 0.0
        date = named_on(dates, s.memory.created_at) if fusion.date_boost > 0 and dates else None
        boost = fusion.date_boost if date is not None else 0.0
        origin = BOTH if m in in_vector and m in in_text else VECTOR if m in in_vector else TEXT if m in in_text else NEIGHBOUR
        gain, by = lift.get(m, (0.0, None))
        out.append(
            Candidate(
                Hit(s.memory, s.similarity, s.bm25, s.embedding, dict(s.terms)),
                vector_rank=in_vector.get(m),
                text_rank=s.bm25,
                text_position=in_text.get(m),
                fused=base[m],
                score=lifted[m] + bonus + boost,
                lift=gain if fusion.neighbour_lift > 0 else None,
                lifted_by=by if gain > 0 else None,
                session_bonus=bonus if fusion.session_bonus > 0 else None,
                date_boost=boost if fusion.date_boost > 0 and dates else None,
                date=str(date) if date else None,
                origin=origin,
            )
        )
    out.sort(key=lambda c: (-(c.score + TIE * c.similarity), c.id))
    return diversify(out, params)
