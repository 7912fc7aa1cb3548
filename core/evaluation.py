"""Measuring retrieval: cases (a query and the memories it should return), metrics, and runs of
several search configurations over the same cases.

Metrics, per case, averaged over cases (binary relevance: a memory is expected or it is not):
- recall@k: the share of the case's expected memories found in the top k;
- hit@k:    1 if at least one expected memory is in the top k;
- mrr:      1 / rank of the first expected memory in the returned list (0 if none);
- ndcg@10:  DCG of the top 10 (1 / log2(rank + 1) per expected memory) over the ideal DCG.
Pure: MemoryService.evaluate runs the searches (never counting an access) and keeps the sets.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from core import validation
from core.errors import InvalidInput
from core.models import SearchResult
from core.ranking import MODES, Fusion, Weights
from core.search import Filters, SearchParams
from core.supersede import KEEP, POLICIES

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
    superseded: str = KEEP  # keep, demote or skip memories a newer one updates (core.supersede)
    fusion: Fusion | None = None  # hybrid's settings (core.ranking.Fusion; default: the shipped ones)


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
        return {kind: average(results) for kind, results in sorted(groups.items())}

    def worst(self, n: int = 5) -> list[CaseResult]:
        """The cases that went worst: lowest nDCG, then lowest reciprocal rank."""
        return sorted(self.cases, key=lambda c: (c.metrics[f"ndcg@{NDCG_DEPTH}"], c.metrics["mrr"]))[:n]


def average(results: Sequence[CaseResult]) -> dict[str, float]:
    averaged = {key: sum(r.metrics[key] for r in results) / len(results) for key in results[0].metrics}
    averaged["n"] = len(results)
    return averaged


def configs_for(modes: Sequence[str], min_similarity: float = 0.0, superseded: Sequence[str] = (KEEP,)) -> list[ModeConfig]:
    """One configuration per mode and policy for superseded memories, named "hybrid" (keep) or
    "hybrid+demote"."""
    for mode in modes:
        if mode not in MODES:
            raise InvalidInput(f"unknown search mode {mode[:40]!r}; choose from {', '.join(MODES)}")
    for policy in superseded:
        if policy not in POLICIES:
            raise InvalidInput(f"unknown policy for superseded memories {policy[:40]!r}; choose from {', '.join(POLICIES)}")
    return [
        ModeConfig(name=mode if policy == KEEP else f"{mode}+{policy}", mode=mode, min_similarity=min_similarity, superseded=policy)
        for mode in modes
        for policy in superseded
    ]


# Saved sets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalSet:
    id: UUID
    store_id: UUID
    name: str
    created_at: datetime
    cases: list[EvalCase]


@dataclass(frozen=True)
class EvalRun:
    """One kept run of one configuration over an evaluation set."""

    id: UUID
    set_id: UUID
    at: datetime
    actor: str
    config: dict[str, Any]
    metrics: dict[str, float]
    by_kind: dict[str, dict[str, float]]
    model: str
    cases: int


def config_params(config: ModeConfig, depth: int = NDCG_DEPTH) -> SearchParams:
    """The search an evaluation configuration runs."""
    return SearchParams(
        limit=depth,
        min_similarity=config.min_similarity,
        mode=config.mode,
        filters=Filters(),
        weights=config.weights or Weights(),
        mmr_lambda=config.mmr_lambda,
        superseded=config.superseded,
        fusion=config.fusion or Fusion(),
    )


def evaluation_depth(ks: Sequence[int]) -> int:
    """How many results each case needs: the largest k, and at least nDCG's depth."""
    return max(max(ks), NDCG_DEPTH)


def failed_cases(report: ModeReport, k: int = NDCG_DEPTH) -> list[CaseResult]:
    """Cases of a report that missed at least one expected memory in the top k, worst first."""
    failed = [c for c in report.cases if c.metrics.get(f"recall@{k}", 0.0) < 1.0]
    return sorted(failed, key=lambda c: (c.metrics.get(f"ndcg@{NDCG_DEPTH}", 0.0), c.metrics.get("mrr", 0.0)))
