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
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from optiroute.catalog.registry import ModelCard, Registry
from optiroute.errors import BudgetExceededError, StoreError
from optiroute.learning.latency import LatencyTracker
from optiroute.schema.budget import Budget, CallTicket, scope_keys
from optiroute.schema.decision import RoutingDecision
from optiroute.store.guarded import GuardedStore
from optiroute.store.records import ObservationRecord

log = logging.getLogger(__name__)

__all__ = ["CallAccount", "CallContext", "begin_call", "end_call", "latency_group", "observe_latency",
           "remaining_usd", "reservation_bound"]


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


def begin_call(
    ctx: CallContext,
    decision: RoutingDecision,
    *,
    chain: Sequence[str] = (),
    user: str | None = None,
    run_id: str | None = None,
    max_tokens: int | None = None,
) -> CallTicket:
    """Reserve the call's cost bound; raise :class:`BudgetExceededError` when a scope is spent."""
    ticket = CallTicket(decision_id=decision.decision_id, model=decision.model, user=user,
                        run_id=run_id, started=time.perf_counter())
    if ctx.budget is None:
        return ticket
    scopes = scope_keys(ctx.budget, user)
    if not scopes:
        return ticket
    amount = reservation_bound(ctx, decision, chain, max_tokens)
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

    When the provider reports no usage, tokens are estimated (input: characters / 4 from the
    decision; output: the analyzer's expectation), so the ledger never records a free call.
    """
    if ticket.closed:
        return 0.0
    ticket.closed = True
    seconds = latency_s if latency_s is not None else time.perf_counter() - ticket.started
    card = ctx.registry.resolve(model)
    in_tok = input_tokens
    out_tok = output_tokens
    if decision is not None:
        in_tok = in_tok if in_tok is not None else decision.profile.est_input_tokens
        if out_tok is None:  # a whole number of tokens, as providers report them
            out_tok = int(round(decision.profile.est_output_tokens * card.verbosity))
    cost = card.cost_usd(in_tok or 0, out_tok or 0) if ok else 0.0
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


class CallAccount:
    """One routed call's accounting, shared by the adapters: admit, then close exactly once.

    ``attempt_failed`` records a failed fallback attempt (a row with ``ok=False``, nothing charged);
    ``succeeded`` settles the budget with the answering model's usage; ``failed`` closes a call
    that produced no answer (the reservation is released). Store trouble never escapes from here:
    the router's degraded mode absorbs it.
    """

    def __init__(
        self, ctx: CallContext, decision: RoutingDecision, *, chain: Sequence[str] = (),
        user: str | None = None, run_id: str | None = None, max_tokens: int | None = None,
    ) -> None:
        self._ctx = ctx
        self.decision = decision
        self.ticket = begin_call(ctx, decision, chain=chain, user=user, run_id=run_id,
                                 max_tokens=max_tokens)

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

        The answer already exists, so an accounting bug must not cost the caller their answer: it is
        logged (with the traceback) and the reservation stays outstanding, which errs towards
        refusing later calls rather than overspending.
        """
        try:
            return end_call(self._ctx, self.ticket, model=model, input_tokens=input_tokens,
                            output_tokens=output_tokens, latency_s=seconds, decision=self.decision)
        except Exception:
            log.warning("OptiRoute could not account for a call answered by %s", model, exc_info=True)
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

