"""Explain a search: where every memory of the store stands for one query, and why.

The retrieval debugger must never disagree with search itself, so nothing here re-implements
the ranking: every memory is scored exactly (an exact scan, no index), the candidate lists the
service would see are rebuilt from that scan, and core.search.rank_candidates orders them. The
first `limit` of that order are what search_memories returns; every other memory gets a status
and a one-sentence reason. Read only: access statistics never change.

Fine up to tens of thousands of memories per store. Above core.search.EXACT_SEARCH_MAX_ROWS the
service walks the HNSW index, which is approximate: the explanation then shows the exact answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from uuid import UUID

import numpy as np
import pandas as pd
from sqlalchemy import Row, text

from core import validation
from core.errors import NotFound
from core.labels import plot_text
from core.memories import MEMORY_COLUMNS, memory_from_row
from core.models import Memory, MemoryStore, ScoreBreakdown, SearchResult
from core.evaluation import NDCG_DEPTH, CaseResult, ModeConfig, ModeReport
from core.ranking import Weights
from core.search import TSQUERY, Filters, distance_sql, SearchParams, rank_candidates, to_result
from core.service import MemoryService
from core.stores import fetch_store

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
STATUS_COLOURS = {
    RETURNED: "#4f46e5", BEYOND_LIMIT: "#a5b4fc", SET_ASIDE: "#c084fc", BELOW_THRESHOLD: "#f59e0b",
    NOT_A_CANDIDATE: "#fcd34d", NO_TEXT_MATCH: "#d1d5db", FILTERED: "#6b7280", EXPIRED: "#ef4444", ARCHIVED: "#9ca3af",
}


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
        out = {s: 0 for s in STATUSES}
        for c in self.candidates:
            out[c.status] += 1
        return {s: n for s, n in out.items() if n}


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _scan(svc: MemoryService, store_id: UUID, query: str, vector: np.ndarray, params: SearchParams) -> tuple[MemoryStore, list[Row]]:
    """Every memory of the store with the service's own expressions: similarity, text rank, and
    whether the search's filters (expiry, archive, type, source) let it through."""
    with svc.transaction() as conn:
        store = fetch_store(conn, store_id)
        distance = distance_sql(store)
        condition, values = params.filters.sql()
        vectors = ", embedding" if params.mmr_lambda is not None else ""
        sql = (
            f"SELECT {MEMORY_COLUMNS}{vectors}, {distance} AS distance, 1 - {distance} AS similarity,"
            f" coalesce(content_tsv @@ tsq, false) AS text_match,"
            f" CASE WHEN content_tsv @@ tsq THEN ts_rank_cd(content_tsv, tsq) ELSE 0 END AS text_rank,"
            f" (expires_at IS NOT NULL AND expires_at <= now()) AS expired, (TRUE{condition}) AS allowed"
            f" FROM memories, {TSQUERY} AS tsq WHERE store_id = :s AND embedding_dim = {int(store.embedding_dim)}"
        )
        values.update(q=vector, s=store.id, query=query)
        return store, conn.execute(text(sql), values).all()


@lru_cache(maxsize=64)
def _decimals(threshold: float) -> int:
    return next((d for d in (2, 3, 4, 5) if round(threshold, d) == threshold), 6)


def _below(similarity: float, threshold: float) -> str:
    """"similarity 0.596 is below the threshold 0.60": as many decimals as it takes to see the gap."""
    shown = _decimals(threshold)
    digits = next((d for d in range(shown, 8) if f"{similarity:.{d}f}" != f"{threshold:.{d}f}"), 8)
    return f"similarity {similarity:.{digits}f} is below the threshold {threshold:.{shown}f}"


NO_MATCH = "it does not match the query's words (text search matches words, not meaning)"


