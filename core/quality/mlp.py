"""The ``mlp`` quality predictor: per-model logistic heads on a shared hidden layer over MiniLM.

``P(model m answers prompt p well) = sigmoid(w_m . relu(W x_p + b) + c_m)``: one hidden layer shared
by every model learns what about a prompt matters (topic, difficulty, format), and each model gets its
own logistic head on it. It is the multi-output form of the item-response view in the design notes
(a model's ability per latent prompt feature, the prompt's difficulty folded into the shared layer)
and, unlike the kNN kind, it learns per-prompt difficulty from *all* models' outcomes at once.

Trained with masked BCE (missing cells carry no loss; soft scores are soft targets) and early stopping
on a seeded holdout of the training rows, single-threaded torch; prediction is plain numpy, so a
loaded router never imports torch. Heads start at each model's mean training outcome.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from optiroute.quality.base import LearnedPredictor, TrainData, observed_counts
from optiroute.quality.torch_fit import fit_masked_bce

__all__ = ["MLPPredictor"]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-3, 1 - 1e-3)
    return np.log(p / (1 - p))


class MLPPredictor(LearnedPredictor):
    """Shared ReLU layer + one logistic head per model (see the module docstring)."""

    kind: ClassVar[str] = "mlp"
    SHAPES: ClassVar[dict[str, tuple[str | int, ...]]] = {
        "W1": ("dim", "hidden"), "b1": ("hidden",), "W2": ("hidden", "models"), "b2": ("models",),
    }

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        w = self.weights
        h = np.maximum(embeddings @ w["W1"] + w["b1"], 0.0)
        return h @ w["W2"] + w["b2"]

    @classmethod
    def fit(
        cls,
        data: TrainData,
        *,
        hidden: int = 128,
        dropout: float = 0.1,
        weight_decay: float = 1e-3,
        lr: float = 3e-3,
        max_epochs: int = 60,
        **_: Any,
    ) -> MLPPredictor:
        """Fit on ``data`` (train rows only); hyper-parameters are recorded in ``predictor.json``.

        The defaults measured best on the MMLU-Pro validation protocol among widths 16-1024,
        dropout 0-0.5 and weight decay 1e-4-1e-2 (differences there were within seed noise, about
        0.004 AIQ), and train in a few seconds on 8k prompts.
        """
        import torch
        from torch import nn

        torch.manual_seed(data.seed)
        x = np.asarray(data.embeddings, dtype=np.float32)
        y = np.asarray(data.scores, dtype=np.float32)
        dim, m = x.shape[1], y.shape[1]
        first = nn.Linear(dim, hidden)
        body = nn.Sequential(first, nn.ReLU(), nn.Dropout(dropout))
        head = nn.Linear(hidden, m)
        with torch.no_grad():
            with np.errstate(invalid="ignore"):
                means = np.nan_to_num(np.nanmean(y, axis=0), nan=0.5)
            head.bias.copy_(torch.from_numpy(_logit(means).astype(np.float32)))
        model = nn.Sequential(body, head)
        notes = fit_masked_bce(model, x, y, seed=data.seed, lr=lr, weight_decay=weight_decay,
                               max_epochs=max_epochs)
        weights = {
            "W1": first.weight.detach().numpy().T.copy(),
            "b1": first.bias.detach().numpy().copy(),
            "W2": head.weight.detach().numpy().T.copy(),
            "b2": head.bias.detach().numpy().copy(),
        }
        config = {"hidden": hidden, "dropout": dropout, "weight_decay": weight_decay, "lr": lr,
                  "seed": data.seed, "fit": notes}
        return cls(data.models, observed_counts(y), weights, config, data.index)
