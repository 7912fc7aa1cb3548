"""The retrieval log: every search through the service on record with its settings, results,
near misses and latency, unless the caller opts out; per-tenant; retention; replay explaining
each kind of difference; and the CLI over it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from sqlalchemy import text

from core import NewMemory, NotFound
from core.cli import main
from core.evaluation import EvalCase, ModeConfig
from core.retrieval import ARCHIVED, CHANGED, DELETED, EXPIRED, MERGED, MODEL, NEW
from core.search import SearchParams


@pytest.fixture
def planted(svc, store):
    return svc.add_memories(
        store.id, [NewMemory(c) for c in ("alpha beta gamma", "alpha beta delta", "alpha beta", "alpha", "unrelated words entirely")]
    )


def latest(svc, store):
    return svc.retrievals(store.id, limit=1).entries[0]


def test_a_search_is_logged_with_its_settings_results_near_misses_and_latency(svc, store, planted) -> None:
    results = svc.search_memories(store.id, "alpha beta gamma", limit=2, min_similarity=0.3)
    entry = latest(svc, store)
    assert (entry.query, entry.mode, entry.interface, entry.actor, entry.result_count) == (
        "alpha beta gamma",
        "vector",
        "python",
        "python",
        2,
    )
    assert SearchParams.from_dict(entry.params) == SearchParams(limit=2, min_similarity=0.3).checked()
    assert [(r["id"], r["rank"]) for r in entry.results] == [(str(r.memory.id), n) for n, r in enumerate(results, start=1)]
    assert entry.results[0]["score"] == pytest.approx(results[0].score)
    assert entry.model == "test-hashing/384" and entry.latency_ms > 0
    reasons = [m["reason"] for m in entry.near_misses]
    assert reasons[0] == "ranked 3rd; the limit is 2"  # what the limit cut
    assert any(r.startswith("similarity") and "below the threshold 0.30" in r for r in reasons)  # what the threshold cut


def test_every_mode_logs_and_a_caller_can_opt_out(svc, store, planted) -> None:
    for mode in ("vector", "text", "hybrid", "weighted"):
        svc.search_memories(store.id, "alpha beta", mode=mode, min_similarity=0.1)
    assert [e.mode for e in svc.retrievals(store.id).entries] == ["weighted", "hybrid", "text", "vector"]
    svc.search_memories(store.id, "alpha", log=False)
    svc.explain_search(store.id, "alpha", SearchParams())  # the debugger's inspection
    svc.evaluate(store.id, [EvalCase("alpha", (planted[3].id,))], [ModeConfig("v")])
    assert svc.retrievals(store.id).total == 4


def test_the_searches_of_a_process_that_exits_at_once_are_in_the_log(svc, store, planted, data_dir, superuser) -> None:
    """The log writer writes after the answer: a process that searches and exits straight away
    (a CLI call, a script) still leaves every search on record, readable by any other process."""
    script = (
        "import sys; from core import MemoryService, get_database; "
        "svc = MemoryService(get_database(), sys.argv[1]); "
        "[svc.search_memories(sys.argv[2], f'alpha {n}', min_similarity=0.1) for n in range(3)]"
    )
    env = {**os.environ, "MEMEX_DATA_DIR": data_dir}
    done = subprocess.run([sys.executable, "-c", script, str(svc.tenant_id), str(store.id)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with superuser.connect() as conn:
        queries = conn.scalars(text("SELECT query FROM retrieval_log WHERE store_id = :s ORDER BY at"), {"s": store.id}).all()
    assert queries == ["alpha 0", "alpha 1", "alpha 2"]


def test_an_entry_is_dated_when_the_search_answered_not_when_it_was_written(svc, store, planted, monkeypatch) -> None:
    """The writer writes later (here it would wait a second for more entries); the entry keeps the
    time of the answer, and a read of the log in this process does not wait for the writer's pause."""
    from core.service import logwriter

    monkeypatch.setattr(logwriter, "LINGER_S", 1.0)
    before = datetime.now(UTC)
    svc.search_memories(store.id, "alpha", min_similarity=0.1)
    answered = datetime.now(UTC)
    entry = latest(svc, store)
    assert entry.query == "alpha" and before <= entry.at <= answered


def test_an_empty_answer_is_logged_and_can_be_filtered(svc, store, planted) -> None:
    svc.search_memories(store.id, "zzz nothing like it", min_similarity=0.99)
    svc.search_memories(store.id, "alpha", min_similarity=0.1)
    assert [e.query for e in svc.retrievals(store.id, empty=True).entries] == ["zzz nothing like it"]
    assert [e.query for e in svc.retrievals(store.id, contains="ALPH").entries] == ["alpha"]
    assert svc.retrievals(store.id, memory_id=planted[3].id).total == 1
    counted = svc.memory_retrievals(planted[3].id)
    assert counted.count == 1 and counted.last.query == "alpha"


