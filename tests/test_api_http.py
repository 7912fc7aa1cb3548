"""The REST API of `memex serve` over real HTTP, as an agent in another process uses it: the
contract of issue 10 (add, search, get, update, delete; user and store named or fixed by the
key; store `default` created on first write), the other endpoints, one error shape, limits."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import psutil

from core import MemoryService
from core.db import Database
from core.models import Tenant
from tests.api_support import child_env, client, new_key, problem, ready, start_server, stop_server

NIL = "00000000-0000-0000-0000-000000000000"


def add(http: httpx.Client, content: str, **fields: object) -> dict:
    response = http.post("/v1/memories", json={"content": content, "user": "ana", **fields})
    assert response.status_code == 201, response.text
    return response.json()


# The contract ---------------------------------------------------------------------------------


def test_add_search_get_update_delete_as_the_contract_says(http) -> None:
    created = http.post("/v1/memories", json={"content": "Ana drinks oat milk flat whites", "memory_type": "preference", "user": "ana"})
    assert created.status_code == 201
    memory = created.json()
    assert memory["content"] == "Ana drinks oat milk flat whites" and memory["memory_type"] == "preference" and memory["id"]

    found = http.post("/v1/search", json={"query": "oat milk flat whites", "user": "ana", "min_similarity": 0.1})
    assert found.status_code == 200
    [hit] = found.json()["results"]
    assert (hit["id"], hit["content"]) == (memory["id"], memory["content"]) and 0.1 <= hit["similarity"] <= 1

    assert http.get(f"/v1/memories/{memory['id']}").json()["content"] == memory["content"]
    changed = http.patch(f"/v1/memories/{memory['id']}", json={"content": "Ana drinks black coffee", "importance": 0.9})
    assert changed.status_code == 200 and (changed.json()["content"], changed.json()["importance"]) == ("Ana drinks black coffee", 0.9)
    assert http.delete(f"/v1/memories/{memory['id']}").status_code == 204
    assert problem(http.get(f"/v1/memories/{memory['id']}"), 404)["detail"] == f"memory {memory['id']} not found in this tenant"


def test_an_agent_that_embeds_itself_searches_with_its_vector(http) -> None:
    from core.embeddings import get_embedder

    wanted = add(http, "Ana's passport expires in March")
    add(http, "Ana likes green tea")
    vector = get_embedder("test-hashing").embed_one("Ana's passport expires in March").tolist()
    found = http.post("/v1/search", json={"embedding": vector, "user": "ana", "limit": 1, "min_similarity": 0.5})
    assert [r["id"] for r in found.json()["results"]] == [wanted["id"]]
    both = http.post("/v1/search", json={"query": "passport", "embedding": vector, "user": "ana", "mode": "hybrid", "limit": 1})
    assert [r["id"] for r in both.json()["results"]] == [wanted["id"]]
    assert problem(http.post("/v1/search", json={"embedding": vector, "user": "ana", "mode": "text"}), 422)["detail"] == (
        "query: text search needs the query's text, not only its embedding"
    )
    assert problem(http.post("/v1/search", json={"user": "ana"}), 422)["detail"] == "query: send the query's text, or its embedding"
    assert "embedding has 3 dimensions" in problem(http.post("/v1/search", json={"embedding": [1, 2, 3], "user": "ana"}), 422)["detail"]


def test_a_search_body_orjson_refuses_is_read_or_refused_as_json_loads_does(http) -> None:
    """The search route reads its body with orjson (core.api.routes.OrjsonRoute); what orjson
    refuses goes to json.loads, so the answers stay those of every other route."""
    add(http, "Ana likes green tea")
    sent = {"Content-Type": "application/json"}
    found = http.post("/v1/search", content=b'{"query": "tea", "user": "ana", "min_similarity": 0, "limit": 1.0}', headers=sent)
    assert found.status_code == 200 and len(found.json()["results"]) == 1
    assert problem(http.post("/v1/search", content=b'{"query": "\xff"}', headers=sent), 400)  # not UTF-8
    assert problem(http.post("/v1/search", content=b'{"query": ', headers=sent), 422)["detail"] == "body: not valid JSON (at character 10)"
    assert problem(http.post("/v1/memories", content=b'{"content": "x",}', headers=sent), 422)["detail"].startswith("body: not valid JSON")
    big = b'{"query": "tea", "user": "ana", "limit": 123456789012345678901234567890}'
    assert problem(http.post("/v1/search", content=big, headers=sent), 422)["detail"].startswith("body.limit:")
    nan = b'{"embedding": [NaN, 1e999, 0.5], "user": "ana"}'  # json.loads reads NaN and Infinity; orjson does not
    assert "embedding" in problem(http.post("/v1/search", content=nan, headers=sent), 422)["detail"]
    nan_threshold = b'{"query": "tea", "user": "ana", "min_similarity": NaN}'
    assert problem(http.post("/v1/search", content=nan_threshold, headers=sent), 422)["detail"] == (
        "body.min_similarity: Input should be a finite number"
    )


def test_all_fields_of_a_new_memory_are_kept(http) -> None:
    memory = add(
        http,
        "Ana's passport expires in March",
        memory_type="event",
        source="email",
        importance=0.8,
        metadata={"topic": "travel"},
        expires_at="2030-03-01T00:00:00Z",
    )
    stored = http.get(f"/v1/memories/{memory['id']}").json()
    assert {k: stored[k] for k in ("memory_type", "source", "importance", "metadata", "expires_at")} == {
        "memory_type": "event",
        "source": "email",
        "importance": 0.8,
        "metadata": {"topic": "travel"},
        "expires_at": "2030-03-01T00:00:00Z",
    }


def test_store_default_is_created_on_first_write_and_stores_are_named_or_given_by_id(http) -> None:
    assert http.get("/v1/stores").json() == {"stores": []}
    assert problem(http.post("/v1/search", json={"query": "anything", "user": "ana"}), 404)["detail"].startswith("user 'ana' not found")

    first = add(http, "Ana's first memory")
    add(http, "Ana's work memory", store="work")
    stores = {s["store_name"]: s for s in http.get("/v1/stores").json()["stores"]}
    assert set(stores) == {"default", "work"} and first["store_id"] == stores["default"]["id"]
    assert stores["default"]["embedding_model"] == "test-hashing"  # the server's MEMEX_EMBEDDING_MODEL

    by_id = http.post("/v1/search", json={"query": "work memory", "store": stores["work"]["id"], "min_similarity": 0})
    assert [r["content"] for r in by_id.json()["results"]] == ["Ana's work memory"]
    assert (
        problem(http.post("/v1/search", json={"query": "x", "user": "ana", "store": "nope"}), 404)["detail"]
        == "user 'ana' has no store 'nope'"
    )


def test_a_key_bound_to_no_user_needs_the_request_to_name_one(http) -> None:
    assert problem(http.post("/v1/memories", json={"content": "whose?"}), 422)["detail"] == (
        "user: name the user (this API key is not bound to one)"
    )


def test_a_key_bound_to_a_store_fixes_user_and_store(api, db: Database, svc: MemoryService, store) -> None:
    with client(api.url, new_key(db, svc.tenant_id, user_id=store.user_id, store_id=store.id)) as http:
        memory = http.post("/v1/memories", json={"content": "goes to the bound store"}).json()
        assert memory["store_id"] == str(store.id)
        assert http.post("/v1/memories", json={"content": "x", "store": "default"}).status_code == 201  # its own name: fine
        assert problem(http.post("/v1/memories", json={"content": "x", "store": "elsewhere"}), 403)["detail"] == (
            "this API key is bound to store 'default'"
        )
        assert problem(http.post("/v1/search", json={"query": "x", "user": "someone-else"}), 403)["detail"].startswith(
            "this API key is bound to user"
        )
        assert [s["id"] for s in http.get("/v1/stores").json()["stores"]] == [str(store.id)]


def test_a_key_bound_to_a_user_fixes_the_user_and_creates_its_stores(api, db: Database, svc: MemoryService, user) -> None:
    svc.create_user("bob")
    with client(api.url, new_key(db, svc.tenant_id, user_id=user.id)) as http:
        assert http.post("/v1/memories", json={"content": "in the default store"}).status_code == 201
        assert http.post("/v1/memories", json={"content": "in notes", "store": "notes"}).status_code == 201
        assert problem(http.post("/v1/memories", json={"content": "x", "user": "bob"}), 403)["detail"] == (
            f"this API key is bound to user {user.name!r}"
        )
        names = sorted(s["store_name"] for s in http.get("/v1/stores").json()["stores"])
    assert names == ["default", "notes"] and {s.user_id for s in svc.list_stores()} == {user.id}


def test_a_store_created_through_the_api_can_use_the_real_default_model(http) -> None:
    """all-MiniLM-L6-v2 (the default of a server without MEMEX_EMBEDDING_MODEL): meaning, not words."""
    made = http.post("/v1/stores", json={"user": "ana", "store": "semantic", "embedding_model": "all-MiniLM-L6-v2"})
    assert made.status_code == 201 and (made.json()["embedding_model"], made.json()["embedding_dim"]) == ("all-MiniLM-L6-v2", 384)
    for content in ("Ana drinks oat milk flat whites every morning", "The quarterly report is due on Friday", "Ana's cat is called Pixel"):
        add(http, content, store="semantic")
    found = http.post("/v1/search", json={"query": "What coffee does Ana like?", "user": "ana", "store": "semantic", "min_similarity": 0})
    assert found.json()["results"][0]["content"] == "Ana drinks oat milk flat whites every morning"
    assert problem(http.post("/v1/stores", json={"user": "ana", "store": "semantic", "embedding_model": "test-hashing"}), 409)["detail"]
    refused = problem(http.post("/v1/stores", json={"user": "ana", "store": "other", "embedding_model": "no-such-model"}), 422)
    assert refused["detail"].startswith("embedding_model: unknown embedding model 'no-such-model'")
    assert sorted(s["store_name"] for s in http.get("/v1/stores").json()["stores"]) == ["semantic"]  # nothing made by the refusals


# Batch, list, pages ---------------------------------------------------------------------------


def test_a_batch_is_stored_whole_or_not_at_all(http) -> None:
    batch = http.post("/v1/memories/batch", json={"user": "ana", "memories": [{"content": f"fact {i}"} for i in range(5)]})
    assert batch.status_code == 201 and [m["content"] for m in batch.json()["memories"]] == [f"fact {i}" for i in range(5)]
    bad = [{"content": "fine"}, {"content": "bad importance", "importance": 2}]
    assert problem(http.post("/v1/memories/batch", json={"user": "ana", "memories": bad}), 422)["detail"].startswith(
        "body.memories.1.importance:"
    )
    assert http.get("/v1/memories", params={"user": "ana"}).json()["total"] == 5


def test_list_filters(http) -> None:
    add(http, "Ana likes tea", memory_type="preference", source="chat", importance=0.9, metadata={"topic": "drinks"})
    add(http, "Ana met Bo", memory_type="event", source="email", importance=0.2)
    add(http, "Ana's old phone number", expires_at="2020-01-01T00:00:00Z")
    archived = add(http, "Ana's archived note")
    http.patch(f"/v1/memories/{archived['id']}", json={"archived": True})

    def contents(**params: object) -> list[str]:
        page = http.get("/v1/memories", params={"user": "ana", **params})
        assert page.status_code == 200, page.text
        return sorted(m["content"] for m in page.json()["items"])

    assert contents() == ["Ana likes tea", "Ana met Bo", "Ana's archived note"]  # archived: absent means both
    assert contents(archived=False) == ["Ana likes tea", "Ana met Bo"]
    assert contents(memory_type="event") == contents(source="email") == ["Ana met Bo"]
    assert contents(memory_type=["event", "preference"]) == ["Ana likes tea", "Ana met Bo"]
    assert (
        contents(contains="TEA") == contents(metadata=json.dumps({"topic": "drinks"})) == contents(min_importance=0.6) == ["Ana likes tea"]
    )
    assert contents(max_importance=0.4) == ["Ana met Bo"]
    assert contents(include_expired=True, archived=False) == ["Ana likes tea", "Ana met Bo", "Ana's old phone number"]
    assert contents(archived=True) == ["Ana's archived note"]
    assert contents(include_expired=True, created_after="2000-01-01T00:00:00Z") == contents(include_expired=True)  # all four
    assert len(contents(include_expired=True)) == 4
    assert contents(created_before="2000-01-01T00:00:00Z") == []
    assert problem(http.get("/v1/memories", params={"user": "ana", "metadata": "[1]"}), 422)["detail"] == "metadata: must be a JSON object"


def pages(http: httpx.Client, **params: object) -> Iterator[dict]:
    cursor = None
    while True:
        page = http.get("/v1/memories", params={"user": "ana", **params, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        yield page.json()
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return


def test_cursor_pagination_walks_every_page_without_duplicates_or_gaps(http) -> None:
    # one batch: one transaction, so every created_at ties and only the id orders them
    batch = http.post(
        "/v1/memories/batch", json={"user": "ana", "memories": [{"content": f"m{i}", "importance": i % 3 / 2} for i in range(23)]}
    )
    everything = {m["id"] for m in batch.json()["memories"]}
    for order in ({}, {"order_by": "importance", "descending": False}, {"order_by": "source"}):
        seen = [m["id"] for page in pages(http, limit=5, **order) for m in page["items"]]
        assert len(seen) == len(set(seen)) == 23 and set(seen) == everything, order
    # a last page that is full says it is the last: no cursor to an empty page
    assert [len(page["items"]) for page in pages(http, limit=23)] == [23]
    assert [len(page["items"]) for page in pages(http, limit=22)] == [22, 1]


def test_a_write_between_pages_does_not_shift_them(http) -> None:
    http.post("/v1/memories/batch", json={"user": "ana", "memories": [{"content": f"m{i}"} for i in range(9)]})
    walk = pages(http, limit=4)
    first = next(walk)
    add(http, "newer than every page")  # newest first: it belongs before the cursor
    rest = [m["id"] for page in walk for m in page["items"]]
    seen = [m["id"] for m in first["items"]] + rest
    assert len(seen) == len(set(seen)) == 9 and first["total"] == 9


def test_a_cursor_is_checked(http) -> None:
    add(http, "one")
    add(http, "two")
    assert problem(http.get("/v1/memories", params={"user": "ana", "cursor": "not-a-cursor"}), 422)["detail"] == (
        "cursor: not a cursor this API gave"
    )
    cursor = next(pages(http, limit=1))["next_cursor"]
    assert cursor is not None
    assert problem(http.get("/v1/memories", params={"user": "ana", "cursor": cursor, "order_by": "importance"}), 422)["detail"].startswith(
        "cursor: it belongs to a listing in another order"
    )


# Relationships, stats, import and export ------------------------------------------------------


def test_relationships_and_related_memories(http) -> None:
    old, new = add(http, "Ana lives in Lisbon"), add(http, "Ana moved to Porto")
    made = http.post(
        "/v1/relationships", json={"source_memory_id": new["id"], "target_memory_id": old["id"], "relationship_type": "updates"}
    )
    assert made.status_code == 201 and made.json()["strength"] == 0.5
    [related] = http.get(f"/v1/memories/{old['id']}/related").json()["related"]
    assert (related["memory"]["id"], related["relationship_type"], related["direction"], related["depth"]) == (
        new["id"],
        "updates",
        "incoming",
        1,
    )
    assert http.get(f"/v1/memories/{old['id']}/related", params={"direction": "outgoing"}).json() == {"related": []}
    assert problem(
        http.post("/v1/relationships", json={"source_memory_id": new["id"], "target_memory_id": NIL, "relationship_type": "x"}), 404
    )
    assert http.delete(f"/v1/relationships/{made.json()['id']}").status_code == 204
    assert http.get(f"/v1/memories/{old['id']}/related").json() == {"related": []}


def test_store_stats(http) -> None:
    first = add(http, "Ana likes tea", memory_type="preference")
    add(http, "Ana met Bo", memory_type="event", source="email")
    http.post(
        "/v1/relationships", json={"source_memory_id": first["id"], "target_memory_id": first["id"], "relationship_type": "related_to"}
    )
    stats = http.get("/v1/stats", params={"user": "ana"}).json()
    assert (stats["total"], stats["live"], stats["by_type"], stats["by_source"]) == (
        2,
        2,
        {"event": 1, "preference": 1},
        {"(none)": 1, "email": 1},
    )
    assert problem(http.get("/v1/stats", params={"user": "ana", "store": "nope"}), 404)["detail"] == "user 'ana' has no store 'nope'"


def test_export_and_a_streamed_import_round_trip(api, http, db: Database, other) -> None:
    """A store exported as JSON Lines and imported, streamed in chunks, into another tenant's
    empty store: exported again, it is the same file (ids, vectors, relationships)."""
    a, b = add(http, "Ana likes tea", metadata={"k": [1, 2]}), add(http, "Ana met Bo", memory_type="event")
    http.post("/v1/relationships", json={"source_memory_id": b["id"], "target_memory_id": a["id"], "relationship_type": "related_to"})
    exported = http.get("/v1/export", params={"user": "ana"})
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/x-ndjson"
    lines = exported.text.splitlines()
    assert len(lines) == 3 and all(json.loads(line) for line in lines)

    def chunks() -> Iterator[bytes]:  # sent with Transfer-Encoding: chunked, read as it arrives
        data = exported.content
        for start in range(0, len(data), 1000):
            yield data[start : start + 1000]

    with client(api.url, new_key(db, other[0].tenant_id)) as elsewhere:
        imported = elsewhere.post("/v1/import", params={"user": "ana"}, content=chunks(), headers={"Content-Type": "application/x-ndjson"})
        assert imported.status_code == 200 and imported.json() == {"memories": 2, "relationships": 1, "skipped": []}
        assert elsewhere.get("/v1/export", params={"user": "ana"}).text == exported.text


def test_an_import_with_a_bad_line_writes_nothing_unless_told_to_skip(http) -> None:
    """Nothing: not the good lines, and not the user and store the import would have created."""
    data = b'{"content": "good"}\n{"content": ""}\n'
    headers = {"Content-Type": "application/x-ndjson"}
    refused = problem(http.post("/v1/import", params={"user": "ana", "store": "fresh"}, content=data, headers=headers), 422)
    assert refused["detail"].startswith("line 2")
    assert http.get("/v1/stores").json()["stores"] == []
    add(http, "Ana likes tea")  # ana and her default store exist: a refused import into it leaves it as it was
    problem(http.post("/v1/import", params={"user": "ana"}, content=data, headers=headers), 422)
    assert http.get("/v1/memories", params={"user": "ana"}).json()["total"] == 1
    assert [x["store_name"] for x in http.get("/v1/stores").json()["stores"]] == ["default"]
    skipped = http.post("/v1/import", params={"user": "ana", "skip_bad": True}, content=data, headers=headers).json()
    assert skipped["memories"] == 1 and len(skipped["skipped"]) == 1 and skipped["skipped"][0].startswith("line 2")
    assert http.get("/v1/memories", params={"user": "ana"}).json()["total"] == 2


# Errors ---------------------------------------------------------------------------------------


def test_every_error_is_a_one_line_problem_naming_what_is_wrong(api, http, db: Database, tenant: Tenant) -> None:
    memory = add(http, "Ana likes tea")
    assert problem(http.post("/v1/memories", content=b'{"content": "\xff"}', headers={"Content-Type": "application/json"}), 400)
    assert problem(httpx.get(f"{api.url}/v1/stores"), 401)["detail"] == "missing API key: send Authorization: Bearer <key>"
    with client(api.url, new_key(db, tenant.id, read_only=True)) as reader:
        assert problem(reader.post("/v1/memories", json={"content": "x", "user": "ana"}), 403)["detail"] == "this API key is read-only"
    assert problem(http.get(f"/v1/memories/{NIL}"), 404)["detail"] == f"memory {NIL} not found in this tenant"
    stale = http.patch(f"/v1/memories/{memory['id']}", json={"content": "changed", "if_updated_at": "2000-01-01T00:00:00Z"})
    assert f"memory {memory['id']}" in problem(stale, 409)["detail"]
    assert problem(http.post("/v1/memories", content=b"x" * (5 << 20), headers={"Content-Type": "application/json"}), 413)["detail"] == (
        "request body is larger than 4,194,304 bytes"
    )
    assert problem(http.post("/v1/import", params={"user": "ana"}, content=b"{}", headers={"Content-Type": "text/plain"}), 415)[
        "detail"
    ] == ("send the file as application/x-ndjson")
    assert problem(http.post("/v1/memories", json={"content": "", "user": "ana"}), 422)["detail"] == (
        "body.content: String should have at least 1 character"
    )
    assert problem(http.post("/v1/memories", json={"content": "x", "user": "ana", "colour": "red"}), 422)["detail"] == (
        "body.colour: Extra inputs are not permitted"
    )
    assert problem(http.get("/v1/memories/not-a-uuid"), 404)["detail"] == (
        "no such path: /v1/memories/not-a-uuid (ids in paths are UUIDs; the endpoints are listed at /docs)"
    )
    assert (
        problem(http.patch("/v1/memories/batch", json={}), 405).get("detail")
        and http.patch("/v1/memories/batch").headers["allow"] == "POST"
    )
    assert problem(http.patch(f"/v1/memories/{memory['id']}", json={"content": None}), 422)["detail"] == "content: cannot be null"
    assert problem(http.get("/v1/nothing-here"), 404)
    assert problem(http.put("/v1/memories"), 405) and http.put("/v1/memories").headers["allow"] == "GET, POST"


def test_limits_are_refused_naming_the_field(http) -> None:
    assert problem(http.post("/v1/search", json={"query": "q" * 10_001, "user": "ana"}), 422)["detail"] == (
        "body.query: String should have at most 10000 characters"
    )
    memories = [{"content": "x"}] * 1001
    assert problem(http.post("/v1/memories/batch", json={"memories": memories, "user": "ana"}), 422)["detail"] == (
        "body.memories: List should have at most 1000 items after validation, not 1001"
    )
    assert problem(http.get("/v1/memories", params={"user": "ana", "limit": 1001}), 422)["detail"] == (
        "query.limit: Input should be less than or equal to 1000"
    )
    assert problem(http.post("/v1/search", json={"query": "x", "user": "ana", "limit": 1001}), 422)["detail"].startswith("body.limit:")
    assert problem(http.post("/v1/memories", json={"content": "c" * 100_001, "user": "ana"}), 422)["detail"].startswith("body.content:")
    assert http.get("/v1/stores").json() == {"stores": []}  # no refusal wrote anything


def test_a_read_only_key_reads_and_searches_but_every_write_is_403(api, http, db: Database, tenant: Tenant) -> None:
    memory = add(http, "Ana likes tea")
    with client(api.url, new_key(db, tenant.id, read_only=True)) as reader:
        assert reader.get(f"/v1/memories/{memory['id']}").status_code == 200
        assert reader.post("/v1/search", json={"query": "tea", "user": "ana", "min_similarity": 0}).status_code == 200
        assert reader.get("/v1/export", params={"user": "ana"}).status_code == 200
        writes = [
            reader.post("/v1/memories", json={"content": "x", "user": "ana"}),
            reader.post("/v1/memories", json={"content": "x", "user": "a-new-user"}),
            reader.post("/v1/memories/batch", json={"memories": [{"content": "x"}], "user": "ana"}),
            reader.patch(f"/v1/memories/{memory['id']}", json={"content": "changed"}),
            reader.delete(f"/v1/memories/{memory['id']}"),
            reader.post(
                "/v1/relationships", json={"source_memory_id": memory["id"], "target_memory_id": memory["id"], "relationship_type": "x"}
            ),
            reader.post("/v1/stores", json={"user": "ana", "store": "new"}),
            reader.post(
                "/v1/import", params={"user": "ana"}, content=b'{"content": "x"}\n', headers={"Content-Type": "application/x-ndjson"}
            ),
        ]
        assert [problem(w, 403)["detail"] for w in writes] == ["this API key is read-only"] * len(writes)
    assert http.get(f"/v1/memories/{memory['id']}").json()["content"] == "Ana likes tea"
    assert http.get("/v1/memories", params={"user": "ana"}).json()["total"] == 1


# Operations -----------------------------------------------------------------------------------


def test_health_readiness_schema_and_docs(api) -> None:
    assert httpx.get(f"{api.url}/healthz").json() == {"status": "ok"}
    with client(api.url, None) as anyone:
        assert ready(anyone)["status"] == "ready"
    schema = httpx.get(f"{api.url}/openapi.json").json()
    assert {"/v1/memories", "/v1/memories/{memory_id}", "/v1/search", "/v1/export", "/v1/import"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `Authorization: Bearer mx_...`",
    }
    assert "/mcp" not in schema["paths"]
    docs = httpx.get(f"{api.url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_two_workers_answer_alike(api, db: Database, tenant: Tenant, tmp_path) -> None:
    key = new_key(db, tenant.id)

    def listing(http: httpx.Client) -> list[str]:
        return sorted(m["content"] for m in http.get("/v1/memories", params={"user": "ana"}).json()["items"])

    two = start_server(tmp_path / "serve-2.log", workers=2, env=child_env())
    try:
        assert len(psutil.Process(two.proc.pid).children()) >= 2
        for i in range(4):  # a new connection each time: the kernel hands them to either worker
            with client(two.url, key) as fresh:
                add(fresh, f"written through a worker {i}")
        with client(api.url, key) as one:
            add(one, "written through the one-worker server")
            expected = listing(one)
        assert len(expected) == 5
        for _ in range(8):
            with client(two.url, key) as fresh:
                assert listing(fresh) == expected
                assert problem(fresh.get("/v1/memories", params={"user": "ana", "limit": 0}), 422)["detail"].startswith("query.limit:")
    finally:
        stop_server(two)
    assert "Traceback" not in two.log.read_text()


def test_fastapi_telemetry_is_on_where_opentelemetry_is_set_up(monkeypatch) -> None:
    """An operator who sets up OpenTelemetry gets FastAPI's spans, metrics and logs of each
    request; elsewhere the API does not pay for looking for them on every request."""
    import os

    from core.api.app import telemetry

    for name in [n for n in os.environ if n.startswith(("OTEL_", "FASTAPI_OTEL_"))]:
        monkeypatch.delenv(name)
    assert telemetry() == {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert telemetry() == {}


def test_the_default_model_loads_while_the_server_starts_not_in_the_first_request(db: Database) -> None:
    """An agent's first write or text search does not wait for the local model to load (13 s of
    a first POST /v1/memories on two vCPUs): the app's start loads the default model, before any
    request."""
    import threading

    from starlette.testclient import TestClient

    from core.api.app import create_app
    from core.config import get_settings
    from core.embeddings import use_embedder
    from core.embeddings.hashing import HashingEmbedder

    loading, release = threading.Event(), threading.Event()

    class Loading(HashingEmbedder):
        def warm(self) -> None:
            loading.set()
            release.wait(60)

    model = get_settings().default_embedding_model
    use_embedder(model, lambda dim: Loading())
    try:
        with TestClient(create_app(db)) as http:
            assert loading.wait(60)  # no request has asked for it
            busy = http.get("/readyz")
            assert busy.status_code == 503 and busy.json()["detail"] == f"loading the default embedding model ({model})"
            release.set()
            assert ready(http)["status"] == "ready"
    finally:
        release.set()
        use_embedder(model, None)
