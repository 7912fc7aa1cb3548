"""Frames and figures of the Retrievals page and of a memory's history: the log as a table, its
charts, one entry's answer, a replay side by side, and diffs of edits. User text goes into
dataframes (shown literally) or, in charts, through plot_text."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.explorer.labels import plot_text, short
from core.models import Retrieval
from core.retrieval import Replay

GONE = "(purged, or not in this tenant)"
LATENCY_QUANTILES = (50, 95, 99)


def caller(entry: Retrieval) -> str:
    """Who searched, as the log's caller filter names it: the API key's name, else the interface."""
    return entry.key_name or entry.interface


def log_frame(entries: Sequence[Retrieval]) -> pd.DataFrame:
    """One row per logged search, newest first: the Retrievals table."""
    return pd.DataFrame(
        {
            "at": pd.to_datetime(pd.Series([e.at for e in entries], dtype=object), utc=True),
            "caller": [caller(e) for e in entries],
            "query": [e.query or "(a query vector)" for e in entries],
            "mode": [e.mode for e in entries],
            "results": [e.result_count for e in entries],
            "top score": [e.results[0]["score"] if e.results else None for e in entries],
            "latency ms": [e.latency_ms for e in entries],
            "id": [str(e.id) for e in entries],
        },
        columns=["at", "caller", "query", "mode", "results", "top score", "latency ms", "id"],
    )


def _per_day(frame: pd.DataFrame) -> Any:
    return frame.assign(day=frame["at"].dt.tz_convert("UTC").dt.floor("D")).groupby("day")


def queries_per_day_figure(frame: pd.DataFrame) -> go.Figure:
    """Searches per day, answered and empty stacked, with the share of empty answers on hover."""
    days = _per_day(frame).agg(searches=("id", "size"), empty=("results", lambda r: int((r == 0).sum()))).reset_index()
    days["answered"] = days["searches"] - days["empty"]
    days["share"] = days["empty"] / days["searches"]
    long = days.drop(columns="searches").melt(id_vars=["day", "share"], var_name="answer", value_name="searches")
    share = (frame["results"] == 0).mean() if len(frame) else 0.0
    fig = px.bar(
        long,
        x="day",
        y="searches",
        color="answer",
        custom_data=["share"],
        color_discrete_map={"answered": "#4C78A8", "empty": "#E45756"},
        title=f"Searches per day ({share:.0%} returned nothing)",
        labels={"day": "", "searches": "searches", "answer": ""},
    )
    fig.update_traces(
        hovertemplate="%{x|%d %b %Y}: %{y} %{fullData.name}<br>%{customdata[0]:.0%} of that day's searches empty<extra></extra>"
    )
    return fig


def empty_share_figure(frame: pd.DataFrame) -> go.Figure:
    """The share of searches that returned nothing, day by day."""
    days = _per_day(frame)["results"].agg(lambda r: float((r == 0).mean())).rename("empty").reset_index()
    fig = px.line(days, x="day", y="empty", markers=True, title="Share of empty answers", labels={"day": "", "empty": ""}, range_y=[0, 1])
    fig.update_yaxes(tickformat=".0%")
    fig.update_traces(hovertemplate="%{x|%d %b %Y}: %{y:.0%} empty<extra></extra>")
    return fig


def latency_figure(frame: pd.DataFrame) -> go.Figure:
    """Latency percentiles per day (the whole search call as the caller waited for it)."""
    days = _per_day(frame)["latency ms"]
    rows = pd.DataFrame({f"p{q}": days.quantile(q / 100) for q in LATENCY_QUANTILES}).reset_index()
    long = rows.melt(id_vars="day", var_name="percentile", value_name="ms")
    overall = ", ".join(f"p{q} {np.percentile(frame['latency ms'], q):.1f}" for q in LATENCY_QUANTILES) if len(frame) else "none"
    fig = px.line(long, x="day", y="ms", color="percentile", markers=True, title=f"Latency per day (ms; overall {overall})")
    fig.update_layout(xaxis_title="", yaxis_title="milliseconds", legend_title="")
    return fig


def retrieved_counts(entries: Sequence[Retrieval]) -> Counter[str]:
    """How many of these searches returned each memory."""
    return Counter(r["id"] for e in entries for r in e.results)


def most_retrieved_figure(counts: Counter[str], contents: Mapping[str, str], top: int = 10) -> go.Figure:
    """The memories returned most often, their text on the bars' axis (escaped)."""
    best = counts.most_common(top)[::-1]
    labels = [plot_text(short(contents.get(i, GONE), 55), 60) for i, _ in best]
    fig = go.Figure(go.Bar(x=[n for _, n in best], y=labels, orientation="h", hovertemplate="%{y}<br>returned %{x} times<extra></extra>"))
    fig.update_layout(
        title=f"Most retrieved memories (top {len(best)})",
        xaxis_title="times returned",
        height=140 + 30 * len(best),
        yaxis={"automargin": True},
    )
    return fig


