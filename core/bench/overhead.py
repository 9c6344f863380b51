"""Decision overhead of a router on this machine, measured against the raw encode of the same prompts.

Part of ``optiroute bench``: the ratio (not the absolute time) is what travels between machines, so
batch and single-call decisions are timed interleaved with encoding the very same prompts.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from pydantic import BaseModel

__all__ = ["Overhead", "measure_overhead"]


class Overhead(BaseModel):
    """Decision overhead on this machine, as ratios to the raw encode of the same prompts."""

    n_batch: int
    encode_batch_s: float
    decide_batch_s: float
    decisions_per_s: float
    batch_ratio: float
    n_single: int
    encode_one_ms: float
    decide_one_ms: float
    single_ratio: float



def measure_overhead(router: Any, texts: list[str], n: int, models: list[str]) -> Overhead:
    """Batch and single-call decision time against the raw encode of the same prompts (interleaved)."""
    emb = router.embedder
    sample = texts[: min(n, len(texts))]
    router.decide(sample[0], candidates=models)  # warm: loads the encoder and analyzer
    t0 = time.perf_counter()
    emb.encode(sample, batch_size=64)
    t_enc = time.perf_counter() - t0
    t0 = time.perf_counter()
    router.decide_batch(sample, candidates=models)
    t_dec = time.perf_counter() - t0
    singles = sample[: min(32, len(sample))]
    e_ms, d_ms = [], []
    for t in singles:
        t0 = time.perf_counter()
        emb.encode([t])
        e_ms.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        router.decide(t, candidates=models)
        d_ms.append((time.perf_counter() - t0) * 1e3)
    e_med, d_med = float(np.median(e_ms)), float(np.median(d_ms))
    return Overhead(
        n_batch=len(sample), encode_batch_s=t_enc, decide_batch_s=t_dec,
        decisions_per_s=len(sample) / t_dec, batch_ratio=t_dec / t_enc, n_single=len(singles),
        encode_one_ms=e_med, decide_one_ms=d_med, single_ratio=d_med / e_med,
    )
