"""Retrieval metrics on hand-computed cases, evaluation runs, saved sets and `memex eval`."""

from __future__ import annotations

import json
import math
import uuid

import pytest

from core import InvalidInput, NewMemory
from core.cli import main
from core.evaluation import (
    EvalCase,
    ModeConfig,
    case_metrics,
    configs_for,
    load_cases,
    ndcg_at,
    recall_at,
    reciprocal_rank,
)

A, B, C, D, E = (uuid.UUID(int=i) for i in range(1, 6))


def test_recall_hit_mrr_on_a_hand_computed_case() -> None:
    returned, expected = [D, A, C, E], [A, B]
    assert recall_at(returned, expected, 1) == 0.0
    assert recall_at(returned, expected, 2) == 0.5
    assert recall_at(returned, expected, 10) == 0.5
    assert reciprocal_rank(returned, expected) == 0.5
    assert reciprocal_rank([C, D], expected) == 0.0
    metrics = case_metrics(returned, expected, [1, 5])
    assert (metrics["hit@1"], metrics["hit@5"]) == (0.0, 1.0)


def test_ndcg_exact_values() -> None:
    # one relevant at rank 2 out of two expected: DCG = 1/log2(3); IDCG = 1 + 1/log2(3)
    assert ndcg_at([D, A, C], [A, B]) == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert ndcg_at([A, B], [A, B]) == 1.0
    assert ndcg_at([C, D], [A]) == 0.0
    # relevant beyond the depth does not count
    assert ndcg_at([C] * 10 + [A], [A], k=10) == 0.0


def test_load_cases_reports_the_bad_line() -> None:
    good = json.dumps({"query": "q", "expected_ids": [str(A)]})
    assert load_cases(f"{good}\n\n{good}\n".encode()) == [EvalCase("q", (A,))] * 2
    with pytest.raises(InvalidInput, match="line 2: expected_ids must be a non-empty list"):
        load_cases(f'{good}\n{{"query": "q", "expected_ids": []}}\n'.encode())
    with pytest.raises(InvalidInput, match="line 1: expected id 'nope' is not a valid UUID"):
        load_cases(b'{"query": "q", "expected_ids": ["nope"]}')


@pytest.fixture
def planted(svc, store):
    memories = svc.add_memories(
        store.id,
        [
            NewMemory("Maya keeps a sourdough starter called Gloria"),
            NewMemory("Maya climbs at the bouldering gym on Tuesdays"),
            NewMemory("Maya's sister Ifeoma lives in Leeds"),
            NewMemory("Maya's brother Chidi lives in Manchester"),
        ],
    )
    return {m.content.split()[1]: m.id for m in memories} | {"all": [m.id for m in memories]}


def test_evaluate_every_mode_without_touching_access_counts(svc, store, planted) -> None:
    cases = [EvalCase("sourdough starter", (planted["all"][0],)), EvalCase("sister lives in Leeds", (planted["all"][2],))]
    reports = svc.evaluate(store.id, cases, configs_for(["vector", "text", "hybrid", "weighted"]), ks=(1, 3))
    assert [r.name for r in reports] == ["vector", "text", "hybrid", "weighted"]
    for report in reports:
        assert report.metrics["n"] == 2
        assert report.metrics["recall@1"] == 1.0 and report.metrics["mrr"] == 1.0
    assert all(m.access_count == 0 for m in svc.list_memories(store.id).items)


def test_a_missed_case_shows_where_its_memories_came_back(svc, store, planted) -> None:
    case = EvalCase("bouldering gym Tuesdays", (planted["all"][1], planted["all"][3]))
    [report] = svc.evaluate(store.id, [case], [ModeConfig("strict", min_similarity=0.99)], ks=(5,))
    result = report.cases[0]
    assert result.metrics["recall@5"] == 0.0 and report.worst(1) == [result]
    assert result.expected_ranks == {planted["all"][1]: None, planted["all"][3]: None}


def test_a_saved_set_keeps_the_order_of_its_cases(svc, store, planted) -> None:
    cases = [EvalCase(f"question {n}", (planted["all"][n % 4],)) for n in range(12)]
    saved = svc.save_eval_set(store.id, "ordered", cases)
    svc.add_eval_case(saved.id, EvalCase("question 12", (planted["all"][0],)))
    assert [c.query for c in svc.get_eval_set(saved.id).cases] == [f"question {n}" for n in range(13)]


def test_saved_sets_round_trip_and_stay_in_their_tenant(svc, store, planted, other) -> None:
    saved = svc.save_eval_set(store.id, "smoke", [EvalCase("starter", (planted["all"][0],), "keyword")])
    svc.add_eval_case(saved.id, EvalCase("sister", (planted["all"][2],)))
    loaded = svc.get_eval_set(saved.id)
    assert [c.query for c in loaded.cases] == ["starter", "sister"] and loaded.cases[0].kind == "keyword"
    assert [s.name for s in svc.list_eval_sets(store.id)] == ["smoke"]
    other_svc, _ = other
    with pytest.raises(Exception, match="not found"):
        other_svc.get_eval_set(saved.id)
    svc.delete_eval_set(saved.id)
    assert svc.list_eval_sets(store.id) == []


def test_memex_eval_json_prints_one_object_per_mode_and_nothing_else(capsys, tmp_path, svc, store, user, tenant, planted) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps({"query": "sister in Leeds", "expected_ids": [str(planted["all"][2])]}) + "\n")
    code = main(["eval", str(cases), "--tenant", tenant.name, "--user", user.name, "--modes", "vector,hybrid", "--k", "1,5", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    report = json.loads(out)
    assert set(report) == {"vector", "hybrid"}
    assert set(report["vector"]) == {"recall@1", "recall@5", "hit@1", "hit@5", "mrr", "ndcg@10", "n"}
    assert report["vector"]["recall@1"] == 1.0 and report["vector"]["n"] == 1


def test_memex_eval_reports_kinds_at_the_cut_offs_asked_for(capsys, tmp_path, svc, store, user, tenant, planted) -> None:
    """--k without 5 on a set with several kinds used to fail with KeyError: 'recall@5'."""
    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        json.dumps({"query": "sister in Leeds", "expected_ids": [str(planted["all"][2])], "kind": "paraphrase"})
        + "\n"
        + json.dumps({"query": "sourdough starter", "expected_ids": [str(planted["all"][0])], "kind": "exact"})
        + "\n"
    )
    code = main(["eval", str(cases), "--tenant", tenant.name, "--user", user.name, "--modes", "vector", "--k", "1,10"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "recall@10 by kind of case" in captured.out
    assert "exact" in captured.out and "paraphrase" in captured.out
