"""Cosine similarity over a store's vectors without an n x n matrix in memory at once."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

BLOCK_ROWS = 1024
# float32 dot products of vectors that are equal by hand land a hair below the exact cosine
TOLERANCE = 1e-6


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), so a dot product is the cosine."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def cosine_blocks(vectors: np.ndarray, block: int = BLOCK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, cosine similarities of rows first..first+block with every row), block by block:
    memory stays block x n."""
    unit = unit_rows(vectors)
    for start in range(0, len(unit), block):
        yield start, unit[start : start + block] @ unit.T
