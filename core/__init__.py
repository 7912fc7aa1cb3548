"""memex: persistent memory for AI agents on PostgreSQL + pgvector.

The names below are loaded when first used: `memex` commands import only what they run (a
command that needs no database starts without SQLAlchemy and psycopg)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.db import Database, get_database
    from core.errors import ConfigError, Conflict, EmbeddingError, InvalidInput, MemexError, NotFound
    from core.fields import MemoryColumns, NewMemory
    from core.models import NewRelationship
    from core.service import MemoryService

_HOMES = {
    "ConfigError": "core.errors",
    "Conflict": "core.errors",
    "Database": "core.db",
    "EmbeddingError": "core.errors",
    "InvalidInput": "core.errors",
    "MemexError": "core.errors",
    "MemoryColumns": "core.fields",
    "MemoryService": "core.service",
    "NewMemory": "core.fields",
    "NewRelationship": "core.models",
    "NotFound": "core.errors",
    "get_database": "core.db",
}
__all__ = [
    "ConfigError",
    "Conflict",
    "Database",
    "EmbeddingError",
    "InvalidInput",
    "MemexError",
    "MemoryColumns",
    "MemoryService",
    "NewMemory",
    "NewRelationship",
    "NotFound",
    "get_database",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
