"""The seed's search semantics: threshold, limit, expiry, access counting; and the real model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core import NewMemory


def test_threshold_limit_and_order(svc, store) -> None:
    svc.add_memories(
        store.id,
        [
            NewMemory("window seat on long flights"),
            NewMemory("window seat on trains"),
            NewMemory("window cleaning schedule"),
            NewMemory("quarterly tax report"),
        ],
    )
    everything = svc.search_memories(store.id, "window seat flights", limit=10, min_similarity=-1, record_access=False)
    sims = [r.similarity for r in everything]
    assert sims == sorted(sims, reverse=True)
    assert everything[0].memory.content == "window seat on long flights"
    cut = sims[1]
    above = svc.search_memories(store.id, "window seat flights", limit=10, min_similarity=cut, record_access=False)
    assert [r.similarity for r in above] == [s for s in sims if s >= cut]
    assert len(svc.search_memories(store.id, "window seat flights", limit=1, min_similarity=-1, record_access=False)) == 1


def test_expired_and_archived_memories_are_not_returned(svc, store) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    future = datetime.now(UTC) + timedelta(days=1)
    svc.add_memories(
        store.id,
        [
            NewMemory("hotel in Tokyo this week", expires_at=past),
            NewMemory("hotel in Tokyo next week", expires_at=future),
            NewMemory("hotel in Tokyo last year", archived=True),
        ],
    )
    results = svc.search_memories(store.id, "hotel in Tokyo", limit=10, min_similarity=-1)
    assert [r.memory.content for r in results] == ["hotel in Tokyo next week"]


def test_search_counts_accesses_unless_told_not_to(svc, store) -> None:
    hit, miss = svc.add_memories(store.id, [NewMemory("likes green tea"), NewMemory("owns a red bicycle")])
    svc.search_memories(store.id, "green tea", limit=1, min_similarity=0.5)
    svc.search_memories(store.id, "green tea", limit=1, min_similarity=0.5)
    after = svc.get_memory(hit.id)
    assert after.access_count == 2 and after.last_accessed is not None
    assert svc.get_memory(miss.id).access_count == 0
    svc.search_memories(store.id, "green tea", limit=1, min_similarity=0.5, record_access=False)
    assert svc.get_memory(hit.id).access_count == 2


def test_type_and_source_filters(svc, store) -> None:
    svc.add_memories(
        store.id,
        [
            NewMemory("coffee with oat milk", memory_type="preference", source="chat"),
            NewMemory("coffee with Sam on Friday", memory_type="event", source="calendar"),
        ],
    )
    by_type = svc.search_memories(store.id, "coffee", min_similarity=-1, memory_types=["event"], record_access=False)
    by_source = svc.search_memories(store.id, "coffee", min_similarity=-1, sources=["chat"], record_access=False)
    assert [r.memory.memory_type for r in by_type] == ["event"]
    assert [r.memory.source for r in by_source] == ["chat"]


def test_a_full_limit_comes_back_when_the_store_has_enough_live_memories(svc, store) -> None:
    svc.add_memories(store.id, [NewMemory(f"note number {i} about gardening") for i in range(40)])
    assert len(svc.search_memories(store.id, "gardening", limit=25, min_similarity=-1, record_access=False)) == 25


@pytest.fixture
def minilm_store(svc, user):
    return svc.get_or_create_store(user.id, "semantic", embedding_model="all-MiniLM-L6-v2")


def test_local_model_finds_paraphrases_above_the_seed_threshold(svc, minilm_store) -> None:
    svc.add_memories(
        minilm_store.id,
        [
            NewMemory("Alice is allergic to peanuts."),
            NewMemory("Alice's flight to Lisbon leaves on Friday morning."),
            NewMemory("Alice prefers vegetarian restaurants."),
        ],
    )
    results = svc.search_memories(minilm_store.id, "Which nuts must Alice avoid?", limit=3, min_similarity=0.3, record_access=False)
    assert results[0].memory.content == "Alice is allergic to peanuts."
    strict = svc.search_memories(minilm_store.id, "quantum chromodynamics lecture", min_similarity=0.7, record_access=False)
    assert strict == []


def test_a_model_change_while_the_query_is_embedded_is_searched_with_the_new_model(svc, store, monkeypatch) -> None:
    """Search reads the store's model, embeds the query, then searches: a re-embed committed in
    between used to compare a vector of the old model with vectors of the new one."""
    from core.embeddings import get_embedder, use_embedder
    from core.embeddings.hashing import HashingEmbedder

    class Reversed(HashingEmbedder):  # another 384-d model: only the model check can tell them apart
        model = "all-MiniLM-L6-v2"

        def _embed(self, texts):
            return super()._embed([t[::-1] for t in texts])

    use_embedder("all-MiniLM-L6-v2", lambda dim: Reversed())
    try:
        svc.add_memories(store.id, [NewMemory("alpha beta"), NewMemory("gamma delta")])
        hashing = get_embedder("test-hashing")
        original = hashing._embed

        def embed_then_reembed_the_store(texts):
            monkeypatch.setattr(hashing, "_embed", original)
            vectors = original(texts)
            svc.set_store_model(store.id, "all-MiniLM-L6-v2", reembed=True)
            return vectors

        monkeypatch.setattr(hashing, "_embed", embed_then_reembed_the_store)
        results = svc.search_memories(store.id, "alpha beta", limit=2, min_similarity=-1)
        assert results[0].memory.content == "alpha beta"
        assert results[0].similarity == pytest.approx(1.0, abs=1e-5)  # the same text under the same (new) model
    finally:
        use_embedder("all-MiniLM-L6-v2", None)


@pytest.mark.parametrize("memory_type", ["fact", "no-such-type"])
def test_a_big_stores_search_forces_custom_plans_for_itself_only(svc, store, memory_type) -> None:
    """The HNSW query is planned for its own store each time (plan_cache_mode), and puts the
    setting back as it runs, even when nothing matches: the statements after it in the
    transaction (the retrieval log's INSERT) keep their cached plans."""
    from sqlalchemy import text

    from core.search import Filters, SearchTuning
    from core.sql import search as sql
    from core.sql import stores

    svc.add_memory(store.id, "Ana's passport expires in March")
    vector = svc.embed_query(store, "passport")
    with svc.transaction() as conn:
        setting = text("SELECT current_setting('plan_cache_mode'), current_setting('hnsw.ef_search')")
        before = conn.execute(setting).one()[0]
        hits = sql.vector_candidates(conn, stores.fetch(conn, store.id), vector, 5, Filters((memory_type,)), SearchTuning(exact_max_rows=0))
        assert len(hits) == (memory_type == "fact")
        assert tuple(conn.execute(setting).one()) == (before, str(SearchTuning().ef_search))
        sql.vector_candidates(
            conn, stores.fetch(conn, store.id), vector, 5, Filters(), SearchTuning(exact_max_rows=0), custom_plans_after=True
        )
        assert conn.execute(setting).one()[0] == "force_custom_plan"  # hybrid's statements after it