def _exclusion(row: Row, params: SearchParams) -> tuple[str, str]:
    if row.archived:
        return ARCHIVED, "it is archived, and archived memories are never returned"
    if row.expired:
        return EXPIRED, f"it expired on {row.expires_at.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC, and expired memories are never returned"
    if params.filters.memory_types and row.memory_type not in params.filters.memory_types:
        return FILTERED, "its type is not among the selected types"
    return FILTERED, "its source is not among the selected sources"


def _unranked(row: Row, vpos: int, tpos: int | None, params: SearchParams) -> tuple[str, str]:
    """Status and reason of an allowed memory that the mode never ranked."""
    thr, pool = params.min_similarity, params.pool
    if params.mode == "text":
        if tpos is None:
            return NO_TEXT_MATCH, NO_MATCH
        return NOT_A_CANDIDATE, f"only the {pool} best text matches are candidates for diversification, and it is {ordinal(tpos)}"
    if params.mode == "hybrid":
        if tpos is None:
            text_side = "it does not match the query's words"
        else:
            text_side = f"its text match is {ordinal(tpos)}, not among the {pool} best"
        if row.similarity < thr:
            return BELOW_THRESHOLD, f"{_below(row.similarity, thr)}, and {text_side}"
        return NOT_A_CANDIDATE, f"it is the {ordinal(vpos)} nearest, not among the {pool} nearest, and {text_side}"
    if row.similarity < thr:
        return BELOW_THRESHOLD, _below(row.similarity, thr)
    what = "diversification" if params.mode == "vector" else "weighted scoring"
    return NOT_A_CANDIDATE, f"it passes the threshold but is the {ordinal(vpos)} nearest, and only the {pool} nearest are candidates for {what}"


def explain_search(
    svc: MemoryService,
    store_id: UUID | str,
    query: str,
    params: SearchParams,
    *,
    query_embedding: Sequence[float] | np.ndarray | None = None,
    now: datetime | None = None,
) -> Explanation:
    """Why search_memories(store_id, query, ...) returns what it does, for every memory of the
    store. The query is embedded once (or `query_embedding` is used as is): pass
    `explanation.vector` to search_memories so both see the same vector."""
    query = validation.query(query)
    params = params.checked()
    store = svc.get_store(store_id)
    vector = svc.embed_query(store, query) if query_embedding is None else query_embedding
    vector = validation.embedding(vector, store.embedding_dim)
    store, rows = _scan(svc, store.id, query, vector, params)

    allowed = [r for r in rows if r.allowed]
    by_distance = sorted(allowed, key=lambda r: (r.distance, r.id))
    by_text = sorted((r for r in allowed if r.text_match), key=lambda r: (-r.text_rank, r.id))
    vpos = {r.id: i for i, r in enumerate(by_distance, start=1)}
    tpos = {r.id: i for i, r in enumerate(by_text, start=1)}
    # Plain vector and text search only cut their single list at the limit, so every allowed
    # memory can be ranked; pools that are fused, re-weighted or diversified must stay the service's.
    bounded = params.mode in ("hybrid", "weighted") or params.mmr_lambda is not None
    vector_rows = [] if params.mode == "text" else by_distance[: params.pool] if bounded else by_distance
    text_rows = (by_text[: params.pool] if bounded else by_text) if params.mode in ("text", "hybrid") else []
    now = now or datetime.now(timezone.utc)
    everything = replace(params, limit=max(len(rows), params.limit))
    ranked = rank_candidates(vector_rows, text_rows, everything, now)
    before_mmr: dict[UUID, int] = {}
    if params.mmr_lambda is not None:
        plain = rank_candidates(vector_rows, text_rows, replace(everything, mmr_lambda=None), now)
        before_mmr = {c.row.id: i for i, c in enumerate(plain, start=1)}

    placed = {c.row.id: (i, c) for i, c in enumerate(ranked, start=1)}
    candidates = []
    for row in rows:
        rank, scored = placed.get(row.id, (None, None))
        if not row.allowed:
            status, reason = _exclusion(row, params)
        elif rank is None:
            status, reason = _unranked(row, vpos[row.id], tpos.get(row.id), params)
        elif rank <= params.limit:
            status, reason = RETURNED, f"returned {ordinal(rank)} of {min(params.limit, len(ranked))}, score {scored.score:.3f}"
        elif before_mmr.get(row.id, rank) <= params.limit:
            status, reason = SET_ASIDE, (f"diversification (MMR) moved it from {ordinal(before_mmr[row.id])} to {ordinal(rank)}, "
                                         f"past the limit of {params.limit}, for resembling results above it")
        else:
            status, reason = BEYOND_LIMIT, f"ranked {ordinal(rank)}; the limit is {params.limit}"
        candidates.append(Candidate(
            memory=memory_from_row(row), similarity=float(row.similarity), text_rank=float(row.text_rank),
            text_match=bool(row.text_match), vector_position=vpos.get(row.id), text_position=tpos.get(row.id),
            rank=rank, score=scored.score if scored else None,
            breakdown=to_result(scored, params).breakdown if scored else None, status=status, reason=reason,
        ))
    candidates.sort(key=lambda c: (c.rank is None, c.rank or 0, -c.similarity, c.memory.id))
    results = [to_result(c, params) for c in ranked[: params.limit]]
    return Explanation(query, params, store, vector, results, candidates, {c.memory.id: c for c in candidates})


