"""Data access: the SQL of memex, as functions that take an open `Connection`.

Nothing here opens a transaction or sets a tenant: the service (core.service) opens the tenant
scope once per operation and calls these inside it, so row-level security applies to every
statement. Tenant administration (core.admin) calls the tenant functions inside an owner
transaction. No other layer writes SQL (ruff's banned-api rule keeps sqlalchemy out of them).
"""
