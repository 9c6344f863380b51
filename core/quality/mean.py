"""The ``mean`` quality predictor: each model's observed mean outcome, the same for every prompt.

It is what "not routing" knows: which model is best on average. With few training prompts it is
often the best predictor there is (per-prompt kinds are noise on 100 prompts), and it is the anchor
the stacked blend (:mod:`optiroute.quality.stack`) shrinks towards. Observed outcomes beat card
priors: a model with ``n`` outcomes weighs its observed mean ``n / (n + n0)`` against its card
(``n0`` = :attr:`MeanPredictor.n0` = 10, so 30 outcomes already count three times the card).
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np

from optiroute.quality.base import LearnedPredictor, TrainData, observed_counts

__all__ = ["MeanPredictor"]


class MeanPredictor(LearnedPredictor):
    """Per-model mean outcome on the training prompts (shrunk to the card prior by count)."""

    kind: ClassVar[str] = "mean"
    n0: float = 10.0
    SHAPES: ClassVar[dict[str, tuple[str | int, ...]]] = {"mean": ("models",)}

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        p = np.clip(self.weights["mean"], 1e-3, 1 - 1e-3)
        z = np.log(p / (1 - p)).astype(np.float32)
        return np.broadcast_to(z[None, :], (len(embeddings), len(self.models)))

    @classmethod
    def fit(cls, data: TrainData, **_: Any) -> MeanPredictor:
        """Store each model's mean observed outcome (0.5 for a model with none)."""
        y = np.asarray(data.scores, dtype=np.float32)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nan_to_num(np.nanmean(y, axis=0), nan=0.5)
        return cls(data.models, observed_counts(y), {"mean": mean.astype(np.float32)},
                   {"seed": data.seed}, data.index)
