"""How search modes turn candidates into an order: pure functions, shared by the search itself
and by the retrieval debugger, so what the debugger explains is what search did."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import InvalidInput

MODES = ("vector", "text", "hybrid", "weighted")
RRF_K = 60


@dataclass(frozen=True)
class Weights:
    """The weighted mode's score: relevance + importance + recency, as in generative agents
    (Park et al., 2023), each term in [0, 1]. Recency halves every `half_life_hours` since the
    memory was last accessed (or created). Defaults favour relevance; docs/RETRIEVAL.md shows
    their effect."""

    relevance: float = 1.0
    importance: float = 0.2
    recency: float = 0.1
    half_life_hours: float = 24 * 30

    def __post_init__(self) -> None:
        for name in ("relevance", "importance", "recency"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise InvalidInput(f"weight {name} must be a number >= 0, not {value}")
        if self.relevance + self.importance + self.recency == 0:
            raise InvalidInput("at least one weight must be above 0")
        if not np.isfinite(self.half_life_hours) or self.half_life_hours <= 0:
            raise InvalidInput(f"half_life_hours must be above 0, not {self.half_life_hours}")


def recency(hours_since: np.ndarray | float, half_life_hours: float) -> np.ndarray:
    """Exponential decay in [0, 1]: 1 now, 0.5 after one half-life."""
    return np.power(0.5, np.maximum(np.asarray(hours_since, dtype=float), 0) / half_life_hours)


def weighted_scores(similarity: np.ndarray, importance: np.ndarray, recency_: np.ndarray, w: Weights) -> np.ndarray:
    """Weighted mean of relevance (cosine similarity, negative counted as 0), importance, recency."""
    relevance = np.clip(np.asarray(similarity, dtype=float), 0, 1)
    total = w.relevance * relevance + w.importance * np.asarray(importance, dtype=float) + w.recency * recency_
    return total / (w.relevance + w.importance + w.recency)


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Hashable]], k: int = RRF_K) -> dict[Hashable, float]:
    """Cormack et al. (2009): each ranking gives 1 / (k + rank); items absent from a ranking get
    nothing from it. k about 60 damps the weight of the very first ranks."""
    fused: dict[Hashable, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return fused


def maximal_marginal_relevance(relevance: np.ndarray, vectors: np.ndarray, k: int, lambda_: float) -> list[tuple[int, float]]:
    """Carbonell & Goldstein (1998): pick greedily the candidate with the best
    lambda * relevance - (1 - lambda) * (max cosine similarity to what is already picked).
    Returns (index, mmr score) in pick order. Relevance is rescaled to [0, 1] first, so lambda
    means the same whatever the mode's scale."""
    n = len(relevance)
    if n == 0:
        return []
    rel = np.asarray(relevance, dtype=float)
    spread = rel.max() - rel.min()
    rel = (rel - rel.min()) / spread if spread > 0 else np.ones(n)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit.T
    picked: list[tuple[int, float]] = []
    redundancy = np.full(n, 0.0)
    available = np.ones(n, dtype=bool)
    for _ in range(min(k, n)):
        score = lambda_ * rel - (1 - lambda_) * redundancy
        score[~available] = -np.inf
        best = int(np.argmax(score))
        picked.append((best, float(score[best])))
        available[best] = False
        redundancy = np.maximum(redundancy, similarity[best])
    return picked
