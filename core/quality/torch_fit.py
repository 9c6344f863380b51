"""Training of the torch-based predictor kinds: masked binary cross-entropy with early stopping.

Kept apart from :mod:`optiroute.quality.base` so that the interface module stays numpy-only;
torch is imported inside the function, only when a learned kind is fitted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from optiroute.quality.base import holdout_mask

__all__ = ["fit_masked_bce"]


def fit_masked_bce(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 256,
    max_epochs: int = 60,
    patience: int = 5,
    holdout: float = 0.1,
) -> dict[str, Any]:
    """Train a torch module ``x -> (n, m) logits`` with BCE on the observed cells of ``y``.

    Missing cells (NaN) carry no loss; soft scores (a judge's 0.7) are soft targets. A seeded
    ``holdout`` of the rows stops training when its loss has not improved for ``patience`` epochs
    and the best epoch's weights are kept (the caller's data is train only: this holdout is carved
    from it). Runs single-threaded: the machine is shared and the models are small.

    Returns:
        Notes on the fit (epochs run, best epoch, holdout log-loss) for ``predictor.json``.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        hold = holdout_mask(len(x), holdout, seed) if len(x) >= 40 else np.zeros(len(x), dtype=bool)
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        mask = torch.from_numpy(~np.isnan(y))
        yt = torch.from_numpy(np.nan_to_num(y, nan=0.0).astype(np.float32))
        tr = np.flatnonzero(~hold)
        va = torch.from_numpy(np.flatnonzero(hold))
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        bce = torch.nn.BCEWithLogitsLoss(reduction="none")
        rng = np.random.default_rng(seed)

        def loss_on(rows: torch.Tensor) -> torch.Tensor:
            m = mask[rows]
            return (bce(model(xt[rows]), yt[rows]) * m).sum() / m.sum().clamp(min=1)

        best, best_state, best_epoch, bad, epoch = float("inf"), None, 0, 0, 0
        for epoch in range(1, max_epochs + 1):
            model.train()
            perm = tr[rng.permutation(len(tr))]
            for s in range(0, len(perm), batch_size):
                opt.zero_grad()
                loss = loss_on(torch.from_numpy(perm[s : s + batch_size]))
                loss.backward()
                opt.step()
            if len(va) == 0:
                continue
            model.eval()
            with torch.no_grad():
                v = float(loss_on(va))
            if v < best - 1e-4:
                best, best_epoch, bad = v, epoch, 0
                best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
            else:
                bad += 1
                if bad >= patience:
                    break
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        return {"epochs_run": epoch, "best_epoch": best_epoch or epoch,
                "holdout_logloss": None if best == float("inf") else round(best, 5)}
    finally:
        torch.set_num_threads(threads)
