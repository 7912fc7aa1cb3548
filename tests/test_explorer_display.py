"""What the explorer's tables and charts say, from plain data: one score per mode and no column
repeating another, "not returned" instead of None, readable dates and counts, where expected
memories came, what each metric means, and one colour per memory type."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pandas as pd

from core.evaluation import CaseResult, EvalCase, ModeConfig, ModeReport
from core.explain import below
from core.explorer import debugger as dx
from core.explorer.colours import type_colours
from core.explorer.frames import status_words
from core.explorer.labels import count, day
from core.models import Memory, ScoreBreakdown, SearchResult
from core.search import SearchParams
from core.supersede import Supersession

T0 = datetime(2026, 3, 12, 10, 22, 31, tzinfo=UTC)


def memory(content: str) -> Memory:
    return Memory(uuid4(), uuid4(), uuid4(), content, "fact", None, 0.5, 0, None, None, {}, T0, T0)


def result(content: str, score: float, similarity: float, **terms: float) -> SearchResult:
    return SearchResult(memory(content), similarity, score, ScoreBreakdown(similarity=similarity, final=score, **terms))


def test_each_mode_shows_the_score_it_ranks_by_once() -> None:
    results = [result("a", 0.9, 0.9), result("b", 0.8, 0.8)]
    vector = dx.results_frame(results, SearchParams(mode="vector"))
    assert list(vector.columns) == ["rank", "content", "similarity", "type", "superseded", "id"]  # no "score" beside it
    parts = {"terms": {"pottery": 0.08, "class": 0.02}, "lift": 0.31, "origin": "neighbour"}
    hybrid = dx.results_frame([result("a", 0.0328, 0.6, text_rank=0.1, fused=0.0328, **parts)], SearchParams(mode="hybrid"))
    assert list(hybrid.columns[:5]) == ["rank", "content", "fused score", "similarity", "parts"]
    assert hybrid["fused score"].tolist() == [0.0328]
    assert hybrid["parts"].tolist() == ["terms pottery 0.08, class 0.02 · lift +0.31 · found by neighbour"]
    weighted = dx.results_frame([result("a", 0.52, 0.56, importance=0.6, recency=0.01)], SearchParams(mode="weighted"))
    assert list(weighted.columns[:6]) == ["rank", "content", "weighted score", "similarity", "importance", "recency"]
    assert dx.score_sentence(SearchParams(mode="weighted")).startswith(
        "Weighted score: What weighted search ranks by: (1 × similarity + 0.2 × importance + 0.1 × recency) / 1.3"
    )


def test_superseded_results_link_to_the_newer_memory() -> None:
    old, new = result("old", 0.9, 0.9), result("new", 0.8, 0.8)
    stale = {old.memory.id: Supersession(old.memory.id, new.memory.id, "updates", T0, True, True)}
    frame = dx.results_frame([old, new], SearchParams(), stale, lambda i: f"?memory={i}")
    assert frame["superseded"].iloc[0] == f"?memory={new.memory.id}#updated%20%E2%86%97" and pd.isna(frame["superseded"].iloc[1])


def test_the_comparison_says_not_returned_and_each_list_keeps_its_own_score() -> None:
    shared, only_a, only_b = result("shared", 0.9, 0.9), result("a", 0.5, 0.5), result("b", 0.7, 0.7)
    a, b = dx.compare_frames([shared, only_a], [only_b, shared], SearchParams(mode="vector"), SearchParams(mode="text"))
    assert a["in the other list"].tolist() == ["2nd", "not returned"]
    assert b["in the other list"].tolist() == ["not returned", "1st"]
    assert "similarity" in a.columns and "text rank" in b.columns


def test_a_negative_similarity_never_reads_minus_zero() -> None:
    assert below(-0.001, 0.0) == "similarity -0.001 is below the threshold 0.00"
    assert below(0.596, 0.6) == "similarity 0.596 is below the threshold 0.60"


def test_dates_counts_and_statuses_read_as_words() -> None:
    assert (day(T0), day(None), day(pd.NaT)) == ("12 Mar 2026", "never", "never")
    assert (count(1, "group"), count(2, "group"), count(1, "memory"), count(3, "memory")) == (
        "1 group",
        "2 groups",
        "1 memory",
        "3 memories",
    )
    frame = pd.DataFrame({"status": ["live", "live", "expired", "archived"], "expires_at": pd.to_datetime([None, T0, T0, None], utc=True)})
    assert status_words(frame).tolist() == ["live", "expires 12 Mar 2026", "expired 12 Mar 2026", "archived"]


def test_evaluation_speaks_plainly() -> None:
    found, missed = uuid4(), uuid4()
    case = CaseResult(EvalCase("q", (found, missed)), [SearchResult(memory("x"), 0.1, 0.1), SearchResult(memory("y"), 0.1, 0.1)], {})
    object.__setattr__(case.returned[1].memory, "id", found)
    assert dx.expected_places(case, 10) == "2nd; 1 not in the top 10"
    none = CaseResult(EvalCase("q", (missed, uuid4())), [], {})
    assert dx.expected_places(none, 10) == "none of 2 in the top 10"
    report = ModeReport("hybrid", ModeConfig("hybrid", "hybrid"), {"hit@1": 0.5, "hit@5": 0.83, "recall@5": 0.8, "mrr": 0.6, "n": 6}, [])
    assert dx.headline(report) == "finds an expected memory in the top 5 for 83% of questions, and returns one first for 50%"
    assert dx.metric_label("recall@5") == "found in top 5" and dx.metric_label("ndcg@10") == "order of right answers (nDCG@10)"
    assert dx.metric_help("hit@5").startswith("Share of questions with at least one expected memory among the first 5 results")
    table = dx.metrics_table([report])
    assert table.columns.tolist() == ["measure", "what it measures", "hybrid"] and "n" not in table["measure"].tolist()


def test_a_memory_type_keeps_its_colour_whatever_else_is_drawn() -> None:
    store = type_colours(["fact", "preference", "episode", "fact"])
    assert store == type_colours(["episode", "preference", "fact"])
    assert len(set(store.values())) == 3
