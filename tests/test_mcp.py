"""The MCP server with the SDK's own client: over streamable HTTP against the live `memex serve`
(/mcp, the key as a bearer header), and over stdio against `memex mcp` (the key in MEMEX_API_KEY)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from core.db import Database
from tests.api_support import ROOT, child_env, mcp_client, new_key, tool_error

TOOLS = {
    "add_memory",
    "add_memories",
    "search_memories",
    "get_memory",
    "update_memory",
    "delete_memory",
    "add_relationship",
    "related_memories",
    "list_memories",
}
NIL = "00000000-0000-0000-0000-000000000000"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}},
}


def test_the_tools_are_listed_with_descriptions_and_no_tenant_parameter(api, key: str) -> None:
    async def go():
        async with mcp_client(api.url, key) as client:
            return (await client.list_tools()).tools

    tools = {t.name: t for t in asyncio.run(go())}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and tool.description.endswith("."), tool.name
        names = set(tool.input_schema.get("properties", {}))
        assert not any("tenant" in n for n in names) and "ctx" not in names, tool.name
    assert tools["add_memory"].input_schema["required"] == ["content"]
    assert tools["search_memories"].input_schema["properties"]["mode"]["description"].startswith("vector (meaning)")
    assert tools["get_memory"].annotations.read_only_hint is True and tools["delete_memory"].annotations.destructive_hint is True


def test_every_tool_over_streamable_http(api, key: str) -> None:
    async def go():
        async with mcp_client(api.url, key) as client:
            tea = await client.call_tool("add_memory", {"content": "Ana likes green tea", "memory_type": "preference", "user": "ana"})
            tea_id = tea.structured_content["id"]
            batch = await client.call_tool(
                "add_memories", {"memories": [{"content": "Ana lives in Lisbon"}, {"content": "Ana moved to Porto"}], "user": "ana"}
            )
            lisbon, porto = (m["id"] for m in batch.structured_content["memories"])
            found = await client.call_tool(
                "search_memories", {"query": "green tea", "user": "ana", "mode": "vector", "min_similarity": 0.1}
            )
            got = await client.call_tool("get_memory", {"memory_id": tea_id})
            updated = await client.call_tool("update_memory", {"memory_id": tea_id, "content": "Ana likes black tea", "importance": 0.9})
            related = await client.call_tool(
                "add_relationship", {"source_memory_id": porto, "target_memory_id": lisbon, "relationship_type": "updates"}
            )
            neighbours = await client.call_tool("related_memories", {"memory_id": lisbon})
            listed = await client.call_tool("list_memories", {"user": "ana", "contains": "tea"})
            deleted = await client.call_tool("delete_memory", {"memory_id": tea_id})
            after = await client.call_tool("list_memories", {"user": "ana"})
            return tea, found, got, updated, related, neighbours, listed, deleted, after

    tea, found, got, updated, related, neighbours, listed, deleted, after = asyncio.run(go())
    assert not tea.is_error and tea.structured_content["content"] == "Ana likes green tea"
    hits = found.structured_content["results"]
    assert (
        hits[0]["id"] == tea.structured_content["id"] and hits[0]["similarity"] > 0.1 and hits[0]["breakdown"]["final"] == hits[0]["score"]
    )
    assert (got.structured_content["id"], got.structured_content["content"]) == (tea.structured_content["id"], "Ana likes green tea")
    assert got.structured_content["access_count"] == 1  # the search counted it
    assert (updated.structured_content["content"], updated.structured_content["importance"]) == ("Ana likes black tea", 0.9)
    assert related.structured_content["relationship_type"] == "updates"
    [neighbour] = neighbours.structured_content["related"]
    assert (neighbour["memory"]["content"], neighbour["direction"]) == ("Ana moved to Porto", "incoming")
    assert [m["content"] for m in listed.structured_content["items"]] == ["Ana likes black tea"]
    assert deleted.structured_content == {"deleted": True}
    assert after.structured_content["total"] == 2


def test_tool_errors_are_one_line_messages_the_model_can_act_on(api, key: str) -> None:
    async def go():
        async with mcp_client(api.url, key) as client:
            return [
                await client.call_tool("get_memory", {"memory_id": NIL}),
                await client.call_tool("delete_memory", {"memory_id": NIL}),
                await client.call_tool("add_memory", {"content": "whose?"}),
                await client.call_tool("search_memories", {"query": "x", "user": "nobody"}),
                await client.call_tool("add_memory", {"content": "x", "importance": 2, "user": "ana"}),
            ]

    not_found, not_deleted, whose, nobody, invalid = asyncio.run(go())
    assert tool_error(not_found) == f"Error executing tool get_memory: memory {NIL} not found in this tenant"
    assert tool_error(not_deleted) == f"Error executing tool delete_memory: memory {NIL} not found in this tenant"
    assert tool_error(whose) == "Error executing tool add_memory: user: name the user (this API key is not bound to one)"
    assert tool_error(nobody).startswith("Error executing tool search_memories: user 'nobody' not found")
    assert tool_error(invalid).startswith("Error executing tool add_memory: importance: ") and "(got 2)" in tool_error(invalid)
    assert "\n" not in tool_error(invalid)


def test_bad_arguments_get_one_line_naming_each_argument_and_what_it_was_given(api, key: str) -> None:
    """For every tool alike (the server, not each tool, says it): not pydantic's several lines with
    its internal model's name and a link to its docs."""

    async def go():
        async with mcp_client(api.url, key) as client:
            return [
                await client.call_tool("get_memory", {"memory_id": "not-a-uuid"}),
                await client.call_tool("search_memories", {"query": "x", "user": "ana", "limit": "many"}),
                await client.call_tool("add_memory", {"user": "ana"}),
            ]

    bad_id, bad_limit, missing = said = [tool_error(r) for r in asyncio.run(go())]
    for text in said:
        assert "\n" not in text and "pydantic" not in text and "Arguments" not in text, text
    assert bad_id.startswith("Error executing tool get_memory: memory_id: Input should be a valid UUID") and bad_id.endswith(
        "(got 'not-a-uuid')"
    )
    assert bad_limit.startswith("Error executing tool search_memories: limit: ") and bad_limit.endswith("(got 'many')")
    assert missing == "Error executing tool add_memory: content: Field required"


