"""Accounting for one routed call: budget reservation before it, an observation row after it.

Both adapters wrap every model call in :meth:`optiroute.Router.begin_call` /
:meth:`optiroute.Router.end_call` (this module does the work, so the Router facade stays small):

- ``begin_call`` reserves an upper bound of the call's cost in every budget scope the call belongs to
  (see :mod:`optiroute.schema.budget`) and raises :class:`~optiroute.errors.BudgetExceededError` when a scope
  is spent; the refusal is recorded as an observation too, so every call leaves a row.
- ``end_call`` settles the reservation with the actual cost (token usage x the answering model's card
  prices, or the estimate when the provider reports no usage), records latency, tokens and cost in
  the store, and feeds the latency tracker that rescales the card estimates.

Store failures never fail the user's call here: they are handed to the router's degraded-mode hook,
which warns once and keeps the rows in memory (see :meth:`optiroute.Router.store_status`).
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from optiroute.catalog.registry import ModelCard, Registry
from optiroute.errors import BudgetExceededError, InvalidInputError, StoreError
from optiroute.learning.latency import LatencyTracker
from optiroute.schema.budget import Budget, CallTicket, scope_keys
from optiroute.schema.decision import RoutingDecision
from optiroute.schema.numbers import MAX_SECONDS, MAX_TOKENS, integer, is_number, real
from optiroute.store.guarded import GuardedStore
from optiroute.store.records import ObservationRecord

log = logging.getLogger(__name__)

__all__ = ["CallAccount", "CallContext", "begin_call", "check_usage", "end_call", "latency_group",
           "observe_latency", "remaining_usd", "reservation_bound"]


@dataclass(frozen=True)
class CallContext:
    """What call accounting needs of a router: its cards, budget, store and latency tracker."""

    registry: Registry
    budget: Budget | None
    store: GuardedStore
    latency: LatencyTracker


def latency_group(card: ModelCard) -> str | None:
    """Latency group of a card: its provider, unless nothing is known about it."""
    return None if card.provider in ("", "unknown") else card.provider


def observe_latency(latency: LatencyTracker, card: ModelCard, seconds: float, output_tokens: int | None) -> None:
    """Feed one observed call to the tracker, against the card's estimate for its answer length."""
    est = card.latency_s(output_tokens if output_tokens is not None else 256)
    latency.observe(card.name, float(seconds), est, group=latency_group(card))


def reservation_bound(
    ctx: CallContext, decision: RoutingDecision, chain: Sequence[str], max_tokens: int | None
) -> float:
    """Upper bound of the call's cost over every model it may fall back to.

    With ``max_tokens`` the bound holds unless the provider counts more input tokens than the padded
    estimate (see :class:`~optiroute.schema.budget.Budget`); without it, the expected output length times
    the budget's ``output_margin`` stands in.
    """
    budget = ctx.budget if ctx.budget is not None else Budget()
    in_tok = decision.profile.est_input_tokens * budget.input_margin + budget.input_overhead_tokens
    names = list(dict.fromkeys([decision.model, *chain]))
    cards = [ctx.registry.resolve(n) for n in names]
    if max_tokens:
        return max(c.cost_usd(in_tok, float(max_tokens)) for c in cards)
    out_tok = decision.profile.est_output_tokens * budget.output_margin
    return max(c.cost_usd(in_tok, out_tok * c.verbosity) for c in cards)


def remaining_usd(ctx: CallContext, user: str | None) -> float | None:
    """Smallest remaining amount over the call's scopes (``None`` when nothing is limited)."""
    if ctx.budget is None:
        return None
    scopes = scope_keys(ctx.budget, user)
    if not scopes:
        return None
    try:
        return min(limit - ctx.store.spent(key) for key, limit in scopes.items())
    except StoreError as exc:
        ctx.store.failed(exc)
        return None


def _check_cap(max_tokens: int | None) -> int | None:
    if max_tokens is None:
        return None
    return integer(max_tokens, "max_tokens", lo=1, hi=MAX_TOKENS,
                   hint="It caps the answer's tokens; leave it out for no cap.")


