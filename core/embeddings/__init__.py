"""The embedding models memex knows, keyed by the name a store records in `embedding_model`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from core.embeddings.base import Embedder
from core.errors import InvalidInput


@dataclass(frozen=True)
class ModelSpec:
    name: str
    dims: tuple[int, ...]  # the first is the default
    provider: str

    @property
    def default_dim(self) -> int:
        return self.dims[0]


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("all-MiniLM-L6-v2", (384,), "local"),
        ModelSpec("amazon.titan-embed-text-v1", (1536,), "bedrock"),
        ModelSpec("amazon.titan-embed-text-v2:0", (1024, 512, 256), "bedrock"),
        ModelSpec("text-embedding-3-small", (1536, 1024, 512, 256), "openai"),
        ModelSpec("test-hashing", (384,), "hashing"),
    )
}


def _build(spec: ModelSpec, dim: int) -> Embedder:
    if spec.provider == "local":
        from core.embeddings.local import LocalMiniLM

        return LocalMiniLM()
    if spec.provider == "bedrock":
        from core.embeddings.bedrock import TitanEmbedder

        return TitanEmbedder(spec.name, dim)
    if spec.provider == "openai":
        from core.embeddings.openai import OpenAIEmbedder

        return OpenAIEmbedder(spec.name, dim)
    from core.embeddings.hashing import HashingEmbedder

    return HashingEmbedder()


def resolve_model(name: str, dim: int | None = None) -> tuple[ModelSpec, int]:
    """The spec and dimension for a model name; a clear error for an unknown name or size."""
    spec = MODELS.get(name)
    if spec is None:
        known = ", ".join(sorted(MODELS))
        raise InvalidInput(f"unknown embedding model {name[:100]!r}; known models: {known}")
    dim = spec.default_dim if dim is None else dim
    if dim not in spec.dims:
        raise InvalidInput(f"{name} produces vectors of {', '.join(map(str, spec.dims))} dimensions, not {dim}")
    return spec, dim


_cache: dict[tuple[str, int], Embedder] = {}
_cache_lock = threading.Lock()
_overrides: dict[str, Callable[[int], Embedder]] = {}


def get_embedder(name: str, dim: int | None = None) -> Embedder:
    """One embedder per (model, dim) per process: clients and the local model are built once."""
    spec, dim = resolve_model(name, dim)
    with _cache_lock:
        key = (spec.name, dim)
        if key not in _cache:
            factory = _overrides.get(spec.name)
            _cache[key] = factory(dim) if factory else _build(spec, dim)
        return _cache[key]


def warm_embedder(name: str, dim: int | None = None) -> None:
    """Load the model behind an embedder now if it has one to load (the local model: seconds);
    API clients have nothing to load."""
    getattr(get_embedder(name, dim), "warm", lambda: None)()


def use_embedder(name: str, factory: Callable[[int], Embedder] | None) -> None:
    """Replace the embedder of a model (tests hand in a Stubber-backed Titan client this way)."""
    with _cache_lock:
        _cache.clear()
        if factory is None:
            _overrides.pop(name, None)
        else:
            _overrides[name] = factory
