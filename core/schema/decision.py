"""Pydantic models shared by every layer: constraints, the analyzer's task profile and the decision.

These are the public data shapes of OptiRoute. They import nothing of ours but the error tree and the
preference model, so every other module can depend on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from optiroute.errors import InvalidConstraintsError
from optiroute.schema.numbers import MAX_SECONDS, MAX_TOKENS, MAX_USD, integer, optiroute_error, real
from optiroute.schema.preferences import Preferences

__all__ = [
    "Constraints",
    "ConstraintsLike",
    "ModelScore",
    "Neighbour",
    "RoutingDecision",
    "TaskProfile",
]


class Constraints(BaseModel):
    """Hard filters: a model that fails one is never chosen, whatever the preferences say.

    Attributes:
        needs_tools: only models with tool (function) calling.
        needs_json: only models with a JSON output mode.
        min_context: the prompt plus expected output must fit this many tokens (the router also
            enforces the prompt's own estimated size).
        max_cost_usd: the predicted cost of this one call must not exceed this.
        max_latency_s: the predicted end-to-end latency of this call must not exceed this.
        allowed_models: if given, only these models (names or aliases) are considered.
        blocked_models: these models are never considered.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    needs_tools: bool = False
    needs_json: bool = False
    min_context: int | None = None
    max_cost_usd: float | None = None
    max_latency_s: float | None = None
    allowed_models: tuple[str, ...] | None = None
    blocked_models: tuple[str, ...] = ()

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            inner = optiroute_error(exc)
            if isinstance(inner, InvalidConstraintsError):
                raise inner from None
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "constraints"
            raise InvalidConstraintsError(
                f"Invalid constraint {where!r}: {first.get('msg')}. Valid constraints are "
                f"{sorted(type(self).model_fields)}."
            ) from None

    @field_validator("min_context", mode="before")
    @classmethod
    def _tokens(cls, value: Any) -> int | None:
        if value is None:
            return None
        return integer(value, "Constraint 'min_context'", lo=0, hi=MAX_TOKENS, error=InvalidConstraintsError,
                       hint="It counts tokens of prompt plus answer.")

    @field_validator("max_cost_usd", mode="before")
    @classmethod
    def _usd(cls, value: Any) -> float | None:
        if value is None:
            return None
        return real(value, "Constraint 'max_cost_usd'", lo=0.0, hi=MAX_USD, error=InvalidConstraintsError,
                    hint="It is the most one call may cost, in USD; leave it out for no limit.")

    @field_validator("max_latency_s", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> float | None:
        if value is None:
            return None
        return real(value, "Constraint 'max_latency_s'", lo=0.0, lo_open=True, hi=MAX_SECONDS,
                    error=InvalidConstraintsError, hint="It is in seconds; leave it out for no limit.")

    @classmethod
    def coerce(cls, value: ConstraintsLike) -> Constraints:
        """Accept ``None``, a mapping or a :class:`Constraints`."""
        if value is None:
            return _NO_CONSTRAINTS
        if isinstance(value, Constraints):
            return value
        if isinstance(value, Mapping):
            bad = [k for k in value if not isinstance(k, str)]
            if bad:
                raise InvalidConstraintsError(
                    f"Constraint names must be strings, got {bad[0]!r}; valid constraints are "
                    f"{sorted(cls.model_fields)}."
                )
            return cls(**dict(value))
        raise InvalidConstraintsError(
            f"Constraints must be a mapping or Constraints, got {type(value).__name__}."
        )

    def merged(self, other: Constraints | None) -> Constraints:
        """Both sets at once (the stricter value of each field wins)."""
        if other is None:
            return self

        def _min(a: float | None, b: float | None) -> float | None:
            return b if a is None else a if b is None else min(a, b)

        allowed: tuple[str, ...] | None
        if self.allowed_models is None or other.allowed_models is None:
            allowed = self.allowed_models if other.allowed_models is None else other.allowed_models
        else:
            allowed = tuple(m for m in self.allowed_models if m in set(other.allowed_models))
        min_ctx = [v for v in (self.min_context, other.min_context) if v is not None]
        return Constraints(
            needs_tools=self.needs_tools or other.needs_tools,
            needs_json=self.needs_json or other.needs_json,
            min_context=max(min_ctx) if min_ctx else None,
            max_cost_usd=_min(self.max_cost_usd, other.max_cost_usd),
            max_latency_s=_min(self.max_latency_s, other.max_latency_s),
            allowed_models=allowed,
            blocked_models=tuple(dict.fromkeys(self.blocked_models + other.blocked_models)),
        )


_NO_CONSTRAINTS = Constraints()

ConstraintsLike = Constraints | Mapping[str, Any] | None


class TaskProfile(BaseModel):
    """What the analyzer inferred about one prompt.

    Attributes:
        task_type: one of the analyzer's task types (e.g. ``math``, ``coding``, ``writing``).
        task_confidence: the task head's probability for ``task_type``.
        task_probs: probability per task type.
        domain: one of the analyzer's domains (MMLU-Pro's 14 subject areas).
        domain_confidence: the domain head's probability for ``domain``.
        complexity: predicted difficulty in 0..1 (1 = few models solve prompts like this).
        est_input_tokens: tokens of the whole input (characters / 4).
        est_output_tokens: expected answer length, used for cost and latency predictions.
        pruned: the prompt was longer than the analyzer's window and was pruned before embedding.
    """

    model_config = ConfigDict(frozen=True)

    task_type: str
    task_confidence: float
    task_probs: dict[str, float] = Field(default_factory=dict)
    domain: str
    domain_confidence: float
    complexity: float
    est_input_tokens: int
    est_output_tokens: int
    pruned: bool = False


class Neighbour(BaseModel):
    """A stored prompt close to the routed one, whose known outcomes informed the prediction."""

    model_config = ConfigDict(frozen=True)

    prompt_id: str
    similarity: float
    task: str | None = None


class ModelScore(BaseModel):
    """How one candidate fared for one prompt.

    Attributes:
        model: the candidate as the caller named it (a candidate key or model string).
        card: the registry card it resolved to, when that name differs or was resolved.
        score: the preference-weighted total in 0..1 (higher wins); 0 for excluded models.
        sub_scores: each weighted dimension's 0..1 value before weighting (1 = best). ``accuracy``,
            ``cost`` and ``latency`` are relative: scaled across the candidates of this decision
            (the best of them gets 1, the worst 0), so adding or removing a candidate changes them.
            The other dimensions are the model card's own 0..1 metric.
        predicted_quality: expected score (probability of a correct / good answer) in 0..1.
        predicted_cost_usd: expected cost of this call.
        predicted_latency_s: expected end-to-end latency of this call.
        excluded: why a hard constraint or filter excluded the model, else ``None``.
    """

    model_config = ConfigDict(frozen=True)

    model: str
    card: str | None = None
    score: float
    sub_scores: dict[str, float] = Field(default_factory=dict)
    predicted_quality: float
    predicted_cost_usd: float
    predicted_latency_s: float
    excluded: str | None = None


class RoutingDecision(BaseModel):
    """The router's choice for one prompt, with everything needed to explain it.

    Attributes:
        decision_id: stable id to attach feedback to.
        model: the chosen model as the caller named it (the candidate or model string passed in).
        card: the registry card that name resolved to (a separate field: ``model`` is yours).
        fallbacks: models to try if the chosen one fails: the other eligible models best first, then
            those only the task/domain filters excluded (they pass every hard constraint).
        scores: every candidate's :class:`ModelScore`, eligible ones best first, then excluded.
        profile: the analyzer's view of the prompt.
        preferences: the preferences the decision was made under.
        confidence: 0..1, how much the router trusts its quality predictions for this prompt.
        neighbours: the stored prompts used for the kNN quality prediction.
        reason: one sentence saying why the winner won.
        generalist_fallback: the policy fell back to the generalist model.
        explored: the model was drawn at random (``PolicyConfig.explore``), not chosen by score.
        warnings: anything the caller should know (widened search, unknown models, ...).
    """

    model_config = ConfigDict(frozen=True)

    decision_id: str
    model: str
    card: str | None = None
    fallbacks: list[str] = Field(default_factory=list)
    scores: list[ModelScore] = Field(default_factory=list)
    profile: TaskProfile
    preferences: Preferences
    confidence: float
    neighbours: list[Neighbour] = Field(default_factory=list)
    reason: str
    generalist_fallback: bool = False
    explored: bool = False
    warnings: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    def __repr__(self) -> str:
        """The decision in one line: chosen model, runner-up, task, preferences and the reason (the
        full field dump is ``model_dump()``)."""
        extra = ", generalist_fallback=True" if self.generalist_fallback else ""
        extra += ", explored=True" if self.explored else ""
        return (f"RoutingDecision(model={self.model!r}, runner_up={self.runner_up!r}, "
                f"task={self.profile.task_type!r}, domain={self.profile.domain!r}, "
                f"preferences={self.preferences.label()!r}, confidence={self.confidence:.2f}{extra}, "
                f"reason={self.reason!r})")

    __str__ = __repr__

    @property
    def runner_up(self) -> str | None:
        """The first fallback (the second-best model), if there is one."""
        return self.fallbacks[0] if self.fallbacks else None

    def score_of(self, model: str) -> ModelScore:
        """The :class:`ModelScore` of ``model`` (raises ``KeyError`` if it was not a candidate)."""
        for s in self.scores:
            if s.model == model:
                return s
        raise KeyError(model)

    @property
    def chosen(self) -> ModelScore:
        """The winner's :class:`ModelScore`."""
        return self.score_of(self.model)

    def summary(self) -> dict[str, Any]:
        """A compact JSON-safe dict for response metadata and logs (no prompt text)."""
        return {
            "decision_id": self.decision_id,
            "model": self.model,
            "card": self.card,
            "fallbacks": list(self.fallbacks),
            "reason": self.reason,
            "confidence": round(self.confidence, 4),
            "task_type": self.profile.task_type,
            "domain": self.profile.domain,
            "complexity": round(self.profile.complexity, 4),
            "preferences": self.preferences.label(),
            "scores": {s.model: round(s.score, 4) for s in self.scores if s.excluded is None},
            "generalist_fallback": self.generalist_fallback,
        }


def top_models(scores: Sequence[ModelScore], n: int) -> list[str]:
    """Names of the ``n`` best eligible models in ``scores`` (already sorted best first)."""
    return [s.model for s in scores if s.excluded is None][:n]
