"""Never worse than not routing: per operating point, route only where routing measured better than
the single models at its cost, and never drop a single model's point from the cost-quality frontier.

When a router is fitted, its quality predictor's *out-of-fold* predictions on the training prompts
(each prompt predicted by a predictor that never saw it: :mod:`optiroute.fit.selection`) are routed
by the same scorer routing uses, at each cost weight of :data:`GUARD_WEIGHTS` (preferences
``{"accuracy": 1 - w, "cost": w}``; the policy's task filter included), and realised on the prompts'
real outcomes and costs. Two checks, both paired prompt by prompt on those outcomes:

1. **Each point** is compared with the best single model that costs no more on average (at
   ``w = 0``: the best single model at any cost): routing is kept only where its mean gain is above
   zero by more than :data:`Z` standard errors. This is what a caller at that cost weight is owed.
2. **The frontier.** Not routing reaches every point of the single models' upper cost-quality hull
   (a mix of two models spends anything in between), and that hull is what routing is scored against
   (AIQ). A routed point that merely beats the cheaper single model can still leave out a model
   *between* it and the next point (routing at 90 % of the dearest model's cost, then jumping to a
   model cheaper than the middle one): the router's own curve then passes under that model. So every
   vertex of the single models' hull on train must be either a point the guard sends to that model,
   or beaten at its cost by the router's curve (the chord of the router's two points around it, per
   prompt) by ``Z`` standard errors in the small-sample test below; where it is not, the routed point
   that jumped over it is sent to its single model too (:attr:`GuardPoint.frontier` names the vertex),
   and the check repeats. The curve starts at the cheapest model (cost-only preferences, never
   guarded, go there).

Why the frontier test is a small-sample one: the gain is a mean over prompts most of which do not
differ (both choices right or both wrong); its standard error rests on the few that do. With 100
prompts, "routing won 3 of the 3 prompts where it differed" measures a gain of 0.03 at 1.75 standard
errors, and on test it lost 0.016 (LLMRouter, 100 training prompts). The vertex test therefore uses
the Student-t quantile with ``k - 1`` degrees of freedom for ``k`` differing prompts at the level
``Z`` sets (2.45 standard errors for ``k = 3``, 1.57 for ``k = 20``), where losing a vertex costs
AIQ. Per point it keeps the normal ``Z``: once every vertex is kept, a routed point can only add to
the router's curve, and the stricter test there cost real gains (measured on MT-Bench with renamed
models, 62 prompts: 0.031 above the hull fell to 0.027).

The out-of-fold predictions themselves are *nested* with the choice of predictor
(:func:`optiroute.fit.selection.choose_predictor`): the prompts of fold ``f`` carry the predictions of
the kind that cross-validation chose without fold ``f``, so the predictions that pick the winning kind
are not also the ones that measure its gain (the winner's curse of choosing the best of six on the
same predictions).

Measured (``benchmarks/learning_curves.py``, 5 shared sets, 100 / 300 / 1,000 / all training
prompts, 3 seeds, renamed models): LLMRouter at 100 prompts went from 0.005 below the single models'
hull to on it, every run is at or above the hull, and the whole train sets route as before.
Comparing each point with the hull's chord instead of the cheaper model (stricter, and the natural
reading of AIQ) also fixed LLMRouter but gave up much of routing's gain between two models (RouteLLM
MMLU at 1,000 prompts: 0.026 -> 0.019 above the hull; MT-Bench 0.033 -> 0.003 in a variant that also
widened the per-point standard error): a point under the chord costs nothing while the vertices
stay. What the frontier check costs: with 100 prompts and 31 models (MMLU-Pro) the train hull has
many vertices that routing cannot clearly beat, and routing's lead over the hull there fell from
0.020 to 0.006.

Preferences map to the nearest measured cost weight by ``cost / (accuracy + cost)``; preferences
that give accuracy no weight are not guarded (quality is not what they ask for). The guard is saved
in the router's manifest; routers saved without one route as before, and guards saved before the
frontier check load unchanged (their points have no ``frontier``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from optiroute.metrics.curves import upper_hull
from optiroute.routing.policy import PolicyConfig, soft_mask
from optiroute.routing.scoring import score

__all__ = ["GUARD_WEIGHTS", "GuardPoint", "RoutingGuard", "Z", "measure_guard", "paired_gain", "simulate_choice"]

#: Cost weights the guard measures (a subset of the bench sweep, denser where routers trade most).
GUARD_WEIGHTS: tuple[float, ...] = (0.0, 0.02, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4,
                                    0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
#: Routing must beat the single model by this many standard errors of the paired per-prompt gain (the
#: frontier check: the Student-t quantile at the same one-sided level, see the module docstring).
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
    frontier: str | None = Field(
        default=None, max_length=512,
        description="the single model whose point on the cost-quality frontier routing here passed under "
                    "(why this point is sent to its single model although it beat it)")


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
        cv = f"by {self.n_folds}-fold cross-validation on {self.n_prompts} training prompts"
        if p.frontier is not None:
            return (f"Sent to {p.single}: at this cost weight ({p.cost_weight:g}) routing measured "
                    f"{p.routed_quality:.3f} at ${p.routed_cost_usd:.2g}/prompt {cv}, better than {p.single} "
                    f"alone, but together with the neighbouring cost weights not better than {p.frontier} at "
                    f"its cost, so the router does not route here (it keeps every single model's point).")
        return (f"Sent to {p.single}: at this cost weight ({p.cost_weight:g}) routing measured "
                f"{p.routed_quality:.3f} at ${p.routed_cost_usd:.2g}/prompt {cv}, not better than {p.single} alone "
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


def paired_gain(d: np.ndarray, z: float = Z, *, small_sample: bool = False) -> tuple[float, float, bool]:
    """Mean of the per-prompt differences ``d`` (NaN left out), its standard error, and whether it is
    above zero by ``z`` standard errors.

    With ``small_sample`` the threshold is the Student-t quantile at the one-sided level of ``z`` with
    ``k - 1`` degrees of freedom, ``k`` the prompts whose difference is not zero (the only ones the
    standard error rests on); fewer than two such prompts never pass.
    """
    d = d[~np.isnan(d)]
    gain = float(d.mean()) if len(d) else 0.0
    if len(d) < 2:
        return gain, 1.0, False
    se = float(d.std(ddof=1) / np.sqrt(len(d)))
    need = z
    if small_sample:
        from scipy.stats import norm, t

        k = int((np.abs(d) > 1e-12).sum())
        if k < 2:
            return gain, se, False
        need = float(t.ppf(norm.cdf(z), k - 1))
    return gain, se, bool(gain > 0 and gain > need * se)


@dataclass
class _Measured:
    """A point's per-prompt outcomes when routed, and the column of its single model."""

    routed: np.ndarray
    single: int


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
    """Measure routing against the single models at each of ``cost_weights`` (see the module docstring).

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
    points: list[GuardPoint] = []
    measured: list[_Measured] = []
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
        gain, se, better = paired_gain(y - scores[:, s], z)
        points.append(GuardPoint(
            cost_weight=float(w), routed_quality=float(np.clip(q_r, 0, 1)),
            routed_cost_usd=float(np.nan_to_num(c_r)), single=str(models[s]),
            single_quality=float(np.clip(single_q[s], 0, 1)), single_cost_usd=float(single_c[s]),
            gain=float(np.clip(gain, -1, 1)), stderr=float(min(se, 1.0)), use_single=not better,
        ))
        measured.append(_Measured(y, s))
    _keep_frontier(points, measured, scores, single_q, single_c, models, z)
    return RoutingGuard(points=points, n_prompts=n, n_folds=int(n_folds), z=z)


def _keep_frontier(points: list[GuardPoint], measured: list[_Measured], scores: np.ndarray,
                   single_q: np.ndarray, single_c: np.ndarray, models: Sequence[str], z: float) -> None:
    """Send routed points to their single model until no vertex of the single models' hull lies above
    the router's curve (in place; see the module docstring)."""
    ok = np.isfinite(single_q) & np.isfinite(single_c)
    at = {(float(single_c[j]), float(single_q[j])): int(j) for j in np.flatnonzero(ok)}
    vertices = [at[(c, q)] for c, q in upper_hull(list(at))]
    if not vertices:
        return
    cheapest = vertices[0]  # cost-only preferences (never guarded) route here: the curve starts at it
    for _ in range(len(points)):  # each pass sends one more point to its single model, or stops
        # (cost, quality, point index, per-prompt outcomes) of each point as it now stands
        curve = [(float(single_c[cheapest]), float(single_q[cheapest]), -1, scores[:, cheapest])]
        for k, (p, m) in enumerate(zip(points, measured, strict=True)):
            if p.use_single:
                curve.append((float(single_c[m.single]), float(single_q[m.single]), k, scores[:, m.single]))
            else:
                curve.append((p.routed_cost_usd, p.routed_quality, k, m.routed))
        hull = upper_hull([(c, q) for c, q, _, _ in curve])
        if not hull:
            return
        # Of equal points, the one of the highest cost weight: the nearest to what it jumped over.
        on_hull = [next(x for x in reversed(curve) if (x[0], x[1]) == h) for h in hull]
        culprit = None
        for j in vertices[1:]:
            if any(k >= 0 and points[k].use_single and measured[k].single == j for _, _, k, _ in curve):
                continue  # the guard already sends some point to this model
            c_v = float(single_c[j])
            if c_v <= hull[0][0]:
                continue  # cheaper than every point: not a point routing replaced
            if c_v >= hull[-1][0]:  # dearer than every point: the router's best point stands in
                lo = hi = on_hull[-1]
                share = 0.0
            else:
                i = max(i for i in range(len(hull) - 1) if hull[i][0] <= c_v)
                lo, hi = on_hull[i], on_hull[i + 1]
                share = (c_v - lo[0]) / (hi[0] - lo[0])
            router = (1 - share) * lo[3] + share * hi[3]
            if paired_gain(router - scores[:, j], z, small_sample=True)[2]:
                continue
            culprit = next((x[2] for x in (hi, lo) if x[2] >= 0 and not points[x[2]].use_single), None)
            if culprit is not None:
                points[culprit] = points[culprit].model_copy(update={"use_single": True, "frontier": str(models[j])})
                break
        if culprit is None:
            return
