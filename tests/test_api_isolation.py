"""Two tenants' keys against one live server, through REST and MCP: tenant A tries to read,
change, delete, relate, search, list and export tenant B's memories by their ids. A gets exactly
what an id that exists nowhere gets (a 404 naming only what A sent), and B's data never shows.
And forged, revoked and expired keys all get the same 401."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import httpx
import pytest

from core import admin
from core.admin import create_tenant
from core.db import Database
from tests.api_support import client, mcp_client, new_key, problem, tool_error
from tests.conftest import unique

SECRET = "The launch code of tenant B is 0000"


@dataclass
class Victim:
    key: str
    memory: str
    other_memory: str
    store: str
    user: str
    relationship: str
    export: str


@pytest.fixture
def victim(api, db: Database) -> Victim:
    """Tenant B, with the same user and store names as A uses: only the key tells them apart."""
    tenant = create_tenant(db, unique("victim"))
    key = new_key(db, tenant.id)
    with client(api.url, key) as b:
        first = b.post("/v1/memories", json={"content": SECRET, "user": "ana"}).json()
        second = b.post("/v1/memories", json={"content": "Tenant B's other memory", "user": "ana"}).json()
        rel = b.post(
            "/v1/relationships", json={"source_memory_id": second["id"], "target_memory_id": first["id"], "relationship_type": "x"}
        )
        [store] = b.get("/v1/stores").json()["stores"]
        export = b.get("/v1/export", params={"user": "ana"}).text
    return Victim(key, first["id"], second["id"], store["id"], store["user_id"], rel.json()["id"], export)


def leaks(victim: Victim, text: str, sent: str) -> list[str]:
    """What of B's appears in a response other than the id A itself sent."""
    return [
        v for v in (SECRET, victim.memory, victim.other_memory, victim.store, victim.user, victim.relationship) if v != sent and v in text
    ]


def test_rest_never_shows_or_changes_another_tenants_data(api, http: httpx.Client, victim: Victim) -> None:
    mine = http.post("/v1/memories", json={"content": "A's own launch code memory", "user": "ana"}).json()
    attempts = {
        victim.memory: [
            http.get(f"/v1/memories/{victim.memory}"),
            http.patch(f"/v1/memories/{victim.memory}", json={"content": "pwned"}),
            http.delete(f"/v1/memories/{victim.memory}"),
            http.get(f"/v1/memories/{victim.memory}/related"),
            http.post(
                "/v1/relationships", json={"source_memory_id": mine["id"], "target_memory_id": victim.memory, "relationship_type": "x"}
            ),
            http.post(
                "/v1/relationships", json={"source_memory_id": victim.memory, "target_memory_id": mine["id"], "relationship_type": "x"}
            ),
        ],
        victim.store: [
            http.post("/v1/search", json={"query": "launch code", "store": victim.store, "min_similarity": -1}),
            http.get("/v1/memories", params={"store": victim.store}),
            http.get("/v1/export", params={"store": victim.store}),
            http.get("/v1/stats", params={"store": victim.store}),
            http.post("/v1/memories", json={"content": "planted", "store": victim.store}),
            http.post(
                "/v1/import",
                params={"store": victim.store},
                content=b'{"content": "planted"}\n',
                headers={"Content-Type": "application/x-ndjson"},
            ),
        ],
        victim.user: [
            http.get("/v1/stores", params={"user": victim.user}),
            http.post("/v1/memories", json={"content": "planted", "user": victim.user}),
        ],
        victim.relationship: [http.delete(f"/v1/relationships/{victim.relationship}")],
    }
    nowhere = str(uuid.uuid4())
    for sent, responses in attempts.items():
        for response in responses:
            assert problem(response, 404)["detail"] and not leaks(victim, response.text, sent), (response.request.url, response.text)
            # the same answer as for an id that exists nowhere: no hint that this one exists
            again = http.request(
                response.request.method,
                str(response.request.url).replace(sent, nowhere),
                content=response.request.content.replace(sent.encode(), nowhere.encode()),
                headers={"Content-Type": response.request.headers.get("content-type", "application/json")},
            )
            assert problem(again, 404)["detail"] == problem(response, 404)["detail"].replace(sent, nowhere)

    # by name, A reaches its own "ana"/"default" only
    found = http.post("/v1/search", json={"query": "launch code", "user": "ana", "min_similarity": -1, "limit": 100}).json()["results"]
    assert [h["id"] for h in found] == [mine["id"]]
    assert [m["id"] for m in http.get("/v1/memories", params={"user": "ana"}).json()["items"]] == [mine["id"]]
    assert not leaks(victim, http.get("/v1/export", params={"user": "ana"}).text, "")
    assert not leaks(victim, http.get("/v1/stores").text, "") and not leaks(victim, http.get("/v1/stats", params={"user": "ana"}).text, "")

    with client(api.url, victim.key) as b:  # B's store is as it was
        assert b.get("/v1/export", params={"user": "ana"}).text == victim.export