def test_a_read_only_key_searches_but_cannot_write_over_mcp(api, http, db: Database, tenant) -> None:
    memory = http.post("/v1/memories", json={"content": "Ana likes tea", "user": "ana"}).json()

    async def go():
        async with mcp_client(api.url, new_key(db, tenant.id, read_only=True)) as client:
            return (
                await client.call_tool("search_memories", {"query": "tea", "user": "ana", "min_similarity": 0}),
                await client.call_tool("add_memory", {"content": "x", "user": "ana"}),
                await client.call_tool("delete_memory", {"memory_id": memory["id"]}),
            )

    found, added, deleted = asyncio.run(go())
    assert [h["id"] for h in found.structured_content["results"]] == [memory["id"]]
    assert tool_error(added) == "Error executing tool add_memory: this API key is read-only"
    assert tool_error(deleted) == "Error executing tool delete_memory: this API key is read-only"
    assert http.get(f"/v1/memories/{memory['id']}").json()["access_count"] == 1


@pytest.mark.parametrize("authorization", [None, "Bearer mx_not-a-key", "Basic dXNlcjpwYXNz"])
def test_mcp_over_http_refuses_a_missing_or_bad_key_with_401(api, authorization: str | None) -> None:
    headers = {"Accept": "application/json, text/event-stream", **({"Authorization": authorization} if authorization else {})}
    response = httpx.post(f"{api.url}/mcp", json=INITIALIZE, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert "Traceback" not in response.text


def test_the_sdk_client_cannot_connect_with_a_bad_key(api) -> None:
    async def go():
        async with mcp_client(api.url, "mx_not-a-key") as client:
            await client.list_tools()

    with pytest.raises(ExceptionGroup) as failed:
        asyncio.run(go())
    assert failed.group_contains(MCPError)


# stdio: `memex mcp` ------------------------------------------------------------------------------


def stdio(key: str | None) -> StdioServerParameters:
    """`python -m core mcp` with an explicit environment (the SDK gives a child only a minimal one)."""
    env = child_env(**({"MEMEX_API_KEY": key} if key is not None else {}))
    return StdioServerParameters(command=sys.executable, args=["-m", "core", "mcp"], env=env, cwd=str(ROOT))


def test_every_kind_of_call_over_stdio(db: Database, tenant, key: str) -> None:
    async def go():
        async with Client(stdio(key)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            added = await client.call_tool("add_memory", {"content": "Ana likes green tea", "user": "ana"})
            found = await client.call_tool("search_memories", {"query": "green tea", "user": "ana", "min_similarity": 0.1})
            missing = await client.call_tool("get_memory", {"memory_id": NIL})
            return names, added, found, missing

    names, added, found, missing = asyncio.run(go())
    assert names == TOOLS
    assert [h["id"] for h in found.structured_content["results"]] == [added.structured_content["id"]]
    assert tool_error(missing) == f"Error executing tool get_memory: memory {NIL} not found in this tenant"


@pytest.mark.parametrize(
    ("key", "code", "said"),
    [
        ("mx_not-a-key", 2, "memex mcp: error: invalid API key"),
        (None, 1, "memex: error: set MEMEX_API_KEY to an API key (memex keys create --tenant T)"),
    ],
)
def test_memex_mcp_without_a_good_key_exits_with_one_line_and_nothing_on_stdout(key: str | None, code: int, said: str) -> None:
    params = stdio(key)
    done = subprocess.run(
        [params.command, *params.args], env=params.env, cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    assert (done.returncode, done.stdout, done.stderr) == (code, "", said + "\n")
