"""The retrieval log: what searches asked and got, replayed against today's memories."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from core import validation
from core.errors import InvalidInput, NotFound
from core.models import HistoryEvent, Retrieval
from core.retrieval import Replay, model_of, replay
from core.search import SearchParams
from core.service import logwriter
from core.service.base import manages, writes
from core.service.search import SearchOps
from core.sql import history, log, memories, stores

MAX_ENTRIES = 1_000


@dataclass(frozen=True)
class RetrievalPage:
    entries: list[Retrieval]
    total: int


@dataclass(frozen=True)
class MemoryRetrievals:
    """How often the log shows a memory returned, and the latest entry that did."""

    count: int
    last: Retrieval | None


class LogOps(SearchOps):
    def flush_log(self) -> None:
        """Wait until the searches this process made are in the log (their entries are written
        just after each answer, core.service.logwriter): every read of the log here does."""
        logwriter.writer(self.db).flush()

    def retrievals(
        self,
        store_id: UUID | str | None = None,
        *,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        contains: str | None = None,
        empty: bool | None = None,
        memory_id: UUID | str | None = None,
        user_id: UUID | str | None = None,
        caller: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> RetrievalPage:
        """Logged searches, newest first: of one store (or a user's stores), in a time window, whose
        query contains a text, that returned nothing (`empty` True) or something, that returned a
        memory, made by a caller (an API key's name or an interface: see `retrieval_callers`)."""
        store = None if store_id is None else validation.uuid(store_id, "store id")
        user = None if user_id is None else validation.uuid(user_id, "user id")
        limit = validation.limit(limit, maximum=MAX_ENTRIES)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidInput(f"offset must be a whole number >= 0, not {offset!r}")
        after = validation.timestamp(since, "since")
        before = validation.timestamp(until, "until")
        text = validation.text_field(contains, "contains", 1000) if contains is not None else None
        memory = None if memory_id is None else validation.uuid(memory_id, "memory id")
        who = None if caller is None else validation.text_field(caller, "caller", 100)
        self.flush_log()
        with self.transaction() as conn:
            if store is not None:
                stores.fetch(conn, store)
            entries, total = log.entries(conn, store, after, before, text, empty, memory, limit, offset, user, who)
        return RetrievalPage(entries, total)

    def retrieval_callers(self, store_id: UUID | str | None = None, *, user_id: UUID | str | None = None) -> list[tuple[str, int]]:
        """Who searched a store (or all of a user's stores): each caller (API key name, else the
        interface) with its number of logged searches, busiest first."""
        if (store_id is None) == (user_id is None):
            raise InvalidInput("give a store id or a user id")
        store = None if store_id is None else validation.uuid(store_id, "store id")
        user = None if user_id is None else validation.uuid(user_id, "user id")
        self.flush_log()
        with self.transaction() as conn:
            if store is not None:
                stores.fetch(conn, store)
            return log.callers(conn, store, user)

    def retrieval(self, entry_id: UUID | str) -> Retrieval:
        entry_id = validation.uuid(entry_id, "log entry id")
        self.flush_log()
        with self.transaction() as conn:
            found = log.get(conn, entry_id)
        if found is None:
            raise NotFound(f"log entry {entry_id} not found in this tenant")
        return found

    def memory_retrievals(self, memory_id: UUID | str) -> MemoryRetrievals:
        """How many logged searches returned this memory, and the latest of them."""
        page = self.retrievals(memory_id=memory_id, limit=1)
        return MemoryRetrievals(page.total, page.entries[0] if page.entries else None)

    def replay(self, entry_id: UUID | str) -> Replay:
        """The logged search again, same query and settings, against today's memories (neither
        logged nor counted as an access), each difference with then explained: new, changed,
        archived, expired, deleted or merged since, or the model changed."""
        logged = self.retrieval(entry_id)
        params = SearchParams.from_dict(logged.params)
        if not logged.query:
            raise InvalidInput("this search was made with a query vector, not text: it cannot be replayed")
        explanation = self.explain_search(logged.store_id, logged.query, params)
        now = self.search(logged.store_id, logged.query, params, record_access=False, log=False, query_embedding=explanation.vector)
        involved = list(dict.fromkeys([UUID(r["id"]) for r in logged.results] + [r.memory.id for r in now]))
        with self.transaction() as conn:
            store = stores.fetch(conn, logged.store_id)
            events = history.since(conn, involved, logged.at) if logged.at else []
            present = memories.get_many(conn, involved)
        by_memory: dict[UUID, list[HistoryEvent]] = {}
        for event in events:
            by_memory.setdefault(event.memory_id, []).append(event)
        return replay(logged, now, explanation, model_of(store), by_memory, present)

    @manages
    def prune_log(self, store_id: UUID | str | None = None) -> int:
        """Apply each store's retention (days and/or entries): how many entries it removed."""
        store = None if store_id is None else validation.uuid(store_id, "store id")
        self.flush_log()
        with self.transaction() as conn:
            if store is not None:
                stores.fetch(conn, store)
            return log.prune(conn, store)

    @manages
    def set_log_retention(self, store_id: UUID | str, *, days: int | None, entries: int | None) -> None:
        """How long a store keeps its log: entries older than `days`, beyond the newest `entries`
        go at the next prune (None: no limit of that kind)."""
        store_id = validation.uuid(store_id, "store id")
        days = None if days is None else validation.limit(days, "retention days", 36_500)
        entries = None if entries is None else validation.limit(entries, "retention entries", 100_000_000)
        with self.transaction() as conn:
            stores.fetch(conn, store_id)
            log.set_retention(conn, store_id, days, entries)

    def log_retention(self, store_id: UUID | str) -> tuple[int | None, int | None]:
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            stores.fetch(conn, store_id)
            return log.retention(conn, store_id)

    @writes
    def record_retrieval(self, entry: Retrieval) -> Retrieval:
        """Write a log entry made elsewhere (a log carried over from another system, the demo's)."""
        self.record_retrievals([entry])
        return entry

    @writes
    def record_retrievals(self, entries: Sequence[Retrieval]) -> int:
        """Write many such entries in one transaction (all or nothing): how many."""
        if not entries:
            return 0
        with self.transaction() as conn:
            for store_id in {e.store_id for e in entries}:
                stores.fetch(conn, store_id)
            log.insert(conn, self.tenant_id, *entries)
        return len(entries)