def begin_call(
    ctx: CallContext,
    decision: RoutingDecision,
    *,
    chain: Sequence[str] = (),
    user: str | None = None,
    run_id: str | None = None,
    max_tokens: int | None = None,
) -> CallTicket:
    """Reserve the call's cost bound; raise :class:`BudgetExceededError` when a scope is spent.

    Raises:
        InvalidInputError: ``max_tokens`` is not an integer in 1..1e9, or ``decision`` is not a
            :class:`RoutingDecision`.
    """
    if not isinstance(decision, RoutingDecision):
        raise InvalidInputError(f"A call is admitted for a RoutingDecision, got {type(decision).__name__}.")
    cap = _check_cap(max_tokens)
    ticket = CallTicket(decision_id=decision.decision_id, model=decision.model, user=user,
                        run_id=run_id, started=time.perf_counter())
    if ctx.budget is None:
        return ticket
    scopes = scope_keys(ctx.budget, user)
    if not scopes:
        return ticket
    amount = reservation_bound(ctx, decision, chain, cap)
    try:
        rid = ctx.store.reserve_spend(scopes, amount)
    except StoreError as exc:
        # A budget that cannot be checked is not silently ignored: refuse rather than overspend.
        raise BudgetExceededError(
            f"The spend ledger cannot be read ({exc}); calls are refused while a budget is set "
            "and its store is unavailable. Fix the store or remove the budget."
        ) from exc
    if rid is None:
        spent = {k: ctx.store.spent(k) for k in scopes}
        detail = ", ".join(f"{k}: ${spent[k]:.6f} of ${v:.6f}" for k, v in scopes.items())
        _record(ctx, ticket, model=decision.model, latency_s=None, ok=False,
                error="BudgetExceededError")
        raise BudgetExceededError(
            f"Spend budget reached ({detail}); this call needs up to ${amount:.6f}. Raise the "
            "limit, wait for the next budget period, or route with a cheaper candidate pool."
        )
    return ticket.model_copy(update={"reservation_id": rid, "reserved_usd": amount, "scopes": scopes})


def check_usage(input_tokens: Any, output_tokens: Any, latency_s: Any) -> tuple[int | None, int | None, float | None]:
    """A usage report checked: token counts are ``None`` or integers in 0..1e9, latency ``None`` or
    seconds in 0..1e6.

    Raises:
        InvalidInputError: naming the field and the allowed range.
    """
    tin = None if input_tokens is None else integer(input_tokens, "input_tokens", lo=0, hi=MAX_TOKENS)
    tout = None if output_tokens is None else integer(output_tokens, "output_tokens", lo=0, hi=MAX_TOKENS)
    secs = None if latency_s is None else real(latency_s, "latency_s", lo=0.0, hi=MAX_SECONDS)
    return tin, tout, secs


def end_call(
    ctx: CallContext,
    ticket: CallTicket,
    *,
    model: str,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    ok: bool = True,
    error: str | None = None,
    latency_s: float | None = None,
    decision: RoutingDecision | None = None,
) -> float:
    """Settle the reservation, store the observation, update latency; returns the cost charged.

    A call that succeeded (``ok``) is charged its usage; when the provider reports none, tokens
    are estimated (input: characters / 4 from the decision; output: the analyzer's expectation), so
    the ledger never records a free call. A call that failed is charged only when tokens are given
    for it (what a stream produced before failing or being cancelled; input estimated from the
    decision when only output is given), else nothing: the reservation is released (its row still
    shows the estimated lengths). Only successful calls feed the latency tracker.

    Everything is checked before the ticket closes, so a bad report leaves the call open for a
    corrected one.

    Raises:
        InvalidInputError: negative, fractional, huge or non-numeric token counts or latency, an
            empty model name, or something other than a ticket.
    """
    if not isinstance(ticket, CallTicket):
        raise InvalidInputError(f"end_call takes the CallTicket begin_call returned, got {type(ticket).__name__}.")
    if not isinstance(model, str) or not model.strip():
        raise InvalidInputError(f"end_call needs the answering model's name, got {model!r}.")
    in_tok, out_tok, seconds_given = check_usage(input_tokens, output_tokens, latency_s)
    if ticket.closed:
        return 0.0
    card = ctx.registry.resolve(model)
    seconds = seconds_given if seconds_given is not None else time.perf_counter() - ticket.started
    ok = bool(ok)
    produced = (in_tok or 0) > 0 or (out_tok or 0) > 0  # a failed call that did bill tokens
    if decision is not None:
        in_tok = in_tok if in_tok is not None else decision.profile.est_input_tokens
        if out_tok is None:  # a whole number of tokens, as providers report them
            out_tok = int(round(decision.profile.est_output_tokens * card.verbosity))
    cost = card.cost_usd(in_tok or 0, out_tok or 0) if (ok or produced) else 0.0
    ticket.closed = True
    if ticket.reservation_id is not None:
        ctx.store.settle_spend(ticket.reservation_id, cost)
    _record(ctx, ticket, model=card.name, latency_s=seconds, ok=ok, error=error,
            input_tokens=in_tok, output_tokens=out_tok, cost_usd=cost)
    if ok:
        observe_latency(ctx.latency, card, seconds, out_tok)
    return cost


def _record(
    ctx: CallContext, ticket: CallTicket, *, model: str, latency_s: float | None, ok: bool,
    error: str | None, input_tokens: int | None = None, output_tokens: int | None = None,
    cost_usd: float | None = None,
) -> None:
    rec = ObservationRecord(
        decision_id=ticket.decision_id, model=model, latency_s=latency_s,
        input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=cost_usd, ok=ok,
        error=error, user=ticket.user, run_id=ticket.run_id,
        created_at=datetime.now(timezone.utc),
    )
    ctx.store.write("record_observation", rec)


