"""The retrieval debugger's tables and charts (core.explain says why; these show it). Plain
data: the pages render every cell as text, and user text in charts is escaped first."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from urllib.parse import quote
from uuid import UUID

import pandas as pd
import plotly.graph_objects as go

from core.errors import NotFound
from core.evaluation import NDCG_DEPTH, CaseResult, EvalRun, ModeConfig, ModeReport, config_params
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
    SUPERSEDED,
    Candidate,
    Explanation,
    ordinal,
)
from core.explorer.labels import plot_text
from core.models import ScoreBreakdown, SearchResult
from core.search import SearchParams
from core.service import MemoryService
from core.supersede import Supersession

STALE_OUTLINE = "#be123c"  # the outline of a superseded memory's bar
STATUS_COLOURS = {
    RETURNED: "#4f46e5",
    BEYOND_LIMIT: "#a5b4fc",
    SET_ASIDE: "#c084fc",
    SUPERSEDED: "#fb7185",
    BELOW_THRESHOLD: "#f59e0b",
    NOT_A_CANDIDATE: "#fcd34d",
    NO_TEXT_MATCH: "#d1d5db",
    FILTERED: "#6b7280",
    EXPIRED: "#ef4444",
    ARCHIVED: "#9ca3af",
}


# The score each mode ranks by: its name in tables and charts, and what it means.
SCORES = {
    "vector": (
        "similarity",
        "Cosine similarity of the memory's embedding to the query's: 1 means the same meaning, 0 unrelated. Vector search ranks by it.",
    ),
    "text": (
        "text rank",
        "BM25 of the memory's words against the query's (stop words dropped, words stemmed): each query word it holds "
        "adds more the rarer that word is in the store, with diminishing returns for repeats. Text search ranks by it; "
        "any word of the query may match.",
    ),
    "hybrid": (
        "fused score",
        "What hybrid search ranks by: 0.6 x the similarity and 0.4 x the BM25, each standardised over the candidates "
        "(0 is average); plus a lift toward a strong neighbouring turn of the same conversation, a bonus for the session "
        "of the best candidates, and a boost for memories created on a date the query names (the breakdown shows each).",
    ),
    "weighted": (
        "weighted score",
        "What weighted search ranks by: a weighted mean of similarity, importance and recency (recency halves every "
        "half-life since the memory was last used), with the weights under Mode settings.",
    ),
}
MMR_HELP = (
    "With diversification on, results are picked one at a time for their score minus their resemblance to the results "
    "already picked (maximal marginal relevance): this value decided the order."
)
COMPONENTS = {  # what each mode shows beside its score, for reference
    "vector": (),
    "text": ("similarity",),
    "hybrid": ("similarity", "parts"),  # the BM25 is the sum of the terms in "parts"
    "weighted": ("similarity", "importance", "recency"),
}
TEXT_COMPONENTS = ("parts",)  # shown as text, the others as numbers
COMPONENT_HELP = {
    "similarity": SCORES["vector"][1].replace("Vector search ranks by it.", "").strip(),
    "text rank": "The memory's BM25 for the query's words (0 when it holds none of them).",
    "parts": "What made the fused score: the query's words (as stems) the memory holds with their BM25 shares; the lift "
    "from a strong neighbouring turn (a candidate up to 2 turns away in the same conversation); the bonus for its "
    "session; the boost for a date the query names; and which side found it (vector, text, both, or a neighbour).",
    "importance": "The memory's importance (0 to 1), set when it was stored or curated.",
    "recency": "1 when the memory was just used, halving every half-life since its last access (or creation).",
}


def score_name(params: SearchParams) -> str:
    return SCORES[params.mode][0]


def score_sentence(params: SearchParams) -> str:
    """What the mode's score is, in a sentence for a caption (the weights included)."""
    name, meaning = SCORES[params.mode]
    if params.mode == "weighted":
        w = params.weights
        total = w.relevance + w.importance + w.recency
        meaning = (
            f"What weighted search ranks by: ({w.relevance:g} × similarity + {w.importance:g} × importance + "
            f"{w.recency:g} × recency) / {total:g}, recency halving every {w.half_life_hours:g} hours since the memory was last used."
        )
    extra = " " + MMR_HELP if params.mmr_lambda is not None else ""
    return f"{name[0].upper()}{name[1:]}: {meaning}{extra}"


