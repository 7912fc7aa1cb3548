"""Explain a search: where every memory of the store stands for one query, and why.

The retrieval debugger must never disagree with search itself, so nothing here re-implements
the ranking: every memory is scored exactly (an exact scan, no index: core.sql.search.scan), the
candidate lists the service would see are rebuilt from that scan, and core.search.rank_candidates
(core.hybrid.rank for hybrid search, with the conversations rebuilt from each memory's source and
created_at in the scan)
orders them. The first `limit` of that order are what search returns; every other memory gets a
status and a one-sentence reason. Pure: MemoryService.explain_search does the scan and reads the
memories this module asks for.

A store of 20k memories is explained without an object per memory: the scan is arrays (ids,
distances, text ranks, statuses), positions and statuses are computed with numpy, and memories are
read whole only where ranking needs them (the pools of hybrid, weighted and MMR) or where they are
shown (the first `detail` of the order: results, near misses, the chart; a picker's labels read
only the start of each content, Explanation.choices); any other is read when asked for (why_not),
and its reason worded then. Plain vector and text search
only cut one list at the limit, so a memory past the first `detail` of that list is ranked by its
position in it, which is what rank_candidates gives (tests/test_diagnostics.py compares the two).

Above SearchTuning.exact_max_rows the service walks the HNSW index, which is approximate: the
explanation then shows the exact answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import overload
from uuid import UUID

import numpy as np

from core import hybrid, validation
from core.dates import dates_in
from core.errors import NotFound
from core.models import Memory, MemoryStore, ScoreBreakdown, SearchResult
from core.search import Candidate as Scored
from core.search import Hit, Scan, SearchParams, rank_candidates, to_result
from core.supersede import KEEP, Supersession, settle

# Memories read whole with the explanation: the page shows its results, 10 near misses and a chart
# of 30; its picker of the 1,000 best reads only their content's start (Explanation.choices), and
# any other memory is read when asked for. Reading the 1,000 whole cost the page ~90 ms.
DETAIL = 100
# Reads the memories (and, for MMR, their vectors) of these ids, by id; absent ones are gone.
Fetch = Callable[[Sequence[UUID], bool], dict[UUID, tuple[Memory, np.ndarray | None]]]
# Reads the start of these memories' content (at most PREVIEW_CHARS) and whether it goes on, by id.
Preview = Callable[[Sequence[UUID]], dict[UUID, tuple[str, bool]]]
PREVIEW_CHARS = 300

RETURNED = "returned"
BELOW_THRESHOLD = "below threshold"
BEYOND_LIMIT = "beyond limit"
SET_ASIDE = "set aside by MMR"
NOT_A_CANDIDATE = "not a candidate"
NO_TEXT_MATCH = "no text match"
EXPIRED = "expired"
ARCHIVED = "archived"
FILTERED = "filtered out"
SUPERSEDED = "superseded"
STATUSES = (RETURNED, BEYOND_LIMIT, SET_ASIDE, SUPERSEDED, BELOW_THRESHOLD, NOT_A_CANDIDATE, NO_TEXT_MATCH, FILTERED, EXPIRED, ARCHIVED)
# What a search could return if the user changed the threshold, limit, mode, MMR or what it does
# with superseded memories (not the filters).
MISSES = (BEYOND_LIMIT, SET_ASIDE, SUPERSEDED, BELOW_THRESHOLD, NOT_A_CANDIDATE, NO_TEXT_MATCH)
NO_MATCH = "it does not match the query's words (text search matches words, not meaning)"


@dataclass(frozen=True)
class Candidate:
    """One memory of the store for one query: its raw signals, where the mode put it, and why."""

    memory: Memory
    similarity: float
    text_rank: float  # BM25; 0 when the memory holds no query term
    text_match: bool  # it holds a query term that drives the text side's lookup (core.bm25)
    vector_position: int | None  # among the memories the filters allow, nearest first
    text_position: int | None  # among the allowed text matches, best first
    rank: int | None  # position in the mode's full order; None when the mode never ranks it
    score: float | None
    breakdown: ScoreBreakdown | None
    status: str
    reason: str

    @property
    def returned(self) -> bool:
        return self.status == RETURNED


@dataclass(frozen=True)
class Choice:
    """A memory in a picker of the best candidates: where it stands, without its reason."""

    id: UUID
    content: str  # the content's start (PREVIEW_CHARS at most)
    cut: bool  # the content goes on
    rank: int | None
    status: str


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@lru_cache(maxsize=64)
def _decimals(threshold: float) -> int:
    return next((d for d in (2, 3, 4, 5) if round(threshold, d) == threshold), 6)


def below(similarity: float, threshold: float) -> str:
    """ "similarity 0.596 is below the threshold 0.60": as many decimals as it takes to see the gap."""
    shown = _decimals(threshold)
    digits = next((d for d in range(shown, 8) if _differs(similarity, threshold, d)), 8)
    return f"similarity {similarity:.{digits}f} is below the threshold {threshold:.{shown}f}"


def _differs(similarity: float, threshold: float, digits: int) -> bool:
    """Whether the two read differently at this many decimals ("-0.00" and "0.00" do not)."""
    a, b = f"{similarity:.{digits}f}", f"{threshold:.{digits}f}"
    return a.removeprefix("-") != b.removeprefix("-") or (a.startswith("-") and a.strip("-0.") != "")


def _exclusion(memory: Memory, expired: bool, params: SearchParams) -> tuple[str, str]:
    if memory.archived:
        return ARCHIVED, "it is archived, and archived memories are never returned"
    if expired:
        assert memory.expires_at is not None
        return (
            EXPIRED,
            f"it expired on {_when(memory.expires_at)}, and expired memories are never returned",
        )
    if params.filters.memory_types and memory.memory_type not in params.filters.memory_types:
        return FILTERED, "its type is not among the selected types"
    return FILTERED, "its source is not among the selected sources"


def _unranked(similarity: float, vpos: int, tpos: int | None, params: SearchParams) -> tuple[str, str]:
    """Status and reason of an allowed memory that the mode never ranked."""
    thr, pool = params.min_similarity, params.pool
    if params.mode == "text":
        if tpos is None:
            return NO_TEXT_MATCH, NO_MATCH
        return NOT_A_CANDIDATE, f"only the {pool} best text matches are candidates for diversification, and it is {ordinal(tpos)}"
    if params.mode == "hybrid":
        text_side = (
            "it does not match the query's words" if tpos is None else f"its BM25 is the {ordinal(tpos)} best, not among the {pool} best"
        )
        window = params.fusion.neighbour_window if params.fusion.conversational else 0
        beside = f", nor within {window} turns of a candidate in its conversation" if window else ""
        if similarity < thr:
            return BELOW_THRESHOLD, f"{below(similarity, thr)}, and {text_side}{beside}"
        return NOT_A_CANDIDATE, f"it is the {ordinal(vpos)} nearest, not among the {pool} nearest, and {text_side}{beside}"
    if similarity < thr:
        return BELOW_THRESHOLD, below(similarity, thr)
    what = "weighted scoring" if params.mode == "weighted" else "diversification" if params.mmr_lambda is not None else "reordering"
    return (
        NOT_A_CANDIDATE,
        f"it passes the threshold but is the {ordinal(vpos)} nearest, and only the {pool} nearest are candidates for {what}",
    )


_CODE = {status: i for i, status in enumerate(STATUSES)}


def _bounded(params: SearchParams) -> bool:
    """Modes whose pools are fused, re-weighted or diversified: only the service's pools are ranked.
    Plain vector and text search cut their single list at the limit, so every allowed memory can be;
    moving or leaving out superseded memories reorders a pool too."""
    return params.mode in ("hybrid", "weighted") or params.mmr_lambda is not None or params.superseded != KEEP


def _sides(params: SearchParams, by_distance: np.ndarray, by_text: np.ndarray, detail: int) -> tuple[np.ndarray, np.ndarray]:
    """The memories each side of the search hands to ranking: the service's pools, or for plain
    vector and text search the first `detail` of the list (the rest are ranked by position)."""
    take = params.pool if _bounded(params) else max(detail, params.limit)
    vector_side = by_distance[:take] if params.mode != "text" else by_distance[:0]
    text_side = by_text[:take] if params.mode in ("text", "hybrid") else by_text[:0]
    return vector_side, text_side


def rows_to_read(params: SearchParams, scan: Scan, detail: int = DETAIL) -> list[UUID]:
    """The memories ranking needs whole (with vectors when params.needs_vectors): the sides' pools
    and, for hybrid search, the candidates' neighbours in their conversations."""
    by_distance, by_text = scan.by_distance, scan.by_text
    vector_side, text_side = _sides(params, by_distance, by_text, detail)
    if params.mode == "hybrid":
        vector_side = vector_side[scan.similarity[vector_side] >= params.min_similarity]
    picked = np.unique(np.concatenate([vector_side, text_side]))
    if params.mode == "hybrid" and params.fusion.conversational:
        around = _around(scan, picked, params.fusion.neighbour_window)
        near = {n for a in around.values() for n in (*a.before, *a.after)}
        picked = np.unique(np.concatenate([picked, np.array(sorted(near), dtype=np.int64)]))
    return [scan.id(i) for i in picked]


