"""How search modes turn candidates into an order: pure functions, shared by the search itself
and by the retrieval debugger, so what the debugger explains is what search did."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import InvalidInput

MODES = ("vector", "text", "hybrid", "weighted")


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


@dataclass(frozen=True)
class Fusion:
    """The hybrid mode's settings (core.hybrid; docs/RETRIEVAL.md measures each, chosen on one half of
    the LoCoMo dev cases and confirmed on the other).

    - vector_weight: the fused score is w z(cosine similarity) + (1 - w) z(BM25), z-scores over the
      candidates (the `depth` best of each side).
    - bm25_spread: the BM25 side's standard deviation counts as at least this much. A query whose
      only word is in nearly every memory gives BM25s that differ by hundredths; standardised, those
      hundredths outweighed the similarity (the demo's "what should Alice not eat?" ranked a memory
      naming Alice twice first). 1.0 changes no recall@5 or @10 of LoCoMo or the labelled set
      (docs/RETRIEVAL.md).
    - neighbour_lift: a memory within `neighbour_window` turns of a candidate of its session moves
      this share of the way up to that candidate's score (and joins the pool if it was not in it).
    - session_bonus: every memory gains this share of the best candidate score of its session
      (sessions of two or more memories; negative scores count as 0).
    - date_boost: added to the score of a memory created on a date the query names (core.dates).
    neighbour_lift, session_bonus and date_boost at 0 leave a plain fusion of cosine similarity and BM25.
    """

    vector_weight: float = 0.6
    bm25_spread: float = 1.0
    depth: int = 50
    neighbour_lift: float = 0.4
    neighbour_window: int = 2
    session_bonus: float = 0.3
    date_boost: float = 1.5

    def __post_init__(self) -> None:
        for name in ("vector_weight", "neighbour_lift"):
            value = getattr(self, name)
            if not np.isfinite(value) or not 0 <= value <= 1:
                raise InvalidInput(f"fusion {name} must be between 0 and 1, not {value}")
        for name in ("bm25_spread", "session_bonus", "date_boost"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise InvalidInput(f"fusion {name} must be a number >= 0, not {value}")
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or not 1 <= self.depth <= 1000:
            raise InvalidInput(f"fusion depth must be a whole number from 1 to 1000, not {self.depth!r}")
        if isinstance(self.neighbour_window, bool) or not isinstance(self.neighbour_window, int) or not 0 <= self.neighbour_window <= 10:
            raise InvalidInput(f"fusion neighbour_window must be a whole number from 0 to 10, not {self.neighbour_window!r}")

    @property
    def conversational(self) -> bool:
        """Whether the conversation around the candidates is needed (neighbours, sessions)."""
        return self.neighbour_lift > 0 or self.session_bonus > 0


def recency(hours_since: np.ndarray | float, half_life_hours: float) -> np.ndarray:
    """Exponential decay in [0, 1]: 1 now, 0.5 after one half-life."""
    return np.power(0.5, np.maximum(np.asarray(hours_since, dtype=float), 0) / half_life_hours)


def weighted_scores(similarity: np.ndarray, importance: np.ndarray, recency_: np.ndarray, w: Weights) -> np.ndarray:
    """Weighted mean of relevance (cosine similarity, negative counted as 0), importance, recency."""
    relevance = np.clip(np.asarray(similarity, dtype=float), 0, 1)
    total = w.relevance * relevance + w.importance * np.asarray(importance, dtype=float) + w.recency * recency_
    return total / (w.relevance + w.importance + w.recency)


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
