"""Baselines that ``optiroute bench`` measures beside the router, on the same test prompts.

All of them are pure numpy over (prompts x models) score and cost matrices (NaN = the model has no
outcome for the prompt). Missing cells count as unknown: a prompt whose chosen model has no score is
left out of that operating point's mean (quality *and* cost), and the count is reported, so a model
that skipped questions is neither rewarded nor punished for them.

Baselines that need a cost estimate before the call (per-task best, plain kNN) use each model's mean
cost per prompt on the *train* split; realised costs always come from the test outcomes.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

import numpy as np

__all__ = [
    "LAMBDAS",
    "knn_predictions",
    "oracle_choice",
    "per_task_table",
    "random_mix",
    "realise",
    "single_models",
    "sweep_choices",
    "sweep_curve",
    "threshold_pair_curve",
]

#: Cost penalties for baselines that trade predicted quality against normalised cost
#: (utility = predicted quality - lambda * cost / max cost): 0 plus a geometric grid wide enough to
#: reach the cheapest model, so each baseline's whole frontier is traced.
LAMBDAS: tuple[float, ...] = (0.0, *np.round(np.geomspace(1e-3, 1e3, 49), 6).tolist())


def realise(choice: np.ndarray, scores: np.ndarray, costs: np.ndarray) -> tuple[float, float, int]:
    """Mean realised score and cost of one model choice per prompt.

    Args:
        choice: (n,) column index of the chosen model per prompt.
        scores, costs: (n, m) test outcomes.

    Returns:
        ``(mean_score, mean_cost, left_out)``: means over the prompts whose chosen cell has a score;
        ``left_out`` counts the others (missing cells).
    """
    rows = np.arange(len(choice))
    s = scores[rows, choice]
    c = costs[rows, choice]
    ok = ~np.isnan(s)
    if not ok.any():
        return float("nan"), float("nan"), int(len(s))
    return float(s[ok].mean()), float(np.nanmean(c[ok])), int((~ok).sum())


def single_models(scores: np.ndarray, costs: np.ndarray) -> list[tuple[float, float]]:
    """``(mean_score, mean_cost)`` per model over the prompts where it has an outcome."""
    out = []
    for j in range(scores.shape[1]):
        ok = ~np.isnan(scores[:, j])
        if not ok.any():
            out.append((float("nan"), float("nan")))
        else:
            out.append((float(scores[ok, j].mean()), float(np.nanmean(costs[ok, j]))))
    return out


def oracle_choice(scores: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """Per prompt, the cheapest model among those with the best score (0/1 data: cheapest correct).

    Prompts with no outcome at all get column 0 (and are then left out by :func:`realise`).
    """
    s = np.nan_to_num(scores, nan=-np.inf)
    best = s.max(axis=1, keepdims=True)
    top = s >= best - 1e-9
    c = np.where(top, np.nan_to_num(costs, nan=np.inf), np.inf)
    return c.argmin(axis=1)


def random_mix(
    q_strong: float, c_strong: float, q_weak: float, c_weak: float, rates: Sequence[float]
) -> list[tuple[float, float]]:
    """Expected ``(cost, quality)`` of sending a fraction ``r`` of prompts to the strong model at random.

    The expectation is exact (linear in ``r``), so no random seed enters the report.
    """
    return [(r * c_strong + (1 - r) * c_weak, r * q_strong + (1 - r) * q_weak) for r in rates]


def per_task_table(
    train_tasks: Sequence[str], train_scores: np.ndarray, test_tasks: Sequence[str]
) -> np.ndarray:
    """Predicted quality per test prompt = its task's mean train score per model.

    A task absent from train (or a model with no outcome in that task) falls back to the model's
    overall train mean.
    """
    with _quiet():
        overall: np.ndarray = np.nanmean(train_scores, axis=0)
    tasks = np.asarray(train_tasks, dtype=str)
    table: dict[str, np.ndarray] = {}
    for t in np.unique(tasks):
        with _quiet():
            m: np.ndarray = np.nanmean(train_scores[tasks == t], axis=0)
        table[str(t)] = np.where(np.isnan(m), overall, m)
    return np.stack([table.get(str(t), overall) for t in test_tasks]).astype(np.float32)


def knn_predictions(
    train_emb: np.ndarray, train_scores: np.ndarray, test_emb: np.ndarray, *, k: int = 100,
    chunk: int = 1024,
) -> np.ndarray:
    """Plain kNN (the seed design without cards): mean score of the k most similar train prompts.

    Similarity is the dot product of unit embeddings; each model averages over the neighbours that
    have an outcome for it (its overall train mean if none do).
    """
    k = min(k, len(train_emb))
    with _quiet():
        overall = np.nanmean(train_scores, axis=0)
    out = np.empty((len(test_emb), train_scores.shape[1]), dtype=np.float32)
    for s in range(0, len(test_emb), chunk):
        sims = test_emb[s : s + chunk] @ train_emb.T
        ids = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        neigh = train_scores[ids]  # (b, k, m)
        with _quiet():
            m = np.nanmean(neigh, axis=1)
        out[s : s + chunk] = np.where(np.isnan(m), overall, m)
    return out


def sweep_choices(
    predicted: np.ndarray, cost_per_model: np.ndarray, lambdas: Sequence[float] = LAMBDAS
) -> list[tuple[float, np.ndarray]]:
    """One choice vector per lambda: argmax of ``predicted - lambda * cost / max(cost)``."""
    norm = cost_per_model / max(float(np.nanmax(cost_per_model)), 1e-12)
    pred = np.nan_to_num(predicted, nan=-1.0)
    return [(float(lam), (pred - lam * norm[None, :]).argmax(axis=1)) for lam in lambdas]


def sweep_curve(
    predicted: np.ndarray, cost_per_model: np.ndarray, scores: np.ndarray, costs: np.ndarray
) -> list[tuple[float, float]]:
    """Realised ``(mean_cost, mean_score)`` of every :func:`sweep_choices` choice, sorted, unique.

    Used for the baselines and for ``Router.fit(predictor="auto")``'s validation AIQ, so both
    trace a predictor's frontier the same way.
    """
    curve = []
    for _, choice in sweep_choices(predicted, cost_per_model):
        q, c, _ = realise(choice, scores, costs)
        curve.append((c, q))
    return sorted(set(curve))


def threshold_pair_curve(
    gap: np.ndarray, scores: np.ndarray, strong: int, weak: int, fractions: Sequence[float]
) -> list[tuple[float, float]]:
    """RouteLLM's protocol: send the fraction ``f`` of prompts with the largest predicted gap to the strong model.

    Args:
        gap: (n,) predicted quality(strong) - quality(weak) per prompt.
        scores: (n, m) test scores.
        strong, weak: column indices of the pair.
        fractions: strong-call fractions to evaluate (include 0 and 1 for APGR).

    Returns:
        ``(strong_fraction, mean_score)`` per fraction; prompts whose chosen cell is missing are
        left out of that mean. Ties keep the data order (stable sort), so results are deterministic.
    """
    order = np.argsort(-np.nan_to_num(gap, nan=-np.inf), kind="stable")
    n = len(gap)
    out = []
    for f in fractions:
        choice = np.full(n, weak)
        choice[order[: int(round(f * n))]] = strong
        s = scores[np.arange(n), choice]
        ok = ~np.isnan(s)
        out.append((float(f), float(s[ok].mean()) if ok.any() else float("nan")))
    return out


class _quiet:
    """Silence numpy's "mean of empty slice" warnings where NaN is the intended answer."""

    def __enter__(self) -> None:
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._cm.__exit__(exc_type, exc, tb)