def _around(scan: Scan, ids: np.ndarray, window: int) -> dict[int, hybrid.Around[int]]:
    return hybrid.conversation(scan.turns, [int(i) for i in ids], window)


def _hybrid_order(
    query: str, params: SearchParams, scan: Scan, vector_side: np.ndarray, text_side: np.ndarray, signals: dict[int, hybrid.Signals]
) -> list[Scored]:
    """What hybrid search ranks, rebuilt from the scan: the pool core.service.search gathers."""
    vector_ids = [signals[int(i)].id for i in vector_side if scan.similarity[i] >= params.min_similarity][: params.pool]
    pool = hybrid.Pool(vector_ids, [signals[int(i)].id for i in text_side], {s.id: s for s in signals.values()})
    if params.fusion.conversational:
        index = scan.positions
        candidates = np.array([index[c.bytes] for c in pool.candidates], dtype=np.int64)
        for i, a in _around(scan, candidates, params.fusion.neighbour_window).items():
            pool.around[scan.id(i)] = hybrid.Around(
                scan.id(a.session), a.shared, tuple(scan.id(b) for b in a.before), tuple(scan.id(n) for n in a.after)
            )
    return hybrid.rank(pool, replace(params, limit=max(len(scan), params.limit)), dates_in(query))


def explain(
    query: str,
    params: SearchParams,
    store: MemoryStore,
    vector: np.ndarray,
    scan: Scan,
    rows: dict[UUID, tuple[Memory, np.ndarray | None]],
    fetch: Fetch,
    preview: Preview,
    now: datetime | None = None,
    detail: int = DETAIL,
    superseded: dict[UUID, Supersession] | None = None,
    terms: dict[UUID, dict[str, float]] | None = None,
) -> Explanation:
    """The explanation of a search from a scan of every memory of its store (params checked).
    `rows`: the memories rows_to_read named, read in the scan's transaction; `fetch` reads others
    when they are shown (the first `detail` of the order at once), `preview` the start of their
    content for Explanation.choices; `superseded`: the store's stale
    memories, which the search's policy moves or leaves out; `terms`: for text and hybrid search,
    the query terms each of `rows` holds with their shares of its BM25 (core.sql.hybrid.terms_of)."""
    terms = terms or {}
    superseded = superseded or {}
    n = len(scan)
    similarity = scan.similarity
    key, by_distance, by_text = scan.sort_key, scan.by_distance, scan.by_text
    vpos = np.zeros(n, dtype=np.int64)
    vpos[by_distance] = np.arange(1, len(by_distance) + 1)
    tpos = np.zeros(n, dtype=np.int64)
    tpos[by_text] = np.arange(1, len(by_text) + 1)
    vector_side, text_side = _sides(params, by_distance, by_text, detail)

    def hit(i: int, text: bool) -> Hit:
        memory, embedding = rows[scan.id(i)]
        return Hit(
            memory, float(similarity[i]), float(scan.text_rank[i]) if text else None, embedding, terms.get(memory.id) if text else None
        )

    now = now or datetime.now(UTC)
    everything = replace(params, limit=max(n, params.limit))
    before_mmr: dict[UUID, int] = {}
    if params.mode == "hybrid":
        index = scan.positions
        signals = {}
        for memory_id, (memory, embedding) in rows.items():
            i = index[memory_id.bytes]
            signals[i] = hybrid.Signals(
                memory,
                float(similarity[i]),
                float(scan.text_rank[i]),
                terms.get(memory_id, {}),
                bool(scan.allowed[i]),
                embedding,
            )
        ranked = _hybrid_order(query, params, scan, vector_side, text_side, signals)
        if params.mmr_lambda is not None:
            plain_order = _hybrid_order(query, replace(params, mmr_lambda=None), scan, vector_side, text_side, signals)
            before_mmr = {c.id: i for i, c in enumerate(plain_order, start=1)}
    else:
        vector_hits = [hit(i, False) for i in vector_side]
        text_hits = [hit(i, True) for i in text_side]
        ranked = rank_candidates(vector_hits, text_hits, everything, now)
        if params.mmr_lambda is not None:
            plain = rank_candidates(vector_hits, text_hits, replace(everything, mmr_lambda=None), now)
            before_mmr = {c.id: i for i, c in enumerate(plain, start=1)}
    settled = settle(ranked, [c.id for c in ranked], superseded, params.superseded)
    left_out = {c.id for c in ranked} - {c.id for c in settled}
    demoted = {c.id for c in ranked if c.id in superseded} if params.superseded != KEEP else set()
    ranked = settled

    index = scan.positions
    rank = np.zeros(n, dtype=np.int64)
    score = np.full(n, np.nan)
    scored: dict[int, Scored] = {}
    for position, c in enumerate(ranked, start=1):
        i = index[c.id.bytes]
        rank[i], score[i], scored[i] = position, c.score, c
    if not _bounded(params):  # the rest of the single list, in its order (what rank_candidates does with it)
        side = by_text if params.mode == "text" else by_distance[similarity[by_distance] >= params.min_similarity]
        rest = side[len(ranked) :]
        rank[rest] = np.arange(len(ranked) + 1, len(side) + 1)
        score[rest] = scan.text_rank[rest] if params.mode == "text" else similarity[rest]

    status = np.full(n, _CODE[FILTERED], dtype=np.int8)
    status[scan.expired] = _CODE[EXPIRED]
    status[scan.archived] = _CODE[ARCHIVED]
    allowed = scan.allowed
    unranked = allowed & (rank == 0)
    if params.mode == "text":
        status[unranked] = np.where(tpos[unranked] > 0, _CODE[NOT_A_CANDIDATE], _CODE[NO_TEXT_MATCH])
    else:
        status[unranked] = np.where(similarity[unranked] < params.min_similarity, _CODE[BELOW_THRESHOLD], _CODE[NOT_A_CANDIDATE])
    status[allowed & (rank > 0)] = _CODE[BEYOND_LIMIT]
    status[allowed & (rank > 0) & (rank <= params.limit)] = _CODE[RETURNED]
    for memory_id, before in before_mmr.items():
        i = index[memory_id.bytes]
        if rank[i] > params.limit and before <= params.limit:
            status[i] = _CODE[SET_ASIDE]
    for memory_id in left_out:
        status[index[memory_id.bytes]] = _CODE[SUPERSEDED]

    # ranked first, in rank order; then the unranked, most similar first; ties by id
    order = np.lexsort((*key, -similarity, rank, rank == 0))
    results = [to_result(c, params) for c in ranked[: params.limit]]
    explanation = Explanation(
        query, params, store, vector, results, scan, index, order, vpos, tpos, rank, score, status, scored, before_mmr, fetch, preview
    )
    explanation.superseded, explanation.demoted, explanation.terms = superseded, demoted, terms
    explanation.memories.update({memory_id: memory for memory_id, (memory, _) in rows.items()})
    explanation.read([scan.id(i) for i in order[:detail]])
    return explanation