# --- Tables and charts for the explorer (plain data: the page renders them as text) ---------------


def results_frame(results: Sequence[SearchResult]) -> pd.DataFrame:
    """One row per result with its score breakdown; terms the mode does not use stay empty."""
    return pd.DataFrame({
        "rank": range(1, len(results) + 1),
        "score": [r.score for r in results],
        "similarity": [r.similarity for r in results],
        "text rank": [r.breakdown.text_rank for r in results],
        "fused": [r.breakdown.fused for r in results],
        "importance": [r.breakdown.importance for r in results],
        "recency": [r.breakdown.recency for r in results],
        "mmr": [r.breakdown.mmr for r in results],
        "content": [r.memory.content for r in results],
        "type": [r.memory.memory_type for r in results],
        "id": [str(r.memory.id) for r in results],
    }, columns=["rank", "score", "similarity", "text rank", "fused", "importance", "recency", "mmr", "content", "type", "id"])


def candidates_frame(candidates: Sequence[Candidate]) -> pd.DataFrame:
    """Memories with their place for the query and the reason; rank reads "6th", or "–" when unranked."""
    return pd.DataFrame({
        "rank": [ordinal(c.rank) if c.rank else "–" for c in candidates],
        "similarity": [c.similarity for c in candidates],
        "status": [c.status for c in candidates],
        "reason": [c.reason for c in candidates],
        "content": [c.memory.content for c in candidates],
        "type": [c.memory.memory_type for c in candidates],
        "id": [str(c.memory.id) for c in candidates],
    }, columns=["rank", "similarity", "status", "reason", "content", "type", "id"])


