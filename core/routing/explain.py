"""Turning the vectorised routing arrays for one prompt into a self-explaining RoutingDecision.

Kept apart from the router so that a batch of a million prompts pays for explanations only for the
decisions somebody looks at.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from pydantic import TypeAdapter

from optiroute.routing.policy import EXCLUSION_TEXT, Exclusion
from optiroute.schema.decision import ModelScore, Neighbour, RoutingDecision, TaskProfile
from optiroute.schema.preferences import Preferences

__all__ = ["build_decision", "reason_text"]

SOFT_CODES = (Exclusion.TASK, Exclusion.DOMAIN)


@functools.cache
def _score_list() -> TypeAdapter[list[ModelScore]]:
    return TypeAdapter(list[ModelScore])


def _money(v: float) -> str:
    return f"${v:.2g}" if v < 0.01 else f"${v:.3f}"


def _describe(dim: str, w: ModelScore, r: ModelScore) -> str:
    if dim == "accuracy":
        return f"predicted quality {w.predicted_quality:.2f} vs {r.predicted_quality:.2f}"
    if dim == "cost":
        return f"cost {_money(w.predicted_cost_usd)} vs {_money(r.predicted_cost_usd)} per call"
    if dim == "latency":
        return f"latency {w.predicted_latency_s:.1f}s vs {r.predicted_latency_s:.1f}s"
    return f"{dim} {w.sub_scores.get(dim, 0):.2f} vs {r.sub_scores.get(dim, 0):.2f}"


def reason_text(
    winner: ModelScore,
    runner_up: ModelScore | None,
    prefs: Preferences,
    profile: TaskProfile,
    *,
    generalist: str | None = None,
) -> str:
    """One sentence saying why ``winner`` won (the dimensions that gave it the largest edge)."""
    what = f"this {profile.task_type} prompt ({profile.domain})"
    if generalist:
        return f"Fell back to the generalist {winner.model} for {what}: {generalist}."
    if runner_up is None:
        return f"{winner.model} is the only candidate that passed the constraints for {what}."
    weights = prefs.normalized()
    edges = sorted(
        (
            (weights.get(d, 0.0) * (winner.sub_scores.get(d, 0) - runner_up.sub_scores.get(d, 0)), d)
            for d in winner.sub_scores
        ),
        reverse=True,
    )
    pros = [_describe(d, winner, runner_up) for e, d in edges[:2] if e > 1e-4]
    if not pros:
        return (
            f"{winner.model} edges out {runner_up.model} under '{prefs.label()}' for {what} "
            f"(score {winner.score:.3f} vs {runner_up.score:.3f})."
        )
    return (
        f"{winner.model} beats runner-up {runner_up.model} under '{prefs.label()}' for {what}: "
        f"{' and '.join(pros)}."
    )


def build_decision(
    *,
    decision_id: str,
    names: Sequence[str],
    winner: int,
    cards: Sequence[str] | None = None,
    total: np.ndarray,
    sub: dict[str, np.ndarray],
    quality: np.ndarray,
    cost: np.ndarray,
    latency: np.ndarray,
    codes: np.ndarray,
    profile: TaskProfile,
    prefs: Preferences,
    confidence: float,
    neighbours: list[Neighbour],
    max_fallbacks: int,
    generalist_reason: str | None,
    warnings: list[str],
    explored: bool = False,
) -> RoutingDecision:
    """Assemble the decision for one prompt from its row of every routing array."""
    # Rows become Python lists once: indexing numpy scalars per candidate and field cost more than
    # the rest of a decision outside the encode (measured with 41 candidates).
    code_l = [int(c) for c in np.asarray(codes).tolist()]
    total_l = [t if math.isfinite(t) else 0.0 for t in np.asarray(total, dtype=np.float64).tolist()]
    sub_l = {d: np.round(np.asarray(v, dtype=np.float64), 4).tolist() for d, v in sub.items()}
    quality_l = np.asarray(quality, dtype=np.float64).tolist()
    cost_l = np.asarray(cost, dtype=np.float64).tolist()
    latency_l = np.asarray(latency, dtype=np.float64).tolist()
    dims = list(sub_l)
    subs = [dict(zip(dims, vals, strict=True)) for vals in zip(*sub_l.values(), strict=True)] if dims else [
        {} for _ in names]
    # One validation of the whole list: pydantic-core builds these flat models about twice as fast as
    # one constructor call each (44 vs 91 us for 41 candidates) and checks them on the way.
    scores = _score_list().validate_python([
        {"model": name, "card": None if cards is None else cards[j], "score": total_l[j], "sub_scores": subs[j],
         "predicted_quality": quality_l[j], "predicted_cost_usd": cost_l[j], "predicted_latency_s": latency_l[j],
         "excluded": EXCLUSION_TEXT.get(code_l[j]) if code_l[j] else None}
        for j, name in enumerate(names)
    ])
    eligible = sorted(
        (s for j, s in enumerate(scores) if not code_l[j] and j != winner), key=lambda s: -s.score
    )
    ranked = [scores[winner], *eligible]
    excluded_scores = [s for s in scores if s.excluded is not None]
    # Models only the soft task/domain filters excluded still pass every hard constraint: they end
    # the fallback chain (strongest first), because a weaker answer beats a failed call.
    soft = sorted(
        (s for j, s in enumerate(scores) if code_l[j] in SOFT_CODES and j != winner),
        key=lambda s: -s.predicted_quality,
    )
    runner = eligible[0] if eligible else None
    reason = reason_text(ranked[0], runner, prefs, profile, generalist=generalist_reason)
    if explored:
        best = max((s for j, s in enumerate(scores) if not code_l[j]), key=lambda s: s.score, default=None)
        reason = (f"Exploring: {names[winner]} was drawn at random among the models that pass the hard "
                  "constraints (policy.explore), so feedback and latency reach it too"
                  + (f"; the best-scoring model was {best.model}." if best is not None else "."))
    return RoutingDecision.model_construct(
        decision_id=decision_id,
        model=names[winner],
        card=None if cards is None else cards[winner],
        fallbacks=[s.model for s in (eligible + soft)[:max_fallbacks]],
        scores=ranked + excluded_scores,
        profile=profile,
        preferences=prefs,
        confidence=float(confidence),
        neighbours=neighbours,
        reason=reason,
        generalist_fallback=generalist_reason is not None,
        warnings=warnings,
        explored=explored,
        created_at=_now(),
    )


def _now():  # noqa: ANN202 - tiny helper kept local to avoid importing datetime at call sites
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)
