"""Bad input, table-driven: each gets a clear one-line error naming the problem, and writes nothing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sqlalchemy import text

from core import InvalidInput, MemexError, NewMemory, NotFound

NIL = "00000000-0000-4000-8000-000000000000"


def snapshot(db, svc) -> tuple[int, ...]:
    with db.tenant(svc.tenant_id) as conn:
        return tuple(
            conn.scalar(text(f"SELECT count(*) FROM {t}")) for t in ("users", "memory_stores", "memories", "memory_relationships")
        ) + (conn.scalar(text("SELECT coalesce(sum(total_memories), 0) FROM memory_stores")),)


API_CASES = {
    "empty content": (lambda s, st, m: s.add_memory(st.id, ""), InvalidInput, "content is empty"),
    "whitespace content": (lambda s, st, m: s.add_memory(st.id, " \n\t "), InvalidInput, "content is empty"),
    "content of several MB": (lambda s, st, m: s.add_memory(st.id, "x" * 3_000_000), InvalidInput, "content is 3,000,000 characters"),
    "NUL byte": (lambda s, st, m: s.add_memory(st.id, "a\x00b"), InvalidInput, "control character"),
    "control character": (lambda s, st, m: s.add_memory(st.id, "bell\x07"), InvalidInput, "control character"),
    "content not a string": (lambda s, st, m: s.add_memory(st.id, 42), InvalidInput, "content must be a string"),
    "importance 1.5": (lambda s, st, m: s.add_memory(st.id, "x", importance=1.5), InvalidInput, "importance must be between 0 and 1"),
    "importance negative": (lambda s, st, m: s.add_memory(st.id, "x", importance=-0.1), InvalidInput, "importance"),
    "importance NaN": (lambda s, st, m: s.add_memory(st.id, "x", importance=math.nan), InvalidInput, "importance"),
    "importance text": (lambda s, st, m: s.add_memory(st.id, "x", importance="high"), InvalidInput, "importance must be a number"),
    "wrong dimension": (lambda s, st, m: s.add_memory(st.id, "x", embedding=[0.1] * 383), InvalidInput, "383 dimensions"),
    "NaN in embedding": (lambda s, st, m: s.add_memory(st.id, "x", embedding=[math.nan] + [0.1] * 383), InvalidInput, "NaN"),
    "infinite embedding": (lambda s, st, m: s.add_memory(st.id, "x", embedding=[math.inf] + [0.1] * 383), InvalidInput, "infinite"),
    "zero embedding": (lambda s, st, m: s.add_memory(st.id, "x", embedding=np.zeros(384)), InvalidInput, "all zeros"),
    "embedding not numbers": (lambda s, st, m: s.add_memory(st.id, "x", embedding=["a"] * 384), InvalidInput, "embedding must be a list"),
    "malformed store uuid": (lambda s, st, m: s.add_memory("not-a-uuid", "x"), InvalidInput, "store id 'not-a-uuid' is not a valid UUID"),
    "malformed memory uuid": (lambda s, st, m: s.get_memory("1234"), InvalidInput, "memory id '1234' is not a valid UUID"),
    "unknown memory uuid": (lambda s, st, m: s.get_memory(NIL), NotFound, f"memory {NIL} not found"),
    "unknown store": (lambda s, st, m: s.add_memory(NIL, "x"), NotFound, "memory store"),
    "memory type of absurd length": (
        lambda s, st, m: s.add_memory(st.id, "x", memory_type="t" * 10_000),
        InvalidInput,
        "memory_type is 10,000 characters",
    ),
    "blank memory type": (lambda s, st, m: s.add_memory(st.id, "x", memory_type=" "), InvalidInput, "memory_type is empty"),
    "metadata not an object": (lambda s, st, m: s.add_memory(st.id, "x", metadata=[1, 2]), InvalidInput, "metadata must be a JSON object"),
    "deeply nested metadata": (lambda s, st, m: s.add_memory(st.id, "x", metadata=nested(40)), InvalidInput, "nested deeper"),
    "metadata with NaN": (lambda s, st, m: s.add_memory(st.id, "x", metadata={"v": math.nan}), InvalidInput, "metadata is not valid JSON"),
    "metadata with NUL": (lambda s, st, m: s.add_memory(st.id, "x", metadata={"v": "a\x00"}), InvalidInput, "NUL"),
    "bad expiry": (
        lambda s, st, m: s.add_memory(st.id, "x", expires_at="next tuesday"),
        InvalidInput,
        "expires_at 'next tuesday' is not an ISO 8601",
    ),
    "unknown model": (
        lambda s, st, m: s.get_or_create_store(st.user_id, "n", embedding_model="gpt-embed-9000"),
        InvalidInput,
        "unknown embedding model 'gpt-embed-9000'",
    ),
    "model of wrong size": (
        lambda s, st, m: s.get_or_create_store(st.user_id, "n", embedding_model="all-MiniLM-L6-v2", embedding_dim=1536),
        InvalidInput,
        "not 1536",
    ),
    "relationship to a missing memory": (lambda s, st, m: s.add_relationship(m.id, NIL, "related_to"), NotFound, f"memory {NIL} not found"),
    "relationship to itself": (lambda s, st, m: s.add_relationship(m.id, m.id, "x"), InvalidInput, "itself"),
    "relationship strength 2": (lambda s, st, m: s.add_relationship(m.id, NIL, "x", 2), InvalidInput, "strength must be between 0 and 1"),
    "query of 100 KB": (lambda s, st, m: s.search_memories(st.id, "q" * 100_000), InvalidInput, "query is 100,000 characters"),
    "empty query": (lambda s, st, m: s.search_memories(st.id, ""), InvalidInput, "query is empty"),
    "k of 0": (lambda s, st, m: s.search_memories(st.id, "q", limit=0), InvalidInput, "limit must be a whole number from 1 to 1000, not 0"),
    "k negative": (lambda s, st, m: s.search_memories(st.id, "q", limit=-5), InvalidInput, "limit"),
    "k of 10^9": (lambda s, st, m: s.search_memories(st.id, "q", limit=10**9), InvalidInput, "limit"),
    "similarity NaN": (lambda s, st, m: s.search_memories(st.id, "q", min_similarity=math.nan), InvalidInput, "min_similarity"),
    "store name with newline": (lambda s, st, m: s.get_or_create_store(st.user_id, "a\nb"), InvalidInput, "store name contains"),
    "unknown field in a batch": (
        lambda s, st, m: s.add_memories(st.id, [{"content": "x", "colour": "red"}]),
        InvalidInput,
        "unknown memory field 'colour'",
    ),
    "duplicate ids in a batch": (
        lambda s, st, m: s.add_memories(st.id, [NewMemory("a", id=NIL), NewMemory("b", id=NIL)]),
        InvalidInput,
        "same memory id twice",
    ),
}


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"k": value}
    return value


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_bad_input_is_refused_with_a_clear_error_and_writes_nothing(db, svc, store, case: str) -> None:
    anchor = svc.add_memory(store.id, "anchor memory")
    call, error, message = API_CASES[case]
    before = snapshot(db, svc)
    with pytest.raises(error) as caught:
        call(svc, store, anchor)
    text_ = str(caught.value)
    assert message in text_
    assert "\n" not in text_ and len(text_) < 300
    assert snapshot(db, svc) == before


@pytest.mark.parametrize(
    "payload",
    [
        "'; DROP TABLE memories; --",
        "<img src=x onerror=alert(1)>",
        "Robert'); DELETE FROM tenants WHERE ('1'='1",
    ],
)
def test_sql_and_html_in_text_fields_are_stored_verbatim(svc, store, payload: str) -> None:
    m = svc.add_memory(store.id, payload, memory_type=payload[:50], source=payload[:100], metadata={payload: payload})
    got = svc.get_memory(m.id)
    assert (got.content, got.memory_type, got.metadata) == (payload, payload[:50].strip(), {payload: payload})
    assert svc.list_memories(store.id, text_contains=payload).total == 1
    assert svc.search_memories(store.id, payload, min_similarity=-1, record_access=False)[0].memory.content == payload


def test_every_memex_error_is_one_line(svc, store) -> None:
    for call, _, _ in API_CASES.values():
        try:
            call(svc, store, svc.add_memory(store.id, "anchor"))
        except MemexError as exc:
            assert "\n" not in str(exc)
