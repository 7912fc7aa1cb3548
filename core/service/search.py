"""Search over a store in four modes (core.search, core.hybrid), and the retrieval debugger's explanation."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import numpy as np
from sqlalchemy import Connection

from core import hybrid, validation
from core.dates import dates_in
from core.errors import Conflict, InvalidInput
from core.explain import DETAIL, PREVIEW_CHARS, Explanation, explain, rows_to_read
from core.models import Memory, MemoryStore, SearchResult
from core.ranking import Weights
from core.retrieval import NEAR_MISSES, entry, near_misses
from core.search import Candidate, Filters, Hit, SearchParams, SearchTuning, rank_candidates, to_result
from core.service import logwriter
from core.service.base import TenantBound, embed_texts
from core.sql import bm25 as bsql
from core.sql import hybrid as hsql
from core.sql import memories, relationships, stores
from core.sql import search as sql
from core.supersede import KEEP, settle, stale

# A read that embeds checks the store's model again inside its transaction; if a re-embed
# committed in between, the query is embedded again with the new model (at most this often).
MODEL_ATTEMPTS = 3


@dataclass(frozen=True)
class SearchRun:
    """A search's answer and the best of what it cut (for the retrieval log)."""

    results: list[SearchResult]
    near_misses: list[dict[str, Any]]


def run_search(
    conn: Connection, store: MemoryStore, query: str | None, vector: np.ndarray, params: SearchParams, *, record_access: bool
) -> SearchRun:
    """One search inside an open tenant transaction, with a vector of `store`'s model. It ranks a
    few past the limit (vector mode fetches them; the pools of the other modes hold them
    already): the top `limit` are the same either way, the rest are near misses."""
    if params.mode in ("text", "hybrid") and query is None:
        raise InvalidInput(f"{params.mode} search needs the query text, not only its vector")
    keep = params.superseded == KEEP
    if params.mode == "hybrid":
        assert query is not None
        # the whole pool in order when superseded memories are to be moved down or left out
        ranked, under = hybrid_search(conn, store, query, vector, params, params.limit + NEAR_MISSES if keep else None)
    else:
        vector_hits: list[Hit] = []
        plain_vector = params.mode == "vector" and params.mmr_lambda is None
        if params.mode != "text":
            fetch = params.pool + (NEAR_MISSES if plain_vector else 0)
            vector_hits = sql.vector_candidates(conn, store, vector, fetch, params.filters, params.tuning, vectors=params.needs_vectors)
        text_hits: list[Hit] = []
        if params.mode == "text":
            assert query is not None
            found = bsql.terms(conn, store, query, params.tuning.text_budget)
            matches = hsql.text_candidates(
                conn, store, vector, found, params.bm25, params.pool, params.filters, vectors=params.needs_vectors
            )
            text_hits = [Hit(m.memory, m.similarity, m.bm25, m.embedding, dict(m.terms)) for m in matches]
        depth = params.limit + NEAR_MISSES if keep else len(vector_hits) + len(text_hits) + 1
        ranked = rank_candidates(vector_hits, text_hits, replace(params, limit=depth), datetime.now(UTC))
        under = [h for h in vector_hits if h.similarity < params.min_similarity]
    if not keep:  # superseded memories moved down or left out, then the limit
        superseded = stale(relationships.supersession_links(conn, memory_ids=[c.id for c in ranked]))
        ranked = settle(ranked, [c.id for c in ranked], superseded, params.superseded)[: params.limit + NEAR_MISSES]
    kept = ranked[: params.limit]
    if record_access:
        memories.count_access(conn, [c.id for c in kept])
    return SearchRun([to_result(c, params) for c in kept], near_misses(ranked[params.limit :], under, params))


def hybrid_search(
    conn: Connection, store: MemoryStore, query: str, vector: np.ndarray, params: SearchParams, take: int | None
) -> tuple[list[Candidate], list[Hit]]:
    """The hybrid pool gathered from the database (core.hybrid says what it holds), ranked, the
    first `take` of it (all of it for None); and the nearest memories the threshold cut. The pool's
    size follows `params.limit`, as the retrieval debugger's does."""
    found = bsql.terms(conn, store, query, params.tuning.text_budget)
    vectors = params.needs_vectors
    nearest = sql.vector_candidates(conn, store, vector, params.pool, params.filters, params.tuning, custom_plans_after=True)
    near = hsql.signals(conn, store, [h.memory.id for h in nearest], vector, found, params.bm25, params.filters, vectors=vectors)
    ordered = [near[h.memory.id] for h in nearest if h.memory.id in near]
    matches = hsql.text_candidates(conn, store, vector, found, params.bm25, params.pool, params.filters, vectors=vectors)
    pool = hybrid.Pool(hybrid.vector_side(ordered, params), [m.id for m in matches], {m.id: m for m in matches})
    pool.signals.update({i: near[i] for i in pool.vector if i not in pool.signals})
    if params.fusion.conversational:
        window = params.fusion.neighbour_window
        pool.around, near_them = hsql.around_signals(
            conn, store, pool.candidates, window, vector, found, params.bm25, params.filters, vectors=vectors
        )
        pool.signals.update({n: near_them[n] for n in pool.neighbours(window) if n not in pool.signals and n in near_them})
    # MMR, when asked, picks `take` (greedy: its first picks do not depend on how many)
    ranked = hybrid.rank(pool, replace(params, limit=take or len(pool.signals)), dates_in(query))[:take]
    unexplained = [c.id for c in ranked if c.hit.text_rank and not c.hit.terms]
    if unexplained:  # the BM25 terms of what is returned (the pool was ranked by their sums)
        terms = hsql.terms_of(conn, store, unexplained, found, params.bm25)
        for c in ranked:
            if c.id in terms:
                c.hit = replace(c.hit, terms=terms[c.id])
    under = [Hit(s.memory, s.similarity) for s in ordered if s.similarity < params.min_similarity]
    return ranked, under


