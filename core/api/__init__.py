"""How agents reach memex over the network: one ASGI app (`memex serve`) with the REST API under
/v1 (FastAPI) and the MCP server at /mcp (streamable HTTP), and the same MCP tools over stdio
(`memex mcp`). Every request carries an API key; PostgreSQL resolves it to a tenant and a scope
(core.db.Database.with_key), and every call goes through MemoryService in that scope."""
