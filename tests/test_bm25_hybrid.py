"""BM25 text search, the fused hybrid ranking, conversations and dates (issue 14), on small
hand-made cases with exact expected orders."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import numpy as np
import pytest
from sqlalchemy import text

from core.bm25 import Bm25, Terms, choose, idf
from core.dates import dates_in
from core.db import Database
from core.explain import _around
from core.fields import NewMemory
from core.hybrid import SESSION_REACH, Around, Pool, Signals, conversation, rank
from core.models import Memory
from core.ranking import Fusion
from core.search import Filters, SearchParams, SearchTuning
from core.service.base import embed_texts
from core.sql import hybrid as hsql
from core.sql import search as ssql

T0 = datetime(2023, 5, 7, 13, 0, tzinfo=UTC)


def _text(svc, store, query: str, limit: int = 10) -> list[UUID]:
    return [r.memory.id for r in svc.search_memories(store.id, query, limit, 0.0, mode="text", record_access=False, log=False)]


# BM25 -----------------------------------------------------------------------------------------


def test_idf_weighs_rare_terms_more_and_the_budget_lets_the_rarest_drive() -> None:
    assert idf(100, 1) > idf(100, 10) > idf(100, 90) > 0
    found = choose([("zebra", 1), ("talk", 60), ("walk", 30), ("absent", 0)], 100, 500, budget=40)
    assert found.lexemes == ["talk", "walk", "zebra"]  # the absent term is dropped
    assert found.drivers == ["walk", "zebra"] and found.skipped == ["talk"]  # 1 + 30 <= 40 < 1 + 30 + 60
    assert found.average_length == 5.0


def test_any_query_word_may_match(svc, store) -> None:
    zebra, _ = svc.add_memories(store.id, [NewMemory("I saw a zebra at the zoo"), NewMemory("We went hiking")])
    # websearch_to_tsquery's AND found nothing here: most of the question's words are in no memory
    assert _text(svc, store, "What animal with stripes did Caroline see at the zoo yesterday?") == [zebra.id]


def test_stop_words_are_ignored_and_words_are_stemmed(svc, store) -> None:
    running, _ = svc.add_memories(store.id, [NewMemory("She runs every morning"), NewMemory("The weather")])
    assert _text(svc, store, "the of and is") == []  # only stop words: no term at all
    assert _text(svc, store, "running") == [running.id]  # run = runs = running


def test_rare_terms_weigh_more(svc, store) -> None:
    common = [NewMemory(f"coffee note {i}") for i in range(6)]
    rare, *_ = svc.add_memories(store.id, [NewMemory("a saxophone lesson"), *common])
    ranked = _text(svc, store, "coffee saxophone")
    assert ranked[0] == rare.id and len(ranked) == 7  # one rare word beats one common word


def test_term_frequency_saturates_and_each_term_shows_its_share(svc, store) -> None:
    once, twice = svc.add_memories(store.id, [NewMemory("piano"), NewMemory("piano piano")])
    svc.add_memories(store.id, [NewMemory("guitar"), NewMemory("drums")])
    results = svc.search_memories(store.id, "piano", 5, 0.0, mode="text", record_access=False, log=False)
    assert [r.memory.id for r in results] == [twice.id, once.id]
    first, second = (r.breakdown.terms["piano"] for r in results)
    assert first / second == pytest.approx(2 * 2.2 / (2 + 1.2) / (2.2 / (1 + 1.2)))  # k1 = 1.2: 1.375, not 2
    assert results[0].breakdown.text_rank == pytest.approx(first)


def test_document_frequencies_follow_inserts_updates_and_deletes(db: Database, svc, store) -> None:
    def df(lexeme: str) -> int:
        with db.tenant(svc.tenant_id) as conn:
            found = conn.scalar(text("SELECT df FROM memory_lexemes WHERE store_id = :s AND lexeme = :l"), {"s": store.id, "l": lexeme})
            return int(found or 0)

    a, b = svc.add_memories(store.id, [NewMemory("violin lesson"), NewMemory("violin concert")])
    assert (df("violin"), df("lesson"), df("concert")) == (2, 1, 1)
    svc.update_memory(a.id, content="cello lesson")
    assert (df("violin"), df("cello")) == (1, 1)
    svc.delete_memory(b.id)
    assert (df("violin"), df("concert"), df("cello")) == (0, 0, 1)


def test_document_frequencies_match_a_recount_after_many_deletes_at_once(db: Database, svc, store) -> None:
    """Deleting many memories in one call (an import taken back) leaves each word's count, and
    the store's total, exactly what counting the memories that remain gives."""
    words = ["harbour", "lantern", "meadow", "quarry", "saddle", "thicket", "walnut", "zephyr"]
    made = svc.add_memories(store.id, [NewMemory(f"{words[i % 8]} {words[(i * 3) % 8]} note{i}") for i in range(150)])
    svc.delete_memories([m.id for m in made[::2]] + [m.id for m in made[1:40:2]])

    def counts(sql: str) -> dict[str, int]:
        with db.tenant(svc.tenant_id) as conn:
            return {r[0]: int(r[1]) for r in conn.execute(text(sql), {"s": store.id})}

    kept = counts("SELECT lexeme, df FROM memory_lexemes WHERE store_id = :s")
    recount = counts(
        "SELECT l, count(*) FROM memories m, unnest(tsvector_to_array(m.content_tsv)) AS l WHERE m.store_id = :s GROUP BY l"
        " UNION ALL SELECT '', sum(length(content_tsv)) FROM memories WHERE store_id = :s"
    )
    assert kept == recount and sum(n for word, n in kept.items() if word.startswith("note")) == 150 - 75 - 20


