"""BM25 over PostgreSQL's lexemes: the query's terms, their weights, and which of them drive the
index lookup. Pure: core.sql.bm25 reads the statistics and scores memories with these numbers.

A query's terms are the distinct lexemes of to_tsvector('english', query): English stop words
dropped, Snowball stems. Any term may match (OR). A memory's score is

    sum over the query terms t it holds of  idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avglen))

with idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5)) (N memories in the store, df of them holding t: the
rare terms weigh more), tf the term's occurrences in the memory (saturating with k1), len the
memory's number of distinct lexemes and avglen the store's mean (b = 0: no length normalisation,
the default: short turns are not more relevant than long ones; docs/RETRIEVAL.md).

Document frequencies come from memory_lexemes (migration 011), so the search knows every term's
rarity before it reads a posting: the rarest terms drive the index lookup while their postings
fit a budget (SearchTuning.text_budget); commoner ones still add to the score of any memory found
(by them or by the vector side), but do not make a memory a candidate on their own. Every term
drives in a store where they all fit, which is every store up to a few thousand memories.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import InvalidInput


@dataclass(frozen=True)
class Bm25:
    """BM25's parameters: term-frequency saturation k1, length normalisation b (0..1)."""

    k1: float = 1.2
    b: float = 0.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.k1) or self.k1 < 0:
            raise InvalidInput(f"bm25 k1 must be a number >= 0, not {self.k1}")
        if not math.isfinite(self.b) or not 0 <= self.b <= 1:
            raise InvalidInput(f"bm25 b must be between 0 and 1, not {self.b}")


@dataclass(frozen=True)
class Term:
    """One query term in one store: its document frequency, its weight, whether it drives."""

    lexeme: str
    df: int
    idf: float
    drives: bool


@dataclass(frozen=True)
class Terms:
    """The query's terms that occur in the store (sorted by lexeme), and the store's statistics."""

    terms: tuple[Term, ...]
    memories: int  # N
    average_length: float  # distinct lexemes per memory

    @property
    def lexemes(self) -> list[str]:
        return [t.lexeme for t in self.terms]

    @property
    def idfs(self) -> list[float]:
        return [t.idf for t in self.terms]

    @property
    def drivers(self) -> list[str]:
        return [t.lexeme for t in self.terms if t.drives]

    @property
    def skipped(self) -> list[str]:
        """Terms too common to drive the lookup in this store (with this budget)."""
        return [t.lexeme for t in self.terms if not t.drives]


def idf(memories: int, df: int) -> float:
    return math.log(1 + (memories - df + 0.5) / (df + 0.5))


def choose(frequencies: Sequence[tuple[str, int]], memories: int, total_length: int, budget: int) -> Terms:
    """The terms of a query from (lexeme, df) pairs: those the store holds, each with its idf; the
    rarest drive the lookup while their document frequencies add up to at most `budget`."""
    present = sorted((lexeme, df) for lexeme, df in frequencies if df > 0)
    driving: set[str] = set()
    spent = 0
    for lexeme, df in sorted(present, key=lambda p: (p[1], p[0])):
        if spent + df > budget:
            break
        spent += df
        driving.add(lexeme)
    n = max(memories, max((df for _, df in present), default=0))
    terms = tuple(Term(lexeme, df, idf(n, df), lexeme in driving) for lexeme, df in present)
    return Terms(terms, n, total_length / n if n else 0.0)
