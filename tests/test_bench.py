"""`memex bench` on the smallest scenario, and the bulk ingest path it measures.

No timing is asserted (CI machines differ): only that the benchmark runs end to end, reports
every figure, finds what exact search finds, and that bulk ingest keeps counts and isolation.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from uuid import uuid4

import numpy as np
import pytest

from core import InvalidInput, NewMemory, NotFound
from core.bench import Scenario, parse_count
from core.bulk import MemoryColumns, bulk_add_memories, copy_memories
from core.cli import main
from core.stores import fetch_store

KEYS = {
    "ingest_rows_per_s", "index_build_s", "search_p50_ms", "search_p95_ms", "search_p99_ms", "recall_at_10",
    "short_results", "seed_ivfflat_recall_at_10", "concurrent_qps", "by_store_size", "counts_exact", "plans",
}


def test_bench_smallest_scenario_reports_every_figure(capsys) -> None:
    code = main(["bench", "--memories", "10k", "--stores", "10", "--dim", "384", "--json", "--queries", "60", "--skip-embed"])
    out = capsys.readouterr().out
    assert code == 0
    result = json.loads(out)  # stdout holds exactly one JSON object
    assert KEYS <= set(result)
    assert result["recall_at_10"] >= 0.9
    assert result["short_results"] == 0
    assert result["counts_exact"] is True
    assert result["rows_total"] == 10_000
    assert result["stores"] == 10 and result["queries"] == 60
    assert 0.9 < result["live_share"] < 0.97  # ~5% expired, ~1% archived
    assert result["plans"]["~1k"]["indexes"] == ["memories_pkey", "memories_store_created"]  # small stores: exact, by store


def test_counts_and_store_sizes() -> None:
    assert [parse_count(v) for v in ("10k", "100k", "1m", "2500", "1.5k")] == [10_000, 100_000, 1_000_000, 2_500, 1_500]
    sizes = Scenario(1_000_000, 1000, 384).store_sizes()
    assert len(sizes) == 1000 and sum(sizes) == 1_000_000
    assert sizes[0] == 100_000 and {2_000, 5_000, 10_000, 20_000, 50_000} <= set(sizes)
    assert Scenario(10_000, 10, 384).store_sizes() == [1_000] * 10


def _columns(n: int, dim: int = 384, **extra) -> MemoryColumns:
    rng = np.random.default_rng(n)
    return MemoryColumns(contents=[f"bulk memory {i}" for i in range(n)], embeddings=rng.standard_normal((n, dim)).astype(np.float32), **extra)


def test_bulk_rows_land_with_every_field_and_the_counter_stays_exact(svc, store) -> None:
    past = datetime.now(timezone.utc) - timedelta(days=1)
    columns = _columns(
        300, memory_types=["preference"] * 300, sources=["import"] * 300, importance=np.full(300, 0.25),
        metadata=[{"n": i} for i in range(300)], expires_at=[past] * 10 + [None] * 290, archived=[False] * 299 + [True],
    )
    assert bulk_add_memories(svc, store.id, columns, chunk_rows=128) == 300  # three COPY rounds
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
    hit = svc.search_by_embedding(store.id, columns.embeddings[42], limit=1, min_similarity=-1)
    assert hit[0].memory.content == "bulk memory 42"


def test_bulk_upserts_by_id_and_counts_only_inserts(svc, store) -> None:
    ids = [uuid4() for _ in range(100)]
    bulk_add_memories(svc, store.id, _columns(100, ids=ids))
    again = _columns(150, ids=ids + [uuid4() for _ in range(50)])
    again.contents = [f"updated {i}" for i in range(150)]
    assert bulk_add_memories(svc, store.id, again) == 150
    assert svc.get_store(store.id).total_memories == 150
    assert svc.get_memory(ids[3]).content == "updated 3"


def test_bulk_takes_new_memory_objects(svc, store) -> None:
    rng = np.random.default_rng(1)
    items = [NewMemory(f"object {i}", embedding=rng.standard_normal(384)) for i in range(70)]
    assert bulk_add_memories(svc, store.id, items) == 70
    with pytest.raises(InvalidInput, match="needs its embedding"):
        bulk_add_memories(svc, store.id, [NewMemory("no vector")])
    assert svc.get_store(store.id).total_memories == 70


def test_bulk_refuses_bad_rows_before_writing(svc, store) -> None:
    bad = _columns(10)
    bad.embeddings[4] = 0
    with pytest.raises(InvalidInput, match="memory 5: embedding contains only zeros"):
        bulk_add_memories(svc, store.id, bad)
    with pytest.raises(InvalidInput, match="shape"):
        bulk_add_memories(svc, store.id, _columns(10, dim=1536))
    with pytest.raises(InvalidInput, match="memory 2: importance"):
        bulk_add_memories(svc, store.id, _columns(3, importance=[0.1, 2.0, 0.3]))
    assert svc.get_store(store.id).total_memories == 0


def test_bulk_keeps_an_id_of_another_store_where_it_is(svc, store, user) -> None:
    kept = svc.add_memory(store.id, "stays here")
    second = svc.get_or_create_store(user.id, "second", embedding_model="test-hashing")
    with pytest.raises(InvalidInput, match="already belongs to another store"):
        bulk_add_memories(svc, second.id, _columns(80, ids=[uuid4() for _ in range(79)] + [kept.id]))
    assert svc.get_memory(kept.id).content == "stays here"
    assert svc.get_store(second.id).total_memories == 0  # all or nothing


def test_bulk_is_still_under_row_level_security(svc, store, other) -> None:
    other_svc, other_store = other
    with pytest.raises(NotFound):  # another tenant's store is invisible
        bulk_add_memories(svc, other_store.id, _columns(5))
    with pytest.raises(NotFound, match="outside the tenant"):  # rows claiming another tenant: WITH CHECK refuses
        with svc.transaction() as conn:
            copy_memories(conn, other_svc.tenant_id, fetch_store(conn, store.id), _columns(5).checked(384))
    assert svc.get_store(store.id).total_memories == 0
    assert other_svc.get_store(other_store.id).total_memories == 1


def test_large_batches_of_add_memories_take_the_copy_path_with_the_same_semantics(svc, store, user, monkeypatch) -> None:
    import core.bulk

    calls = []
    original = core.bulk.copy_memories
    monkeypatch.setattr(core.bulk, "copy_memories", lambda *a, **kw: calls.append(len(a[3])) or original(*a, **kw))
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