def test_mcp_never_shows_or_changes_another_tenants_data(api, key: str, victim: Victim) -> None:
    async def go():
        async with mcp_client(api.url, key) as a:
            mine = (await a.call_tool("add_memory", {"content": "A's own memory", "user": "ana"})).structured_content["id"]
            attempts = [
                (victim.memory, "get_memory", {"memory_id": victim.memory}),
                (victim.memory, "update_memory", {"memory_id": victim.memory, "content": "pwned"}),
                (victim.memory, "delete_memory", {"memory_id": victim.memory}),
                (victim.memory, "related_memories", {"memory_id": victim.memory}),
                (
                    victim.memory,
                    "add_relationship",
                    {"source_memory_id": mine, "target_memory_id": victim.memory, "relationship_type": "x"},
                ),
                (victim.store, "search_memories", {"query": "launch code", "store": victim.store}),
                (victim.store, "list_memories", {"store": victim.store}),
                (victim.store, "add_memory", {"content": "planted", "store": victim.store}),
                (victim.user, "add_memories", {"memories": [{"content": "planted"}], "user": victim.user}),
            ]
            refused = [(sent, await a.call_tool(name, arguments)) for sent, name, arguments in attempts]
            found = await a.call_tool("search_memories", {"query": "launch code", "user": "ana", "min_similarity": -1, "limit": 100})
            return mine, refused, found

    mine, refused, found = asyncio.run(go())
    for sent, result in refused:
        message = tool_error(result)
        assert "not found in this tenant" in message and not leaks(victim, message, sent), message
    assert [h["id"] for h in found.structured_content["results"]] == [mine]
    with client(api.url, victim.key) as b:
        assert b.get("/v1/export", params={"user": "ana"}).text == victim.export


def test_forged_revoked_and_expired_keys_all_get_the_same_401(api, db: Database, tenant, superuser) -> None:
    secret = new_key(db, tenant.id)
    to_revoke, revoked = admin.create_key(db, tenant.id)
    admin.revoke_key(db, to_revoke.id)
    expired, expired_key = admin.create_key(db, tenant.id)
    with superuser.begin() as conn:
        conn.exec_driver_sql("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = %s", (expired.id,))
    forged: dict[str, str | bytes] = {
        "random": "mx_" + uuid.uuid4().hex + uuid.uuid4().hex[:11],
        "a real prefix with a wrong secret": secret[:11] + "x" * 35,
        "the real key with one more character": secret + "x",
        "very long": "mx_" + "a" * 20_000,
        "non-ASCII": ("mx_clé-" + secret[3:]).encode(),
        "revoked": revoked,
        "expired": expired_key,
    }
    bodies = set()
    for what, key in forged.items():
        response = httpx.get(
            f"{api.url}/v1/memories",
            params={"user": "ana"},
            headers={"Authorization": b"Bearer " + (key if isinstance(key, bytes) else key.encode())},
        )
        assert problem(response, 401)["detail"] == "invalid API key", what
        assert response.headers["www-authenticate"] == 'Bearer realm="memex"'
        bodies.add(response.text)
        assert (
            httpx.post(
                f"{api.url}/mcp", json={}, headers={"Authorization": b"Bearer " + (key if isinstance(key, bytes) else key.encode())}
            ).status_code
            == 401
        ), what
    assert len(bodies) == 1
    for header in ({}, {"Authorization": "Bearer"}, {"Authorization": ""}, {"Authorization": f"Basic {secret}"}):
        said = problem(httpx.get(f"{api.url}/v1/memories", params={"user": "ana"}, headers=header), 401)["detail"]
        assert said == "missing API key: send Authorization: Bearer <key>", header
    with client(api.url, secret) as good:
        assert good.get("/v1/stores").status_code == 200


def test_a_revoked_key_is_refused_at_its_next_request_through_rest_and_mcp(api, db: Database, tenant) -> None:
    record, key = admin.create_key(db, tenant.id)
    tools_list = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    mcp_headers = {"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream"}
    with client(api.url, key) as agent:
        assert agent.post("/v1/memories", json={"content": "before", "user": "ana"}).status_code == 201
        assert httpx.post(f"{api.url}/mcp", json=tools_list, headers=mcp_headers).status_code == 200
        admin.revoke_key(db, record.id)
        assert problem(agent.get("/v1/stores"), 401)["detail"] == "invalid API key"
        assert problem(agent.post("/v1/memories", json={"content": "after", "user": "ana"}), 401)["detail"] == "invalid API key"
        assert httpx.post(f"{api.url}/mcp", json=tools_list, headers=mcp_headers).status_code == 401
