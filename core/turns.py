"""Turns of conversations indexed for walks: the memories of each source in their order, each
turn's previous and next one and its time (core.hybrid.conversation walks them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

K = TypeVar("K")


@dataclass(frozen=True)
class Turns(Generic[K]):
    """Runs of turns indexed once (each run a stretch of one source's order, (key, created_at in
    microseconds) as the turns follow each other): each turn's position, time, and the turns
    before and after it in its run. The debugger asks about every memory of a store twice per
    explanation; indexing its 20,000 turns once saves the second pass."""

    keys: list[K]
    index: dict[K, int]  # the walks step through positions: a UUID hashes slowly
    at: list[int]
    prev: list[int]
    nxt: list[int]

    @classmethod
    def of(cls, runs: Sequence[Sequence[tuple[K, int]]]) -> Turns[K]:
        index: dict[K, int] = {}
        keys: list[K] = []
        at: list[int] = []
        for run in runs:
            for key, created in run:
                if key not in index:
                    index[key] = len(keys)
                    keys.append(key)
                    at.append(created)
        prev, nxt = [-1] * len(keys), [-1] * len(keys)
        for run in runs:
            positions = [index[key] for key, _ in run]
            for a, b in zip(positions, positions[1:], strict=False):
                nxt[a], prev[b] = b, a
        return cls(keys, index, at, prev, nxt)

    @classmethod
    def of_positions(cls, runs: Sequence[np.ndarray], created: np.ndarray) -> Turns[int]:
        """The turns of rows 0..n-1 (every one in exactly one run, runs in turn order), with
        numpy: what `of` gives for the runs [(i, created[i]) for i in run], a few times faster."""
        n = len(created)
        prev, nxt = np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64)
        for run in runs:
            nxt[run[:-1]], prev[run[1:]] = run[1:], run[:-1]
        positions = list(range(n))
        return Turns(positions, dict(zip(positions, positions, strict=True)), created.tolist(), prev.tolist(), nxt.tolist())
