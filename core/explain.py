"""Explain a search: where every memory of the store stands for one query, and why.

The retrieval debugger must never disagree with search itself, so nothing here re-implements
the ranking: every memory is scored exactly (an exact scan, no index: core.sql.search.scan, and for
text and hybrid search core.sql.hybrid.scan_extra), the candidate lists the service would see are
rebuilt from that scan, and core.search.rank_candidates (core.hybrid.rank for hybrid) orders them. The first `limit` of that order are what search returns; every other memory gets a
status and a one-sentence reason. Pure: MemoryService.explain_search does the scan.

Above SearchTuning.exact_max_rows the service walks the HNSW index, which is approximate: the
explanation then shows the exact answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

import numpy as np

from core import hybrid, validation
from core.bm25 import Terms
from core.dates import dates_in
from core.errors import NotFound
from core.models import Memory, MemoryStore, ScoreBreakdown, SearchResult
from core.search import Candidate as Ranked
from core.search import Hit, Scanned, SearchParams, rank_candidates, to_result

RETURNED = "returned"
BELOW_THRESHOLD = "below threshold"
BEYOND_LIMIT = "beyond limit"
SET_ASIDE = "set aside by MMR"
NOT_A_CANDIDATE = "not a candidate"
NO_TEXT_MATCH = "no text match"
EXPIRED = "expired"
ARCHIVED = "archived"
FILTERED = "filtered out"
STATUSES = (RETURNED, BEYOND_LIMIT, SET_ASIDE, BELOW_THRESHOLD, NOT_A_CANDIDATE, NO_TEXT_MATCH, FILTERED, EXPIRED, ARCHIVED)
# What a search could return if the user changed the threshold, limit, mode or MMR (not the filters).
MISSES = (BEYOND_LIMIT, SET_ASIDE, BELOW_THRESHOLD, NOT_A_CANDIDATE, NO_TEXT_MATCH)
NO_MATCH = "it does not match the query's words (text search matches words, not meaning)"


@dataclass(frozen=True)
class Candidate:
    """One memory of the store for one query: its raw signals, where the mode put it, and why."""

    memory: Memory
    similarity: float
    text_rank: float  # BM25; 0 when the memory holds no query term
    text_match: bool  # it holds a query term that drives the text side's lookup
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
class Explanation:
    """One search, explained: its results, and every memory of the store with its reason."""

    query: str
    params: SearchParams
    store: MemoryStore
    vector: np.ndarray  # the query's embedding: pass it to search_memories(query_embedding=...)
    results: list[SearchResult]  # exactly what search_memories returns, in order
    candidates: list[Candidate]  # every memory of the store, best first
    _by_id: dict[UUID, Candidate] = field(default_factory=dict, repr=False)

    def near_misses(self, n: int = 10) -> list[Candidate]:
        """The best memories not returned that the filters allow: the ones a different threshold,
        limit or mode could bring back."""
        return [c for c in self.candidates if c.status in MISSES][:n]

    def why_not(self, memory_id: UUID | str) -> Candidate:
        """That memory's place for this query; NotFound if the store has no such memory."""
        found = self._by_id.get(validation.uuid(memory_id, "memory id"))
        if found is None:
            raise NotFound(f"memory {memory_id} is not in this store")
        return found

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for c in self.candidates:
            out[c.status] += 1
        return {s: n for s, n in out.items() if n}


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@lru_cache(maxsize=64)
def _decimals(threshold: float) -> int:
    return next((d for d in (2, 3, 4, 5) if round(threshold, d) == threshold), 6)


def below(similarity: float, threshold: float) -> str:
    """ "similarity 0.596 is below the threshold 0.60": as many decimals as it takes to see the gap."""
    shown = _decimals(threshold)
    digits = next((d for d in range(shown, 8) if f"{similarity:.{d}f}" != f"{threshold:.{d}f}"), 8)
    return f"similarity {similarity:.{digits}f} is below the threshold {threshold:.{shown}f}"


def _exclusion(row: Scanned, params: SearchParams) -> tuple[str, str]:
    memory = row.memory
    if memory.archived:
        return ARCHIVED, "it is archived, and archived memories are never returned"
    if row.expired:
        assert memory.expires_at is not None
        return (
            EXPIRED,
            f"it expired on {memory.expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC, and expired memories are never returned",
        )
    if params.filters.memory_types and memory.memory_type not in params.filters.memory_types:
        return FILTERED, "its type is not among the selected types"
    return FILTERED, "its source is not among the selected sources"


