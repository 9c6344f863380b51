"""The ``routoo`` quality predictor: score = f(h_query - h_model) (the Routoo performance predictor).

Routoo (the seed design) estimates each model's correctness without running it from the difference
between a query representation and a learned model embedding. Here the query representation is a
linear projection of the MiniLM embedding, ``h_q = P x`` (d = 64), every model has a learned vector
``h_m`` in the same space, and ``f`` is a small MLP plus a per-model bias::

    logit(p, m) = w2 . relu(W1 (P x_p - h_m) + b1) + b2 + c_m

``f`` must be non-linear: with a linear ``f`` the score is ``w.(h_q) - w.(h_m)`` and every prompt
would rank the models the same way. Model embeddings and the projection are learned jointly from
the training outcomes with masked BCE (torch, single-threaded, early stopping on a seeded holdout of
train); prediction is chunked numpy over (prompts x models x d), no loop per prompt.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import numpy as np

from optiroute.quality.base import LearnedPredictor, TrainData, observed_counts
from optiroute.quality.torch_fit import fit_masked_bce

__all__ = ["RoutooPredictor"]


class RoutooPredictor(LearnedPredictor):
    """Projected query minus learned model embedding, scored by a small MLP."""

    kind: ClassVar[str] = "routoo"
    SHAPES: ClassVar[dict[str, tuple[str | int, ...]]] = {
        "P": ("dim", "proj"), "E": ("models", "proj"), "W1": ("proj", "hidden"), "b1": ("hidden",),
        "w2": ("hidden",), "b2": (1,), "c": ("models",),
    }

    def logits(self, embeddings: np.ndarray, *, chunk: int = 1024) -> np.ndarray:
        w = self.weights
        out = np.empty((len(embeddings), len(self.models)), dtype=np.float32)
        for s in range(0, len(embeddings), chunk):
            hq = embeddings[s : s + chunk] @ w["P"]  # (b, d)
            diff = hq[:, None, :] - w["E"][None, :, :]  # (b, m, d)
            h = np.maximum(diff @ w["W1"] + w["b1"], 0.0)  # (b, m, H)
            out[s : s + chunk] = h @ w["w2"] + w["b2"] + w["c"]
        return out

    @classmethod
    def fit(
        cls,
        data: TrainData,
        *,
        dim: int = 64,
        hidden: int = 64,
        weight_decay: float = 1e-4,
        lr: float = 2e-3,
        max_epochs: int = 60,
        **_: Any,
    ) -> RoutooPredictor:
        """Fit on ``data`` (train rows only); hyper-parameters are recorded in ``predictor.json``."""
        import torch
        from torch import nn

        torch.manual_seed(data.seed)
        x = np.asarray(data.embeddings, dtype=np.float32)
        y = np.asarray(data.scores, dtype=np.float32)
        m = y.shape[1]

        class _Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.P = nn.Linear(x.shape[1], dim, bias=False)
                self.E = nn.Parameter(0.1 * torch.randn(m, dim))
                self.f = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))
                with np.errstate(invalid="ignore"):
                    mean = np.clip(np.nan_to_num(np.nanmean(y, axis=0), nan=0.5), 1e-3, 1 - 1e-3)
                self.c = nn.Parameter(torch.from_numpy(np.log(mean / (1 - mean)).astype(np.float32)))

            def forward(self, xb: torch.Tensor) -> torch.Tensor:
                diff = self.P(xb)[:, None, :] - self.E[None, :, :]
                return self.f(diff).squeeze(-1) + self.c

        net = _Net()
        notes = fit_masked_bce(net, x, y, seed=data.seed, lr=lr, weight_decay=weight_decay,
                               max_epochs=max_epochs)
        # indexing a Sequential is typed as Module: these two are the Linear layers built above
        f1, f2 = cast(nn.Linear, net.f[0]), cast(nn.Linear, net.f[2])
        weights = {
            "P": net.P.weight.detach().numpy().T.copy(),
            "E": net.E.detach().numpy().copy(),
            "W1": f1.weight.detach().numpy().T.copy(),
            "b1": f1.bias.detach().numpy().copy(),
            "w2": f2.weight.detach().numpy()[0].copy(),
            "b2": f2.bias.detach().numpy().copy(),
            "c": net.c.detach().numpy().copy(),
        }
        config = {"dim": dim, "hidden": hidden, "weight_decay": weight_decay, "lr": lr,
                  "seed": data.seed, "fit": notes}
        return cls(data.models, observed_counts(y), weights, config, data.index)
