"""Preference scoring: turn predicted quality, cost, latency and card metrics into one score.

Every dimension becomes a 0..1 sub-score, higher is better, and the total is the weighted sum under
the caller's normalised preference weights:

- ``accuracy``: the predicted quality, min-max scaled over the eligible candidates of that prompt
  with a range floor (:data:`QUALITY_RANGE_FLOOR`): when every model is predicted within a few points
  of the best, accuracy barely separates them, so it cannot outweigh a large cost difference;
- ``cost`` and ``latency``: per-prompt predictions on a log scale (a 10x price gap matters more than a
  10 % one), scaled over the eligible candidates, with range floors for the same reason;
- ``harmlessness``, ``honesty``, ``helpfulness``, ``steerability``, ``creativity``: the card's 0..1
  metric as is (already normalised across the registry).

Everything is vectorised over (prompts, models): one call scores a whole batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from optiroute.catalog.table import derived

if TYPE_CHECKING:
    from optiroute.catalog.registry import ModelCard

__all__ = ["CARD_DIMENSIONS", "ScoreTable", "score"]

CARD_DIMENSIONS = ("harmlessness", "honesty", "helpfulness", "steerability", "creativity")
QUALITY_RANGE_FLOOR = 0.2
COST_RANGE_FLOOR = float(np.log(2.0))
LATENCY_RANGE_FLOOR = float(np.log(1.5))


class ScoreTable:
    """Totals and sub-scores, each an array of shape (n_prompts, n_models)."""

    __slots__ = ("total", "sub")

    def __init__(self, total: np.ndarray, sub: dict[str, np.ndarray]) -> None:
        self.total = total
        self.sub = sub


def _scale(values: np.ndarray, eligible: np.ndarray, floor: float, *, higher_is_better: bool) -> np.ndarray:
    """Min-max over eligible columns of each row, with a minimum range, into 0..1."""
    big = np.float32(np.inf)
    lo = np.where(eligible, values, big).min(axis=1, keepdims=True)
    hi = np.where(eligible, values, -big).max(axis=1, keepdims=True)
    lo = np.where(np.isfinite(lo), lo, 0.0)
    hi = np.where(np.isfinite(hi), hi, 0.0)
    span = np.maximum(hi - lo, floor)
    scaled = (values - lo) / span if higher_is_better else (hi - values) / span
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def _card_row(card: ModelCard) -> list[float]:
    metrics, unknown = card.metrics, getattr(card, "unknown", ())
    return [np.nan if d in unknown else metrics.get(d, 0.5) for d in CARD_DIMENSIONS]


def card_matrix(cards: Sequence[ModelCard]) -> np.ndarray:
    """(n_models, len(CARD_DIMENSIONS)) card metrics, looked up once per candidate set.

    A dimension a card has no figure for (``card.unknown``) is neutral: it takes the mean of the
    candidates that have one (0.5 when none has), so it neither wins nor loses on a made-up number.
    """
    built: np.ndarray = derived(cards, "card_metrics", lambda: _card_matrix(cards))
    return built


def _card_matrix(cards: Sequence[ModelCard]) -> np.ndarray:
    table = np.array([_card_row(c) for c in cards], dtype=np.float32).reshape(len(cards), len(CARD_DIMENSIONS))
    known = ~np.isnan(table)
    counts = known.sum(axis=0)
    means = np.where(counts > 0, np.where(known, table, 0.0).sum(axis=0) / np.maximum(counts, 1), 0.5)
    return np.where(known, table, means[None, :]).astype(np.float32)


def score(
    weights: Mapping[str, float],
    quality: np.ndarray,
    cost: np.ndarray,
    latency: np.ndarray,
    card_metrics: np.ndarray,
    eligible: np.ndarray,
) -> ScoreTable:
    """Score every (prompt, model) pair.

    Args:
        weights: normalised preference weights (summing to 1) per dimension.
        quality, cost, latency: predictions of shape (n, m).
        card_metrics: (m, 5) from :func:`card_matrix`.
        eligible: boolean (n, m); ineligible pairs get total ``-inf`` and do not affect scaling.
    """
    sub: dict[str, np.ndarray] = {}
    total = np.zeros(quality.shape, dtype=np.float32)
    if weights.get("accuracy", 0.0) > 0:
        sub["accuracy"] = _scale(quality, eligible, QUALITY_RANGE_FLOOR, higher_is_better=True)
    if weights.get("cost", 0.0) > 0:
        lc = np.log(np.maximum(cost, 1e-9))
        sub["cost"] = _scale(lc, eligible, COST_RANGE_FLOOR, higher_is_better=False)
    if weights.get("latency", 0.0) > 0:
        ll = np.log(np.maximum(latency, 1e-4))
        sub["latency"] = _scale(ll, eligible, LATENCY_RANGE_FLOOR, higher_is_better=False)
    for j, dim in enumerate(CARD_DIMENSIONS):
        if weights.get(dim, 0.0) > 0:
            sub[dim] = np.broadcast_to(card_metrics[:, j], quality.shape).astype(np.float32)
    for dim, values in sub.items():
        total += np.float32(weights[dim]) * values
    total = np.where(eligible, total, -np.inf).astype(np.float32)
    return ScoreTable(total, sub)
