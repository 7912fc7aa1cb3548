"""Text, hybrid and weighted search, maximal marginal relevance, and the ranking functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from core import InvalidInput, NewMemory
from core.ranking import Weights, maximal_marginal_relevance, recency, weighted_scores


def test_recency_halves_every_half_life_and_weighted_score_is_a_weighted_mean() -> None:
    assert recency(np.array([0, 10, 20]), 10).tolist() == [1.0, 0.5, 0.25]
    w = Weights(relevance=2, importance=1, recency=1, half_life_hours=10)
    score = weighted_scores(np.array([0.5, -0.3]), np.array([1.0, 0.0]), np.array([0.5, 1.0]), w)
    assert score.tolist() == pytest.approx([(2 * 0.5 + 1 + 0.5) / 4, (0 + 0 + 1) / 4])
    with pytest.raises(InvalidInput, match="weight importance"):
        Weights(importance=-1)


def test_mmr_prefers_a_different_second_result_over_a_duplicate() -> None:
    vectors = np.array([[1, 0], [0.99, 0.01], [0, 1]], dtype=float)
    relevance = np.array([1.0, 0.95, 0.6])
    assert [i for i, _ in maximal_marginal_relevance(relevance, vectors, 2, lambda_=0.5)] == [0, 2]
    assert [i for i, _ in maximal_marginal_relevance(relevance, vectors, 2, lambda_=1.0)] == [0, 1]


@pytest.fixture
def memories(svc, store):
    now = datetime.now(UTC)
    return svc.add_memories(
        store.id,
        [
            NewMemory("Booking reference QX7-PLM for the Lisbon flight", importance=0.3),
            NewMemory("Lives in Berlin near the park", importance=0.5, created_at=now - timedelta(days=400)),
            NewMemory("Lives in Lisbon near the river", importance=0.5, created_at=now - timedelta(days=2)),
            NewMemory("Lives in Lisbon near the river now", importance=0.9, created_at=now - timedelta(days=1)),
        ],
    )


def test_text_mode_finds_a_rare_token_and_reports_its_text_rank(svc, store, memories) -> None:
    results = svc.search_memories(store.id, "QX7-PLM", mode="text", record_access=False)
    assert results[0].memory.id == memories[0].id
    assert results[0].breakdown.text_rank > 0 and results[0].breakdown.text_position == 1


def test_hybrid_returns_text_matches_the_vector_threshold_would_cut(svc, store, memories) -> None:
    vector_only = svc.search_memories(store.id, "QX7-PLM reference", min_similarity=0.99, record_access=False)
    hybrid = svc.search_memories(store.id, "QX7-PLM reference", min_similarity=0.99, mode="hybrid", record_access=False)
    assert vector_only == []
    assert hybrid[0].memory.id == memories[0].id and hybrid[0].breakdown.origin == "text"


def test_weighted_prefers_the_recent_important_memory_among_similar_ones(svc, store, memories) -> None:
    weighted = svc.search_memories(
        store.id,
        "where does the user live",
        min_similarity=-1,
        mode="weighted",
        weights=Weights(relevance=1, importance=1, recency=1),
        record_access=False,
        limit=3,
    )
    assert weighted[0].memory.id == memories[3].id
    b = weighted[0].breakdown
    assert (b.importance, b.final) == (0.9, weighted[0].score) and 0 < b.recency <= 1
    assert weighted[-1].memory.id != memories[3].id


def test_mmr_drops_the_near_duplicate(svc, store, memories) -> None:
    plain = svc.search_memories(store.id, "lives in Lisbon near the river", min_similarity=-1, limit=2, record_access=False)
    diverse = svc.search_memories(
        store.id, "lives in Lisbon near the river", min_similarity=-1, limit=2, mmr_lambda=0.3, record_access=False
    )
    assert {r.memory.id for r in plain} == {memories[2].id, memories[3].id}
    assert len({r.memory.id for r in diverse} & {memories[2].id, memories[3].id}) == 1
    assert all(r.breakdown.mmr is not None for r in diverse)


def test_every_mode_skips_archived_and_expired_and_an_unknown_mode_is_refused(svc, store, memories) -> None:
    svc.set_archived([memories[0].id])
    svc.expire_memories([memories[3].id])
    for mode in ("vector", "text", "hybrid", "weighted"):
        ids = {
            r.memory.id for r in svc.search_memories(store.id, "QX7-PLM Lisbon river", min_similarity=-1, mode=mode, record_access=False)
        }
        assert not ids & {memories[0].id, memories[3].id}, mode
    with pytest.raises(InvalidInput, match="unknown search mode 'magic'"):
        svc.search_memories(store.id, "q", mode="magic")
