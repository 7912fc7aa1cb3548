"""The demo data set: every view has something to show on a first run, and loading twice leaves one copy."""

from __future__ import annotations

from datetime import UTC, datetime

from core.admin import find_tenant
from core.demo import load_demo
from core.demo_activity import EVAL_SET
from core.service import MemoryService


def test_the_demo_has_weeks_of_searches_edits_with_history_and_kept_evaluation_runs(db) -> None:
    load_demo(db)
    svc = MemoryService(db, find_tenant(db, "Acme Travel").id)
    store = svc.find_store(svc.find_user("alice").id, "default")
    log = svc.retrievals(store.id, limit=1000)
    assert 150 <= log.total <= 350
    days = {e.at.date() for e in log.entries}
    assert max(e.at for e in log.entries) <= datetime.now(UTC)  # no search in the future, whatever the hour
    assert len(days) >= 14  # spread over weeks
    assert any(e.result_count == 0 for e in log.entries) and any(e.latency_ms > 250 for e in log.entries)
    assert any(m["reason"] for e in log.entries for m in e.near_misses)  # something was just cut
    assert {"trip-planner", "support-bot", "cli"} <= {name for name, _ in svc.retrieval_callers(store.id)}
    events = [e.event for e in svc.store_history(store.id, limit=1000)]
    assert {"updated", "archived", "deleted"} <= set(events)
    (kept,) = [s for s in svc.list_eval_sets(store.id) if s.name == EVAL_SET]
    runs = svc.eval_runs(kept.id)
    assert len(runs) == 4 and len({r.at.date() for r in runs}) == 2  # two configurations, before and after the edits
    replayed = svc.replay(next(e for e in log.entries if e.result_count).id)
    assert replayed.entry.query  # a demo search replays against today's memories

    total, memories = log.total, svc.store_stats(store.id).total
    report = load_demo(db)
    assert report.searches == 0
    assert svc.retrievals(store.id, limit=1).total == total and svc.store_stats(store.id).total == memories
    assert len([s for s in svc.list_eval_sets(store.id) if s.name == EVAL_SET]) == 1