def _component(breakdown: ScoreBreakdown | None, similarity: float | None, name: str) -> float | str | None:
    if name == "similarity":
        return similarity
    if breakdown is None:
        return None
    if name == "parts":
        return hybrid_parts(breakdown)
    return {"text rank": breakdown.text_rank, "importance": breakdown.importance, "recency": breakdown.recency}[name]


def hybrid_parts(b: ScoreBreakdown) -> str:
    """A hybrid score's parts in a few words: 'terms potteri 0.98, class 0.98 · lift +0.31 · found by neighbour'."""
    shares = sorted((b.terms or {}).items(), key=lambda t: (-t[1], t[0]))
    parts = [f"terms {', '.join(f'{term} {share:.2f}' for term, share in shares)}"] if shares else []
    parts += [f"lift +{b.lift:.2f}"] if b.lift else []
    parts += [f"session +{b.session_bonus:.2f}"] if b.session_bonus else []
    parts += [f"date +{b.date_boost:.2f} ({b.date})"] if b.date_boost else []
    parts += [f"found by {b.origin}"] if b.origin else []
    return " · ".join(parts)


def superseded_cells(ids: Sequence[UUID], superseded: Mapping[UUID, Supersession], link: Callable[[UUID], str] | None) -> list:
    """For a table: a link to the newer memory of each superseded one, with what the table shows
    after '#' ("updated ↗"); None for the others (or the text alone without `link`)."""
    if link is None:
        return [f"{superseded[i].verb} by a newer memory" if i in superseded else None for i in ids]
    return [f"{link(superseded[i].newer_id)}#{quote(superseded[i].verb)}%20%E2%86%97" if i in superseded else None for i in ids]


def results_frame(
    results: Sequence[SearchResult],
    params: SearchParams,
    superseded: Mapping[UUID, Supersession] | None = None,
    link: Callable[[UUID], str] | None = None,
) -> pd.DataFrame:
    """One row per result: rank, content, the score the mode ranked by (named for the mode), the
    terms it combines, the diversified value when MMR decided the order, the type, and for a
    memory a newer one updates or contradicts, a link to the newer one."""
    superseded = superseded or {}
    score = score_name(params)
    data: dict[str, list] = {
        "rank": list(range(1, len(results) + 1)),
        "content": [r.memory.content for r in results],
        score: [r.score for r in results],
    }
    for name in COMPONENTS[params.mode]:
        data[name] = [_component(r.breakdown, r.similarity, name) for r in results]
    if params.mmr_lambda is not None:
        data["diversified"] = [r.breakdown.mmr for r in results]
    data["type"] = [r.memory.memory_type for r in results]
    data["superseded"] = superseded_cells([r.memory.id for r in results], superseded, link)
    data["id"] = [str(r.memory.id) for r in results]
    return pd.DataFrame(data, columns=list(data))


def candidates_frame(
    candidates: Sequence[Candidate],
    params: SearchParams,
    superseded: Mapping[UUID, Supersession] | None = None,
    link: Callable[[UUID], str] | None = None,
) -> pd.DataFrame:
    """Memories with their place for the query, the mode's score (empty when the mode never ranked
    them; in vector mode, where the score is the similarity, always filled), the similarity beside
    it in the other modes, and the reason; rank reads "6th", or "–" when unranked."""
    superseded = superseded or {}
    score = score_name(params)
    data: dict[str, list] = {
        "rank": [ordinal(c.rank) if c.rank else "–" for c in candidates],
        "content": [c.memory.content for c in candidates],
        score: [c.similarity if params.mode == "vector" else c.score for c in candidates],
    }
    if params.mode != "vector":
        data["similarity"] = [c.similarity for c in candidates]
    data["reason"] = [c.reason for c in candidates]
    data["status"] = [c.status for c in candidates]
    data["type"] = [c.memory.memory_type for c in candidates]
    data["superseded"] = superseded_cells([c.memory.id for c in candidates], superseded, link)
    data["id"] = [str(c.memory.id) for c in candidates]
    return pd.DataFrame(data, columns=list(data))


