"""The Evaluate page through AppTest: run a saved set, metrics, failed-case drill-down, upload, delete."""

from __future__ import annotations

import json

from core import NewMemory
from core.evaluation import EvalCase, ModeConfig
from tests.apptest import open_page, texts


def open_evaluate(tenant, user, **params):
    at = open_page("evaluate", tenant=tenant.name, user=user.name, store="default", **params)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def seeded(svc, store):
    m = svc.add_memories(
        store.id,
        [
            NewMemory("alpha beta gamma"),
            NewMemory("alpha beta delta"),
            NewMemory("zeta eta theta"),
            NewMemory("quarterly tax report"),
        ],
    )
    cases = [
        EvalCase("alpha beta gamma", (m[0].id,), "easy"),
        EvalCase("taxes for the quarter", (m[3].id,), "paraphrase"),  # no shared word but "quarter" (stemmed): text finds it
        EvalCase("theta memory", (m[2].id, m[1].id), "paraphrase"),
    ]
    return m, svc.save_eval_set(store.id, "smoke", cases)


def test_a_saved_set_runs_and_shows_metrics_and_failures(svc, store, user, tenant) -> None:
    memories, saved = seeded(svc, store)
    at = open_evaluate(tenant, user)
    assert at.selectbox(key="set").value == str(saved.id) and at.query_params["set"] == str(saved.id)
    assert "Press “Run the evaluation”" in at.info[0].value
    before = {m.id: m.access_count for m in svc.get_memories([m.id for m in memories])}
    at.slider(key="n_configs").set_value(2).run()
    at.selectbox(key="mode_1").select("vector").run()
    at.slider(key="threshold_1").set_value(0.6).run()
    at.button(key="run").click().run()
    assert not at.exception and not at.error
    table = next(df for df in at.dataframe if "what it measures" in df.value.columns).value.set_index("measure")
    assert list(table.columns) == ["what it measures", "vector ≥0.00", "vector ≥0.60"]
    mrr = "first right answer (MRR)"
    assert table.loc["found in top 10", "vector ≥0.00"] == 1.0  # four memories: everything is in the top 10
    assert table.loc["found in top 1", "vector ≥0.60"] < 1.0 and table.loc[mrr, "vector ≥0.60"] < table.loc[mrr, "vector ≥0.00"]
    assert table.loc[mrr, "what it measures"].startswith("Mean reciprocal rank: 1 when the first expected memory comes back first")
    headlines = [m.value for m in at.markdown if m.value.startswith("**vector")]
    assert headlines[0].startswith(
        "**vector ≥0.00** finds an expected memory in the top 5 for 100% of questions, and returns one first for"
    )
    assert {m.id: m.access_count for m in svc.get_memories([m.id for m in memories])} == before
    assert len(at.get("plotly_chart")) == 2  # the kept runs over time, then this run's measures

    at.selectbox(key="drill_config").select(1).run()
    assert "of 3 questions missed at least one expected memory in the top 10" in texts(at)
    overview = next(df for df in at.dataframe if df.key == "failed_table").value
    assert "in the top 10" in " ".join(overview["where the expected memories came"])  # no "–"
    at.session_state["failed_table"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    assert not at.exception and not at.error
    expected = next(df for df in at.dataframe if "why" in df.value.columns).value
    assert set(expected["where it came"]) == {"not retrieved"}
    assert set(expected["status"]) <= {"below threshold"} and all("below the threshold 0.60" in r for r in expected["why"])


def test_uploading_cases_saves_a_set_and_deleting_asks_first(svc, store, user, tenant, other) -> None:
    m = svc.add_memory(store.id, "alpha beta gamma")
    at = open_evaluate(tenant, user)
    assert "This store has no evaluation set yet." in texts(at) and "On the **Search** page" in texts(at)
    other_svc, other_store = other
    other_svc.save_eval_set(other_store.id, "other tenant's set", [EvalCase("x", (m.id,))])
    at.run()
    assert "This store has no evaluation set yet." in texts(at)  # another tenant's set never shows

    lines = "\n".join(json.dumps({"query": q, "expected_ids": [str(m.id)]}) for q in ("alpha", "gamma beta"))
    at.get("file_uploader")[0].set_value(("cases.jsonl", lines.encode(), "application/jsonl"))
    at.text_input(key="new_set_name").input("uploaded").run()
    at.button(key="save_set").click().run()
    assert not at.exception and not at.error
    assert at.selectbox(key="set").options == ["uploaded (2 questions)"]
    at.button(key="delete_set").click().run()
    assert [s.name for s in svc.list_eval_sets(store.id)] == ["uploaded"]  # nothing deleted before the confirmation
    at.button(key="confirm_yes").click().run()
    assert svc.list_eval_sets(store.id) == []


def test_an_uploaded_set_is_selected_next_to_existing_ones(svc, store, user, tenant) -> None:
    m = svc.add_memory(store.id, "alpha beta gamma")
    svc.save_eval_set(store.id, "first", [EvalCase("alpha", (m.id,))])
    at = open_evaluate(tenant, user)
    at.get("file_uploader")[0].set_value(
        ("cases.jsonl", json.dumps({"query": "gamma", "expected_ids": [str(m.id)]}).encode(), "text/plain")
    )
    at.text_input(key="new_set_name").input("second").run()
    at.button(key="save_set").click().run()
    assert not at.exception and not at.error and not at.warning
    assert at.selectbox(key="set").value == str(next(s.id for s in svc.list_eval_sets(store.id) if s.name == "second"))
    at.get("file_uploader")[0].set_value(("bad.jsonl", b'{"query": "x"}\n', "text/plain"))
    at.text_input(key="new_set_name").input("third").run()
    at.button(key="save_set").click().run()
    assert "line 1: expected_ids must be a non-empty list of memory ids" in at.error[0].value
    assert [s.name for s in svc.list_eval_sets(store.id)] == ["first", "second"]


def test_kept_runs_are_charted_over_time_per_configuration(svc, store, user, tenant) -> None:
    _, saved = seeded(svc, store)
    svc.evaluate(store.id, saved.cases, [ModeConfig("before", "vector")], keep_as=saved.id, kept_at="2026-01-05T10:00:00+00:00")
    at = open_evaluate(tenant, user)
    at.slider(key="n_configs").set_value(2).run()
    at.button(key="run").click().run()
    assert not at.exception and not at.error
    runs = svc.eval_runs(saved.id)
    assert [r.config["name"] for r in runs] == ["before", "vector ≥0.00", "text ≥0.00"]  # oldest first, every configuration kept
    chart = json.loads(next(c for c in at.get("plotly_chart") if c.key == "runs_chart").proto.spec)
    assert {t["name"] for t in chart["data"]} == {"before (vector)", "vector ≥0.00 (vector)", "text ≥0.00 (text)"}
    assert "3 configuration runs kept" in texts(at)
    # a configuration has one colour in both charts, though each lists them in its own order
    kept = {t["name"].rsplit(" (", 1)[0]: t["line"]["color"] for t in chart["data"]}
    results = json.loads(next(c for c in at.get("plotly_chart") if c.key != "runs_chart").proto.spec)
    shown = {t["name"]: t["marker"]["color"] for t in results["data"]}
    assert shown == {n: kept[n] for n in ("vector ≥0.00", "text ≥0.00")}
    assert len(set(kept.values())) == 3
