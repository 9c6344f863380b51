"""Spend budgets that hold under concurrency: reserve before a call, settle after it.

A budget is a limit in USD on a *scope*: the whole router (``router:<name>``) and, optionally, each
caller's key (``user:<key>``), per calendar period if one is set (``...:2026-12-03`` for daily
budgets). A routed call first *reserves* an upper bound of its cost in every scope it belongs to; the
store admits the reservation only while ``settled + outstanding < limit`` in each scope, atomically
(a lock in memory, ``BEGIN IMMEDIATE`` in SQLite, ``SELECT ... FOR UPDATE`` in PostgreSQL), so
concurrent callers in one process or in many replicas sharing a store see one ledger. After the call
the reservation is replaced by the actual cost. Hence the guarantee: the final spend exceeds a limit
by at most one call's reserved amount (the last call admitted while the scope was still under its
limit), provided no call costs more than it reserved. The reservation is an upper bound when the
caller sets ``max_tokens`` (input tokens x input price + max_tokens x output price of the most
expensive model of the fallback chain); without it the analyzer's expected output length is used,
scaled by :attr:`Budget.output_margin`, and the bound is only as good as that estimate.

Routing also sees the budget: a decision is made under ``max_cost_usd = remaining`` in the tightest
scope, so a nearly spent budget moves calls to cheaper models before it refuses them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from optiroute.errors import InvalidConstraintsError
from optiroute.schema.numbers import MAX_TOKENS, MAX_USD, integer, optiroute_error, real

__all__ = ["Budget", "CallTicket", "scope_keys"]


class Budget(BaseModel):
    """Spend limits in USD for a router and its callers.

    Attributes:
        total_usd: limit for every call routed by routers sharing ``name`` (``None``: no limit).
        per_user_usd: default limit per caller key (``None``: no per-user limit).
        users: limits for particular caller keys (override ``per_user_usd``).
        period: ``"day"`` or ``"month"`` starts a fresh ledger each UTC day/month; ``None`` never does.
        name: the router scope; replicas that share a store and a name share the limit.
        output_margin: reservations without ``max_tokens`` assume this many times the expected output.
        input_margin, input_overhead_tokens: the reservation's input tokens are
            ``characters / 4 * input_margin + input_overhead_tokens``, so chat templates and system
            prompts the provider adds (SmolLM2's adds ~20 tokens) stay inside the bound.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    total_usd: float | None = None
    per_user_usd: float | None = None
    users: dict[str, float] = Field(default_factory=dict)
    period: Literal["day", "month"] | None = None
    name: str = "default"
    output_margin: float = 2.0
    input_margin: float = 1.5
    input_overhead_tokens: int = 64

    def __init__(self, **data: object) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            inner = optiroute_error(exc)
            if isinstance(inner, InvalidConstraintsError):
                raise inner from None
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "budget"
            raise InvalidConstraintsError(
                f"Invalid budget field {where!r}: {first.get('msg')}. Limits are non-negative USD "
                "amounts, e.g. Budget(total_usd=10.0, per_user_usd=0.5, period='day')."
            ) from None

    @field_validator("total_usd", "per_user_usd", mode="before")
    @classmethod
    def _limit(cls, value: Any, info: Any) -> float | None:
        if value is None:
            return None
        return real(value, f"Invalid budget field {info.field_name!r}:", lo=0.0, hi=MAX_USD,
                    error=InvalidConstraintsError, hint="Limits are USD amounts; None means no limit.")

    @field_validator("users", mode="before")
    @classmethod
    def _users(cls, value: Any) -> dict[str, float]:
        if not isinstance(value, dict):
            raise InvalidConstraintsError(
                f"Invalid budget field 'users': it maps caller keys to USD limits, got {type(value).__name__}."
            )
        out: dict[str, float] = {}
        for key, limit in value.items():
            if not isinstance(key, str):
                raise InvalidConstraintsError(f"Invalid budget field 'users': caller keys are strings, got {key!r}.")
            out[key] = real(limit, f"Invalid budget field 'users': the limit of user {key!r}", lo=0.0, hi=MAX_USD,
                            error=InvalidConstraintsError)
        return out

    @field_validator("output_margin", "input_margin", mode="before")
    @classmethod
    def _margin(cls, value: Any, info: Any) -> float:
        return real(value, f"Invalid budget field {info.field_name!r}:", lo=1.0, hi=1000.0,
                    error=InvalidConstraintsError, hint="It multiplies an estimate, so it is at least 1.")

    @field_validator("input_overhead_tokens", mode="before")
    @classmethod
    def _overhead(cls, value: Any) -> int:
        return integer(value, "Invalid budget field 'input_overhead_tokens':", lo=0, hi=MAX_TOKENS,
                       error=InvalidConstraintsError)


def _period_suffix(period: str | None, now: datetime) -> str:
    if period == "day":
        return ":" + now.strftime("%Y-%m-%d")
    if period == "month":
        return ":" + now.strftime("%Y-%m")
    return ""


def scope_keys(budget: Budget, user: str | None, now: datetime | None = None) -> dict[str, float]:
    """The ledger scopes a call by ``user`` is charged to, with their limits."""
    now = now or datetime.now(timezone.utc)
    suffix = _period_suffix(budget.period, now)
    out: dict[str, float] = {}
    if budget.total_usd is not None:
        out[f"router:{budget.name}{suffix}"] = float(budget.total_usd)
    if user is not None:
        limit = budget.users.get(user, budget.per_user_usd)
        if limit is not None:
            out[f"user:{budget.name}:{user}{suffix}"] = float(limit)
    return out


class CallTicket(BaseModel):
    """One admitted call: what was reserved, for whom, and when it started.

    Returned by :meth:`optiroute.Router.begin_call` and closed by :meth:`optiroute.Router.end_call`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    decision_id: str | None
    model: str
    user: str | None = None
    run_id: str | None = None
    reservation_id: str | None = None
    reserved_usd: float = 0.0
    scopes: dict[str, float] = Field(default_factory=dict)
    started: float = 0.0
    closed: bool = False