def compare_frames(
    a: Sequence[SearchResult], b: Sequence[SearchResult], params_a: SearchParams, params_b: SearchParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two result lists side by side: rank, content, each list's own score, and where the other
    list has the memory ("2nd") or "not returned"."""
    rank_a = {r.memory.id: i for i, r in enumerate(a, start=1)}
    rank_b = {r.memory.id: i for i, r in enumerate(b, start=1)}

    def frame(results: Sequence[SearchResult], params: SearchParams, other: dict[UUID, int]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "rank": range(1, len(results) + 1),
                "content": [r.memory.content for r in results],
                score_name(params): [r.score for r in results],
                "in the other list": [ordinal(other[r.memory.id]) if r.memory.id in other else "not returned" for r in results],
            }
        )

    return frame(a, params_a, rank_b), frame(b, params_b, rank_a)


def score_chart(explanation: Explanation, top: int = 30) -> go.Figure:
    """The best `top` memories in the mode's order, a bar of the score the mode ranks by for each,
    coloured by status, with the limit as a vertical line. In vector mode the score is the
    similarity, so the memories under the threshold follow, and the threshold is a horizontal
    line; the other modes score only what they rank."""
    params = explanation.params
    vector = params.mode == "vector"
    name = score_name(params)
    shown = [c for c in explanation.candidates[:top] if vector or c.score is not None]  # the ranked come first
    fig = go.Figure()
    for status in STATUSES:
        points = [(i, c) for i, c in enumerate(shown, start=1) if c.status == status]
        if points:
            stale = [c.memory.id in explanation.superseded for _, c in points]
            fig.add_bar(
                x=[i for i, _ in points],
                y=[c.similarity if vector else c.score for _, c in points],
                name=status,
                marker_color=STATUS_COLOURS[status],
                marker_line_color=STALE_OUTLINE,
                marker_line_width=[3 if s else 0 for s in stale],
                hovertext=[
                    plot_text(c.memory.content)
                    + f"<br>similarity {c.similarity:.3f}"
                    + ("<br><b>superseded by a newer memory</b>" if s else "")
                    + "<br><i>"
                    + plot_text(c.reason)
                    + "</i>"
                    for (_, c), s in zip(points, stale)
                ],
                hovertemplate="%{hovertext}<br>" + name + " %{y:.3f}<extra>%{fullData.name}</extra>",
            )
    if vector:
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
        title=f"The {len(shown)} best memories for the query, by {name} ({params.mode} search)",
        barmode="overlay",
        xaxis_title=f"place in the {params.mode} order" + (" (memories under the threshold after, by similarity)" if vector else ""),
        yaxis_title=name,
        legend_title="status",
    )
    return fig


# --- Evaluation drill-down: why a case failed -------------------------------------------------------


# What each metric means, in words: a short name for tables and charts, and a sentence
# (core.evaluation defines them).
METRIC_WORDS = {
    "hit": ("any in top {k}", "Share of questions with at least one expected memory among the first {k} results (hit@{k})."),
    "recall": (
        "found in top {k}",
        "Share of each question's expected memories that came back among the first {k} results, averaged over questions (recall@{k}).",
    ),
    "mrr": (
        "first right answer (MRR)",
        "Mean reciprocal rank: 1 when the first expected memory comes back first, 1/2 when second, 1/3 when third, and so on; "
        "0 when none comes back. Averaged over questions.",
    ),
    "ndcg": (
        "order of right answers (nDCG@{k})",
        "Normalised discounted cumulative gain over the first {k} results: 1 when every expected memory comes back at the top, "
        "lower the further down they come.",
    ),
}


def metric_label(metric: str) -> str:
    """'recall@5' -> 'found in top 5'."""
    kind, _, k = metric.partition("@")
    return METRIC_WORDS.get(kind, (metric, ""))[0].format(k=k)


def metric_help(metric: str) -> str:
    kind, _, k = metric.partition("@")
    return METRIC_WORDS.get(kind, ("", ""))[1].format(k=k)


def metrics_table(reports: Sequence[ModeReport]) -> pd.DataFrame:
    """One row per metric (its name in words and what it measures), one column per configuration."""
    metrics = [m for m in reports[0].metrics if m != "n"]
    table = pd.DataFrame({"measure": [metric_label(m) for m in metrics], "what it measures": [metric_help(m) for m in metrics]})
    for r in reports:
        table[r.name] = [r.metrics[m] for m in metrics]
    return table


def headline(report: ModeReport) -> str:
    """A configuration's result in one sentence: how often an expected memory is in the top 5 and first."""
    m = report.metrics
    top = 5 if "hit@5" in m else max(int(k.partition("@")[2]) for k in m if k.startswith("hit@"))
    sentence = f"finds an expected memory in the top {top} for {m[f'hit@{top}']:.0%} of questions"
    if "hit@1" in m and top != 1:
        sentence += f", and returns one first for {m['hit@1']:.0%}"
    return sentence


def metrics_frame(reports: Sequence[ModeReport]) -> pd.DataFrame:
    """Long form (configuration, metric, value) of evaluation reports, for grouped bar charts."""
    rows = [(r.name, metric, value) for r in reports for metric, value in r.metrics.items() if metric != "n"]
    return pd.DataFrame(rows, columns=["configuration", "metric", "value"])


def runs_figure(runs: Sequence[EvalRun], metric: str, colours: Mapping[str, str]) -> go.Figure:
    """One metric of the kept runs of a set over time, a line per configuration (named with its
    mode, coloured as `colours` says for its name): a change that hurts recall shows as a drop."""
    frame = pd.DataFrame(
        {
            "at": [r.at for r in runs],
            "name": [r.config.get("name", "?") for r in runs],
            "configuration": [plot_text(f"{r.config.get('name', '?')} ({r.config.get('mode', '?')})") for r in runs],
            "value": [r.metrics.get(metric) for r in runs],
            "model": [plot_text(r.model) for r in runs],
            "cases": [r.cases for r in runs],
        }
    )
    fig = go.Figure()
    for name, rows in frame.groupby("configuration", sort=False):
        fig.add_trace(
            go.Scatter(
                x=rows["at"],
                y=rows["value"],
                name=str(name),
                mode="lines+markers",
                line={"color": colours.get(rows["name"].iloc[0])},
                customdata=rows[["model", "cases"]],
                hovertemplate="%{x|%d %b %Y %H:%M}: %{y:.3f}<br>%{customdata[1]} questions, %{customdata[0]}<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(
        title=f"{metric_label(metric)} of each kept run", yaxis={"range": [0, 1.02], "title": "mean over questions"}, legend_title=""
    )
    return fig


def expected_places(case_result: CaseResult, depth: int) -> str:
    """Where a case's expected memories came: "2nd", "2nd; 1 not in the top 10", "none of 3 in the top 10"."""
    ranks = list(case_result.expected_ranks.values())
    found = sorted(r for r in ranks if r)
    missing = len(ranks) - len(found)
    if not found:
        return f"not in the top {depth}" if missing == 1 else f"none of {missing} in the top {depth}"
    places = ", ".join(ordinal(r) for r in found)
    return places + (f"; {missing} not in the top {depth}" if missing else "")


def explain_case(
    svc: MemoryService, store_id: UUID | str, case_result: CaseResult, config: ModeConfig, depth: int = NDCG_DEPTH
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A case side by side: its expected memories (where each came, or why it was not retrieved,
    from the debugger's own explanation) and what came back (with its scores and which of them
    were expected)."""
    params = config_params(config, depth)
    ex = svc.explain_search(store_id, case_result.case.query, params)
    expected = set(case_result.case.expected_ids)
    rows: list[tuple[str, str, str, float | None, str, str]] = []
    for memory_id in case_result.case.expected_ids:
        try:
            c = ex.why_not(memory_id)
        except NotFound:
            rows.append(("", "not retrieved", "this memory is no longer in the store", None, "missing", str(memory_id)))
            continue
        if c.returned:
            place = ordinal(c.rank or 0)
        elif c.rank:
            place = f"{ordinal(c.rank)}, below the top {depth}"
        else:
            place = "not retrieved"
        why = c.reason.replace(f"the limit is {depth}", f"only the top {depth} count")
        rows.append((c.memory.content, place, why, c.similarity, c.status, str(memory_id)))
    wanted = pd.DataFrame(rows, columns=["content", "where it came", "why", "similarity", "status", "id"])
    returned = results_frame(case_result.returned, params)
    returned.insert(1, "expected", ["✓" if r.memory.id in expected else "" for r in case_result.returned])
    return wanted, returned
