"""The routing policy: hard constraints, the seed design's task and domain filters, the generalist
fallback, and the final ranked choice with its confidence.

Order of operations per prompt (vectorised over a batch):

1. **Hard constraints** (never relaxed): tools, JSON mode, context window, allowed/blocked models,
   max cost and max latency of the call. If nothing passes, :class:`NoEligibleModelError` lists why
   each model was excluded, so the caller knows which constraint to relax.
2. **Task-type filter**: a model whose predicted quality for this prompt is below
   ``max(task_floor * best, min_quality)`` is not competent for the task and is dropped.
3. **Domain filter**: a model whose card accuracy in the prompt's domain is below
   ``domain_floor * best`` is dropped (only models whose card has domain data are filtered).
4. **Widened search / generalist**: if the filters leave nothing (no candidate is competent), or the
   router's confidence is below ``min_confidence``, the filters are dropped and the *generalist* (the
   strongest eligible model overall, or a named one) is chosen; the decision says so and warns.
5. The best weighted score wins; the remaining eligible models, best first, are the fallback chain.
6. **Exploration** (opt-in, ``explore > 0``): that share of decisions goes to a uniformly random
   model among those passing the hard constraints, so feedback and observed latency also reach
   models routing would not pick (without it, a model that routing leaves is never re-measured).
   Explored decisions say so (``RoutingDecision.explored``); budgeted batches never explore.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from optiroute.catalog.table import derived
from optiroute.errors import InvalidInputError
from optiroute.schema.numbers import integer, optiroute_error, real

if TYPE_CHECKING:
    from optiroute.catalog.registry import ModelCard
    from optiroute.schema.decision import Constraints

__all__ = ["EXCLUSION_TEXT", "Exclusion", "PolicyConfig", "confidence", "explore_choice", "hard_mask",
           "soft_mask"]


class PolicyConfig(BaseModel):
    """Thresholds of the policy (defaults tuned to be rarely triggered on in-distribution prompts).

    Raises:
        InvalidInputError: a threshold outside 0..1, ``explore`` outside 0..0.5, ``max_fallbacks``
            outside 0..1000, a negative ``explore_seed`` or an unknown field (the message names it).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_floor: float = 0.5
    min_quality: float = 0.1
    domain_floor: float = 0.5
    min_confidence: float = 0.15
    generalist: str | None = None
    max_fallbacks: int = 4
    explore: float = 0.0
    explore_seed: int | None = None

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            inner = optiroute_error(exc)
            if isinstance(inner, InvalidInputError):
                raise inner from None
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "policy"
            raise InvalidInputError(
                f"Invalid policy field {where!r}: {first.get('msg')}. Valid fields are "
                f"{sorted(type(self).model_fields)}."
            ) from None

    @field_validator("task_floor", "min_quality", "domain_floor", "min_confidence", mode="before")
    @classmethod
    def _unit(cls, value: Any, info: Any) -> float:
        return real(value, f"Policy field {info.field_name!r}", lo=0.0, hi=1.0)

    @field_validator("max_fallbacks", mode="before")
    @classmethod
    def _fallbacks(cls, value: Any) -> int:
        return integer(value, "Policy field 'max_fallbacks'", lo=0, hi=1000)

    @field_validator("explore", mode="before")
    @classmethod
    def _explore(cls, value: Any) -> float:
        return real(value, "Policy field 'explore'", lo=0.0, hi=0.5,
                    hint="It is the share of decisions sent to a random eligible model.")

    @field_validator("explore_seed", mode="before")
    @classmethod
    def _seed(cls, value: Any) -> int | None:
        return None if value is None else integer(value, "Policy field 'explore_seed'", lo=0, hi=2**63 - 1)


class Exclusion:
    """Integer codes for why a (prompt, model) pair was excluded (0 = eligible)."""

    OK = 0
    NOT_ALLOWED = 1
    TOOLS = 2
    JSON = 3
    CONTEXT = 4
    COST = 5
    LATENCY = 6
    TASK = 7
    DOMAIN = 8


EXCLUSION_TEXT = {
    Exclusion.NOT_ALLOWED: "blocked or not in allowed_models",
    Exclusion.TOOLS: "does not support tool calling (needs_tools)",
    Exclusion.JSON: "does not support JSON mode (needs_json)",
    Exclusion.CONTEXT: "context window too small for this prompt",
    Exclusion.COST: "predicted cost above max_cost_usd",
    Exclusion.LATENCY: "predicted latency above max_latency_s",
    Exclusion.TASK: "predicted quality too low for this task type",
    Exclusion.DOMAIN: "weak in this prompt's domain",
}


def _names(card: ModelCard) -> set[str]:
    return {card.name, *card.aliases}


def static_codes(cards: Sequence[ModelCard], constraints: Constraints) -> np.ndarray:
    """Prompt-independent exclusion code per model, shape (m,) (kept per candidate table and the
    constraints it depends on; do not modify)."""
    key = ("static_codes", None if constraints.allowed_models is None else tuple(constraints.allowed_models),
           tuple(constraints.blocked_models), constraints.needs_tools, constraints.needs_json)
    codes: np.ndarray = derived(cards, key, lambda: _static_codes(cards, constraints))
    return codes


