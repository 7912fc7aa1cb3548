"""What every embedding provider promises: a batch of texts in, one finite vector per text out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from core.errors import EmbeddingError


class Embedder(ABC):
    """Turns texts into vectors of `dim` floats. One call is one request to the provider where
    the provider accepts batches (local model, OpenAI); Titan embeds one text per request."""

    model: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """An (n, dim) float32 array, checked: a provider answer of the wrong size or with NaN
        is refused here, before anything reaches the database."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        try:
            vectors = np.asarray(self._embed(list(texts)), dtype=np.float32)
        except (TypeError, ValueError) as exc:  # vectors of different lengths, or not numbers
            raise EmbeddingError(f"{self.model} returned vectors that do not form a ({len(texts)}, {self.dim}) array") from exc
        if vectors.shape != (len(texts), self.dim):
            raise EmbeddingError(f"{self.model} returned vectors of shape {vectors.shape}, expected ({len(texts)}, {self.dim})")
        if not np.isfinite(vectors).all():
            raise EmbeddingError(f"{self.model} returned a vector with NaN or infinite values")
        return vectors

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    @abstractmethod
    def _embed(self, texts: list[str]) -> np.ndarray | list[list[float]]:
        """Provider-specific call."""
