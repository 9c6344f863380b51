"""Filling an onboarded model's store column from the models it behaves like.

Onboarding measures a new model on ~2 % of the stored prompts. Left at that, its column is almost
all unknown, and the predictors route it from per-category averages of ~12 outcomes, flat across each
category while every incumbent's prediction moves with its neighbours. On MMLU-Pro that asymmetry
costs more than the noise: a cheap, strong newcomer with exactly known per-category accuracy is
still picked on the prompts where the incumbents' neighbours look weak, which are the prompts that
are hard for everyone (``benchmarks/results/onboarding.md``).

The incumbents' own outcomes on *every* stored prompt carry the missing per-prompt structure, and
the representatives say which incumbents the newcomer resembles. So, on the representatives, this
module fits two non-negative least-squares models:

1. **Level and profile**: the newcomer's outcome as an intercept plus a non-negative mix of the
   incumbents' outcomes. Applied to the incumbents' per-category means, it gives the newcomer's
   per-category accuracy as a mix of known profiles: 168 outcomes set a dozen weights far better
   than they set 14 independent category means.
2. **Per-prompt deviations**: the newcomer's deviation from that estimate as a non-negative mix of
   the incumbents' deviations from their own category means (a model answers like its relatives on
   the prompts that are unusually easy or hard for them).

Every unmeasured cell becomes ``estimate[category] + mix of deviations``, clipped to 0..1; measured
cells keep their scores. The fill is used only when it predicts held-out representatives better
than their mean does (k-fold on the representatives): where no incumbent resembles the newcomer
(say, a specialist whose strengths no stored model shares) the column is left sparse, as before.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

__all__ = ["MIN_OUTCOMES", "ImputeResult", "impute_column"]

#: Fewer measured outcomes than this and nothing is filled (the weights would be guesses).
MIN_OUTCOMES = 20
#: Folds of the check that the fill beats the representatives' mean on held-out representatives.
FOLDS = 5


class ImputeResult(BaseModel):
    """What :func:`impute_column` did, for :class:`~optiroute.onboard.onboarding.OnboardResult`."""

    filled: int = Field(0, description="cells filled (0: the column was left as measured)")
    reason: str = Field(description="why the column was or was not filled")
    resembles: dict[str, float] = Field(default_factory=dict,
                                        description="incumbents' weights in the per-prompt fill, largest first")
    cv_gain: float | None = Field(None, description="held-out MSE of the representatives' mean minus the fill's")

    def resembling(self) -> str:
        """``resembles`` as text ("model weight, ..."), for the CLI and the card."""
        return ", ".join(f"{m} {w:.2f}" for m, w in self.resembles.items())

    def provenance(self, measured: int) -> str:
        """One line for a card's ``sources``: which outcomes are measured and which are estimates."""
        like = self.resembling()
        return (f"onboarding: {measured} measured, {self.filled} filled from the stored models it resembles"
                + (f" ({like})" if like else ""))


def _nnls(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    return nnls(a, b, maxiter=50 * a.shape[1])[0]


def _group_means(y: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """(n_groups, m) column means per group, NaN-aware; empty cells fall back to the column mean."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        overall = np.nan_to_num(np.nanmean(y, axis=0), nan=0.5)
        out = np.stack([np.nanmean(y[groups == g], axis=0) if (groups == g).any() else overall
                        for g in range(n_groups)])
    return np.where(np.isnan(out), overall[None, :], out)


class _Fit:
    """The two NNLS fits on some measured rows; ``predict`` fills any rows."""

    def __init__(self, filled: np.ndarray, dev: np.ndarray, means: np.ndarray, groups: np.ndarray,
                 rows: np.ndarray, y: np.ndarray) -> None:
        ones = np.ones((len(rows), 1))
        v = _nnls(np.hstack([filled[rows], ones, -ones]), y)  # intercept as the difference of two >= 0
        self.level = np.clip(means @ v[:-2] + v[-2] - v[-1], 0.0, 1.0)
        self.w = _nnls(dev[rows], y - self.level[groups[rows]])
        self.dev, self.groups = dev, groups

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return np.clip(self.level[self.groups[rows]] + self.dev[rows] @ self.w, 0.0, 1.0)


def impute_column(scores: np.ndarray, tasks: Sequence[str], col: np.ndarray, models: Sequence[str],
                  *, seed: int = 0) -> tuple[np.ndarray, ImputeResult]:
    """Fill the unknown cells of a new model's outcome column from the incumbents' outcomes.

    Args:
        scores: (n, m) the incumbents' outcomes on the stored prompts (NaN: not evaluated).
        tasks: per stored prompt, its task/category label (empty strings: one group).
        col: (n,) the new model's outcomes, NaN where it was not evaluated.
        models: the incumbents' names (columns of ``scores``), for :attr:`ImputeResult.resembles`.
        seed: shuffles the representatives into folds for the held-out check.

    Returns:
        The filled column (a copy; measured cells unchanged) and what was done. The column comes
        back unchanged when fewer than :data:`MIN_OUTCOMES` cells are measured, when there are no
        incumbents, or when the fill does not beat the representatives' mean on held-out ones.
    """
    col = np.asarray(col, dtype=np.float64)
    rows = np.flatnonzero(np.isfinite(col))
    if scores.shape[1] == 0 or len(rows) < MIN_OUTCOMES:
        why = "no other model to learn from" if scores.shape[1] == 0 else (
            f"{len(rows)} measured outcomes; filling needs at least {MIN_OUTCOMES}")
        return col.copy(), ImputeResult(reason=why)
    names, groups = np.unique(np.asarray([str(t) for t in tasks]), return_inverse=True)
    y_all = np.asarray(scores, dtype=np.float64)
    means = _group_means(y_all, groups, len(names))
    filled = np.where(np.isnan(y_all), means[groups], y_all)
    dev = filled - means[groups]

    # Held-out check: the fill must predict unseen representatives better than their mean does.
    order = np.random.default_rng(seed).permutation(rows)
    err_fill = err_mean = 0.0
    for k in range(FOLDS):
        test = order[k::FOLDS]
        train = np.setdiff1d(order, test)
        pred = _Fit(filled, dev, means, groups, train, col[train]).predict(test)
        err_fill += float(((pred - col[test]) ** 2).sum())
        err_mean += float(((col[train].mean() - col[test]) ** 2).sum())
    gain = (err_mean - err_fill) / len(rows)
    if gain <= 0:
        return col.copy(), ImputeResult(
            reason=f"the other models do not predict this one's held-out outcomes better than their mean "
                   f"(MSE {err_fill / len(rows):.4f} vs {err_mean / len(rows):.4f}); left as measured",
            cv_gain=round(gain, 5))

    fit = _Fit(filled, dev, means, groups, rows, col[rows])
    out = col.copy()
    missing = np.flatnonzero(np.isnan(col))
    out[missing] = fit.predict(missing)
    top = np.argsort(fit.w)[::-1]
    resembles = {str(models[j]): round(float(fit.w[j]), 3) for j in top[:5] if fit.w[j] > 0}
    return out, ImputeResult(filled=len(missing), cv_gain=round(gain, 5), resembles=resembles,
                             reason=f"filled from {len(rows)} measured outcomes (held-out MSE "
                                    f"{err_fill / len(rows):.4f} vs {err_mean / len(rows):.4f} for their mean)")
