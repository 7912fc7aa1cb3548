"""memex: persistent memory for AI agents on PostgreSQL + pgvector."""

from core.db import Database, get_database
from core.errors import Conflict, ConfigError, EmbeddingError, InvalidInput, MemexError, NotFound
from core.memories import NewMemory
from core.relationships import NewRelationship
from core.service import MemoryService

__all__ = [
    "Conflict",
    "ConfigError",
    "Database",
    "EmbeddingError",
    "InvalidInput",
    "MemexError",
    "MemoryService",
    "NewMemory",
    "NewRelationship",
    "NotFound",
    "get_database",
]
