"""Apply migrations/*.sql in order, each once, each in its own transaction, as the schema owner."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text

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


_LEDGER = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
)


def _recorded(conn: Connection) -> dict[str, str]:
    return {row.version: row.checksum for row in conn.execute(text("SELECT version, checksum FROM schema_migrations"))}


def _check(recorded: dict[str, str], known: list[Migration]) -> None:
    """Refuse a database this code does not fully know: a migration recorded as applied whose
    file is absent (a newer memex applied it, or the file was removed), or one changed since."""
    on_disk = {m.version: m for m in known}
    absent = sorted(set(recorded) - set(on_disk))
    if absent:
        raise ConfigError(
            f"the database records migration {absent[0]} as applied, but {migrations_dir()} has no such file"
            " (a newer memex applied it, or the file was removed); use the memex that applied it"
        )
    for version, checksum in recorded.items():
        if on_disk[version].checksum != checksum:
            raise ConfigError(f"migration {version} changed after it was applied; add a new migration instead")


def pending(engine: Engine) -> list[str]:
    """Versions not applied yet (a readiness check); ConfigError as migrate() for an unknown database."""
    with engine.connect() as conn:
        if not conn.scalar(text("SELECT to_regclass('schema_migrations')")):
            return [m.version for m in all_migrations()]
        recorded = _recorded(conn)
    known = all_migrations()
    _check(recorded, known)
    return [m.version for m in known if m.version not in recorded]


def migrate(engine: Engine) -> list[str]:
    """Apply what is missing with the owner's engine; return the versions applied now (empty when
    up to date). The caller disposes of its engines afterwards when something was applied (new
    connections then know the types the migrations created).

    A session-level advisory lock serialises processes that start together; each file runs in a
    transaction with its bookkeeping row, so a failed file leaves nothing behind.
    """
    applied_now: list[str] = []
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(hashtext('memex.migrate'))"))
        try:
            conn.execute(text(_LEDGER))
            conn.commit()
            recorded = _recorded(conn)
            conn.commit()
            known = all_migrations()
            _check(recorded, known)
            for migration in known:
                if migration.version in recorded:
                    continue
                with conn.begin():
                    # the driver's own execute with no parameters: a migration's % is SQL, not a placeholder
                    raw: Any = conn.connection.driver_connection
                    raw.execute(migration.sql)
                    conn.execute(
                        text("INSERT INTO schema_migrations (version, checksum) VALUES (:v, :c)"),
                        {"v": migration.version, "c": migration.checksum},
                    )
                applied_now.append(migration.version)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(hashtext('memex.migrate'))"))
            conn.commit()
    return applied_now