def compare_frames(a: Sequence[SearchResult], b: Sequence[SearchResult]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two result lists side by side, each row marked when the other list returned it too (and where)."""
    rank_a = {r.memory.id: i for i, r in enumerate(a, start=1)}
    rank_b = {r.memory.id: i for i, r in enumerate(b, start=1)}

    def frame(results: Sequence[SearchResult], other: dict[UUID, int]) -> pd.DataFrame:
        return pd.DataFrame({
            "rank": range(1, len(results) + 1),
            "in both": ["✓" if r.memory.id in other else "" for r in results],
            "other rank": pd.array([other.get(r.memory.id) for r in results], dtype="Int64"),
            "similarity": [r.similarity for r in results],
            "score": [r.score for r in results],
            "content": [r.memory.content for r in results],
        }, columns=["rank", "in both", "other rank", "similarity", "score", "content"])

    return frame(a, rank_b), frame(b, rank_a)


def similarity_chart(explanation: Explanation, top: int = 30):
    """The best `top` memories in the mode's order, bars of their similarity coloured by status,
    with the threshold as a horizontal line and the limit as a vertical one: what the cut removed."""
    import plotly.graph_objects as go


    shown = explanation.candidates[:top]
    fig = go.Figure()
    for status in STATUSES:
        points = [(i, c) for i, c in enumerate(shown, start=1) if c.status == status]
        if points:
            fig.add_bar(
                x=[i for i, _ in points], y=[c.similarity for _, c in points], name=status, marker_color=STATUS_COLOURS[status],
                hovertext=[plot_text(c.memory.content) + "<br><i>" + plot_text(c.reason) + "</i>" for _, c in points],
                hovertemplate="%{hovertext}<br>similarity %{y:.3f}<extra>%{fullData.name}</extra>",
            )
    params = explanation.params
    fig.add_hline(y=params.min_similarity, line_dash="dash", line_color="#dc2626",
                  annotation_text=f"threshold {params.min_similarity:.2f}", annotation_position="top right")
    if params.limit < len(shown):  # ranked memories come first, so nothing right of this line is returned
        fig.add_vline(x=params.limit + 0.5, line_dash="dot", line_color="#4f46e5",
                      annotation_text=f"limit {params.limit}", annotation_position="top right")
    fig.update_layout(title=f"Top {len(shown)} memories for the query, in {params.mode} order", barmode="overlay",
                      xaxis_title=f"position in {params.mode} order (unranked memories after, by similarity)",
                      yaxis_title="cosine similarity to the query", legend_title="status")
    return fig


# --- Evaluation drill-down: why a case failed -------------------------------------------------------


def metrics_frame(reports: Sequence[ModeReport]) -> pd.DataFrame:
    """Long form (configuration, metric, value) of evaluation reports, for grouped bar charts."""
    rows = [(r.name, metric, value) for r in reports for metric, value in r.metrics.items() if metric != "n"]
    return pd.DataFrame(rows, columns=["configuration", "metric", "value"])


def failed_cases(report: ModeReport, k: int = NDCG_DEPTH) -> list[CaseResult]:
    """Cases of a report that missed at least one expected memory in the top k, worst first."""
    failed = [c for c in report.cases if c.metrics.get(f"recall@{k}", 0.0) < 1.0]
    return sorted(failed, key=lambda c: (c.metrics.get(f"ndcg@{NDCG_DEPTH}", 0.0), c.metrics.get("mrr", 0.0)))


def config_params(config: ModeConfig, depth: int = NDCG_DEPTH) -> SearchParams:
    """The search an evaluation configuration ran (core.evaluation.evaluate builds the same)."""
    return SearchParams(limit=depth, min_similarity=config.min_similarity, mode=config.mode, filters=Filters(),
                        weights=config.weights or Weights(), mmr_lambda=config.mmr_lambda)


def explain_case(
    svc: MemoryService, store_id: UUID | str, case_result: CaseResult, config: ModeConfig, depth: int = NDCG_DEPTH
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A case side by side: its expected memories (where each came, or why it did not) and what
    came back (with the score breakdown and which of them were expected)."""
    ex = explain_search(svc, store_id, case_result.case.query, config_params(config, depth))
    expected = set(case_result.case.expected_ids)
    rows = []
    for memory_id in case_result.case.expected_ids:
        try:
            c = ex.why_not(memory_id)
            rows.append((ordinal(c.rank) if c.rank else "–", c.status, c.similarity, c.reason, c.memory.content, str(memory_id)))
        except NotFound:
            rows.append(("–", "missing", None, "this memory is no longer in the store", "", str(memory_id)))
    wanted = pd.DataFrame(rows, columns=["rank", "status", "similarity", "reason", "content", "id"])
    returned = results_frame(case_result.returned)
    returned.insert(1, "expected", ["✓" if r.memory.id in expected else "" for r in case_result.returned])
    return wanted, returned