def test_document_frequencies_are_per_store_and_invisible_to_other_tenants(db: Database, svc, store, other) -> None:
    other_svc, other_store = other
    other_svc.add_memories(other_store.id, [NewMemory("xylophone secret"), NewMemory("xylophone plan")])
    svc.add_memories(store.id, [NewMemory("xylophone")])
    with db.tenant(svc.tenant_id) as conn:
        rows = conn.execute(text("SELECT tenant_id, store_id, df FROM memory_lexemes WHERE lexeme = 'xylophon'")).all()
        assert [(r.tenant_id, r.store_id, r.df) for r in rows] == [(svc.tenant_id, store.id, 1)]
        with pytest.raises(Exception, match="permission denied"):
            conn.execute(text("UPDATE memory_lexemes SET df = 99"))


# Conversations ----------------------------------------------------------------------------------


def test_a_session_breaks_at_a_gap_and_candidates_share_it_within_reach() -> None:
    minute = 60 * 1_000_000
    chat = [(1, 0), (2, minute), (3, 2 * minute), (4, 40 * minute), (5, 41 * minute)]  # 3 -> 4: 38 minutes of silence
    mail = [(6, minute // 2)]
    around = conversation([chat, mail], [2, 5, 6, 1], window=1)
    assert around[2] == Around(around[2].session, True, (1,), (3,))
    assert around[1].session == around[2].session != around[5].session  # 1 and 2 share a session, 5 is after the gap
    assert around[5] == Around(5, True, (4,), ())
    assert around[6] == Around(6, False)  # alone in its source
    long_talk = [(i, i * minute) for i in range(100, 100 + SESSION_REACH + 2)]
    far = conversation([long_talk], [100, 100 + SESSION_REACH + 1], window=2)
    assert far[100].session != far[100 + SESSION_REACH + 1].session  # one session, but beyond reach
    near = conversation([long_talk], [100, 100 + SESSION_REACH], window=2)
    assert near[100].session == near[100 + SESSION_REACH].session


def test_search_reads_each_conversation_as_the_debugger_does(db: Database, svc, store) -> None:
    """Sessions are read at search time around the candidates (core.sql.hybrid); the debugger reads
    them from every memory of the store: the same answer on random conversations, after inserts
    between existing turns and deletes, with long sessions and gaps."""
    rng = random.Random(7)

    def turns(n: int) -> list[NewMemory]:
        return [
            NewMemory(
                f"turn {rng.random()}", source=rng.choice(["chat", "mail", None]), created_at=T0 + timedelta(minutes=rng.uniform(0, 3000))
            )
            for _ in range(n)
        ]

    written = svc.add_memories(store.id, turns(150))
    svc.add_memories(store.id, turns(90))
    svc.add_memories(
        store.id, [NewMemory(f"talk {i}", source="talk", created_at=T0 + timedelta(minutes=i)) for i in range(150)]
    )  # past reach
    for m in written[:30]:
        svc.delete_memory(m.id)
    vector = embed_texts(store, ["turn"])[0]
    nothing = Terms((), 0, 0.0)
    shared_sessions = neighbours = 0
    with db.tenant(svc.tenant_id) as conn:
        scan = ssql.scan(conn, store, vector, Filters(), nothing, Bm25())
        for _ in range(20):
            picked = np.array(sorted(rng.sample(range(len(scan)), rng.randint(1, 60))), dtype=np.int64)
            ids = [scan.id(int(i)) for i in picked]
            window = rng.randint(0, 3)
            read, _ = hsql.around_signals(conn, store, ids, window, vector, nothing, Bm25(), Filters())
            scanned = _around(scan, picked, window)
            sessions_read = {frozenset(c for c in ids if read[c].session == read[i].session) for i in ids}
            sessions_scanned = {frozenset(scan.id(c) for c in picked if scanned[c].session == scanned[i].session) for i in picked}
            assert sessions_read == sessions_scanned
            shared_sessions += sum(len(s) > 1 for s in sessions_read)
            for i in picked:
                a, b = read[scan.id(int(i))], scanned[int(i)]
                assert (a.shared, a.before, a.after) == (b.shared, tuple(map(scan.id, b.before)), tuple(map(scan.id, b.after)))
                neighbours += len(a.before) + len(a.after)
    assert shared_sessions > 20 and neighbours > 100  # the cases hold sessions and neighbours


def _memory(i: int, at: datetime = T0) -> Memory:
    return Memory(UUID(int=i), uuid4(), uuid4(), f"m{i}", "dialogue", None, 0.5, 0, None, None, {}, at, at)


def _signals(i: int, similarity: float, bm25: float = 0.0, at: datetime = T0) -> Signals:
    return Signals(_memory(i, at), similarity, bm25, {"t": bm25} if bm25 else {}, True)


def test_fusion_standardises_both_sides_and_weighs_them() -> None:
    # vector side 1 > 2 > 3, all close; text side 3 (strong) > 2 (weak): z-scores, 0.6 vector + 0.4 text
    pool = Pool([UUID(int=1), UUID(int=2), UUID(int=3)], [UUID(int=3), UUID(int=2)], {})
    pool.signals = {s.id: s for s in (_signals(1, 0.62), _signals(2, 0.61, 1.0), _signals(3, 0.60, 9.0))}
    params = SearchParams(limit=10, min_similarity=0.0, mode="hybrid", fusion=Fusion(neighbour_lift=0, session_bonus=0, date_boost=0))
    ranked = rank(pool, params, [])
    assert [c.id.int for c in ranked] == [1, 3, 2]
    assert [c.origin for c in ranked] == ["vector", "vector+text", "vector+text"]
    assert sum(c.fused for c in ranked) == pytest.approx(0.0)  # each side's z-scores sum to 0 over the candidates
    only_vector = rank(pool, SearchParams(limit=10, min_similarity=0.0, mode="hybrid", fusion=Fusion(vector_weight=1.0)), [])
    assert [c.id.int for c in only_vector] == [1, 2, 3]


def test_bm25s_that_barely_differ_do_not_outweigh_the_similarity() -> None:
    # the query's only word is in every memory: BM25 0.10 (named twice) against 0.08
    pool = Pool([UUID(int=1), UUID(int=2), UUID(int=3)], [UUID(int=3), UUID(int=1), UUID(int=2)], {})
    pool.signals = {s.id: s for s in (_signals(1, 0.56, 0.08), _signals(2, 0.48, 0.08), _signals(3, 0.44, 0.10))}
    plain = Fusion(neighbour_lift=0, session_bonus=0, date_boost=0)
    ranked = rank(pool, SearchParams(limit=10, min_similarity=0.0, mode="hybrid", fusion=plain), [])
    assert [c.id.int for c in ranked] == [1, 2, 3]
    unfloored = rank(pool, SearchParams(limit=10, min_similarity=0.0, mode="hybrid", fusion=replace(plain, bm25_spread=0.0)), [])
    assert [c.id.int for c in unfloored] == [1, 3, 2]  # standardised, the hundredths put 3 above 2


def test_a_strong_neighbour_lifts_a_turn_and_brings_it_into_the_pool() -> None:
    # 1 -> 2 -> 3 is one session; 2 is the answer the question never names, 1 the strong match
    signals = {s.id: s for s in (_signals(1, 0.9, 5.0), _signals(2, 0.1, 0), _signals(3, 0.2, 0), _signals(4, 0.5))}
    pool = Pool([UUID(int=1), UUID(int=4)], [UUID(int=1)], signals)
    pool.around = {
        UUID(int=1): Around(UUID(int=1), True, (), (UUID(int=2), UUID(int=3))),
        UUID(int=4): Around(UUID(int=4), False),
    }
    fusion = Fusion(neighbour_lift=0.4, neighbour_window=1, session_bonus=0, date_boost=0)
    ranked = rank(pool, SearchParams(limit=10, min_similarity=0.0, mode="hybrid", fusion=fusion), [])
    assert [c.id.int for c in ranked] == [1, 2, 4]  # 3 is two turns away: outside the window of 1
    lifted = ranked[1]
    assert lifted.origin == "neighbour" and lifted.lifted_by == UUID(int=1)
    assert lifted.score == pytest.approx(lifted.fused + 0.4 * (ranked[0].fused - lifted.fused))


def test_a_date_the_query_names_favours_memories_of_that_day() -> None:
    assert [str(d) for d in dates_in("What did she say on 7 May 2023, and in June?")] == ["7 May 2023", "June"]
    assert dates_in("may I ask you something?") == []
    signals = {s.id: s for s in (_signals(1, 0.6, at=T0 - timedelta(days=1)), _signals(2, 0.5, at=T0))}
    pool = Pool([UUID(int=1), UUID(int=2)], [], signals)
    params = SearchParams(limit=10, min_similarity=0.0, mode="hybrid", fusion=Fusion(neighbour_lift=0, session_bonus=0))
    ranked = rank(pool, params, dates_in("What happened on May 7, 2023?"))
    assert [c.id.int for c in ranked] == [2, 1] and ranked[0].date == "7 May 2023" and ranked[0].date_boost == 1.5


def test_hybrid_search_finds_the_turn_after_the_one_that_names_the_topic(svc, store) -> None:
    turns = [
        NewMemory("Mel: What did you think of the pottery class?", source="s1", created_at=T0),
        NewMemory("Caroline: Loved it, I made a bowl for my mom.", source="s1", created_at=T0 + timedelta(seconds=20)),
        NewMemory("Mel: Nice weather today.", source="s2", created_at=T0 + timedelta(days=3)),
        NewMemory("Caroline: My dog is sick.", source="s2", created_at=T0 + timedelta(days=3, seconds=20)),
    ]
    question, answer, *_ = svc.add_memories(store.id, turns)
    results = svc.search_memories(store.id, "pottery class", 2, 0.0, mode="hybrid", record_access=False, log=False)
    assert [r.memory.id for r in results] == [question.id, answer.id]
    assert results[1].breakdown.lifted_by == str(question.id)


@pytest.mark.parametrize("policy", ["demote", "skip"])
def test_hybrid_search_moves_superseded_memories_on_the_index_path_too(svc, store, policy) -> None:
    """The whole pool is ranked before superseded memories move; the pool keeps its size (a pool
    as deep as the whole ranking asked the HNSW index for an ef_search PostgreSQL refuses)."""
    old, new, other = svc.add_memories(
        store.id, [NewMemory("Ana lives in Lyon"), NewMemory("Ana lives in Porto now"), NewMemory("Ana has a cat")]
    )
    svc.add_relationship(new.id, old.id, "updates")
    graph = SearchTuning(exact_max_rows=1)  # the HNSW path, as a big store takes
    results = svc.search_memories(store.id, "where does Ana live", 3, 0.0, mode="hybrid", tuning=graph, superseded=policy, log=False)
    ids = [r.memory.id for r in results]
    assert ids.index(new.id) < (ids.index(old.id) if old.id in ids else len(ids))
    assert (old.id in ids) == (policy == "demote")
