"""An onboarded model's accuracy over the store, how sure that estimate is, and its card.

Onboarding measures a new model on a few percent of the stored prompts. Two things follow from those
outcomes besides the store column: the model's accuracy over the whole store (overall and per
domain), which sets the level of a card whose accuracy was imputed, and the *standard error* of that
accuracy, which tells the caller whether the budget was enough. On MMLU-Pro, 2 % of the train prompts
(168 outcomes) pin a model's accuracy to about +/- 0.03 (one standard error), while the two best
models differ by 0.018; ``benchmarks/onboarding.py`` measures that the reported error is calibrated
(about 95 % of the +/- 1.96 SE intervals cover the true accuracy) and :func:`optiroute.onboard.onboarding.onboard`
can be run again on the same model to add outcomes and shrink it.

The estimate is difficulty-adjusted: each measured outcome is taken relative to the other models'
mean on the same prompt, and that mean is added to the other models' mean over the store. A raw mean
over a few prompts would carry their difficulty. The measured prompts count equally: weighting each
K-Means representative by its cluster's size (the previous estimator) or by the stored prompts
nearest to it only added variance (over the 31 MMLU-Pro models x 3 seeds at 2 %: RMSE 0.032 and
0.034 against 0.029 unweighted, whose reported standard error covers the truth 96 % of the time
within +/- 1.96 SE). Equal weights also let a second onboarding run pool its outcomes with the first.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from optiroute.catalog.registry import ModelCard

__all__ = ["CARD_N0", "DOMAIN_N0", "LevelEstimate", "calibrate_card", "estimate_level"]

#: Pseudo-observations of the card's own level when onboarding outcomes recalibrate it ...
CARD_N0 = 10.0
#: ... and of each of its per-domain accuracies: a domain gets few representatives, so shrink hard.
#: Chosen on MMLU-Pro *train* outcomes only (10 / 30 / 100 / no per-domain step compared by the
#: per-domain error against the card calibrated on all train outcomes, over the 31 models).
DOMAIN_N0 = 100.0


class LevelEstimate(BaseModel):
    """The new model's accuracy over the store, from its measured outcomes."""

    level: float = Field(description="difficulty-adjusted accuracy over the store, 0.01..0.99")
    se: float = Field(description="standard error of ``level`` (spread of the difficulty-adjusted outcomes / sqrt(n))")
    n: int = Field(description="measured outcomes it rests on")
    by_domain: dict[str, tuple[float, int]] = Field(default_factory=dict,
                                                    description="domain -> (level, outcomes)")


def estimate_level(others: np.ndarray, tasks: Sequence[str], col: np.ndarray,
                   domains: Sequence[str]) -> LevelEstimate:
    """Estimate the accuracy over the store of the model whose outcomes are ``col``.

    Args:
        others: (n, m) the other models' outcomes (NaN: not evaluated); their per-prompt mean is the
            difficulty reference.
        tasks: per stored prompt, its task label; labels naming one of ``domains`` get a per-domain level.
        col: (n,) the model's outcomes, NaN where not measured (at least one must be measured).
        domains: the analyzer's domains.
    """
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = np.nanmean(others, axis=1) if others.shape[1] else np.full(len(col), np.nan)
    base = float(np.nanmean(ref)) if np.isfinite(ref).any() else 0.5
    ref = np.where(np.isnan(ref), base, ref)
    rows = np.flatnonzero(np.isfinite(col))
    rel = col[rows] - ref[rows]
    mean_rel = float(rel.mean())
    n = len(rows)
    se = float(rel.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.5
    level = float(np.clip(base + mean_rel, 0.01, 0.99))
    labels = np.asarray(tasks)
    by_domain: dict[str, tuple[float, int]] = {}
    for d in sorted(set(domains) & set(labels[rows].tolist())):
        on = labels[rows] == d
        base_d = float(ref[labels == d].mean())
        by_domain[d] = (float(np.clip(base_d + rel[on].mean(), 0.01, 0.99)), int(on.sum()))
    return LevelEstimate(level=level, se=round(se, 5), n=n, by_domain=by_domain)


def calibrate_card(card: ModelCard, level: float, n: int,
                   by_domain: Mapping[str, tuple[float, int]] | None = None, *,
                   n0: float | None = None, n0_domain: float | None = None) -> ModelCard:
    """Move the card's accuracy and per-domain accuracies towards the onboarded estimates.

    On the logit scale: every domain first shifts by ``n / (n + CARD_N0)`` of the gap between the
    card's overall accuracy and ``level`` (the card keeps its per-domain shape, the outcomes set its
    level), then each domain with ``n_d`` outcomes moves ``n_d / (n_d + CARD_N0)`` of the way to its
    own estimate. Why: the kNN predictor blends per-prompt evidence around the card prior, and on
    data like MMLU-Pro the per-domain prior carries most of the routing signal, so an imputed
    (cold-start) card would otherwise bias every prompt the representatives do not cover.
    """
    def logit(p: float) -> float:
        p = min(max(p, 0.01), 0.99)
        return math.log(p / (1 - p))

    def sig(z: float) -> float:
        return round(1.0 / (1.0 + math.exp(-z)), 4)

    n0 = CARD_N0 if n0 is None else n0
    n0_domain = DOMAIN_N0 if n0_domain is None else n0_domain
    old = float(card.metrics.get("accuracy", 0.5))
    shift = n / (n + n0) * (logit(level) - logit(old))
    z = {d: logit(v) + shift for d, v in card.accuracy_by_domain.items()}
    for d, (lv, nd) in (by_domain or {}).items():
        zd = z.get(d, logit(old) + shift)
        z[d] = zd + nd / (nd + n0_domain) * (logit(lv) - zd)
    src = f"onboarding: {n} representative outcomes (estimated {level:.3f}) moved the card's {old:.3f}"
    return card.model_copy(update={
        "metrics": {**card.metrics, "accuracy": sig(logit(old) + shift)},
        "accuracy_by_domain": {d: sig(v) for d, v in sorted(z.items())},
        "sources": {**card.sources, "accuracy": src, "accuracy_by_domain": src},
    })
