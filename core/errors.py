"""Errors a caller can act on. Each message is one line that names what is wrong."""


class MemexError(Exception):
    """Base of every error memex raises on purpose."""


class InvalidInput(MemexError, ValueError):
    """The caller passed something memex refuses; nothing was written."""


class NotFound(MemexError, LookupError):
    """No such row in the current tenant (rows of other tenants are invisible, so also 'not found')."""


class Conflict(MemexError):
    """The request contradicts what is stored (a duplicate name, a model change on a full store)."""


class EmbeddingError(MemexError):
    """The embedding provider failed or is not configured."""


class ConfigError(MemexError):
    """The database or a provider is not set up the way memex needs."""


class Unavailable(MemexError):
    """The database cannot be reached right now (down, restarting, unreachable); try again."""


class Unauthenticated(MemexError):
    """The credential presented (an API key) is unknown, revoked or expired."""


class Forbidden(MemexError):
    """The caller is known but may not do this (a read-only key writing, a role too low)."""