def test_another_tenants_log_is_invisible(svc, store, planted, other) -> None:
    svc.search_memories(store.id, "alpha", min_similarity=0.1)
    other_svc, _ = other
    assert other_svc.retrievals().total == 0
    with pytest.raises(NotFound):
        other_svc.retrieval(latest(svc, store).id)
    with other_svc.transaction() as conn:
        assert conn.scalar(text("SELECT count(*) FROM retrieval_log")) == 0


def test_retention_by_days_and_by_entries(svc, store, planted) -> None:
    for n in range(5):
        svc.search_memories(store.id, f"alpha {n}", min_similarity=0.1)
    svc.flush_log()
    with svc.transaction() as conn:  # two entries from long ago
        conn.execute(text("UPDATE retrieval_log SET at = now() - interval '100 days' WHERE query IN ('alpha 0', 'alpha 1')"))
    assert svc.log_retention(store.id) == (90, None)
    assert svc.prune_log(store.id) == 2
    svc.set_log_retention(store.id, days=None, entries=2)
    assert svc.prune_log(store.id) == 1
    assert [e.query for e in svc.retrievals(store.id).entries] == ["alpha 4", "alpha 3"]


def test_replay_explains_each_kind_of_difference(svc, store, user) -> None:
    kept, edited, archived, expired, deleted, merged, survivor = svc.add_memories(
        store.id,
        [
            NewMemory(c)
            for c in ("tea green tea", "tea black tea", "tea oolong tea", "tea white tea", "tea herbal tea", "tea mint tea", "coffee")
        ],
    )
    svc.search_memories(store.id, "tea", limit=6, min_similarity=0.05)
    entry = latest(svc, store)
    fresh = svc.add_memory(store.id, "tea tea tea")
    svc.update_memory(edited.id, content="coffee black coffee")
    svc.set_archived([archived.id])
    svc.expire_memories([expired.id])
    svc.delete_memory(deleted.id)
    svc.merge_memories(survivor.id, [merged.id])
    replay = svc.replay(entry.id)
    kinds = {d.memory_id: d.kind for d in replay.differences}
    assert kinds[fresh.id] == NEW
    assert kinds[edited.id] == CHANGED
    assert next(d for d in replay.differences if d.memory_id == edited.id).changes["content"] == ["tea black tea", "coffee black coffee"]
    assert (kinds[archived.id], kinds[expired.id], kinds[deleted.id], kinds[merged.id]) == (ARCHIVED, EXPIRED, DELETED, MERGED)
    assert kept.id not in kinds or kinds[kept.id] != DELETED
    assert not replay.model_changed
    assert len(svc.retrievals(store.id).entries) == 1  # the replay itself is not logged


def test_replay_says_when_the_model_changed(svc, store) -> None:
    svc.add_memory(store.id, "alpha beta")
    svc.search_memories(store.id, "alpha", min_similarity=-1)
    entry = latest(svc, store)
    svc.set_store_model(store.id, "all-MiniLM-L6-v2", reembed=True)
    replay = svc.replay(entry.id)
    assert replay.model_changed and replay.differences[0].kind == MODEL
    assert "was test-hashing/384, it is all-MiniLM-L6-v2/384" in replay.differences[0].reason


