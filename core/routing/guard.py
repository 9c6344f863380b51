"""Never worse than not routing: per operating point, route only where routing measured better than
the best single model at its cost.

When a router is fitted, its quality predictor's *out-of-fold* predictions on the training prompts
(each prompt predicted by a predictor that never saw it: :mod:`optiroute.fit.selection`) are routed
by the same scorer routing uses, at each cost weight of :data:`GUARD_WEIGHTS` (preferences
``{"accuracy": 1 - w, "cost": w}``; the policy's task filter included), and realised on the prompts'
real outcomes and costs. Each operating point is compared with the best single model that costs no
more on average (at ``w = 0``: the best single model at any cost), prompt by prompt: routing is
kept only where its mean gain is above zero by more than :data:`Z` standard errors. Elsewhere the
guard sends every prompt at that cost weight to that single model, and the decision's reason says
so and why.

Preferences map to the nearest measured cost weight by ``cost / (accuracy + cost)``; preferences
that give accuracy no weight are not guarded (quality is not what they ask for). The guard is saved
in the router's manifest; routers saved without one route as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from optiroute.routing.policy import PolicyConfig, soft_mask
from optiroute.routing.scoring import score

__all__ = ["GUARD_WEIGHTS", "GuardPoint", "RoutingGuard", "Z", "measure_guard", "simulate_choice"]

#: Cost weights the guard measures (a subset of the bench sweep, denser where routers trade most).
GUARD_WEIGHTS: tuple[float, ...] = (0.0, 0.02, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4,
                                    0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
#: Routing must beat the single model by this many standard errors of the paired per-prompt gain (more
#: than one: the predictor was itself chosen as the best of several on the same out-of-fold predictions).
Z = 1.5


class GuardPoint(BaseModel):
    """One measured operating point: routing against the best single model at its cost."""

    model_config = ConfigDict(extra="forbid")

    cost_weight: float = Field(ge=0.0, le=1.0)
    routed_quality: float = Field(ge=0.0, le=1.0)
    routed_cost_usd: float = Field(ge=0.0, le=1e6)
    single: str = Field(min_length=1, max_length=512, description="the best single model at no higher cost")
    single_quality: float = Field(ge=0.0, le=1.0)
    single_cost_usd: float = Field(ge=0.0, le=1e6)
    gain: float = Field(ge=-1.0, le=1.0, description="mean per-prompt gain of routing over that model")
    stderr: float = Field(ge=0.0, le=1.0)
    use_single: bool = Field(description="routing did not beat the single model: use it at this point")


class RoutingGuard(BaseModel):
    """The guard's measurements (saved in the manifest) and the choice they imply per preference."""

    model_config = ConfigDict(extra="forbid")

    points: list[GuardPoint] = Field(max_length=1000)
    n_prompts: int = Field(ge=0, le=10**9)
    n_folds: int = Field(ge=0, le=100)
    z: float = Field(default=Z, ge=0.0, le=100.0)

    def point_for(self, weights: Mapping[str, float]) -> GuardPoint | None:
        """The measured point nearest the preferences' cost weight (``None``: not guarded)."""
        acc, cost = float(weights.get("accuracy", 0.0)), float(weights.get("cost", 0.0))
        if acc <= 0 or not self.points:
            return None
        w = cost / (acc + cost)
        return min(self.points, key=lambda p: abs(p.cost_weight - w))

    def reason(self, p: GuardPoint) -> str:
        """Why a decision went to the single model (what the decision says)."""
        return (f"Sent to {p.single}: at this cost weight ({p.cost_weight:g}) routing measured "
                f"{p.routed_quality:.3f} at ${p.routed_cost_usd:.2g}/prompt by {self.n_folds}-fold "
                f"cross-validation on {self.n_prompts} training prompts, not better than {p.single} alone "
                f"({p.single_quality:.3f} at ${p.single_cost_usd:.2g}; gain {p.gain:+.3f} +/- {p.stderr:.3f}), "
                "so the router does not route here.")

    def summary(self) -> list[dict[str, Any]]:
        """One row per point (what ``optiroute bench`` shows)."""
        return [p.model_dump() for p in self.points]


