"""A deterministic bag-of-words hashing embedder, FOR TESTS ONLY.

It knows no semantics beyond shared words, but it is instant and needs no model, so unit tests of
storage, isolation and SQL paths stay fast. It is never a default: a store gets it only by naming
`test-hashing` explicitly.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from core.embeddings.base import Embedder

_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder(Embedder):
    model = "test-hashing"
    dim = 384

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.dim
                out[row, bucket] += 1.0 if digest[4] & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm == 0:  # no word at all: a fixed unit vector, still a valid cosine operand
                out[row, 0], norm = 1.0, 1.0
            out[row] /= norm
        return out
