"""Designing a model pool: the M most complementary models, by greedy submodular coverage.

Routoo's universe constructor. A router can only be as good as the best model it may choose for each
prompt, so the value of a pool S is its *coverage* on a set of training prompts:

    f(S) = mean over prompts p of max_{m in S} u(p, m),   u(p, m) = score(p, m) - w * cost(p, m) / c_max

(``w`` = 0 by default: pure quality; ``w`` > 0 makes it cost-aware, ``c_max`` being the largest mean
cost per prompt of any model, so ``w`` is in quality points per "most expensive model"). f is a
facility-location function, monotone and submodular, so adding models greedily by marginal gain is
within (1 - 1/e) of the best pool of the same size, and in practice close to it. The k best single
models are usually *not* the best k-pool: they tend to be right on the same prompts.

Missing cells (a model skipped a prompt) count as that model's mean score on the prompts it
answered: unknown, not wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from optiroute.errors import DataFormatError, InvalidInputError
from optiroute.fit.datasets import fill_costs, load_outcomes, load_prices, load_prompts
from optiroute.fit.training import outcome_matrices
from optiroute.schema.numbers import integer, real

__all__ = ["PoolSelection", "coverage", "load_matrices", "select_models", "select_models_from_data"]


class PoolSelection(BaseModel):
    """The greedy pool, in the order the models were added.

    Attributes:
        models: chosen models, first = the best single model under the objective.
        gains: marginal coverage gain of each model when it was added (the first: its own coverage).
        coverage: f(S) after each addition (cumulative; ``coverage[-1]`` is the pool's).
        mean_score, mean_cost_usd: each chosen model's own mean score and cost per prompt.
        best_single_coverage: f of the ``k`` models with the best mean score, for comparison.
        n_prompts: prompts the coverage was measured on.
        cost_weight: ``w`` of the objective.
    """

    models: list[str]
    gains: list[float]
    coverage: list[float]
    mean_score: list[float]
    mean_cost_usd: list[float]
    best_single_models: list[str]
    best_single_coverage: float
    n_prompts: int
    cost_weight: float


def _utility(scores: np.ndarray, costs: np.ndarray | None, cost_weight: float) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    col_mean = np.nanmean(np.where(np.isnan(s).all(axis=0, keepdims=True), 0.0, s), axis=0)
    u = np.where(np.isnan(s), col_mean[None, :], s)
    if cost_weight:
        if costs is None:
            raise InvalidInputError("cost_weight > 0 needs the cost matrix.")
        c = np.asarray(costs, dtype=np.float64)
        c_mean = np.nanmean(np.where(np.isnan(c).all(axis=0, keepdims=True), 0.0, c), axis=0)
        c = np.where(np.isnan(c), c_mean[None, :], c)
        c_max = float(np.max(c_mean)) or 1.0
        u = u - cost_weight * c / c_max
    return u


def coverage(scores: np.ndarray, columns: Sequence[int], *, costs: np.ndarray | None = None,
             cost_weight: float = 0.0) -> float:
    """f(S) for the given columns of a (prompts x models) score matrix (see the module doc)."""
    if len(columns) == 0:
        return 0.0
    u = _utility(scores, costs, cost_weight)
    return float(u[:, list(columns)].max(axis=1).mean())


def select_models(
    scores: np.ndarray,
    models: Sequence[str],
    k: int,
    *,
    costs: np.ndarray | None = None,
    cost_weight: float = 0.0,
) -> PoolSelection:
    """Pick ``k`` models greedily by marginal coverage gain (ties: the cheaper, then the first).

    Args:
        scores: (n_prompts, n_models) outcomes in 0..1, NaN where unknown.
        models: the column names.
        k: pool size (1 .. n_models).
        costs: (n_prompts, n_models) cost per prompt; needed for ``cost_weight`` > 0 and for the
            reported mean costs.
        cost_weight: ``w`` of the cost-aware objective (0: quality only).

    Raises:
        InvalidInputError: shapes disagree, ``k`` is out of range, or there are no prompts.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != len(models):
        raise InvalidInputError(f"scores must be (n_prompts, {len(models)}), got shape {s.shape}.")
    if s.shape[0] == 0:
        raise InvalidInputError("select_models needs at least one prompt with outcomes.")
    if not 1 <= k <= len(models):
        raise InvalidInputError(f"k must be between 1 and the number of models ({len(models)}), got {k}.")
    if cost_weight < 0 or not np.isfinite(cost_weight):
        raise InvalidInputError(f"cost_weight must be a finite number >= 0, got {cost_weight}.")
    u = _utility(s, costs, cost_weight)
    mean_s = np.nanmean(np.where(np.isnan(s).all(axis=0, keepdims=True), 0.0, s), axis=0)
    mean_c = (np.nanmean(np.where(np.isnan(costs).all(axis=0, keepdims=True), 0.0, costs), axis=0)
              if costs is not None else np.zeros(len(models)))
    floor = u.min(axis=1)  # f(empty): any model is at least this good, so gains are >= 0
    best = floor.copy()
    chosen: list[int] = []
    gains: list[float] = []
    cover: list[float] = []
    for _ in range(k):
        value = np.maximum(best[:, None], u).mean(axis=0)
        value[chosen] = -np.inf
        top = value.max()
        ties = np.flatnonzero(value >= top - 1e-12)
        j = int(ties[np.argmin(mean_c[ties])])
        prev = float(best.mean()) if chosen else 0.0
        best = np.maximum(best, u[:, j])
        chosen.append(j)
        cover.append(float(best.mean()))
        gains.append(cover[-1] - prev)
    by_score = [int(j) for j in np.lexsort((mean_c, -mean_s))[:k]]
    return PoolSelection(
        models=[models[j] for j in chosen], gains=gains, coverage=cover,
        mean_score=[float(mean_s[j]) for j in chosen], mean_cost_usd=[float(mean_c[j]) for j in chosen],
        best_single_models=[models[j] for j in by_score],
        best_single_coverage=float(u[:, by_score].max(axis=1).mean()),
        n_prompts=int(s.shape[0]), cost_weight=float(cost_weight),
    )


def load_matrices(data: str | Path, split: str | None = "train") -> tuple[np.ndarray, np.ndarray, list[str], Any]:
    """Score and cost matrices of a data directory's ``split`` (costs filled from prices.csv).

    Returns ``(scores, costs, models, prompts)``.

    Raises:
        DataFormatError: missing files, or no prompt of that split with outcomes.
    """
    data = Path(data)
    p = load_prompts(data)
    o = load_outcomes(data)
    prices = next((data / n for n in ("prices.csv", "prices.csv.gz") if (data / n).exists()), None)
    if split is not None and (p["split"] == split).any():
        p = p[p["split"] == split].reset_index(drop=True)
    elif split is not None and p["split"].str.len().gt(0).any():
        raise DataFormatError(
            f"No prompt has split {split!r} in {str(data)!r} (found {sorted(set(p['split']))}); "
            "choose one of those with --split."
        )
    o = o[o["prompt_id"].isin(set(p["prompt_id"]))]
    if o.empty:
        raise DataFormatError(f"No outcome matches a {split or 'any'} prompt in {str(data)!r}.")
    o = fill_costs(o, p, load_prices(prices) if prices is not None else None)
    models = sorted(o["model"].unique().tolist())
    scores, costs = outcome_matrices(p["prompt_id"].tolist(), models, o)
    keep = ~np.isnan(scores).all(axis=1)
    return scores[keep], costs[keep], models, p[keep].reset_index(drop=True)


def select_models_from_data(data: str | Path, k: int, *, split: str | None = "train",
                            cost_weight: float = 0.0) -> PoolSelection:
    """:func:`select_models` on the ``split`` prompts of a directory in the documented format."""
    scores, costs, models, _ = load_matrices(data, split)
    k = integer(k, "k (models to pick)", lo=1, hi=10_000)
    cost_weight = real(cost_weight, "cost_weight", lo=0.0, hi=1e6)
    if cost_weight and np.isnan(costs).all():
        raise DataFormatError("cost_weight needs costs: add cost_usd to the outcomes or a prices.csv.")
    return select_models(scores, models, k, costs=costs, cost_weight=cost_weight)
