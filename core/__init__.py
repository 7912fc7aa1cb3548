"""memex: persistent memory for AI agents on PostgreSQL + pgvector."""

from core.db import Database, get_database
from core.errors import ConfigError, Conflict, EmbeddingError, InvalidInput, MemexError, NotFound
from core.fields import MemoryColumns, NewMemory
from core.models import NewRelationship
from core.service import MemoryService

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
