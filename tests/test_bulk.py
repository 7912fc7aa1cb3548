"""Bulk ingest of memories with their vectors (binary COPY through a staging table): every field
lands, counts stay exact, ids upsert, bad rows are refused before anything is written, and row-level
security still applies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import numpy as np
import pytest

from core import InvalidInput, MemoryColumns, NewMemory, NotFound
from core.sql import memories, stores


def _columns(n: int, dim: int = 384, **extra) -> MemoryColumns:
    rng = np.random.default_rng(n)
    return MemoryColumns(
        content=[f"bulk memory {i}" for i in range(n)], embedding=rng.standard_normal((n, dim)).astype(np.float32), **extra
    )


def test_bulk_rows_land_with_every_field_and_the_counter_stays_exact(svc, store) -> None:
    past = datetime.now(UTC) - timedelta(days=1)
    columns = _columns(
        300,
        memory_type=["preference"] * 300,
        source=["import"] * 300,
        importance=np.full(300, 0.25),
        metadata=[{"n": i} for i in range(300)],
        expires_at=[past] * 10 + [None] * 290,
        archived=[False] * 299 + [True],
    )
    assert svc.bulk_add_memories(store.id, columns, chunk_rows=128) == 300  # three COPY rounds
    assert svc.get_store(store.id).total_memories == 300
    page = svc.list_memories(store.id, include_expired=True, limit=1000)
    assert page.total == 300
    by_content = {m.content: m for m in page.items}
    m = by_content["bulk memory 7"]
    assert (m.memory_type, m.source, m.importance, m.metadata, m.archived) == ("preference", "import", 0.25, {"n": 7}, False)
    assert by_content["bulk memory 299"].archived
    assert svc.store_stats(store.id).expired == 10
    _, vectors = svc.store_embeddings(store.id)
    assert vectors.shape == (300, 384)
    hit = svc.search_by_embedding(store.id, columns.embedding[42], limit=1, min_similarity=-1)
    assert hit[0].memory.content == "bulk memory 42"


def test_bulk_upserts_by_id_and_counts_only_inserts(svc, store) -> None:
    ids = [uuid4() for _ in range(100)]
    svc.bulk_add_memories(store.id, _columns(100, id=ids))
    again = _columns(150, id=ids + [uuid4() for _ in range(50)])
    again.content = [f"updated {i}" for i in range(150)]
    assert svc.bulk_add_memories(store.id, again) == 150
    assert svc.get_store(store.id).total_memories == 150
    assert svc.get_memory(ids[3]).content == "updated 3"


def test_bulk_takes_new_memory_objects(svc, store) -> None:
    rng = np.random.default_rng(1)
    items = [NewMemory(f"object {i}", embedding=rng.standard_normal(384)) for i in range(70)]
    assert svc.bulk_add_memories(store.id, items) == 70
    with pytest.raises(InvalidInput, match="needs its embedding"):
        svc.bulk_add_memories(store.id, [NewMemory("no vector")])
    assert svc.get_store(store.id).total_memories == 70


def test_bulk_refuses_bad_rows_before_writing(svc, store) -> None:
    bad = _columns(10)
    bad.embedding[4] = 0
    with pytest.raises(InvalidInput, match="memory 5: embedding is all zeros"):
        svc.bulk_add_memories(store.id, bad)
    with pytest.raises(InvalidInput, match="shape"):
        svc.bulk_add_memories(store.id, _columns(10, dim=1536))
    with pytest.raises(InvalidInput, match="memory 2: importance"):
        svc.bulk_add_memories(store.id, _columns(3, importance=[0.1, 2.0, 0.3]))
    assert svc.get_store(store.id).total_memories == 0


def test_bulk_keeps_an_id_of_another_store_where_it_is(svc, store, user) -> None:
    kept = svc.add_memory(store.id, "stays here")
    second = svc.get_or_create_store(user.id, "second", embedding_model="test-hashing")
    with pytest.raises(InvalidInput, match="already belongs to another store"):
        svc.bulk_add_memories(second.id, _columns(80, id=[uuid4() for _ in range(79)] + [kept.id]))
    assert svc.get_memory(kept.id).content == "stays here"
    assert svc.get_store(second.id).total_memories == 0  # all or nothing


def test_bulk_is_still_under_row_level_security(svc, store, other) -> None:
    other_svc, other_store = other
    with pytest.raises(NotFound):  # another tenant's store is invisible
        svc.bulk_add_memories(other_store.id, _columns(5))
    with pytest.raises(NotFound, match="outside the tenant"):  # rows claiming another tenant: WITH CHECK refuses
        with svc.transaction() as conn:
            memories.write(conn, other_svc.tenant_id, stores.fetch(conn, store.id), _columns(70).checked(384))
    assert svc.get_store(store.id).total_memories == 0
    assert other_svc.get_store(other_store.id).total_memories == 1


def test_large_batches_of_add_memories_take_the_copy_path_with_the_same_semantics(svc, store, user, monkeypatch) -> None:
    from core.sql import bulk

    calls = []
    original = bulk.staged_chunks
    monkeypatch.setattr(bulk, "staged_chunks", lambda *a, **kw: calls.append(len(a[1])) or original(*a, **kw))
    added = svc.add_memories(store.id, [NewMemory(f"batch {i}", id=uuid4()) for i in range(200)])
    assert calls == [200]
    assert [m.content for m in added] == [f"batch {i}" for i in range(200)]
    again = svc.add_memories(store.id, [NewMemory(f"again {i}", id=m.id) for i, m in enumerate(added)])
    assert [m.id for m in again] == [m.id for m in added] and again[5].content == "again 5"
    assert svc.get_store(store.id).total_memories == 200
    second = svc.get_or_create_store(user.id, "second", embedding_model="test-hashing")
    with pytest.raises(InvalidInput, match="already belongs to another store"):
        svc.add_memories(second.id, [NewMemory(f"x {i}") for i in range(99)] + [NewMemory("hijack", id=added[0].id)])
    assert svc.get_store(second.id).total_memories == 0


# Rows outside the HNSW graph (migration 010) --------------------------------------------------------


def _flags(superuser, store_id) -> dict[bool, int]:
    from sqlalchemy import text

    with superuser.connect() as conn:
        return dict(conn.execute(text("SELECT indexed, count(*) FROM memories WHERE store_id = :s GROUP BY 1"), {"s": store_id}).all())


def test_bulk_rows_stay_out_of_the_graph_until_indexed_and_search_finds_them_all_along(svc, store, superuser, monkeypatch) -> None:
    """A "big" store (the exact-search size lowered to 50 for the test): COPY leaves its rows out of
    the HNSW graph, search finds them through the exact scan of the unindexed rows, index_pending
    puts them in, and a small write into a big store enters the graph at once."""
    from core.search import SearchTuning
    from core.service import indexing
    from core.sql import memories as sql_memories

    monkeypatch.setattr(indexing, "EXACT_MAX_ROWS", 50)
    monkeypatch.setattr(sql_memories, "EXACT_MAX_ROWS", 50)
    big = SearchTuning(exact_max_rows=50)
    exact = SearchTuning(exact_max_rows=10**9)
    columns = _columns(120, dim=384)
    svc.bulk_add_memories(store.id, columns)
    assert _flags(superuser, store.id) == {False: 120}
    assert svc.pending_index(store.id) == 120
    queries = columns.embedding[[3, 50, 99]] + 0.01

    def ids(tuning):
        return [[r.memory.id for r in svc.search_by_embedding(store.id, q, limit=10, min_similarity=-1, tuning=tuning)] for q in queries]

    truth = ids(exact)
    assert ids(big) == truth  # the graph holds none of them: the delta scan finds every one
    done = []
    assert svc.index_pending(store.id, batch=50, progress=lambda d, t: done.append((d, t))) == 120
    assert done == [(50, 120), (100, 120), (120, 120)]
    assert _flags(superuser, store.id) == {True: 120} and svc.pending_index(store.id) == 0
    assert ids(big) == truth  # now through the graph
    svc.add_memory(store.id, "one more, written by an agent", embedding=columns.embedding[0] * -1)
    assert _flags(superuser, store.id) == {True: 121}  # a small write into a big store enters the graph at once
    assert svc.index_pending(store.id) == 0


def test_small_stores_rows_are_never_indexed(svc, store, superuser) -> None:
    svc.bulk_add_memories(store.id, _columns(80))
    svc.add_memory(store.id, "a small write")
    assert _flags(superuser, store.id) == {False: 81}
    assert svc.pending_index(store.id) == 0 and svc.index_pending(store.id) == 0


def test_a_background_index_runs_after_a_bulk_write_when_the_database_allows_it(svc, store, superuser, monkeypatch) -> None:
    from core.service import indexing
    from core.sql import memories as sql_memories

    monkeypatch.setattr(indexing, "EXACT_MAX_ROWS", 50)
    monkeypatch.setattr(sql_memories, "EXACT_MAX_ROWS", 50)
    monkeypatch.setattr(svc.db, "background_index", True)
    svc.bulk_add_memories(store.id, _columns(90))
    for thread in list(indexing._running.values()):
        thread.join(30)
    assert _flags(superuser, store.id) == {True: 90}


def test_store_vectors_come_back_as_written(svc, store) -> None:
    columns = _columns(70)
    svc.bulk_add_memories(store.id, columns)
    ids, vectors = svc.store_vectors(store.id)
    listed = {str(m.id): m.content for m in svc.all_memories(store.id)}
    assert set(ids) == set(listed) and vectors.shape == (70, 384) and vectors.dtype == np.float32
    by_content = {c: i for i, c in enumerate(columns.content)}
    for i, memory_id in enumerate(ids):
        np.testing.assert_array_equal(vectors[i], columns.embedding[by_content[listed[memory_id]]])
