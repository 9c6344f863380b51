"""Embedding a bench run's prompts once: a lookup embedder for ``Router.fit`` and an npz cache.

A bench fits a router on the train prompts and routes the test prompts under many preferences;
embedding is by far the slowest step, so every prompt is embedded once (or read from a cache) and
the vectors are reused everywhere. The cache is numpy ``.npz`` with ``allow_pickle=False``: a cache
file someone hands us cannot execute code.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from optiroute.analysis.embedding import prune_text

__all__ = ["LookupEmbedder", "cached_encode"]

log = logging.getLogger(__name__)


class LookupEmbedder:
    """Serves precomputed vectors for known texts and embeds the rest with ``base``.

    ``Router.fit`` embeds its training prompts itself; handing it this wrapper lets the bench embed
    every prompt once (or read them from a cache) and reuse the vectors. Keys are the pruned texts
    (pruning is idempotent, so raw and pruned texts map to the same vector).
    """

    def __init__(self, base: Any, texts: Sequence[str], vectors: np.ndarray) -> None:
        self.base = base
        self.dim = int(vectors.shape[1])
        self.name = getattr(base, "name", "lookup")
        self._table = {prune_text(t)[0]: i for i, t in enumerate(texts)}
        self._vectors = vectors

    def clear(self) -> None:
        """Forget the table, so later calls (overhead timing) really encode."""
        self._table = {}

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        keys = [prune_text(t)[0] for t in texts]
        rows = [self._table.get(k) for k in keys]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        todo = [i for i, r in enumerate(rows) if r is None]
        hit = [i for i, r in enumerate(rows) if r is not None]
        if hit:
            out[hit] = self._vectors[[r for r in rows if r is not None]]
        if todo:
            out[todo] = self.base.encode([texts[i] for i in todo], batch_size=batch_size,
                                         show_progress=show_progress)
        return out


def cached_encode(
    embedder: Any, texts: Sequence[str], cache_dir: Path | None, *, progress: Any = None, chunk: int = 256
) -> np.ndarray:
    """Embed ``texts`` with ``embedder``, reusing vectors cached in ``cache_dir/embeddings.npz``.

    Rows are keyed by a hash of (embedder name, text), stored as float16 with ``allow_pickle=False``
    (a cache file a user hands us cannot run code); new rows are appended and the file is replaced
    atomically.
    """
    name = str(getattr(embedder, "name", "embedder"))
    keys = [hashlib.sha1(f"{name}\x00{t}".encode("utf-8", "replace")).hexdigest()[:20] for t in texts]
    path = cache_dir / "embeddings.npz" if cache_dir is not None else None
    table: dict[str, np.ndarray] = {}
    if path is not None and path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                table = dict(zip(z["keys"].tolist(), z["emb"].astype(np.float32), strict=True))
        except (OSError, ValueError, KeyError):
            log.warning("embedding cache %s is unreadable; re-embedding", path)
    todo = sorted({k: i for i, k in enumerate(keys) if k not in table}.values())
    if todo:
        task = progress.add_task("embedding prompts", total=len(todo)) if progress else None
        parts = []
        for s in range(0, len(todo), chunk):
            parts.append(embedder.encode([texts[i] for i in todo[s : s + chunk]], batch_size=64))
            if progress:
                progress.advance(task, len(parts[-1]))
        new = np.concatenate(parts)
        table.update({keys[i]: v for i, v in zip(todo, np.asarray(new, np.float32), strict=True)})
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name("embeddings.tmp.npz")
            np.savez(tmp, keys=np.array(list(table)), emb=np.stack(list(table.values())).astype(np.float16))
            tmp.replace(path)
    return np.stack([table[k] for k in keys]).astype(np.float32)