def _unranked(row: Scanned, vpos: int, tpos: int | None, params: SearchParams, match: Match | None = None) -> tuple[str, str]:
    """Status and reason of an allowed memory that the mode never ranked."""
    thr, pool = params.min_similarity, params.pool
    if params.mode == "text":
        if tpos is None:
            return NO_TEXT_MATCH, (match.why_no_match() if match else NO_MATCH)
        return NOT_A_CANDIDATE, f"only the {pool} best text matches are candidates for diversification, and it is {ordinal(tpos)}"
    if params.mode == "hybrid":
        text_side = (
            (match.why_no_match() if match else "it does not match the query's words")
            if tpos is None
            else f"its BM25 is the {ordinal(tpos)} best, not among the {pool} best"
        )
        window = params.fusion.neighbour_window if params.fusion.conversational else 0
        beside = f", nor within {window} turns of a candidate in its conversation" if window else ""
        if row.similarity < thr:
            return BELOW_THRESHOLD, f"{below(row.similarity, thr)}, and {text_side}{beside}"
        return NOT_A_CANDIDATE, f"its vector score is not among the {pool} best of the {params.vector_fetch} nearest, and {text_side}{beside}"
    if row.similarity < thr:
        return BELOW_THRESHOLD, below(row.similarity, thr)
    what = "diversification" if params.mode == "vector" else "weighted scoring"
    return (
        NOT_A_CANDIDATE,
        f"it passes the threshold but is the {ordinal(vpos)} nearest, and only the {pool} nearest are candidates for {what}",
    )


@dataclass(frozen=True)
class Match:
    """How a memory meets the query's terms (text and hybrid modes)."""

    terms: dict[str, float]
    found: Terms

    @property
    def drives(self) -> bool:
        return any(t in self.terms for t in self.found.drivers)

    def why_no_match(self) -> str:
        if self.terms:
            common = ", ".join(sorted(self.terms))
            return f"it holds only query terms too common in this store to look up ({common}; SearchTuning.text_budget)"
        return NO_MATCH


def _signals(rows: Sequence[Scanned], extra: Mapping[UUID, Any]) -> dict[UUID, hybrid.Signals]:
    return {
        r.memory.id: hybrid.Signals(
            r.memory,
            r.similarity,
            extra[r.memory.id].context_similarity,
            extra[r.memory.id].bm25,
            extra[r.memory.id].terms,
            extra[r.memory.id].session_prev,
            r.allowed,
            r.embedding,
        )
        for r in rows
    }


def _hybrid_order(
    query: str, params: SearchParams, rows: Sequence[Scanned], by_distance: Sequence[Scanned], extra: Mapping[UUID, Any], found: Terms
) -> list[Ranked]:
    """What hybrid search ranks, rebuilt from the scan: the same pool core.service.search gathers."""
    signals = _signals(rows, extra)
    nearest = [signals[r.memory.id] for r in by_distance[: params.vector_fetch]]
    drivers = set(found.drivers)
    matching = [s for s in signals.values() if s.allowed and drivers.intersection(s.terms)]
    pool = hybrid.Pool(hybrid.vector_side(nearest, params), [s.id for s in hybrid.text_order(matching)[: params.pool]], signals)
    if params.fusion.conversational:
        pool.around = hybrid.around_all(signals, pool.candidates, params.fusion.neighbour_window)
    return hybrid.rank(pool, replace(params, limit=max(len(rows), params.limit)), dates_in(query))


