"""The retrieval log's writer: a search answers first, its log entry is written just after.

Writing the entry inside the search's own transaction cost every search ~1.2 ms (an INSERT
with its indexes and its round trip; docs/BENCHMARKS.md). A thread of the process writes it
instead, in the scope of the service that searched (the same tenant, and for an API key the
key presented again, so row-level security checks the entry as it checked the search).
It waits a moment (LINGER_S) for more entries, and writes what gathered in one transaction
per scope: its own work then costs a search nothing measurable (docs/BENCHMARKS.md).

What a reader sees: this process's own reads of the log (core.service.log, a purge) wait
for its pending entries first; another process sees an entry within about LINGER_S of the
search's answer. At exit the process writes what is pending. A process killed before that
loses its last entries, as a crash already could (the log commits without waiting for the
disk: core.sql.log) -- never a memory.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections import deque
from typing import Any
from weakref import WeakKeyDictionary

from core.db import Database
from core.models import Retrieval
from core.service.base import TenantBound
from core.sql import log as sql

FLUSH_TIMEOUT_S = 30.0
# The writer waits this long after an entry for more to write with it (one transaction for all):
# its own work then lands on a search once a batch, not once a search.
LINGER_S = 0.05
BATCH_MAX = 200
log = logging.getLogger(__name__)


class LogWriter:
    """One database's pending log entries and the thread that writes them, in order."""

    def __init__(self) -> None:
        self._pending: deque[tuple[TenantBound, Retrieval]] = deque()
        self._changed = threading.Condition()
        self._writing = False
        self._waiting = 0  # flush() callers: the writer stops lingering for them
        self._thread: threading.Thread | None = None

    def submit(self, svc: TenantBound, entry: Retrieval) -> None:
        with self._changed:
            self._pending.append((svc, entry))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="memex-log-writer", daemon=True)
                self._thread.start()
                # registered after the embedded server's own cleanup, so it runs before the server stops
                atexit.register(self.flush)
            self._changed.notify_all()

    def flush(self, timeout: float = FLUSH_TIMEOUT_S) -> None:
        """Wait until every entry submitted so far is written (or could not be: see _write)."""
        with self._changed:
            self._waiting += 1
            self._changed.notify_all()
            try:
                self._changed.wait_for(lambda: not self._pending and not self._writing, timeout)
            finally:
                self._waiting -= 1

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._pending))
                self._changed.wait_for(lambda: self._waiting > 0 or len(self._pending) >= BATCH_MAX, LINGER_S)
                batch = list(self._pending)
                self._pending.clear()
                self._writing = True
            try:
                for group in _by_scope(batch):
                    _write(group)
            finally:
                with self._changed:
                    self._writing = False
                    self._changed.notify_all()


def _by_scope(batch: list[tuple[TenantBound, Retrieval]]) -> list[list[tuple[TenantBound, Retrieval]]]:
    """Entries of the same scope (tenant, API key, analyst) together, each group in order."""
    groups: dict[tuple[Any, ...], list[tuple[TenantBound, Retrieval]]] = {}
    for svc, entry in batch:
        groups.setdefault(svc.scope_key(), []).append((svc, entry))
    return list(groups.values())


def _write(group: list[tuple[TenantBound, Retrieval]]) -> None:
    """A group in one transaction; if that fails (a store deleted meanwhile, a key revoked), each
    entry on its own, so one entry's refusal loses no other. A background writer has no caller to
    tell: what cannot be written is logged."""
    svc = group[0][0]
    try:
        with svc.transaction() as conn:
            sql.insert(conn, svc.tenant_id, *(entry for _, entry in group))
    except Exception:
        retry = len(group) > 1
        log.exception(
            "retrieval log: %d entries of %s's searches not written%s", len(group), svc.actor, "; each alone next" if retry else ""
        )
        if retry:
            for one in group:
                _write([one])


_writers: WeakKeyDictionary[Database, LogWriter] = WeakKeyDictionary()
_writers_lock = threading.Lock()


def writer(db: Database) -> LogWriter:
    """The log writer of this database in this process."""
    with _writers_lock:
        found = _writers.get(db)
        if found is None:
            found = _writers[db] = LogWriter()
        return found
