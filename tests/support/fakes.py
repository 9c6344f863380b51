"""Small deterministic stand-ins shared by unit tests (no model weights, no network)."""

from __future__ import annotations

import hashlib

import numpy as np


class HashEmbedder:
    """Deterministic unit vectors from a text hash: the same text always gets the same vector."""

    dim = 384
    name = "hash-test"

    def encode(self, texts, *, batch_size=64, show_progress=False):
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(self.dim)
            out[i] = v / np.linalg.norm(v)
        return out
