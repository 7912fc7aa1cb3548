"""Explain a search: where every memory of the store stands for one query, and why.

The retrieval debugger must never disagree with search itself, so nothing here re-implements
the ranking: every memory is scored exactly (an exact scan, no index: core.sql.search.scan), the
candidate lists the service would see are rebuilt from that scan, and core.search.rank_candidates
orders them. The first `limit` of that order are what search returns; every other memory gets a
status and a one-sentence reason. Pure: MemoryService.explain_search does the scan.

Above SearchTuning.exact_max_rows the service walks the HNSW index, which is approximate: the
explanation then shows the exact answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from uuid import UUID

import numpy as np

from core import validation
from core.errors import NotFound
from core.models import Memory, MemoryStore, ScoreBreakdown, SearchResult
from core.search import Hit, Scanned, SearchParams, rank_candidates, to_result
from core.supersede import KEEP, Supersession, settle

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
    text_rank: float  # ts_rank_cd; 0 when the memory does not match the query's words
    text_match: bool
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
    superseded: dict[UUID, Supersession] = field(default_factory=dict)  # stale memories of the store (core.supersede)

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
    digits = next((d for d in range(shown, 8) if _differs(similarity, threshold, d)), 8)
    return f"similarity {similarity:.{digits}f} is below the threshold {threshold:.{shown}f}"


def _differs(similarity: float, threshold: float, digits: int) -> bool:
    """Whether the two read differently at this many decimals ("-0.00" and "0.00" do not)."""
    a, b = f"{similarity:.{digits}f}", f"{threshold:.{digits}f}"
    return a.removeprefix("-") != b.removeprefix("-") or (a.startswith("-") and a.strip("-0.") != "")


def _exclusion(row: Scanned, params: SearchParams) -> tuple[str, str]:
    memory = row.memory
    if memory.archived:
        return ARCHIVED, "it is archived, and archived memories are never returned"
    if row.expired:
        assert memory.expires_at is not None
        return (
            EXPIRED,
            f"it expired on {_when(memory.expires_at)}, and expired memories are never returned",
        )
    if params.filters.memory_types and memory.memory_type not in params.filters.memory_types:
        return FILTERED, "its type is not among the selected types"
    return FILTERED, "its source is not among the selected sources"


def _unranked(row: Scanned, vpos: int, tpos: int | None, params: SearchParams) -> tuple[str, str]:
    """Status and reason of an allowed memory that the mode never ranked."""
    thr, pool = params.min_similarity, params.pool
    if params.mode == "text":
        if tpos is None:
            return NO_TEXT_MATCH, NO_MATCH
        return NOT_A_CANDIDATE, f"only the {pool} best text matches are candidates for diversification, and it is {ordinal(tpos)}"
    if params.mode == "hybrid":
        text_side = (
            "it does not match the query's words" if tpos is None else f"its text match is {ordinal(tpos)}, not among the {pool} best"
        )
        if row.similarity < thr:
            return BELOW_THRESHOLD, f"{below(row.similarity, thr)}, and {text_side}"
        return NOT_A_CANDIDATE, f"it is the {ordinal(vpos)} nearest, not among the {pool} nearest, and {text_side}"
    if row.similarity < thr:
        return BELOW_THRESHOLD, below(row.similarity, thr)
    what = "weighted scoring" if params.mode == "weighted" else "diversification" if params.mmr_lambda is not None else "reordering"
    return (
        NOT_A_CANDIDATE,
        f"it passes the threshold but is the {ordinal(vpos)} nearest, and only the {pool} nearest are candidates for {what}",
    )


def explain(
    query: str,
    params: SearchParams,
    store: MemoryStore,
    vector: np.ndarray,
    rows: Sequence[Scanned],
    now: datetime | None = None,
    superseded: dict[UUID, Supersession] | None = None,
) -> Explanation:
    """The explanation of a search from a scan of every memory of its store (params checked);
    `superseded`: the store's stale memories, which the search's policy moves or leaves out."""
    superseded = superseded or {}
    allowed = [r for r in rows if r.allowed]
    by_distance = sorted(allowed, key=lambda r: (r.distance, r.memory.id))
    by_text = sorted((r for r in allowed if r.text_match), key=lambda r: (-r.text_rank, r.memory.id))
    vpos = {r.memory.id: i for i, r in enumerate(by_distance, start=1)}
    tpos = {r.memory.id: i for i, r in enumerate(by_text, start=1)}
    # Plain vector and text search only cut their single list at the limit, so every allowed
    # memory can be ranked; pools that are fused, re-weighted or diversified must stay the service's.
    bounded = params.mode in ("hybrid", "weighted") or params.mmr_lambda is not None or params.superseded != KEEP
    vector_rows = [] if params.mode == "text" else by_distance[: params.pool] if bounded else by_distance
    text_rows = (by_text[: params.pool] if bounded else by_text) if params.mode in ("text", "hybrid") else []
    vector_hits = [Hit(r.memory, r.similarity, embedding=r.embedding) for r in vector_rows]
    text_hits = [Hit(r.memory, r.similarity, r.text_rank, r.embedding) for r in text_rows]
    now = now or datetime.now(UTC)
    everything = replace(params, limit=max(len(rows), params.limit))
    ranked = rank_candidates(vector_hits, text_hits, everything, now)
    settled = settle(ranked, [c.id for c in ranked], superseded, params.superseded)
    left_out = {c.id for c in ranked} - {c.id for c in settled}
    demoted = {c.id for c in ranked if c.id in superseded} if params.superseded != KEEP else set()
    ranked = settled
    before_mmr: dict[UUID, int] = {}
    if params.mmr_lambda is not None:
        plain = rank_candidates(vector_hits, text_hits, replace(everything, mmr_lambda=None), now)
        before_mmr = {c.id: i for i, c in enumerate(plain, start=1)}

    placed = {c.id: (i, c) for i, c in enumerate(ranked, start=1)}
    candidates = []
    for row in rows:
        memory_id = row.memory.id
        rank, scored = placed.get(memory_id, (None, None))
        if not row.allowed:
            status, reason = _exclusion(row, params)
        elif memory_id in left_out:
            status, reason = SUPERSEDED, f"a newer memory {_verb(superseded[memory_id])} it, and this search leaves superseded memories out"
        elif rank is None or scored is None:
            status, reason = _unranked(row, vpos[memory_id], tpos.get(memory_id), params)
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
        elif memory_id in demoted:
            newer = _verb(superseded[memory_id])
            status, reason = BEYOND_LIMIT, f"moved down to {ordinal(rank)} because a newer memory {newer} it; the limit is {params.limit}"
        else:
            status, reason = BEYOND_LIMIT, f"ranked {ordinal(rank)}; the limit is {params.limit}"
        candidates.append(
            Candidate(
                memory=row.memory,
                similarity=row.similarity,
                text_rank=row.text_rank,
                text_match=row.text_match,
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
    return Explanation(query, params, store, vector, results, candidates, {c.memory.id: c for c in candidates}, superseded)


def _when(moment: datetime) -> str:
    """ "12 Mar 2026 at 14:05 UTC": a reason is read, not parsed."""
    utc = moment.astimezone(UTC)
    return f"{utc.day} {utc:%b %Y} at {utc:%H:%M} UTC"


def _verb(s: Supersession) -> str:
    return "updates" if s.relationship_type == "updates" else "contradicts"
