"""Measuring retrieval: cases (a query and the memories it should return), metrics, and runs of
several search configurations over the same cases.

Metrics, per case, averaged over cases (binary relevance: a memory is expected or it is not):
- recall@k: the share of the case's expected memories found in the top k;
- hit@k:    1 if at least one expected memory is in the top k;
- mrr:      1 / rank of the first expected memory in the returned list (0 if none);
- ndcg@10:  DCG of the top 10 (1 / log2(rank + 1) per expected memory) over the ideal DCG.
Evaluation never changes access statistics, and embeds all queries of a run in one batch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from sqlalchemy import text

from core import validation
from core.embeddings import get_embedder
from core.errors import Conflict, InvalidInput, NotFound
from core.models import SearchResult
from core.ranking import MODES, Weights
from core.search import Filters, SearchParams, run_search
from core.service import MemoryService
from core.stores import fetch_store

DEFAULT_KS = (1, 5, 10)
NDCG_DEPTH = 10
EMBED_BATCH = 256


@dataclass(frozen=True)
class EvalCase:
    query: str
    expected_ids: tuple[UUID, ...]
    kind: str | None = None

    @classmethod
    def checked(cls, query: object, expected_ids: object, kind: object = None) -> EvalCase:
        if not isinstance(expected_ids, (list, tuple)) or not expected_ids:
            raise InvalidInput("expected_ids must be a non-empty list of memory ids")
        ids = tuple(dict.fromkeys(validation.uuid(i, "expected id") for i in expected_ids))
        return cls(validation.query(query), ids, validation.optional_label(kind, "kind", 50))


def load_cases(data: bytes) -> list[EvalCase]:
    """Cases from JSONL: {"query": ..., "expected_ids": [...], "kind": optional}; a bad line is
    reported by its number."""
    cases = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw.decode("utf-8"))
            if not isinstance(item, dict):
                raise InvalidInput("expected a JSON object")
            unknown = set(item) - {"query", "expected_ids", "kind"}
            if unknown:
                raise InvalidInput(f"unknown field {sorted(unknown)[0]!r}")
            cases.append(EvalCase.checked(item.get("query"), item.get("expected_ids"), item.get("kind")))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInput(f"line {number}: not valid JSON: {exc}") from None
        except InvalidInput as exc:
            raise InvalidInput(f"line {number}: {exc}") from None
    if not cases:
        raise InvalidInput("the file holds no evaluation case")
    return cases


# Metrics ---------------------------------------------------------------------------------------


def recall_at(returned: Sequence[UUID], expected: Sequence[UUID], k: int) -> float:
    return len(set(returned[:k]) & set(expected)) / len(set(expected))


def hit_at(returned: Sequence[UUID], expected: Sequence[UUID], k: int) -> float:
    return 1.0 if set(returned[:k]) & set(expected) else 0.0


def reciprocal_rank(returned: Sequence[UUID], expected: Sequence[UUID]) -> float:
    wanted = set(expected)
    return next((1.0 / rank for rank, item in enumerate(returned, start=1) if item in wanted), 0.0)


def ndcg_at(returned: Sequence[UUID], expected: Sequence[UUID], k: int = NDCG_DEPTH) -> float:
    wanted = set(expected)
    dcg = sum(1.0 / math.log2(rank + 1) for rank, item in enumerate(returned[:k], start=1) if item in wanted)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(wanted), k) + 1))
    return dcg / ideal


def case_metrics(returned: Sequence[UUID], expected: Sequence[UUID], ks: Sequence[int]) -> dict[str, float]:
    metrics = {f"recall@{k}": recall_at(returned, expected, k) for k in ks}
    metrics.update({f"hit@{k}": hit_at(returned, expected, k) for k in ks})
    metrics["mrr"] = reciprocal_rank(returned, expected)
    metrics[f"ndcg@{NDCG_DEPTH}"] = ndcg_at(returned, expected)
    return metrics


# Runs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModeConfig:
    """One search configuration to evaluate; `name` labels it in reports."""

    name: str
    mode: str = "vector"
    weights: Weights | None = None
    mmr_lambda: float | None = None
    min_similarity: float = 0.0


@dataclass(frozen=True)
class CaseResult:
    case: EvalCase
    returned: list[SearchResult]
    metrics: dict[str, float]

    @property
    def expected_ranks(self) -> dict[UUID, int | None]:
        """Where each expected memory came back (1-based), None when it did not."""
        ranks = {r.memory.id: rank for rank, r in enumerate(self.returned, start=1)}
        return {i: ranks.get(i) for i in self.case.expected_ids}


@dataclass(frozen=True)
class ModeReport:
    name: str
    config: ModeConfig
    metrics: dict[str, float]
    cases: list[CaseResult] = field(repr=False)

    def by_kind(self) -> dict[str, dict[str, float]]:
        """Metrics averaged per case kind (paraphrase, temporal, ...): where a mode wins or loses."""
        groups: dict[str, list[CaseResult]] = {}
        for c in self.cases:
            groups.setdefault(c.case.kind or "(none)", []).append(c)
        return {kind: _average(results) for kind, results in sorted(groups.items())}

    def worst(self, n: int = 5) -> list[CaseResult]:
        """The cases that went worst: lowest nDCG, then lowest reciprocal rank."""
        return sorted(self.cases, key=lambda c: (c.metrics[f"ndcg@{NDCG_DEPTH}"], c.metrics["mrr"]))[:n]


def _average(results: Sequence[CaseResult]) -> dict[str, float]:
    averaged = {key: sum(r.metrics[key] for r in results) / len(results) for key in results[0].metrics}
    averaged["n"] = len(results)
    return averaged


def configs_for(modes: Sequence[str], min_similarity: float = 0.0) -> list[ModeConfig]:
    for mode in modes:
        if mode not in MODES:
            raise InvalidInput(f"unknown search mode {mode[:40]!r}; choose from {', '.join(MODES)}")
    return [ModeConfig(name=mode, mode=mode, min_similarity=min_similarity) for mode in modes]


def evaluate(
    svc: MemoryService,
    store_id: UUID | str,
    cases: Sequence[EvalCase],
    configs: Sequence[ModeConfig],
    ks: Sequence[int] = DEFAULT_KS,
    progress: Callable[[int, int], None] | None = None,
) -> list[ModeReport]:
    """Run every case through every configuration; access statistics are left untouched."""
    if not cases:
        raise InvalidInput("no evaluation case to run")
    ks = sorted({validation.limit(k, "k") for k in ks})
    depth = max(max(ks), NDCG_DEPTH)
    store = svc.get_store(store_id)
    embedder = get_embedder(store.embedding_model, store.embedding_dim)
    vectors = []
    for start in range(0, len(cases), EMBED_BATCH):
        vectors.extend(embedder.embed([c.query for c in cases[start : start + EMBED_BATCH]]))
    reports = []
    total, done = len(cases) * len(configs), 0
    for config in configs:
        params = SearchParams(
            limit=depth, min_similarity=config.min_similarity, mode=config.mode, filters=Filters(),
            weights=config.weights or Weights(), mmr_lambda=config.mmr_lambda,
        ).checked()
        results = []
        with svc.transaction() as conn:
            current = fetch_store(conn, store.id)
            for case, vector in zip(cases, vectors):
                returned = run_search(conn, current, case.query, vector, params, record_access=False)
                results.append(CaseResult(case, returned, case_metrics([r.memory.id for r in returned], case.expected_ids, ks)))
                done += 1
                if progress and done % 25 == 0:
                    progress(done, total)
        reports.append(ModeReport(config.name, config, _average(results), results))
    if progress:
        progress(total, total)
    return reports


# Saved sets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalSet:
    id: UUID
    store_id: UUID
    name: str
    created_at: datetime
    cases: list[EvalCase]


def save_eval_set(svc: MemoryService, store_id: UUID | str, name: str, cases: Sequence[EvalCase]) -> EvalSet:
    """A new named set of cases for the store."""
    name = validation.label(name, "evaluation set name", 100)
    store_id = validation.uuid(store_id, "store id")
    with svc.transaction() as conn:
        fetch_store(conn, store_id)
        row = conn.execute(
            text("INSERT INTO evaluation_sets (tenant_id, store_id, name) VALUES (:t, :s, :n)"
                 " ON CONFLICT DO NOTHING RETURNING id, created_at"),
            {"t": svc.tenant_id, "s": store_id, "n": name},
        ).one_or_none()
        if row is None:
            raise Conflict(f"this store already has an evaluation set named {name!r}")
        _insert_cases(conn, svc.tenant_id, row.id, cases)
    return EvalSet(row.id, store_id, name, row.created_at, list(cases))


def _insert_cases(conn, tenant_id: UUID, set_id: UUID, cases: Sequence[EvalCase]) -> None:
    """Append cases to a set, in order (the set row is locked so two writers number them apart)."""
    if cases:
        conn.execute(text("SELECT 1 FROM evaluation_sets WHERE id = :s FOR UPDATE"), {"s": set_id})
        start = conn.scalar(text("SELECT coalesce(max(position), 0) FROM evaluation_cases WHERE set_id = :s"), {"s": set_id})
        conn.execute(
            text("INSERT INTO evaluation_cases (tenant_id, set_id, position, query, expected_ids, kind)"
                 " VALUES (:t, :s, :p, :q, :e, :k)"),
            [{"t": tenant_id, "s": set_id, "p": start + n, "q": c.query, "e": list(c.expected_ids), "k": c.kind}
             for n, c in enumerate(cases, start=1)],
        )


def add_case(svc: MemoryService, set_id: UUID | str, case: EvalCase) -> None:
    set_id = validation.uuid(set_id, "evaluation set id")
    with svc.transaction() as conn:
        if not conn.scalar(text("SELECT 1 FROM evaluation_sets WHERE id = :id"), {"id": set_id}):
            raise NotFound(f"evaluation set {set_id} not found in this tenant")
        _insert_cases(conn, svc.tenant_id, set_id, [case])


def _load_sets(svc: MemoryService, where: str, params: dict[str, UUID]) -> list[EvalSet]:
    """Sets matching `where` with their cases in order: two queries whatever the number of sets."""
    with svc.transaction() as conn:
        heads = conn.execute(text(f"SELECT id, store_id, name, created_at FROM evaluation_sets WHERE {where} ORDER BY name"), params).all()
        cases: dict[UUID, list[EvalCase]] = {h.id: [] for h in heads}
        rows = conn.execute(
            text("SELECT set_id, query, expected_ids, kind FROM evaluation_cases WHERE set_id = ANY(:ids) ORDER BY set_id, position"),
            {"ids": list(cases)},
        )
        for r in rows:
            cases[r.set_id].append(EvalCase(r.query, tuple(r.expected_ids), r.kind))
    return [EvalSet(h.id, h.store_id, h.name, h.created_at, cases[h.id]) for h in heads]


def list_eval_sets(svc: MemoryService, store_id: UUID | str) -> list[EvalSet]:
    """The store's sets, with their cases."""
    return _load_sets(svc, "store_id = :s", {"s": validation.uuid(store_id, "store id")})


def get_eval_set(svc: MemoryService, set_id: UUID | str) -> EvalSet:
    set_id = validation.uuid(set_id, "evaluation set id")
    found = _load_sets(svc, "id = :id", {"id": set_id})
    if not found:
        raise NotFound(f"evaluation set {set_id} not found in this tenant")
    return found[0]


def delete_eval_set(svc: MemoryService, set_id: UUID | str) -> None:
    set_id = validation.uuid(set_id, "evaluation set id")
    with svc.transaction() as conn:
        if conn.execute(text("DELETE FROM evaluation_sets WHERE id = :id"), {"id": set_id}).rowcount == 0:
            raise NotFound(f"evaluation set {set_id} not found in this tenant")
