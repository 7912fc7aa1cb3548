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
from tests.conftest import unique


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
    original = bulk.staged
    monkeypatch.setattr(bulk, "staged", lambda conn, chunks: original(conn, [calls.append(len(c)) or c for c in chunks]))
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
    monkeypatch.setattr(svc.db, "background_index", False)  # as in a CLI process (an explorer page run earlier turns it on)
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


# Imports that write one chunk while they read the next ------------------------------------------------


def _file(n: int, *, dim: int = 384, line: dict[int, dict] | None = None, tail: list[dict] | None = None) -> bytes:
    """A JSONL file of n memories with their vectors; `line` replaces fields of some lines (1-based),
    `tail` adds lines at the end."""
    import orjson

    rng = np.random.default_rng(n)
    lines = [
        {"id": str(uuid4()), "content": f"streamed {i}", "embedding": rng.standard_normal(dim).tolist(), **(line or {}).get(i, {})}
        for i in range(1, n + 1)
    ]
    return b"".join(orjson.dumps(x) + b"\n" for x in [*lines, *(tail or [])])


def test_chunks_of_a_file_are_the_file_read_whole() -> None:
    """Line numbers, values, vectors and errors (duplicates across chunks included) do not depend on
    how the file is cut."""
    from core.jsonl import parse_chunks, parse_jsonl

    data = _file(9, dim=4, line={4: {"importance": 7}}).splitlines()
    data.insert(6, b"")
    data.append(data[1])  # a duplicate of line 2, in the last chunk
    raw = b"\n".join(data)
    whole = parse_jsonl(raw, 4)
    chunks = list(parse_chunks(raw, 4, lines_per_chunk=3))
    assert len(chunks) == 4
    assert [n for c in chunks for n in c.lines.numbers] == whole.lines.numbers == [1, 2, 3, 5, 6, 8, 9, 10]
    assert [e for c in chunks for e in c.errors] == whole.errors
    assert whole.errors[0].startswith("line 4: importance") and whole.errors[1].startswith("line 11: id ")
    assert [i for c in chunks for i in c.lines.id] == whole.lines.id
    np.testing.assert_array_equal(np.concatenate([c.lines.embedding for c in chunks]), whole.lines.embedding)
    assert {c.digest for c in chunks} == {whole.digest}


@pytest.mark.parametrize("fault", ["a bad line", "another store's id", "an unknown relationship end"])
def test_a_streamed_import_that_fails_late_leaves_nothing_not_even_its_new_store(svc, store, superuser, fault) -> None:
    """Chunks of 2 lines go into the database while later ones are read; a fault found after
    several of them rolls everything back, the user and store the import was to create included."""
    from core.jsonl import parse_chunks
    from core.models import StoreName

    from .test_reliability_bad_input import everything

    taken = svc.add_memory(store.id, "already in another store")
    data = {
        "a bad line": _file(9, line={8: {"importance": 7}}),
        "another store's id": _file(9, line={8: {"id": str(taken.id)}}),
        "an unknown relationship end": _file(
            9, tail=[{"kind": "relationship", "source_memory_id": str(uuid4()), "target_memory_id": str(uuid4()), "relationship_type": "r"}]
        ),
    }[fault]
    before = everything(superuser)
    with pytest.raises(InvalidInput):
        svc.import_memories(StoreName(unique("streamer"), "fresh", "all-MiniLM-L6-v2"), parse_chunks(data, 384, lines_per_chunk=2))
    assert everything(superuser) == before


def test_a_streamed_import_creates_its_store_and_user_and_writes_every_chunk(svc, user) -> None:
    from core.jsonl import parse_chunks
    from core.models import StoreName

    data = _file(9, tail=[{"content": "no vector: embedded after the rest"}])
    seen = []
    report = svc.import_memories(
        StoreName(user.name, "streamed", "all-MiniLM-L6-v2"),
        parse_chunks(data, 384, lines_per_chunk=2),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert (report.memories, report.skipped) == (10, [])
    created = svc.find_store(user.id, "streamed")
    assert created is not None and created.total_memories == 10 and created.embedding_model == "all-MiniLM-L6-v2"
    assert seen[-1] == (10, 10) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    again = svc.import_memories(StoreName(str(user.id), "streamed"), parse_chunks(data, 384, lines_per_chunk=4))
    assert again.memories == 10 and svc.get_store(created.id).total_memories == 10  # the same ids: nothing doubled


def test_an_editor_imports_into_a_store_but_does_not_create_one(db, svc, user, store, tenant) -> None:
    from core import admin
    from core.errors import Forbidden
    from core.jsonl import parse_chunks
    from core.models import StoreName
    from core.service import MemoryService

    email = f"{unique('editor')}@example.com"
    admin.add_analyst(db, email, "correct horse battery")
    admin.grant(db, email, tenant.id, "editor")
    editor = MemoryService.for_analyst(db, email, tenant.id)
    with pytest.raises(Forbidden, match="only an admin"):
        editor.import_memories(StoreName(user.name, "not-yet"), parse_chunks(_file(3), 384))
    assert svc.find_store(user.id, "not-yet") is None
    assert editor.import_memories(StoreName(user.name, store.store_name), parse_chunks(_file(3), 384)).memories == 3