def explain(
    query: str,
    params: SearchParams,
    store: MemoryStore,
    vector: np.ndarray,
    rows: Sequence[Scanned],
    now: datetime | None = None,
    extra: Mapping[UUID, Any] | None = None,
    found: Terms | None = None,
) -> Explanation:
    """The explanation of a search from a scan of every memory of its store (params checked).
    Text and hybrid searches also need `extra` (core.sql.hybrid.scan_extra: BM25, context cosine,
    session links of every memory) and `found` (the query's terms in the store)."""
    matches: dict[UUID, Match] = {}
    if params.mode in ("text", "hybrid"):
        assert extra is not None and found is not None, "text and hybrid explanations need the scan's BM25 and the query's terms"
        matches = {r.memory.id: Match(extra[r.memory.id].terms, found) for r in rows}
    allowed = [r for r in rows if r.allowed]
    by_distance = sorted(allowed, key=lambda r: (r.distance, r.memory.id))
    if matches:
        assert extra is not None
        text_rank = {i: float(extra[i].bm25) for i in matches}
        text_match = {i: m.drives for i, m in matches.items()}
        by_text = [
            r
            for r in sorted(allowed, key=lambda r: (text_rank[r.memory.id], r.memory.created_at, r.memory.id), reverse=True)
            if text_match[r.memory.id]
        ]
    else:
        text_rank = {r.memory.id: r.text_rank for r in rows}
        text_match = {r.memory.id: r.text_match for r in rows}
        by_text = sorted((r for r in allowed if r.text_match), key=lambda r: (-r.text_rank, r.memory.id))
    vpos = {r.memory.id: i for i, r in enumerate(by_distance, start=1)}
    tpos = {r.memory.id: i for i, r in enumerate(by_text, start=1)}
    now = now or datetime.now(UTC)
    everything = replace(params, limit=max(len(rows), params.limit))
    before_mmr: dict[UUID, int] = {}
    if params.mode == "hybrid":
        assert extra is not None and found is not None
        ranked = _hybrid_order(query, params, rows, by_distance, extra, found)
        if params.mmr_lambda is not None:
            plain = _hybrid_order(query, replace(params, mmr_lambda=None), rows, by_distance, extra, found)
            before_mmr = {c.id: i for i, c in enumerate(plain, start=1)}
    else:
        # Plain vector and text search only cut their single list at the limit, so every allowed
        # memory can be ranked; pools that are re-weighted or diversified must stay the service's.
        bounded = params.mode == "weighted" or params.mmr_lambda is not None
        vector_rows = [] if params.mode == "text" else by_distance[: params.pool] if bounded else by_distance
        text_rows = (by_text[: params.pool] if bounded else by_text) if params.mode == "text" else []
        vector_hits = [Hit(r.memory, r.similarity, embedding=r.embedding) for r in vector_rows]
        text_hits = [
            Hit(r.memory, r.similarity, text_rank[r.memory.id], r.embedding, dict(extra[r.memory.id].terms) if extra else None)
            for r in text_rows
        ]
        ranked = rank_candidates(vector_hits, text_hits, everything, now)
        if params.mmr_lambda is not None:
            plain_order = rank_candidates(vector_hits, text_hits, replace(everything, mmr_lambda=None), now)
            before_mmr = {c.id: i for i, c in enumerate(plain_order, start=1)}

    placed = {c.id: (i, c) for i, c in enumerate(ranked, start=1)}
    candidates = []
    for row in rows:
        memory_id = row.memory.id
        rank, scored = placed.get(memory_id, (None, None))
        if not row.allowed:
            status, reason = _exclusion(row, params)
        elif rank is None or scored is None:
            status, reason = _unranked(row, vpos[memory_id], tpos.get(memory_id), params, matches.get(memory_id))
        elif rank <= params.limit:
            status, reason = RETURNED, f"returned {ordinal(rank)} of {min(params.limit, len(ranked))}, score {scored.score:.3f}"
        elif before_mmr.get(memory_id, rank) <= params.limit:
            status, reason = (
                SET_ASIDE,
                (
                    f"diversification (MMR) moved it from {ordinal(before_mmr[memory_id])} to {ordinal(rank)}, "
                    f"past the limit of {params.limit}, for resembling results above it"
                ),
            )
        else:
            status, reason = BEYOND_LIMIT, f"ranked {ordinal(rank)}; the limit is {params.limit}"
        candidates.append(
            Candidate(
                memory=row.memory,
                similarity=row.similarity,
                text_rank=text_rank[memory_id],
                text_match=text_match[memory_id],
                vector_position=vpos.get(memory_id),
                text_position=tpos.get(memory_id),
                rank=rank,
                score=scored.score if scored else None,
                breakdown=to_result(scored, params).breakdown if scored else None,
                status=status,
                reason=reason,
            )
        )
    candidates.sort(key=lambda c: (c.rank is None, c.rank or 0, -c.similarity, c.memory.id))
    results = [to_result(c, params) for c in ranked[: params.limit]]
    return Explanation(query, params, store, vector, results, candidates, {c.memory.id: c for c in candidates})
