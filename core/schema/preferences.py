"""Preference weights, named profiles and the per-context preference scope.

Preferences are explicit 0..1 weights over eight dimensions. People who will not set eight knobs pick
a named profile instead. Host frameworks sometimes drop per-call kwargs (LlamaIndex ``predict`` calls
``chat(messages)``), so a :func:`preferences` context manager sets preferences for everything routed
inside it, including from async tasks spawned there (it is a :class:`contextvars.ContextVar`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from optiroute.errors import InvalidPreferencesError, UnknownProfileError
from optiroute.schema.numbers import optiroute_error, real

__all__ = [
    "DIMENSIONS",
    "PROFILES",
    "Preferences",
    "PreferencesLike",
    "coerce_preferences",
    "current_preferences",
    "preferences",
]

#: The dimensions a caller can weigh. Quality dimensions are "higher is better" card metrics;
#: ``cost`` and ``latency`` are scored per prompt (cheaper / faster is better).
DIMENSIONS: tuple[str, ...] = (
    "accuracy",
    "latency",
    "cost",
    "harmlessness",
    "honesty",
    "helpfulness",
    "steerability",
    "creativity",
)


class Preferences(BaseModel):
    """Weights in 0..1 per dimension; only their ratios matter.

    A weight of 0 ignores a dimension. All-zero weights are rejected because they leave nothing to
    choose by.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    accuracy: float = 0.0
    latency: float = 0.0
    cost: float = 0.0
    harmlessness: float = 0.0
    honesty: float = 0.0
    helpfulness: float = 0.0
    steerability: float = 0.0
    creativity: float = 0.0
    #: The profile these weights came from, if any (for explanations only).
    name: str | None = None

    @field_validator(*DIMENSIONS, mode="before")
    @classmethod
    def _check_weight(cls, value: Any, info: Any) -> float:
        return real(value, f"Preference weight {info.field_name!r}", lo=0.0, hi=1.0, error=InvalidPreferencesError,
                    hint="Weights are relative, so scale them into 0..1 (NumPy numbers are fine; strings are not).")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _unwrap(exc) from None

    def model_post_init(self, __context: Any) -> None:
        if not any(getattr(self, d) > 0 for d in DIMENSIONS):
            raise InvalidPreferencesError(
                "All preference weights are 0, so nothing distinguishes the models; "
                "give at least one dimension a positive weight or use a profile such as 'balanced'."
            )

    def weights(self) -> dict[str, float]:
        """The weights as a plain dict in :data:`DIMENSIONS` order."""
        return {d: getattr(self, d) for d in DIMENSIONS}

    def normalized(self) -> dict[str, float]:
        """Weights scaled to sum to 1 (what the scorer multiplies by)."""
        w = self.weights()
        total = sum(w.values())
        return {d: v / total for d, v in w.items()}

    def label(self) -> str:
        """A short human label: the profile name or the top weighted dimensions."""
        if self.name:
            return self.name
        top = sorted(self.weights().items(), key=lambda kv: -kv[1])[:2]
        return "+".join(d for d, v in top if v > 0)


def _unwrap(exc: ValidationError) -> InvalidPreferencesError:
    """Turn pydantic's wrapper into our error, keeping our own message when we wrote one."""
    inner = optiroute_error(exc)
    if isinstance(inner, InvalidPreferencesError):
        return inner
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "preferences"
    if first.get("type") == "extra_forbidden":
        return InvalidPreferencesError(
            f"Unknown preference dimension {where!r}; valid dimensions are {list(DIMENSIONS)}."
        )
    return InvalidPreferencesError(f"Invalid preference {where!r}: {first.get('msg')}.")


def _profile(name: str, **weights: float) -> Preferences:
    return Preferences(name=name, **weights)


#: Named profiles. Every profile keeps some weight on accuracy so that no profile routes to a model
#: that is cheap or fast but useless for the task.
PROFILES: dict[str, Preferences] = {
    "balanced": _profile(
        "balanced", accuracy=0.5, cost=0.25, latency=0.15, helpfulness=0.05, harmlessness=0.05
    ),
    "quality-first": _profile("quality-first", accuracy=1.0, helpfulness=0.1, cost=0.02),
    "cost-effective": _profile("cost-effective", accuracy=0.35, cost=0.65, latency=0.05),
    "latency-first": _profile("latency-first", accuracy=0.3, latency=0.7),
    "ethically-aligned": _profile(
        "ethically-aligned", accuracy=0.3, harmlessness=0.5, honesty=0.5, helpfulness=0.2,
        cost=0.1,
    ),
}

#: Anything the public API accepts where preferences are expected.
PreferencesLike = Preferences | str | Mapping[str, float] | None

_SCOPE: ContextVar[Preferences | None] = ContextVar("optiroute_preferences", default=None)


def coerce_preferences(value: PreferencesLike, default: Preferences | None = None) -> Preferences:
    """Turn a profile name, a weight mapping or a :class:`Preferences` into :class:`Preferences`.

    ``None`` means "not given": the innermost :func:`preferences` scope, else ``default``, else the
    ``balanced`` profile. A mapping may name a profile under ``"profile"`` and override single
    weights, e.g. ``{"profile": "cost-effective", "latency": 0.5}``.

    Raises:
        UnknownProfileError: the profile name is not one of :data:`PROFILES`.
        InvalidPreferencesError: a weight is NaN, outside 0..1 or names an unknown dimension.
    """
    if value is None:
        scoped = _SCOPE.get()
        if scoped is not None:
            return scoped
        return default if default is not None else PROFILES["balanced"]
    if isinstance(value, Preferences):
        return value
    if isinstance(value, str):
        key = value.strip().lower().replace("_", "-").replace(" ", "-")
        if key not in PROFILES:
            raise UnknownProfileError(
                f"Unknown preference profile {value!r}; choose one of {sorted(PROFILES)} "
                "or pass explicit weights such as {'accuracy': 0.7, 'cost': 0.3}."
            )
        return PROFILES[key]
    if isinstance(value, Mapping):
        data = dict(value)
        base: dict[str, Any] = {}
        if "profile" in data:
            base = coerce_preferences(str(data.pop("profile"))).model_dump()
        unknown = [k for k in data if k not in DIMENSIONS and k != "name"]
        if unknown:
            raise InvalidPreferencesError(
                f"Unknown preference dimension(s) {sorted(map(repr, unknown))}; valid dimensions are "
                f"{list(DIMENSIONS)}."
            )
        if base:
            base["name"] = None
        base.update(data)
        return Preferences(**base)
    raise InvalidPreferencesError(
        f"Preferences must be a profile name, a mapping of weights or Preferences, got "
        f"{type(value).__name__}."
    )


def current_preferences() -> Preferences | None:
    """The preferences set by the innermost active :func:`preferences` scope, if any."""
    return _SCOPE.get()


@contextmanager
def preferences(value: PreferencesLike) -> Iterator[Preferences]:
    """Route everything inside the ``with`` block under these preferences.

    Useful with host APIs that do not pass per-call kwargs through, e.g.::

        with optiroute.preferences("quality-first"):
            query_engine.query("...")

    Explicit per-call preferences still win over the scope.
    """
    prefs = coerce_preferences(value)
    token = _SCOPE.set(prefs)
    try:
        yield prefs
    finally:
        _SCOPE.reset(token)
