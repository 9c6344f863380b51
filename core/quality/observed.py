"""Observed outcomes beat card priors: the card prior moved to each model's observed mean by count.

A card's accuracy is measured elsewhere (another benchmark, another scale, sometimes a close variant's
number). Once a router has tens of a model's own outcomes, those say more about the model *on this
traffic* than any card: the prior's level becomes ``w * observed + (1 - w) * card`` on the logit
scale, ``w = n / (n + n0)`` for ``n`` outcomes, so 30 outcomes already count three times the card
(``n0`` = 10). What the card prior says about a prompt's domain and difficulty is kept as a shift
around that level. The card prior itself is :func:`optiroute.quality.priors.card_prior`, untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from optiroute.catalog.registry import ModelCard

__all__ = ["OBSERVED_N0", "observed_level", "toward_observed"]

#: Pseudo-outcomes of a card: a model with this many observed outcomes is half card, half observed.
OBSERVED_N0 = 10.0


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-3, 1 - 1e-3)
    out: np.ndarray = np.log(q / (1 - q))
    return out


def observed_level(scores: np.ndarray, estimated: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per column, ``(mean measured outcome, number of measured outcomes)``; estimates do not count."""
    s = np.asarray(scores, dtype=np.float64)
    ok = ~np.isnan(s)
    if estimated is not None:
        ok &= ~np.asarray(estimated, dtype=bool)
    counts = ok.sum(axis=0).astype(np.float64)
    means = np.where(ok, s, 0.0).sum(axis=0) / np.maximum(counts, 1.0)
    return np.where(counts > 0, means, 0.5), counts


def toward_observed(
    prior: np.ndarray,
    cards: Sequence[ModelCard],
    columns: Sequence[int | None],
    means: np.ndarray,
    counts: np.ndarray,
    n0: float = OBSERVED_N0,
) -> np.ndarray:
    """``prior`` (n, m) with each known model's level moved from its card to its observed mean.

    Args:
        prior: the card prior, one column per card.
        cards: the candidates (their overall ``accuracy`` is the level being replaced).
        columns: per card, its column in ``means``/``counts`` (``None``: no outcomes, left as is).
        means, counts: per column, the observed mean outcome and how many outcomes it rests on.
        n0: the card's weight in pseudo-outcomes.
    """
    out = np.array(prior, dtype=np.float32, copy=True)
    for j, (card, col) in enumerate(zip(cards, columns, strict=True)):
        if col is None or counts[col] <= 0:
            continue
        w = float(counts[col]) / (float(counts[col]) + n0)
        shift = w * (_logit(np.array(means[col])) - _logit(np.array(card.metrics.get("accuracy", 0.5))))
        out[:, j] = (1.0 / (1.0 + np.exp(-(_logit(out[:, j]) + shift)))).astype(np.float32)
    return out
