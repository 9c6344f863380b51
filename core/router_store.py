"""The Router's side of the store: degraded mode, feedback by run id, call accounting, latency.

Kept apart from :mod:`optiroute.router` (routing) so each module holds one concept. The contract:
routing never fails because the store does. When a write or read raises
:class:`~optiroute.errors.StoreError` (a locked SQLite file, a read-only path, PostgreSQL gone), the
router warns once with :class:`~optiroute.errors.StoreDegradedWarning`, keeps decisions, feedback and
observations in an in-memory store from then on, and tries the real store again on each later write,
so nothing is lost for this process and a transient outage heals by itself. Only two calls still raise:
:meth:`StoreMixin.record_feedback` for a decision neither store knows, and a budgeted call whose
ledger cannot be read (refused rather than overspent).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

import numpy as np

from .errors import FeedbackError, StoreDegradedWarning, StoreError

if TYPE_CHECKING:
    from .feedback import FeedbackStore, MemoryFeedbackStore
    from .latency import LatencyTracker
    from .online import FeedbackMemory
    from .registry import ModelCard, Registry
    from .spend import Budget, CallTicket
    from .types import RoutingDecision

__all__ = ["StoreMixin"]


class StoreMixin:
    """Store-facing methods of :class:`optiroute.Router` (see the module docstring)."""

    store: FeedbackStore
    budget: Budget | None
    _degraded: MemoryFeedbackStore | None
    _store_error: str | None
    _latency: LatencyTracker
    _memory: FeedbackMemory
    registry: Registry

    # ------------------------------------------------------------------ degraded mode
    def _store_failed(self, exc: StoreError) -> None:
        from .feedback import MemoryFeedbackStore

        first = self._store_error is None
        self._store_error = str(exc)
        if self._degraded is None:
            self._degraded = MemoryFeedbackStore()
        if first:
            warnings.warn(
                f"The OptiRoute store failed ({exc}); routing continues and decisions, feedback and "
                "observations are kept in memory until the store answers again.",
                StoreDegradedWarning,
                stacklevel=3,
            )

    def _store_write(self, method: str, *args: Any) -> None:
        try:
            getattr(self.store, method)(*args)
            return
        except StoreError as exc:
            self._store_failed(exc)
        assert self._degraded is not None
        getattr(self._degraded, method)(*args)

    def store_status(self) -> dict[str, Any]:
        """``{"degraded": bool, "error": last store error or None, "buffered_decisions": n}``."""
        buffered = len(getattr(self._degraded, "_decisions", {})) if self._degraded else 0
        return {"degraded": self._degraded is not None, "error": self._store_error,
                "buffered_decisions": buffered}

    def _stores(self) -> list[FeedbackStore]:
        return [self.store] + ([self._degraded] if self._degraded is not None else [])

    # ------------------------------------------------------------------ feedback
    def decision_for_run(self, run_id: UUID | str) -> str | None:
        """The id of the latest decision recorded under ``run_id`` (any store sharing this router's
        database sees it), or ``None``."""
        for store in self._stores():
            try:
                rec = store.decision_for_run(str(run_id))
            except StoreError as exc:
                self._store_failed(exc)
                continue
            if rec is not None:
                return rec.decision_id
        return None

    def _feedback(self, decision_id: str | None, score: float, comment: str | None,
                  run_id: UUID | str | None) -> str:
        """Store feedback (degrading if needed); returns the decision id it was attached to."""
        if decision_id is None:
            if run_id is None:
                raise FeedbackError("record_feedback needs a decision id or run_id=...")
            decision_id = self.decision_for_run(run_id)
            if decision_id is None:
                raise FeedbackError(
                    f"No decision was recorded under run id {str(run_id)!r}; pass the decision id "
                    "(decision.decision_id / response metadata), or route with run_id=... set."
                )
        try:
            self.store.record_feedback(decision_id, score, comment)
            return decision_id
        except StoreError as exc:
            self._store_failed(exc)
        except FeedbackError:
            if self._degraded is None or self._degraded.get_decision(decision_id) is None:
                raise
        assert self._degraded is not None
        self._degraded.record_feedback(decision_id, score, comment)
        return decision_id

    def _store_corrections(self) -> dict[tuple[str, str], float]:
        try:
            corr = dict(self.store.corrections())
        except StoreError as exc:
            self._store_failed(exc)
            corr = {}
        if self._degraded is not None:
            for key, value in self._degraded.corrections().items():
                corr[key] = corr.get(key, 0.0) + value
        return corr

    # ------------------------------------------------------------------ calls and budgets
    def begin_call(
        self, decision: RoutingDecision, *, chain: Sequence[str] = (), user: str | None = None,
        run_id: UUID | str | None = None, max_tokens: int | None = None,
    ) -> CallTicket:
        """Admit a call to ``decision.model`` (or its fallbacks ``chain``) under the budget.

        Raises:
            BudgetExceededError: a budget scope has no room for the call's cost bound.
        """
        from .calls import begin_call

        return begin_call(self, decision, chain=chain, user=user,  # type: ignore[arg-type]
                          run_id=None if run_id is None else str(run_id), max_tokens=max_tokens)

    def end_call(
        self, ticket: CallTicket, *, model: str, input_tokens: int | None = None,
        output_tokens: int | None = None, ok: bool = True, error: str | None = None,
        latency_s: float | None = None, decision: RoutingDecision | None = None,
    ) -> float:
        """Settle a call admitted by :meth:`begin_call` and record it; returns the USD charged."""
        from .calls import end_call

        return end_call(self, ticket, model=model, input_tokens=input_tokens,  # type: ignore[arg-type]
                        output_tokens=output_tokens, ok=ok, error=error, latency_s=latency_s,
                        decision=decision)

    def spent(self, user: str | None = None) -> dict[str, float]:
        """USD spent (settled + reserved) per budget scope of ``user`` (router scope included)."""
        from .spend import scope_keys

        if self.budget is None:
            return {}
        return {k: self.store.spent(k) for k in scope_keys(self.budget, user)}

    def _observe_latency(self, card: ModelCard, seconds: float, output_tokens: int | None) -> None:
        from .router_state import latency_group

        est = card.latency_s(output_tokens if output_tokens is not None else 256)
        self._latency.observe(card.name, float(seconds), est, group=latency_group(card))

    # ------------------------------------------------------------------ feedback and observations
    def record_feedback(
        self, decision_id: str | None, score: float, *, comment: str | None = None,
        run_id: str | None = None,
    ) -> None:
        """Attach feedback (1.0 = thumbs up, 0.0 = thumbs down, or any score in 0..1).

        Later decisions shift predicted quality by the residuals (score - quality predicted before
        feedback) pooled per task type and domain, shared across models and per model, and, with
        ``keep_prompts=True``, by the feedback on the most similar rated prompts
        (:mod:`optiroute.online`).

        Args:
            decision_id: the decision's id; ``None`` to find it by ``run_id`` in the store.
            run_id: the run id the decision was made under (``decide(run_id=...)``).

        Raises:
            FeedbackError: unknown decision id or run id, or a score outside 0..1.
        """
        did = self._feedback(decision_id, score, comment, run_id)
        rec = None
        for st in self._stores():
            try:
                rec = st.get_decision(did)
            except StoreError:
                continue
            if rec is not None:
                break
        if rec is not None:
            self._memory.learn(did, float(score), model=rec.model, task=rec.task_type,
                               domain=rec.domain, base_quality=rec.predicted_quality)

    @property
    def feedback_memory(self) -> FeedbackMemory:
        """What feedback taught this router (:class:`~optiroute.online.FeedbackMemory`): pooled
        task/domain residuals and, with ``keep_prompts=True``, the rated-prompt kNN memory."""
        return self._memory

    def record_observation(
        self, decision_id: str | None = None, *, model: str, latency_s: float,
        input_tokens: int | None = None, output_tokens: int | None = None,
        cost_usd: float | None = None, ok: bool = True,
    ) -> None:
        """Record an observed call made outside :meth:`begin_call`/:meth:`end_call`: one row in
        the store, and observed latency progressively replaces the card estimate (a damped running
        mean of the observed / estimated ratio per model)."""
        from datetime import datetime, timezone

        from .feedback import ObservationRecord

        card = self.registry.resolve(model)
        valid = latency_s is not None and bool(np.isfinite(latency_s)) and latency_s > 0
        self._store_write("record_observation", ObservationRecord(
            decision_id=decision_id, model=card.name, latency_s=latency_s if valid else None,
            input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=cost_usd, ok=ok,
            error=None, user=None, run_id=None, created_at=datetime.now(timezone.utc),
        ))
        if ok and valid:
            self._observe_latency(card, float(latency_s), output_tokens)

    def latency_ratio(self, model: str) -> float | None:
        """The multiplier observed calls apply to ``model``'s card latency (``None`` before any
        observation); see :class:`~optiroute.latency.LatencyTracker` for how one slow call is damped."""
        return self._latency.ratio(self.registry.resolve(model).name)
