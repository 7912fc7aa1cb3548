"""Apply migrations/*.sql in order, each once, each in its own transaction."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from core.db import Database
from core.errors import ConfigError


def migrations_dir() -> Path:
    """`migrations/` beside the package in a checkout, or inside it in a wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "migrations", here / "migrations"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("migrations directory not found beside or inside the core package")


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def all_migrations() -> list[Migration]:
    return [Migration(p.stem, p) for p in sorted(migrations_dir().glob("*.sql"))]


def migrate(db: Database) -> list[str]:
    """Apply what is missing; return the versions applied now (empty when up to date).

    A session-level advisory lock serialises processes that start together; each file runs in a
    transaction with its bookkeeping row, so a failed file leaves nothing behind.
    """
    if db.admin is None:
        raise ConfigError("migrations need the owner connection: set MEMEX_ADMIN_DATABASE_URL")
    applied_now: list[str] = []
    with db.admin.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(hashtext('memex.migrate'))"))
        try:
            conn.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version text PRIMARY KEY, checksum text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                )
            )
            conn.commit()
            done = {row.version: row.checksum for row in conn.execute(text("SELECT version, checksum FROM schema_migrations"))}
            conn.commit()
            for migration in all_migrations():
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise ConfigError(f"migration {migration.version} changed after it was applied; add a new migration instead")
                    continue
                with conn.begin():
                    conn.exec_driver_sql(migration.sql)
                    conn.execute(
                        text("INSERT INTO schema_migrations (version, checksum) VALUES (:v, :c)"),
                        {"v": migration.version, "c": migration.checksum},
                    )
                applied_now.append(migration.version)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(hashtext('memex.migrate'))"))
            conn.commit()
    if applied_now:
        db.dispose()  # new connections pick up types created by the migrations (vector)
    return applied_now
