"""The retrieval debugger's explanations: exact statuses and reasons, and always the service's answer."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from core import NewMemory, NotFound
from core.embeddings import get_embedder
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
    ordinal,
)
from core.explain import below as _below
from core.ranking import Weights
from core.search import Filters, SearchParams

QUERY = "alpha beta gamma"


def cosine(a: str, b: str) -> float:
    e = get_embedder("test-hashing")
    return float(np.dot(e.embed_one(a), e.embed_one(b)))


@pytest.fixture
def planted(svc, store):
    """One memory for each reason a memory is not returned."""
    past = datetime.now(UTC) - timedelta(hours=1)
    items = {
        "exact": NewMemory("alpha beta gamma", memory_type="fact", source="chat"),
        "close": NewMemory("alpha beta gamma delta", memory_type="fact", source="chat"),
        "third": NewMemory("alpha beta kappa", memory_type="fact", source="chat"),
        "far": NewMemory("alpha zeta eta theta iota", memory_type="fact", source="chat"),
        "unrelated": NewMemory("quarterly tax report", memory_type="fact", source="chat"),
        "expired": NewMemory("alpha beta gamma", expires_at=past),
        "archived": NewMemory("alpha beta gamma epsilon", archived=True),
        "event": NewMemory("alpha beta gamma lambda", memory_type="event", source="calendar"),
    }
    added = svc.add_memories(store.id, list(items.values()))
    return {name: m.id for name, m in zip(items, added)}


def test_every_memory_gets_its_exact_status_and_reason(svc, store, planted) -> None:
    params = SearchParams(limit=2, min_similarity=0.5, filters=Filters(memory_types=("fact",)))
    ex = svc.explain_search(store.id, QUERY, params)
    status = {name: ex.why_not(i).status for name, i in planted.items()}
    assert status == {
        "exact": RETURNED,
        "close": RETURNED,
        "third": BEYOND_LIMIT,
        "far": BELOW_THRESHOLD,
        "unrelated": BELOW_THRESHOLD,
        "expired": EXPIRED,
        "archived": ARCHIVED,
        "event": FILTERED,
    }
    third, far = ex.why_not(planted["third"]), ex.why_not(planted["far"])
    assert third.rank == 3 and third.reason == "ranked 3rd; the limit is 2"
    assert far.similarity == pytest.approx(cosine(QUERY, "alpha zeta eta theta iota"), abs=1e-5)
    assert far.rank is None and far.reason == f"similarity {far.similarity:.2f} is below the threshold 0.50"
    assert ex.why_not(planted["event"]).reason == "its type is not among the selected types"
    assert ex.why_not(planted["archived"]).reason == "it is archived, and archived memories are never returned"
    assert ex.why_not(planted["expired"]).reason.startswith("it expired on ")
    assert ex.why_not(planted["exact"]).reason.startswith("returned 1st of 2, score ")
    assert [r.memory.id for r in ex.results] == [planted["exact"], planted["close"]]
    assert [c.memory.id for c in ex.near_misses(2)] == [planted["third"], planted["far"]]
    assert {c.status for c in ex.near_misses(100)} <= {BEYOND_LIMIT, BELOW_THRESHOLD}
    assert len(ex.candidates) == len(planted) and ex.candidates[0].memory.id == planted["exact"]


def test_source_filter_and_text_mode_reasons(svc, store, planted) -> None:
    by_source = svc.explain_search(store.id, QUERY, SearchParams(limit=5, min_similarity=0.0, filters=Filters(sources=("calendar",))))
    assert [r.memory.id for r in by_source.results] == [planted["event"]]
    assert by_source.why_not(planted["exact"]).reason == "its source is not among the selected sources"

    text = svc.explain_search(store.id, "alpha iota", SearchParams(limit=10, min_similarity=0.99, mode="text"))
    unrelated = text.why_not(planted["unrelated"])
    assert (unrelated.status, unrelated.text_match, unrelated.text_rank) == (NO_TEXT_MATCH, False, 0.0)
    assert unrelated.reason == "it does not match the query's words (text search matches words, not meaning)"
    # Text matches need no threshold: "far" holds both words and is returned first despite its low
    # similarity; any query word may match (BM25), so the memories holding only "alpha" follow.
    far = text.why_not(planted["far"])
    assert far.status == RETURNED and far.text_rank > 0 and far.similarity < 0.99
    assert text.results[0].memory.id == planted["far"] and text.results[0].breakdown.terms.keys() == {"alpha", "iota"}
    assert {r.memory.id for r in text.results[1:]} == {planted[n] for n in ("exact", "close", "third", "event")}


def test_the_reason_shows_enough_decimals_to_see_the_gap() -> None:
    assert _below(0.62, 0.7) == "similarity 0.62 is below the threshold 0.70"
    assert _below(0.596, 0.6) == "similarity 0.596 is below the threshold 0.60"
    assert _below(0.59996, 0.6) == "similarity 0.59996 is below the threshold 0.60"
    assert _below(0.7049, 0.705) == "similarity 0.7049 is below the threshold 0.705"


def test_mmr_sets_aside_a_duplicate(svc, store) -> None:
    a, dup, c, d = svc.add_memories(
        store.id,
        [
            NewMemory("alpha beta gamma"),
            NewMemory("alpha beta gamma"),
            NewMemory("alpha beta delta"),
            NewMemory("alpha epsilon zeta"),
        ],
    )
    params = SearchParams(limit=2, min_similarity=0.3, mmr_lambda=0.3)
    ex = svc.explain_search(store.id, QUERY, params)
    returned = svc.search_memories(store.id, QUERY, limit=2, min_similarity=0.3, mmr_lambda=0.3, record_access=False)
    assert [r.memory.id for r in ex.results] == [r.memory.id for r in returned]
    assert len({a.id, dup.id} & {r.memory.id for r in returned}) == 1
    aside = next(x for x in (ex.why_not(a.id), ex.why_not(dup.id)) if not x.returned)
    assert aside.status == SET_ASIDE
    assert (
        aside.reason
        == f"diversification (MMR) moved it from 2nd to {ordinal(aside.rank)}, past the limit of 2, for resembling results above it"
    )


def _random_store(svc, store, n: int = 90) -> None:
    rng = random.Random(7)
    words = "apple river stone cloud amber piano violet harbor candle meadow falcon copper lantern orchid".split()
    now = datetime.now(UTC)
    svc.add_memories(
        store.id,
        [
            NewMemory(
                " ".join(rng.sample(words, rng.randint(2, 6))) + f" note{i}",
                memory_type=rng.choice(["fact", "event"]),
                importance=round(rng.random(), 3),
                created_at=now - timedelta(hours=rng.randint(1, 5000)),
            )
            for i in range(n)
        ],
    )


@pytest.mark.parametrize("mode", ["vector", "text", "hybrid", "weighted"])
@pytest.mark.parametrize("mmr", [None, 0.5])
def test_results_equal_what_search_returns_in_every_mode(svc, store, mode, mmr) -> None:
    _random_store(svc, store)
    weights = Weights(relevance=1.0, importance=0.5, recency=0.3, half_life_hours=200)
    for limit, threshold in ((5, 0.1), (12, 0.3)):
        params = SearchParams(limit=limit, min_similarity=threshold, mode=mode, weights=weights, mmr_lambda=mmr)
        ex = svc.explain_search(store.id, "apple river candle", params)
        got = svc.search_memories(
            store.id,
            "apple river candle",
            limit=limit,
            min_similarity=threshold,
            mode=mode,
            weights=weights,
            mmr_lambda=mmr,
            record_access=False,
            query_embedding=ex.vector,
        )
        assert [r.memory.id for r in ex.results] == [r.memory.id for r in got]
        assert [r.score for r in ex.results] == pytest.approx([r.score for r in got], abs=1e-6)
        ranked = [c for c in ex.candidates if c.rank is not None]
        assert [c.rank for c in ranked] == list(range(1, len(ranked) + 1))
        assert [c.memory.id for c in ranked[:limit]] == [r.memory.id for r in got]
        assert all(c.status == RETURNED for c in ranked[:limit]) and all(not c.returned for c in ranked[limit:])


def test_only_the_candidate_pool_is_ranked_in_weighted_mode(svc, store) -> None:
    _random_store(svc, store)
    ex = svc.explain_search(store.id, "apple river candle", SearchParams(limit=5, min_similarity=-1, mode="weighted"))
    outside = [c for c in ex.candidates if c.vector_position > 50]
    assert outside and all(c.status == NOT_A_CANDIDATE and c.rank is None for c in outside)
    assert outside[0].reason.startswith(f"it passes the threshold but is the {ordinal(outside[0].vector_position)} nearest")
    assert all(c.rank is not None for c in ex.candidates if c.vector_position <= 50)


def test_explaining_never_counts_an_access_and_never_sees_another_tenant(svc, store, planted, other) -> None:
    before = {m.id: (m.access_count, m.last_accessed) for m in svc.get_memories(planted.values())}
    ex = svc.explain_search(store.id, QUERY, SearchParams(limit=5, min_similarity=0.0, mode="hybrid"))
    assert {m.id: (m.access_count, m.last_accessed) for m in svc.get_memories(planted.values())} == before
    other_svc, other_store = other
    secret = other_svc.list_memories(other_store.id).items[0]
    assert secret.id not in {c.memory.id for c in ex.candidates}
    with pytest.raises(NotFound):
        ex.why_not(secret.id)
    with pytest.raises(NotFound):
        svc.explain_search(other_store.id, QUERY, SearchParams())


def test_a_failed_evaluation_case_is_explained_with_the_runs_own_search(svc, store, planted) -> None:
    from core.evaluation import EvalCase, ModeConfig, failed_cases
    from core.explorer.debugger import explain_case, metrics_frame

    cases = [EvalCase(QUERY, (planted["exact"],)), EvalCase(QUERY, (planted["far"], planted["expired"]))]
    (report,) = svc.evaluate(store.id, cases, [ModeConfig("strict", "vector", min_similarity=0.5)])
    assert set(metrics_frame([report])["metric"]) >= {"recall@1", "recall@10", "mrr", "ndcg@10"}
    (failed,) = failed_cases(report)
    assert failed.case is cases[1]
    expected, returned = explain_case(svc, store.id, failed, report.config)
    assert list(returned["id"]) == [str(r.memory.id) for r in failed.returned]
    assert list(expected["status"]) == [BELOW_THRESHOLD, EXPIRED]


@pytest.mark.parametrize("mode", ["vector", "text", "hybrid", "weighted"])
@pytest.mark.parametrize("mmr", [None, 0.5])
def test_memories_read_later_are_explained_as_those_read_at_once(svc, store, mode, mmr) -> None:
    """The explanation reads the first `detail` memories of its order at once and ranks plain
    vector and text search past them by position: with detail 3 every memory must come out as
    with everything read at once (rank, score, breakdown, status, reason)."""
    _random_store(svc, store)
    for threshold in (0.1, 0.3):
        params = SearchParams(limit=4, min_similarity=threshold, mode=mode, mmr_lambda=mmr)
        now = datetime.now(UTC)  # recency (weighted mode) is measured from it
        full = svc.explain_search(store.id, "apple river candle", params, now=now)
        lazy = svc.explain_search(store.id, "apple river candle", params, query_embedding=full.vector, now=now, detail=3)
        assert len(lazy.memories) <= 3 + params.pool * 2
        assert list(lazy.candidates) == list(full.candidates)
        assert lazy.counts() == full.counts() and lazy.near_misses(7) == full.near_misses(7)
        assert [r.memory.id for r in lazy.results] == [r.memory.id for r in full.results]


@pytest.mark.parametrize("mode", ["vector", "text", "hybrid"])
def test_the_pickers_choices_are_the_candidates_in_order_with_their_contents_start(svc, store, planted, mode) -> None:
    """The Search page's picker labels the best candidates from choices(): the same memories,
    ranks and statuses as the candidates (excluded ones too), with the content's start read
    without the memory."""
    _random_store(svc, store)
    (long,) = svc.add_memories(store.id, [NewMemory("apple river candle " + "word " * 200)])
    params = SearchParams(limit=4, min_similarity=0.2, mode=mode, filters=Filters(memory_types=("fact",)))
    ex = svc.explain_search(store.id, "apple river candle", params, detail=3)
    choices = ex.choices(200)
    candidates = ex.candidates[:200]
    assert {ARCHIVED, EXPIRED, FILTERED} <= {c.status for c in choices}
    assert [(c.id, c.rank, c.status) for c in choices] == [(c.memory.id, c.rank, c.status) for c in candidates]
    for choice, candidate in zip(choices, candidates):
        assert candidate.memory.content.startswith(choice.content)
        assert choice.cut == (len(candidate.memory.content) > len(choice.content))
    assert next(c for c in choices if c.id == long.id).cut
