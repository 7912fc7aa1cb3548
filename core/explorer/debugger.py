"""The retrieval debugger's tables and charts (core.explain says why; these show it). Plain
data: the pages render every cell as text, and user text in charts is escaped first."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import pandas as pd
import plotly.graph_objects as go

from core.errors import NotFound
from core.evaluation import NDCG_DEPTH, CaseResult, ModeConfig, ModeReport, config_params
from core.explain import (
    ARCHIVED,
    BELOW_THRESHOLD,
    BEYOND_LIMIT,
    EXPIRED,
    FILTERED,
    NO_TEXT_MATCH,
    NOT_A_CANDIDATE,
    RETURNED,
    SET_ASIDE,
    STATUSES,
    Candidate,
    Explanation,
    ordinal,
)
from core.explorer.labels import plot_text
from core.models import SearchResult
from core.service import MemoryService

STATUS_COLOURS = {
    RETURNED: "#4f46e5",
    BEYOND_LIMIT: "#a5b4fc",
    SET_ASIDE: "#c084fc",
    BELOW_THRESHOLD: "#f59e0b",
    NOT_A_CANDIDATE: "#fcd34d",
    NO_TEXT_MATCH: "#d1d5db",
    FILTERED: "#6b7280",
    EXPIRED: "#ef4444",
    ARCHIVED: "#9ca3af",
}


def results_frame(results: Sequence[SearchResult]) -> pd.DataFrame:
    """One row per result with its score breakdown; terms the mode does not use stay empty."""
    return pd.DataFrame(
        {
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
        },
        columns=["rank", "score", "similarity", "text rank", "fused", "importance", "recency", "mmr", "content", "type", "id"],
    )


def candidates_frame(candidates: Sequence[Candidate]) -> pd.DataFrame:
    """Memories with their place for the query and the reason; rank reads "6th", or "–" when unranked."""
    return pd.DataFrame(
        {
            "rank": [ordinal(c.rank) if c.rank else "–" for c in candidates],
            "similarity": [c.similarity for c in candidates],
            "status": [c.status for c in candidates],
            "reason": [c.reason for c in candidates],
            "content": [c.memory.content for c in candidates],
            "type": [c.memory.memory_type for c in candidates],
            "id": [str(c.memory.id) for c in candidates],
        },
        columns=["rank", "similarity", "status", "reason", "content", "type", "id"],
    )


def compare_frames(a: Sequence[SearchResult], b: Sequence[SearchResult]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two result lists side by side, each row marked when the other list returned it too (and where)."""
    rank_a = {r.memory.id: i for i, r in enumerate(a, start=1)}
    rank_b = {r.memory.id: i for i, r in enumerate(b, start=1)}

    def frame(results: Sequence[SearchResult], other: dict[UUID, int]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "rank": range(1, len(results) + 1),
                "in both": ["✓" if r.memory.id in other else "" for r in results],
                "other rank": pd.array([other.get(r.memory.id) for r in results], dtype="Int64"),
                "similarity": [r.similarity for r in results],
                "score": [r.score for r in results],
                "content": [r.memory.content for r in results],
            },
            columns=["rank", "in both", "other rank", "similarity", "score", "content"],
        )

    return frame(a, rank_b), frame(b, rank_a)


def similarity_chart(explanation: Explanation, top: int = 30) -> go.Figure:
    """The best `top` memories in the mode's order, bars of their similarity coloured by status,
    with the threshold as a horizontal line and the limit as a vertical one: what the cut removed."""
    shown = explanation.candidates[:top]
    fig = go.Figure()
    for status in STATUSES:
        points = [(i, c) for i, c in enumerate(shown, start=1) if c.status == status]
        if points:
            fig.add_bar(
                x=[i for i, _ in points],
                y=[c.similarity for _, c in points],
                name=status,
                marker_color=STATUS_COLOURS[status],
                hovertext=[plot_text(c.memory.content) + "<br><i>" + plot_text(c.reason) + "</i>" for _, c in points],
                hovertemplate="%{hovertext}<br>similarity %{y:.3f}<extra>%{fullData.name}</extra>",
            )
    params = explanation.params
    fig.add_hline(
        y=params.min_similarity,
        line_dash="dash",
        line_color="#dc2626",
        annotation_text=f"threshold {params.min_similarity:.2f}",
        annotation_position="top right",
    )
    if params.limit < len(shown):  # ranked memories come first, so nothing right of this line is returned
        fig.add_vline(
            x=params.limit + 0.5,
            line_dash="dot",
            line_color="#4f46e5",
            annotation_text=f"limit {params.limit}",
            annotation_position="top right",
        )
    fig.update_layout(
        title=f"Top {len(shown)} memories for the query, in {params.mode} order",
        barmode="overlay",
        xaxis_title=f"position in {params.mode} order (unranked memories after, by similarity)",
        yaxis_title="cosine similarity to the query",
        legend_title="status",
    )
    return fig


# --- Evaluation drill-down: why a case failed -------------------------------------------------------


def metrics_frame(reports: Sequence[ModeReport]) -> pd.DataFrame:
    """Long form (configuration, metric, value) of evaluation reports, for grouped bar charts."""
    rows = [(r.name, metric, value) for r in reports for metric, value in r.metrics.items() if metric != "n"]
    return pd.DataFrame(rows, columns=["configuration", "metric", "value"])


def explain_case(
    svc: MemoryService, store_id: UUID | str, case_result: CaseResult, config: ModeConfig, depth: int = NDCG_DEPTH
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A case side by side: its expected memories (where each came, or why it did not) and what
    came back (with the score breakdown and which of them were expected)."""
    ex = svc.explain_search(store_id, case_result.case.query, config_params(config, depth))
    expected = set(case_result.case.expected_ids)
    rows: list[tuple[str, str, float | None, str, str, str]] = []
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