def simulate_choice(quality: np.ndarray, predicted_cost: np.ndarray, cost_weight: float,
                    policy: PolicyConfig | None = None) -> np.ndarray:
    """The model routing picks per prompt at ``{"accuracy": 1 - w, "cost": w}`` (``w`` < 1): the
    policy's task filter, then the scorer (no card domain filter, no low-confidence fallback)."""
    w = float(cost_weight)
    n, m = quality.shape
    q = quality.astype(np.float32)
    codes, _ = soft_mask(np.zeros((n, m), dtype=np.int8), q, np.full((n, m), np.nan, dtype=np.float32),
                         policy or PolicyConfig())
    table = score({"accuracy": 1.0 - w, "cost": w}, q, predicted_cost.astype(np.float32),
                  np.ones((n, m), dtype=np.float32), np.zeros((m, 5), dtype=np.float32), codes == 0)
    return np.asarray(table.total.argmax(axis=1))


def _mean(x: np.ndarray) -> float:
    ok = ~np.isnan(x)
    return float(x[ok].mean()) if ok.any() else float("nan")


def measure_guard(
    quality: np.ndarray,
    scores: np.ndarray,
    costs: np.ndarray,
    predicted_cost: np.ndarray,
    models: Sequence[str],
    *,
    n_folds: int,
    cost_weights: Sequence[float] = GUARD_WEIGHTS,
    z: float = Z,
) -> RoutingGuard:
    """Measure routing against the best single model at each of ``cost_weights``.

    Args:
        quality: (n, m) out-of-fold predicted quality of the training prompts.
        scores, costs: (n, m) their real outcomes and costs (NaN = unknown).
        predicted_cost: (n, m) cost as routing predicts it (what the scorer sees).
        models: the m model names the guard may send prompts to (card names).
        n_folds: folds the out-of-fold predictions came from (reported).
        z: standard errors routing's gain must clear.
    """
    n = len(scores)
    rows = np.arange(n)
    # Where a cost was not recorded (and no price filled it), the predicted cost stands in.
    costs = np.where(np.isnan(costs), np.nan_to_num(predicted_cost, nan=0.0), costs)
    single_q = np.array([_mean(scores[:, j]) for j in range(len(models))])
    single_c = np.array([_mean(costs[:, j]) for j in range(len(models))])
    single_c = np.where(np.isnan(single_c), np.inf, single_c)
    points = []
    for w in cost_weights:
        choice = simulate_choice(quality, np.nan_to_num(predicted_cost, nan=0.0), w)
        y = scores[rows, choice]
        c = costs[rows, choice]
        q_r, c_r = _mean(y), _mean(c)
        if not np.isfinite(q_r):
            continue
        allowed = np.isfinite(single_q) & ((single_c <= c_r * (1 + 1e-9)) if w > 0 else True)
        if not allowed.any():
            continue
        cand = np.where(allowed, single_q, -np.inf)
        s = int(np.flatnonzero(cand >= cand.max() - 1e-12)[np.argmin(single_c[cand >= cand.max() - 1e-12])])
        d = y - scores[:, s]
        d = d[~np.isnan(d)]
        gain = float(d.mean()) if len(d) else 0.0
        se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 1.0
        points.append(GuardPoint(
            cost_weight=float(w), routed_quality=float(np.clip(q_r, 0, 1)),
            routed_cost_usd=float(np.nan_to_num(c_r)), single=str(models[s]),
            single_quality=float(np.clip(single_q[s], 0, 1)), single_cost_usd=float(single_c[s]),
            gain=float(np.clip(gain, -1, 1)), stderr=float(min(se, 1.0)),
            use_single=not (gain > 0 and gain > z * se),
        ))
    return RoutingGuard(points=points, n_prompts=n, n_folds=int(n_folds), z=z)