def _sane(value: Any, hi: float) -> Any:
    """A provider's usage figure if it is a plausible count, else ``None`` (then estimated)."""
    if value is None or not is_number(value):
        return None
    x = float(value)
    return int(x) if math.isfinite(x) and 0 <= x <= hi and x.is_integer() else None


def _abandon(ctx: CallContext, ticket: CallTicket, decision: RoutingDecision, state: dict[str, bool]) -> None:
    """Finaliser of a :class:`CallAccount` dropped while its call was still open (a stream the
    caller never finished reading): release the reservation and leave a row. Never raises."""
    if ticket.closed or state.get("answered"):
        return
    try:
        end_call(ctx, ticket, model=decision.model, ok=False, error="abandoned", decision=decision)
    except Exception:  # a finaliser has nowhere to raise to
        log.warning("OptiRoute could not release an abandoned call to %s", decision.model, exc_info=True)


class CallAccount:
    """One routed call's accounting, shared by the adapters: admit, then close exactly once.

    ``attempt_failed`` records a failed fallback attempt (a row with ``ok=False``, nothing charged);
    ``succeeded`` settles the budget with the answering model's usage; ``ended`` closes a stream that
    failed or was cancelled after producing output (``ok=False``, charged what it produced);
    ``failed`` closes a call that produced no answer (the reservation is released). An account
    garbage-collected while still open (a stream dropped unread) is released by a finaliser. Store
    trouble never escapes from here: the router's degraded mode absorbs it.
    """

    def __init__(
        self, ctx: CallContext, decision: RoutingDecision, *, chain: Sequence[str] = (),
        user: str | None = None, run_id: str | None = None, max_tokens: int | None = None,
    ) -> None:
        self._ctx = ctx
        self.decision = decision
        self.ticket = begin_call(ctx, decision, chain=chain, user=user, run_id=run_id,
                                 max_tokens=max_tokens)
        self._state = {"answered": False}
        self._finalizer = weakref.finalize(self, _abandon, ctx, self.ticket, decision, self._state)

    @property
    def closed(self) -> bool:
        """True once the call was settled or released."""
        return self.ticket.closed

    def attempt_failed(self, model: str, exc: BaseException, seconds: float | None = None) -> None:
        """A candidate failed and the call moves down the fallback chain."""
        _record(self._ctx, self.ticket, model=self._ctx.registry.resolve(model).name,
                latency_s=seconds, ok=False, error=type(exc).__name__)

    def succeeded(
        self, model: str, seconds: float, input_tokens: int | None, output_tokens: int | None
    ) -> float:
        """``model`` answered: settle at its actual (or estimated) cost and record the row.

        Usage figures come from the provider: one that is not a plausible token count (negative,
        fractional, huge, not a number) counts as unreported and is estimated, so the call is always
        settled. The answer already exists, so an accounting bug must not cost the caller their
        answer: it is logged (with the traceback) and the reservation stays outstanding, which errs
        towards refusing later calls rather than overspending.
        """
        self._state["answered"] = True
        try:
            return end_call(self._ctx, self.ticket, model=model, input_tokens=_sane(input_tokens, MAX_TOKENS),
                            output_tokens=_sane(output_tokens, MAX_TOKENS), latency_s=_seconds(seconds),
                            decision=self.decision)
        except Exception:
            log.warning("OptiRoute could not account for a call answered by %s", model, exc_info=True)
            return 0.0

    def ended(
        self, model: str, error: str, seconds: float, input_tokens: int | None, output_tokens: int | None
    ) -> float:
        """A stream from ``model`` ended without completing (``error``: the exception's class name, or
        ``"cancelled"``) after producing output: charge what it produced, ``ok=False``, and do not
        feed the latency tracker (a cut-off call says nothing about the model's speed)."""
        self._state["answered"] = True
        try:
            return end_call(self._ctx, self.ticket, model=model, input_tokens=_sane(input_tokens, MAX_TOKENS),
                            output_tokens=_sane(output_tokens, MAX_TOKENS), ok=False, error=error,
                            latency_s=_seconds(seconds), decision=self.decision)
        except Exception:
            log.warning("OptiRoute could not account for a cut-off call to %s", model, exc_info=True)
            return 0.0

    def failed(self, exc: BaseException | None, model: str | None = None) -> None:
        """No answer: release the reservation and record the failure (idempotent).

        Called while the provider's error propagates, so an accounting bug is logged instead of
        raised: it must not replace the error the caller needs to see.
        """
        if self.ticket.closed:
            return
        try:
            end_call(self._ctx, self.ticket, model=model or self.decision.model, ok=False,
                     error=type(exc).__name__ if exc is not None else "cancelled", decision=self.decision)
        except Exception:
            log.warning("OptiRoute could not account for a failed call to %s", model or self.decision.model,
                        exc_info=True)


def _seconds(value: Any) -> float | None:
    return _sane_float(value, MAX_SECONDS)


def _sane_float(value: Any, hi: float) -> float | None:
    if value is None or not is_number(value):
        return None
    x = float(value)
    return x if math.isfinite(x) and 0 <= x <= hi else None
