"""Superseded memories: which end of an `updates` or `contradicts` relationship is stale, and what
search does with stale memories (keep, demote, skip), the debugger agreeing with search."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from core import NewMemory
from core.errors import InvalidInput
from core.explain import BEYOND_LIMIT, RETURNED, SUPERSEDED
from core.search import SearchParams
from core.supersede import Link, settle, stale, supersession

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def link(kind: str, source_days: int, target_days: int, *, source_live: bool = True, target_live: bool = True) -> Link:
    return Link(uuid4(), uuid4(), kind, T0 + timedelta(days=source_days), T0 + timedelta(days=target_days), source_live, target_live)


def test_updates_points_from_the_newer_memory_to_the_older() -> None:
    forward = link("updates", 10, 0)
    s = supersession(forward)
    assert (s.older_id, s.newer_id, s.verb) == (forward.target_id, forward.source_id, "updated")
    backdated = link("updates", 0, 10)  # the relationship says which is newer, whatever the dates
    assert supersession(backdated).older_id == backdated.target_id


def test_contradicts_makes_the_older_of_the_two_stale() -> None:
    newer_source = link("contradicts", 10, 0)
    older_source = link("contradicts", 0, 10)
    same_time = link("contradicts", 5, 5)
    assert supersession(newer_source).older_id == newer_source.target_id
    assert supersession(older_source).older_id == older_source.source_id
    assert supersession(older_source).verb == "contradicted"
    assert supersession(same_time).older_id == same_time.target_id


def test_a_memory_is_stale_only_while_what_supersedes_it_is_live() -> None:
    live = link("updates", 10, 0)
    archived = link("updates", 10, 0, source_live=False)
    found = stale([live, archived])
    assert list(found) == [live.target_id]
    old = uuid4()
    first = Link(uuid4(), old, "updates", T0 + timedelta(days=5), T0, True, True)
    latest = Link(uuid4(), old, "contradicts", T0 + timedelta(days=9), T0, True, True)
    assert stale([first, latest])[old].newer_id == latest.source_id  # the newest supersession names it


def test_settle_keeps_demotes_or_skips_in_exact_orders() -> None:
    a, b, c, d = (uuid4() for _ in range(4))
    ranked = ["a", "b", "c", "d"]
    ids = [a, b, c, d]
    stale_ids = {a: object(), c: object()}
    assert settle(ranked, ids, stale_ids, "keep") == ["a", "b", "c", "d"]
    assert settle(ranked, ids, stale_ids, "demote") == ["b", "d", "a", "c"]
    assert settle(ranked, ids, stale_ids, "skip") == ["b", "d"]
    assert settle(ranked, ids, {}, "skip") == ranked


def test_search_params_refuse_an_unknown_policy() -> None:
    with pytest.raises(InvalidInput, match="superseded must be one of keep, demote, skip"):
        SearchParams(superseded="hide").checked()


# Search and its explanation on a real store (the hashing embedder: similarity is shared words) -----


@pytest.fixture
def planted(svc, store):
    """Query "alpha beta gamma delta": old 1.0, close 0.75, new 0.5, far 0.25; new updates old."""
    made = svc.add_memories(
        store.id,
        [
            NewMemory("alpha beta gamma delta", created_at=T0),
            NewMemory("alpha beta gamma xray", created_at=T0 + timedelta(days=1)),
            NewMemory("alpha beta yankee zulu", created_at=T0 + timedelta(days=2)),
            NewMemory("alpha quebec romeo sierra", created_at=T0 + timedelta(days=3)),
        ],
    )
    old, close, new, far = made
    svc.add_relationship(new.id, old.id, "updates", 0.9)
    return {"old": old, "close": close, "new": new, "far": far}


def names(planted, results) -> list[str]:
    by_id = {m.id: name for name, m in planted.items()}
    return [by_id[r.memory.id] for r in results]


@pytest.mark.parametrize(
    "mode, policy, limit, expected",
    [
        ("vector", "keep", 4, ["old", "close", "new", "far"]),
        ("vector", "demote", 4, ["close", "new", "far", "old"]),
        ("vector", "skip", 4, ["close", "new", "far"]),
        ("vector", "demote", 2, ["close", "new"]),
        ("hybrid", "demote", 4, ["close", "new", "far", "old"]),
        ("weighted", "skip", 2, ["close", "new"]),
    ],
)
def test_search_applies_the_policy_after_ranking(svc, store, planted, mode, policy, limit, expected) -> None:
    results = svc.search_memories(
        store.id, "alpha beta gamma delta", limit, 0.1, mode=mode, superseded=policy, record_access=False, weights=None
    )
    assert names(planted, results) == expected
    ex = svc.explain_search(store.id, "alpha beta gamma delta", SearchParams(limit, 0.1, mode, superseded=policy))
    assert names(planted, ex.results) == expected  # the debugger agrees with search


def test_the_explanation_says_why_a_stale_memory_moved_or_left(svc, store, planted) -> None:
    old = planted["old"].id
    skipped = svc.explain_search(store.id, "alpha beta gamma delta", SearchParams(4, 0.1, superseded="skip"))
    assert (skipped.why_not(old).status, skipped.why_not(old).reason) == (
        SUPERSEDED,
        "a newer memory updates it, and this search leaves superseded memories out",
    )
    assert skipped.why_not(old) in skipped.near_misses()
    demoted = svc.explain_search(store.id, "alpha beta gamma delta", SearchParams(2, 0.1, superseded="demote"))
    assert demoted.why_not(old).status == BEYOND_LIMIT
    assert demoted.why_not(old).reason == "moved down to 4th because a newer memory updates it; the limit is 2"
    kept = svc.explain_search(store.id, "alpha beta gamma delta", SearchParams(2, 0.1))
    assert kept.why_not(old).status == RETURNED
    assert kept.superseded[old].newer_id == planted["new"].id  # marked, whatever the policy


def test_archiving_the_newer_memory_makes_the_older_current_again(svc, store, planted) -> None:
    assert list(svc.superseded_among([m.id for m in planted.values()])) == [planted["old"].id]
    svc.set_archived([planted["new"].id], True)
    assert svc.superseded_among([m.id for m in planted.values()]) == {}
    results = svc.search_memories(store.id, "alpha beta gamma delta", 4, 0.1, superseded="skip", record_access=False)
    assert names(planted, results) == ["old", "close", "far"]
    pair = svc.supersessions(store.id)[0]  # the Quality page still lists the pair, with the newer one's status
    assert (pair.older_id, pair.newer_id, pair.newer_live) == (planted["old"].id, planted["new"].id, False)


def test_contradicting_memories_mark_the_older_one(svc, store) -> None:
    early, late = svc.add_memories(
        store.id, [NewMemory("prefers aisle seats", created_at=T0), NewMemory("prefers window seats", created_at=T0 + timedelta(days=30))]
    )
    svc.add_relationship(early.id, late.id, "contradicts", 0.7)  # pointing from the older: still the older is stale
    found = svc.superseded_among([early.id, late.id])
    assert list(found) == [early.id] and found[early.id].newer_id == late.id and found[early.id].verb == "contradicted"


def test_search_counts_access_only_for_what_it_returns(svc, store, planted) -> None:
    svc.search_memories(store.id, "alpha beta gamma delta", 1, 0.1, superseded="demote")
    assert svc.get_memory(planted["close"].id).access_count == 1
    assert svc.get_memory(planted["old"].id).access_count == 0