class Explanation:
    """One search, explained: its results, and every memory of the store with its reason."""

    def __init__(
        self,
        query: str,
        params: SearchParams,
        store: MemoryStore,
        vector: np.ndarray,
        results: list[SearchResult],
        scan: Scan,
        index: dict[bytes, int],
        order: np.ndarray,
        vpos: np.ndarray,
        tpos: np.ndarray,
        rank: np.ndarray,
        score: np.ndarray,
        status: np.ndarray,
        scored: dict[int, Scored],
        before_mmr: dict[UUID, int],
        fetch: Fetch,
        preview: Preview,
    ):
        self.query = query
        self.params = params
        self.store = store
        self.vector = vector  # the query's embedding: pass it to search_memories(query_embedding=...)
        self.results = results  # exactly what search_memories returns, in order
        self._scan, self._index, self._order = scan, index, order
        self._vpos, self._tpos, self._rank, self._score, self._status = vpos, tpos, rank, score, status
        self._scored, self._before_mmr, self._fetch, self._preview = scored, before_mmr, fetch, preview
        self._ranked_total = int((rank > 0).sum())
        self.memories: dict[UUID, Memory] = {}  # read so far
        self.superseded: dict[UUID, Supersession] = {}  # stale memories of the store (core.supersede)
        self.demoted: set[UUID] = set()  # superseded memories the search moved down
        self.terms: dict[UUID, dict[str, float]] = {}  # the query terms text matches hold (text and hybrid search)

    @property
    def candidates(self) -> Candidates:
        """Every memory of the store, best first (each built when asked for)."""
        return Candidates(self)

    def near_misses(self, n: int = 10) -> list[Candidate]:
        """The best memories not returned that the filters allow: the ones a different threshold,
        limit or mode could bring back."""
        misses = np.isin(self._status[self._order], [_CODE[s] for s in MISSES])
        picked = self._order[misses][:n]
        self.read([self._scan.id(int(i)) for i in picked])  # one query, not one a miss
        return [self._candidate(int(i)) for i in picked]

    def choices(self, n: int) -> list[Choice]:
        """The first `n` memories of the order with the start of their content, rank and status:
        a picker's labels, without reading the memories whole or wording their reasons."""
        picked = [int(i) for i in self._order[:n]]
        ids = [self._scan.id(i) for i in picked]
        texts = self._preview(ids)
        return [
            Choice(memory_id, *texts[memory_id], int(self._rank[i]) or None, STATUSES[self._status[i]])
            for i, memory_id in zip(picked, ids)
            if memory_id in texts  # absent: deleted since the search was explained
        ]

    def why_not(self, memory_id: UUID | str) -> Candidate:
        """That memory's place for this query; NotFound if the store has no such memory."""
        found = self._index.get(validation.uuid(memory_id, "memory id").bytes)
        if found is None:
            raise NotFound(f"memory {memory_id} is not in this store")
        return self._candidate(found)

    def counts(self) -> dict[str, int]:
        counted = np.bincount(self._status, minlength=len(STATUSES))
        return {s: int(counted[_CODE[s]]) for s in STATUSES if counted[_CODE[s]]}

    def read(self, memory_ids: Sequence[UUID]) -> None:
        """Read these memories now, if not yet (one query for all of them)."""
        missing = [i for i in memory_ids if i not in self.memories]
        if missing:
            self.memories.update({memory_id: memory for memory_id, (memory, _) in self._fetch(missing, False).items()})

    def _candidate(self, i: int) -> Candidate:
        memory_id = self._scan.id(i)
        self.read([memory_id])
        memory = self.memories.get(memory_id)
        if memory is None:
            raise NotFound(f"memory {memory_id} was deleted since the search was explained")
        similarity = float(self._scan.similarity[i])
        text_rank = float(self._scan.text_rank[i])
        vpos, tpos, rank = int(self._vpos[i]) or None, int(self._tpos[i]) or None, int(self._rank[i]) or None
        status = STATUSES[self._status[i]]
        params = self.params
        scored = self._scored.get(i)
        if rank is not None and scored is None:  # past the first `detail` of plain vector or text search
            text = params.mode == "text"
            hit = Hit(memory, similarity, text_rank if text else None, terms=self.terms.get(memory_id) if text else None)
            scored = Scored(hit, text_rank=text_rank, text_position=rank, score=text_rank) if text else Scored(hit, vector_rank=rank)
            scored.score = float(self._score[i])
        if status in (ARCHIVED, EXPIRED, FILTERED):
            status, reason = _exclusion(memory, bool(self._scan.expired[i]), params)
        elif status == SUPERSEDED:
            reason = f"a newer memory {_verb(self.superseded[memory_id])} it, and this search leaves superseded memories out"
        elif rank is None:
            status, reason = _unranked(similarity, vpos or 0, tpos, params)
        elif status == RETURNED:
            reason = f"returned {ordinal(rank)} of {min(params.limit, self._ranked_total)}, score {self._score[i]:.3f}"
        elif status == SET_ASIDE:
            reason = (
                f"diversification (MMR) moved it from {ordinal(self._before_mmr[memory_id])} to {ordinal(rank)}, "
                f"past the limit of {params.limit}, for resembling results above it"
            )
        elif memory_id in self.demoted:
            reason = (
                f"moved down to {ordinal(rank)} because a newer memory {_verb(self.superseded[memory_id])} it; the limit is {params.limit}"
            )
        else:
            reason = f"ranked {ordinal(rank)}; the limit is {params.limit}"
        return Candidate(
            memory=memory,
            similarity=similarity,
            text_rank=text_rank,
            text_match=bool(self._scan.text_match[i]),
            vector_position=vpos,
            text_position=tpos,
            rank=rank,
            score=float(self._score[i]) if rank is not None else None,
            breakdown=to_result(scored, params).breakdown if scored is not None else None,
            status=status,
            reason=reason,
        )


class Candidates(Sequence[Candidate]):
    """The memories of an explanation in its order, each built (and read) when asked for."""

    def __init__(self, explanation: Explanation):
        self._ex = explanation

    def __len__(self) -> int:
        return len(self._ex._order)

    @overload
    def __getitem__(self, i: int) -> Candidate: ...
    @overload
    def __getitem__(self, i: slice) -> list[Candidate]: ...
    def __getitem__(self, i: int | slice) -> Candidate | list[Candidate]:
        order = self._ex._order
        if isinstance(i, slice):
            picked = order[i]
            self._ex.read([self._ex._scan.id(k) for k in picked])
            return [self._ex._candidate(int(k)) for k in picked]
        return self._ex._candidate(int(order[range(len(order))[i]]))

    def __iter__(self) -> Iterator[Candidate]:
        step = 1_000
        for start in range(0, len(self), step):
            yield from self[start : start + step]


def _when(moment: datetime) -> str:
    """ "12 Mar 2026 at 14:05 UTC": a reason is read, not parsed."""
    utc = moment.astimezone(UTC)
    return f"{utc.day} {utc:%b %Y} at {utc:%H:%M} UTC"


def _verb(s: Supersession) -> str:
    return "updates" if s.relationship_type == "updates" else "contradicts"