def never_retrieved_frame(store_memories: pd.DataFrame, counts: Counter[str]) -> pd.DataFrame:
    """The store's live memories no search of the window returned."""
    live = store_memories[store_memories["status"] == "live"] if "status" in store_memories else store_memories
    never = live[~live["id"].astype(str).isin(counts)]
    return never[["content", "memory_type", "created_at", "id"]].rename(columns={"memory_type": "type", "created_at": "created"})


# One entry, and its replay -------------------------------------------------------------------------


def entry_ids(entry: Retrieval) -> list[str]:
    """Every memory an entry names: returned, then cut."""
    return list(dict.fromkeys([r["id"] for r in entry.results] + [m["id"] for m in entry.near_misses]))


def answer_frame(entry: Retrieval, contents: Mapping[str, str]) -> pd.DataFrame:
    """What came back then, with scores and texts as they were (`contents` at the entry's time),
    then the near misses with why they were cut."""
    rows = [
        {
            "rank": str(r["rank"]),
            "score": r.get("score"),
            "similarity": r.get("similarity"),
            "content": contents.get(r["id"], GONE),
            "then": "returned",
            "id": r["id"],
        }
        for r in entry.results
    ]
    rows += [
        {
            "rank": str(m["rank"]) if m.get("rank") else "–",
            "score": m.get("score"),
            "similarity": m.get("similarity"),
            "content": contents.get(m["id"], GONE),
            "then": f"near miss: {m.get('reason', '')}",
            "id": m["id"],
        }
        for m in entry.near_misses
    ]
    return pd.DataFrame(rows, columns=["rank", "score", "similarity", "content", "then", "id"])


def side_by_side(replayed: Replay, contents: Mapping[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The logged answer and today's, each row marked with what happened to it."""
    kinds = {d.memory_id: d.kind for d in replayed.differences}
    then = pd.DataFrame(
        {
            "rank": [int(r["rank"]) for r in replayed.entry.results],
            "content": [contents.get(r["id"], GONE) for r in replayed.entry.results],
            "score": [r.get("score") for r in replayed.entry.results],
            "since": [kinds.get(UUID(r["id"]), "same") for r in replayed.entry.results],
        },
        columns=["rank", "content", "score", "since"],
    )
    now = pd.DataFrame(
        {
            "rank": list(range(1, len(replayed.now) + 1)),
            "content": [r.memory.content for r in replayed.now],
            "score": [r.score for r in replayed.now],
            "since": [kinds.get(r.memory.id, "same") for r in replayed.now],
        },
        columns=["rank", "content", "score", "since"],
    )
    return then, now


def differences_frame(replayed: Replay, contents: Mapping[str, str]) -> pd.DataFrame:
    """Each difference between then and now, with its reason in words."""
    return pd.DataFrame(
        {
            "what": [d.kind for d in replayed.differences],
            "memory": ["(the store)" if d.kind == "model changed" else contents.get(str(d.memory_id), GONE) for d in replayed.differences],
            "then": [str(d.then_rank) if d.then_rank else "–" for d in replayed.differences],
            "now": [str(d.now_rank) if d.now_rank else "–" for d in replayed.differences],
            "why": [d.reason for d in replayed.differences],
        },
        columns=["what", "memory", "then", "now", "why"],
    )