class SearchOps(TenantBound):
    def embed_query(self, store: MemoryStore, query: str) -> np.ndarray:
        return embed_texts(store, [validation.query(query)])[0]

    def embed_queries(self, store: MemoryStore, queries: Sequence[str]) -> np.ndarray:
        """Many queries in one model call (a model call per query costs far more)."""
        return embed_texts(store, [validation.query(q) for q in queries])

    def search_memories(
        self,
        store_id: UUID | str,
        query: str,
        limit: int = 5,
        min_similarity: float = 0.7,
        *,
        record_access: bool = True,
        memory_types: Sequence[str] = (),
        sources: Sequence[str] = (),
        mode: str = "vector",
        weights: Weights | None = None,
        mmr_lambda: float | None = None,
        query_embedding: Sequence[float] | np.ndarray | None = None,
        tuning: SearchTuning | None = None,
        superseded: str = KEEP,
        log: bool = True,
    ) -> list[SearchResult]:
        """The seed's searchMemories: the `limit` best live memories for the query, in `mode`
        (default: the seed's cosine search at or above `min_similarity`). Returned memories have
        their access counted unless `record_access` is False, so an analyst's inspection does
        not change the statistics it inspects. The search goes into the retrieval log unless
        `log` is False. `query_embedding` skips embedding the query (evaluation embeds many
        queries in one batch). `superseded` keeps memories that a newer one updates or
        contradicts where they rank ("keep"), moves them down ("demote") or leaves them out
        ("skip"): core.supersede."""
        query = validation.query(query)
        params = SearchParams(
            limit,
            min_similarity,
            mode,
            Filters(tuple(memory_types), tuple(sources)),
            weights or Weights(),
            mmr_lambda,
            tuning or SearchTuning(),
            superseded,
        ).checked()
        return self.search(store_id, query, params, record_access=record_access, query_embedding=query_embedding, log=log)

    def search(
        self,
        store_id: UUID | str | MemoryStore,
        query: str,
        params: SearchParams,
        *,
        record_access: bool = True,
        query_embedding: Sequence[float] | np.ndarray | None = None,
        log: bool = True,
    ) -> list[SearchResult]:
        """search_memories with every setting in one SearchParams. Given the store itself (read
        by the caller, as the API does to resolve a name), the query is embedded with its model
        without reading it first; the search's transaction checks the model is still the store's."""
        started = time.perf_counter()
        query = validation.query(query)
        params = params.checked()
        if query_embedding is not None:  # nothing to embed: the store is read where it is searched
            with self.transaction() as conn:
                current = self._store_in(conn, store_id)
                vector = validation.embedding(query_embedding, current.embedding_dim)
                return self._run(conn, current, query, vector, params, record_access, log, started)
        store = store_id if isinstance(store_id, MemoryStore) else self._store(store_id)
        for _ in range(MODEL_ATTEMPTS):
            vector = validation.embedding(self.embed_query(store, query), store.embedding_dim)
            with self.transaction() as conn:
                current = stores.fetch(conn, store.id)
                if (current.embedding_model, current.embedding_dim) == (store.embedding_model, store.embedding_dim):
                    return self._run(conn, current, query, vector, params, record_access, log, started)
            store = current
        raise Conflict("the store's embedding model changed while searching; search again")

    def search_by_embedding(
        self,
        store_id: UUID | str | MemoryStore,
        embedding: Sequence[float] | np.ndarray,
        limit: int = 5,
        min_similarity: float = 0.7,
        *,
        record_access: bool = True,
        memory_types: Sequence[str] = (),
        sources: Sequence[str] = (),
        mode: str = "vector",
        weights: Weights | None = None,
        tuning: SearchTuning | None = None,
        log: bool = True,
        query: str = "",
    ) -> list[SearchResult]:
        """Vector or weighted search with a query vector computed elsewhere (benchmarks, agents
        that embed themselves): one transaction, no model in the path. `query`, when the caller
        has the text, only goes into the retrieval log."""
        started = time.perf_counter()
        params = SearchParams(
            limit, min_similarity, mode, Filters(tuple(memory_types), tuple(sources)), weights or Weights(), tuning=tuning or SearchTuning()
        ).checked()
        with self.transaction() as conn:
            store = self._store_in(conn, store_id)
            vector = validation.embedding(embedding, store.embedding_dim)
            return self._run(conn, store, None, vector, params, record_access, log, started, logged_query=query)

    def _store_in(self, conn: Connection, store: UUID | str | MemoryStore) -> MemoryStore:
        """The store as this transaction sees it: read, unless a store object is handed in inside
        a one_transaction() (the API resolves the store in that transaction, then searches it)."""
        if isinstance(store, MemoryStore):
            return store if self.in_one_transaction() else stores.fetch(conn, store.id)
        return stores.fetch(conn, validation.uuid(store, "store id"))

    def _run(
        self,
        conn: Connection,
        store: MemoryStore,
        query: str | None,
        vector: np.ndarray,
        params: SearchParams,
        record_access: bool,
        log: bool,
        started: float,
        *,
        logged_query: str = "",
    ) -> list[SearchResult]:
        """The search in the open transaction, and its log entry (the query's text when search has
        it, else `logged_query`)."""
        run = run_search(conn, store, query, vector, params, record_access=record_access)
        if log:
            self._log(store, logged_query if query is None else query, params, run, started)
        return run.results

    def _log(self, store: MemoryStore, query: str, params: SearchParams, run: SearchRun, started: float) -> None:
        """The search into the retrieval log, written by the log writer once the search has
        answered, in this service's scope (core.service.logwriter says why and what a reader sees)."""
        principal = self.principal
        logwriter.writer(self.db).submit(
            self,
            entry(
                store=store,
                query=query,
                params=params,
                results=run.results,
                missed=run.near_misses,
                interface=self.interface,
                actor=principal.key_name if principal and principal.key_name else self.actor,
                key_id=principal.key_id if principal else None,
                key_name=(principal.key_name or None) if principal else None,
                latency_ms=(time.perf_counter() - started) * 1000,
                at=datetime.now(UTC),  # when it answered, not when the writer gets to it
            ),
        )

    def explain_search(
        self,
        store_id: UUID | str,
        query: str,
        params: SearchParams,
        *,
        query_embedding: Sequence[float] | np.ndarray | None = None,
        now: datetime | None = None,
        detail: int = DETAIL,
    ) -> Explanation:
        """Why search(store_id, query, params) returns what it does, for every memory of the store
        (core.explain). Read only: access statistics never change. The query is embedded once (or
        `query_embedding` is used as is): pass `explanation.vector` to search so both see the
        same vector. The first `detail` memories of the order are read with it, any other when
        the explanation is asked about it."""
        query = validation.query(query)
        params = params.checked()
        store = self._store(store_id)
        vector = self.embed_query(store, query) if query_embedding is None else query_embedding
        vector = validation.embedding(vector, store.embedding_dim)
        with self.transaction() as conn:
            current = stores.fetch(conn, store.id)
            if (current.embedding_model, current.embedding_dim) != (store.embedding_model, store.embedding_dim):
                raise Conflict("the store's embedding model changed meanwhile; explain the search again")
            found = bsql.terms(conn, current, query, params.tuning.text_budget)
            scan = sql.scan(conn, current, vector, params.filters, found, params.bm25)
            wanted = rows_to_read(params, scan, detail)
            rows = sql.rows_by_id(conn, wanted, vectors=params.needs_vectors)
            # text search ranks every text match (its breakdown lists the terms each holds)
            matching = [scan.id(int(i)) for i in np.flatnonzero(scan.text_match)] if params.mode == "text" else wanted
            terms = hsql.terms_of(conn, current, matching, found, params.bm25) if params.mode in ("text", "hybrid") else {}
            superseded = stale(relationships.supersession_links(conn, store_id=current.id))

            open_scope = [conn]  # the first `detail` are read in the scan's own snapshot, later ones in a scope of their own

            def fetch(memory_ids: Sequence[UUID], vectors: bool) -> dict[UUID, tuple[Memory, np.ndarray | None]]:
                if open_scope:
                    return sql.rows_by_id(open_scope[0], memory_ids, vectors=vectors)
                with self.transaction() as later:
                    return sql.rows_by_id(later, memory_ids, vectors=vectors)

            def preview(memory_ids: Sequence[UUID]) -> dict[UUID, tuple[str, bool]]:
                if open_scope:
                    return sql.previews(open_scope[0], memory_ids, PREVIEW_CHARS)
                with self.transaction() as later:
                    return sql.previews(later, memory_ids, PREVIEW_CHARS)

            explanation = explain(query, params, current, vector, scan, rows, fetch, preview, now, detail, superseded, terms)
            open_scope.clear()
        return explanation
