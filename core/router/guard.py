"""Measuring a fitted router's guard (:mod:`optiroute.routing.guard`) from what fitting left.

Fitting cross-validates the quality predictor and keeps its out-of-fold predictions
(:class:`optiroute.fit.training.FitCheck`); this routes them at every guarded cost weight and names
the single models by their cards, as routing will see them.
"""

from __future__ import annotations

from typing import Any

from optiroute.fit.training import FitCheck
from optiroute.routing.guard import RoutingGuard, measure_guard

__all__ = ["guard_from_fit"]


def guard_from_fit(check: FitCheck, registry: Any) -> RoutingGuard:
    """The guard of a router fitted with ``check`` (model names resolved through ``registry``)."""
    names = [registry.resolve(m).name for m in check.models]
    return measure_guard(check.cv.quality, check.scores, check.costs, check.predicted_cost, names,
                         n_folds=int(check.cv.folds.max()) + 1)
