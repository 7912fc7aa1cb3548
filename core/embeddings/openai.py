"""OpenAI embeddings (`text-embedding-3-small`, the seed's default model name); optional extra.

One request per batch of up to 2048 inputs. The openai client retries rate limits and transient
errors itself with backoff; what still fails becomes one EmbeddingError and nothing is written.
"""

from __future__ import annotations

from typing import Any

from core.embeddings.base import Embedder
from core.errors import EmbeddingError

MAX_INPUTS_PER_REQUEST = 2048
NATIVE_DIMS = {"text-embedding-3-small": 1536}


class OpenAIEmbedder(Embedder):
    def __init__(self, model: str, dim: int, client: Any | None = None):
        self.model = model
        self.dim = dim
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import openai
            except ImportError as exc:
                raise EmbeddingError("OpenAI embeddings need the openai package: pip install 'memex[openai]'") from exc
            try:
                self._client = openai.OpenAI(max_retries=5)
            except openai.OpenAIError as exc:
                raise EmbeddingError("OPENAI_API_KEY is not set; OpenAI embeddings need it") from exc
        return self._client

    def _embed(self, texts: list[str]) -> list[list[float]]:
        client = self.client  # first: without the package it says how to install it
        import openai

        extra: dict[str, Any] = {}
        if self.dim != NATIVE_DIMS.get(self.model, self.dim):
            extra["dimensions"] = self.dim
        vectors: list[list[float]] = []
        for start in range(0, len(texts), MAX_INPUTS_PER_REQUEST):
            chunk = texts[start : start + MAX_INPUTS_PER_REQUEST]
            try:
                response = client.embeddings.create(model=self.model, input=chunk, **extra)
            except openai.AuthenticationError as exc:
                raise EmbeddingError("OpenAI rejected the API key (OPENAI_API_KEY)") from exc
            except openai.RateLimitError as exc:
                raise EmbeddingError(f"OpenAI rate-limited {self.model} after retries; nothing was written, retry later") from exc
            except openai.APIConnectionError as exc:
                raise EmbeddingError(f"cannot reach the OpenAI API: {exc}") from exc
            except openai.APIStatusError as exc:
                raise EmbeddingError(f"OpenAI refused {self.model}: HTTP {exc.status_code}") from exc
            vectors.extend(item.embedding for item in sorted(response.data, key=lambda item: item.index))
        return vectors