def test_the_cli_lists_shows_and_replays_the_log_and_shows_and_restores_history(capsys, svc, store, user, tenant, planted) -> None:
    svc.search_memories(store.id, "alpha beta", min_similarity=0.2)
    assert main(["log", "list", "--tenant", tenant.name, "--user", user.name, "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert {"id", "query", "at", "latency_ms", "results"} <= set(listed)
    assert set(listed["results"][0]) == {"id", "rank", "score"}
    assert main(["log", "show", listed["id"], "--json"]) == 0  # no tenant needed: the entry names it
    shown = json.loads(capsys.readouterr().out)
    assert shown["query"] == "alpha beta" and shown["params"]["min_similarity"] == 0.2
    svc.delete_memory(UUID(listed["results"][0]["id"]))
    assert main(["log", "replay", listed["id"], "--json"]) == 0
    replayed = json.loads(capsys.readouterr().out)
    assert replayed["differences"][0]["kind"] == DELETED
    assert main(["history", listed["results"][0]["id"], "--tenant", tenant.name, "--json"]) == 0
    assert [e["event"] for e in json.loads(capsys.readouterr().out)] == ["created", "deleted"]
    assert main(["restore", listed["results"][0]["id"], "--tenant", tenant.name]) == 0
    capsys.readouterr()
    assert svc.get_memory(UUID(listed["results"][0]["id"]))
    assert main(["history", listed["results"][0]["id"], "--tenant", tenant.name, "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert {"event", "at", "actor"} <= set(history[-1]) and (history[-1]["event"], history[-1]["actor"]) == ("restored", "cli")


def test_log_entries_of_the_past_keep_their_time(svc, store, planted) -> None:
    from core.retrieval import entry

    results = svc.search_memories(store.id, "alpha", min_similarity=0.1, log=False)
    when = datetime.now(UTC) - timedelta(days=3)
    svc.record_retrieval(
        entry(
            store=store,
            query="alpha",
            params=SearchParams(min_similarity=0.1),
            results=results,
            missed=[],
            interface="api",
            actor="support agent",
            key_id=None,
            key_name="support agent",
            latency_ms=12.5,
            at=when,
        )
    )
    logged = latest(svc, store)
    assert (logged.at, logged.interface, logged.latency_ms) == (when, "api", 12.5)


def test_entries_made_elsewhere_keep_their_time_and_caller_and_filter_by_caller(svc, store) -> None:
    svc.add_memory(store.id, "tea green tea")
    svc.search_memories(store.id, "tea", min_similarity=0.1)
    made = latest(svc, store)
    week_ago = datetime.now(UTC) - timedelta(days=7)
    carried = [replace(made, id=uuid4(), at=week_ago - timedelta(hours=n), interface="api", key_name="support-bot") for n in range(3)]
    assert svc.record_retrievals(carried) == 3
    assert svc.retrieval_callers(store.id) == [("support-bot", 3), ("python", 1)]
    assert [e.at for e in svc.retrievals(store.id, caller="support-bot").entries] == [e.at for e in carried]
    assert svc.retrievals(store.id, caller="python").total == 1
    assert svc.retrievals(store.id, since=datetime.now(UTC) - timedelta(days=1)).total == 1


def test_contents_at_gives_the_text_a_memory_had_when_a_search_returned_it(svc, store) -> None:
    edited, deleted = svc.add_memories(store.id, [NewMemory("Lives in Lyon"), NewMemory("Drinks tea")])
    then = datetime.now(UTC)
    svc.update_memory(edited.id, content="Lives in Paris")
    svc.delete_memory(deleted.id)
    later = svc.add_memory(store.id, "Born after")
    assert svc.contents_at([edited.id, deleted.id, later.id], then) == {edited.id: "Lives in Lyon", deleted.id: "Drinks tea"}
    assert svc.contents_at([edited.id], datetime.now(UTC)) == {edited.id: "Lives in Paris"}


def test_contents_at_reads_a_memory_brought_in_with_an_earlier_date_from_the_start_of_its_record(svc, store) -> None:
    """An imported memory (or the demo's) is recorded from its import on, but says it was created
    before: a search logged in between returned the text its record begins with."""
    now = datetime.now(UTC)
    old = svc.add_memory(store.id, "Speaks Basque", created_at=now - timedelta(days=30))
    kept = svc.add_memory(store.id, "Reads Greek", created_at=now - timedelta(days=30))
    svc.update_memory(old.id, content="Speaks Basque and Catalan")
    svc.delete_memory(kept.id)
    week_ago, before_both = now - timedelta(days=7), now - timedelta(days=40)
    assert svc.contents_at([old.id, kept.id], week_ago) == {old.id: "Speaks Basque", kept.id: "Reads Greek"}
    assert svc.contents_at([old.id, kept.id], before_both) == {}


def test_a_search_with_an_unnamed_key_is_logged_under_its_interface_and_found_by_that_caller(db, svc, store, tenant) -> None:
    """A key made without --name (as README's example makes one) has the empty name: its searches
    are the caller "api", as the Retrievals table shows them, and filtering by that caller finds
    them (the filter once compared with the empty name and refused it)."""
    from core import admin
    from core.service import MemoryService

    svc.add_memory(store.id, "tea green tea")
    _, secret = admin.create_key(db, tenant.id, store_id=store.id)
    keyed = MemoryService.for_key(db, secret, interface="api")
    keyed.search_memories(store.id, "tea", min_similarity=0.1)
    made = latest(svc, store)
    assert made.key_name is None
    svc.record_retrievals([replace(made, id=uuid4(), key_name="")])  # as entries logged before were
    assert dict(svc.retrieval_callers(store.id)) == {"api": 2}
    assert svc.retrievals(store.id, caller="api").total == 2
