"""One typed settings object, read from the environment once."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the database is and which embedding model new stores get.

    With no DATABASE_URL, memex runs an embedded PostgreSQL in `data_dir`.
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    # repr=False: the URLs may hold passwords, and a printed or logged Settings must not show them
    database_url: str | None = Field(default=None, alias="DATABASE_URL", repr=False)
    admin_database_url: str | None = Field(default=None, alias="MEMEX_ADMIN_DATABASE_URL", repr=False)
    # DATABASE_URL points at a pooler in transaction mode (PgBouncer): no client-side pool, no
    # server-side prepared statements. The owner URL must reach PostgreSQL directly.
    database_pooler: bool = Field(default=False, alias="MEMEX_DATABASE_POOLER")
    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("memex")), alias="MEMEX_DATA_DIR")
    default_embedding_model: str = Field(default="all-MiniLM-L6-v2", alias="MEMEX_EMBEDDING_MODEL")
    # the explorer's sign-in when no [auth] (OpenID Connect) is configured: "accounts" for local
    # analyst accounts; unset, the explorer opens only on localhost, as one local operator
    explorer_login: str | None = Field(default=None, alias="MEMEX_EXPLORER_LOGIN")
    # the explorer's start-up work (core.explorer.startup); off ("0"), maps are fitted when first
    # opened and imports' pending rows wait for `memex index`: for explorers started many times
    # over (the test suite's browser tests) or a second explorer on a database another one serves
    explorer_start_work: bool = Field(default=True, alias="MEMEX_EXPLORER_START_WORK")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