def _static_codes(cards: Sequence[ModelCard], constraints: Constraints) -> np.ndarray:
    codes = np.zeros(len(cards), dtype=np.int8)
    allowed = set(constraints.allowed_models) if constraints.allowed_models is not None else None
    blocked = set(constraints.blocked_models)
    for j, card in enumerate(cards):
        names = _names(card)
        if (allowed is not None and not names & allowed) or names & blocked:
            codes[j] = Exclusion.NOT_ALLOWED
        elif constraints.needs_tools and not card.supports_tools:
            codes[j] = Exclusion.TOOLS
        elif constraints.needs_json and not card.supports_json:
            codes[j] = Exclusion.JSON
    return codes


def hard_mask(
    cards: Sequence[ModelCard],
    constraints: Constraints,
    tokens_needed: np.ndarray,
    cost: np.ndarray,
    latency: np.ndarray,
) -> np.ndarray:
    """Exclusion codes of shape (n, m) from the hard constraints (0 where eligible).

    ``tokens_needed`` is prompt + expected answer, (n,) or per model (n, m) (answer lengths differ
    by the model's verbosity).
    """
    n, m = cost.shape
    codes = np.broadcast_to(static_codes(cards, constraints), (n, m)).copy()
    window = derived(cards, "context_window", lambda: np.array([c.context_window for c in cards], dtype=np.int64))
    need = tokens_needed.astype(np.int64)
    if need.ndim == 1:
        need = need[:, None]
    if constraints.min_context is not None:
        need = np.maximum(need, constraints.min_context)
    ok = codes == 0
    codes[ok & (window[None, :] < need)] = Exclusion.CONTEXT
    if constraints.max_cost_usd is not None:
        codes[(codes == 0) & (cost > constraints.max_cost_usd)] = Exclusion.COST
    if constraints.max_latency_s is not None:
        codes[(codes == 0) & (latency > constraints.max_latency_s)] = Exclusion.LATENCY
    return codes


def soft_mask(
    codes: np.ndarray,
    quality: np.ndarray,
    domain_acc: np.ndarray,
    config: PolicyConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the task and domain filters on top of hard codes.

    Args:
        codes: (n, m) hard exclusion codes.
        quality: (n, m) predicted quality.
        domain_acc: (n, m) card accuracy in each prompt's domain (NaN where the card has none).

    Returns:
        ``(codes, nothing_fits)``: updated codes, and a boolean (n,) marking prompts where the
        filters left no model (the caller then widens the search to the generalist).
    """
    hard_ok = codes == 0
    q = np.where(hard_ok, quality, -np.inf)
    best = q.max(axis=1, keepdims=True)
    task_bar = np.maximum(config.task_floor * best, config.min_quality)
    new = codes.copy()
    new[hard_ok & (quality < task_bar)] = Exclusion.TASK
    d = np.where(hard_ok & ~np.isnan(domain_acc), domain_acc, -np.inf)
    dbest = d.max(axis=1, keepdims=True)
    weak = hard_ok & ~np.isnan(domain_acc) & (domain_acc < config.domain_floor * dbest)
    new[(new == 0) & weak] = Exclusion.DOMAIN
    nothing = ~(new == 0).any(axis=1)
    # Where the filters emptied the set, keep the hard codes: the generalist choice happens there.
    new[nothing] = codes[nothing]
    return new, nothing


def confidence(
    task_conf: np.ndarray, support: np.ndarray, winner: np.ndarray, lam: float
) -> np.ndarray:
    """How much to trust a decision, in 0..1: half the analyzer's certainty about the task type,
    half the kNN evidence behind the winner (support / (support + lam))."""
    s = support[np.arange(len(winner)), winner]
    return (0.5 * task_conf + 0.5 * (s / (s + lam))).astype(np.float32)


def generalist_index(cards: Sequence[ModelCard], eligible: np.ndarray, name: str | None) -> np.ndarray:
    """Per prompt, the column of the generalist among eligible models (-1 if none eligible)."""
    strength = derived(cards, "accuracy", lambda: np.array([c.metrics.get("accuracy", 0.5) for c in cards],
                                                            dtype=np.float32)).copy()
    if name is not None:
        for j, c in enumerate(cards):
            if name in _names(c):
                strength[j] += 10.0  # the named generalist wins wherever it is eligible
    s = np.where(eligible, strength[None, :], -np.inf)
    idx = s.argmax(axis=1)
    return np.where(eligible.any(axis=1), idx, -1)


def explore_choice(
    winner: np.ndarray, eligible: np.ndarray, rate: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Send a ``rate`` share of prompts to a uniformly random eligible model (step 6).

    Returns ``(winner, explored)``; ``explored`` marks the rows that were re-drawn (the draw may
    land on the winner itself, which still counts as explored: the choice was random).
    """
    n = len(winner)
    explored = (rng.random(n) < rate) & eligible.any(axis=1)
    if not explored.any():
        return winner, explored
    rows = np.flatnonzero(explored)
    # A uniform draw among each row's eligible columns: argmax of random keys on eligible cells.
    keys = np.where(eligible[rows], rng.random((len(rows), eligible.shape[1])), -1.0)
    out = winner.copy()
    out[rows] = keys.argmax(axis=1)
    return out, explored


class Explorer:
    """The exploration draw of one router: its own seeded generator, safe across threads."""

    def __init__(self, seed: int | None) -> None:
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()

    def choose(self, winner: np.ndarray, eligible: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
        """:func:`explore_choice` with this router's generator."""
        with self._lock:
            return explore_choice(winner, eligible, rate, self._rng)
