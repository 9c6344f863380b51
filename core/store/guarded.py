"""The store as the router uses it: routing never fails because the store does.

When a write or read raises :class:`~optiroute.errors.StoreError` (a locked SQLite file, a read-only
path, PostgreSQL gone), :class:`GuardedStore` warns once with
:class:`~optiroute.errors.StoreDegradedWarning`, keeps decisions, feedback and observations in an
in-memory store from then on, and tries the real store again on each later write, so nothing is lost
for this process and a transient outage heals by itself. Only two calls still raise: feedback for a
decision neither store knows, and reading a budget's ledger (the caller refuses the call rather than
overspend).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from optiroute.errors import FeedbackError, StoreDegradedWarning, StoreError
from optiroute.store.memory import MemoryFeedbackStore
from optiroute.store.records import DecisionRecord, FeedbackStore

__all__ = ["GuardedStore"]


class GuardedStore:
    """A :class:`FeedbackStore` behind the degraded-mode guard described in the module docstring.

    Args:
        store: the real store (memory, SQLite, PostgreSQL, ...).
    """

    def __init__(self, store: FeedbackStore) -> None:
        self.store = store
        self._fallback: MemoryFeedbackStore | None = None
        self._error: str | None = None

    # ------------------------------------------------------------------ degraded mode
    def failed(self, exc: StoreError) -> None:
        """Switch to (or stay in) degraded mode after ``exc``; warns the first time only."""
        first = self._error is None
        self._error = str(exc)
        if self._fallback is None:
            self._fallback = MemoryFeedbackStore()
        if first:
            warnings.warn(
                f"The OptiRoute store failed ({exc}); routing continues and decisions, feedback and "
                "observations are kept in memory until the store answers again.",
                StoreDegradedWarning,
                stacklevel=4,
            )

    def write(self, method: str, *args: Any) -> None:
        """Call the store's ``method`` (``record_decision``, ``record_observation``); on a store
        error, keep the row in memory instead."""
        try:
            getattr(self.store, method)(*args)
            return
        except StoreError as exc:
            self.failed(exc)
        assert self._fallback is not None
        getattr(self._fallback, method)(*args)

    def status(self) -> dict[str, Any]:
        """``{"degraded": bool, "error": last store error or None, "buffered_decisions": n}``."""
        return {"degraded": self._fallback is not None, "error": self._error,
                "buffered_decisions": len(self._fallback) if self._fallback is not None else 0}

    def _stores(self) -> list[FeedbackStore]:
        return [self.store] + ([self._fallback] if self._fallback is not None else [])

    # ------------------------------------------------------------------ reads
    def decision_for_run(self, run_id: UUID | str) -> str | None:
        """The id of the latest decision recorded under ``run_id``, or ``None``."""
        for store in self._stores():
            try:
                rec = store.decision_for_run(str(run_id))
            except StoreError as exc:
                self.failed(exc)
                continue
            if rec is not None:
                return rec.decision_id
        return None

    def get_decision(self, decision_id: str) -> DecisionRecord | None:
        """The decision from whichever store holds it (``None`` when neither answers)."""
        for store in self._stores():
            try:
                rec = store.get_decision(decision_id)
            except StoreError:
                continue
            if rec is not None:
                return rec
        return None

    def corrections(self) -> dict[tuple[str, str], float]:
        """Per-(model, task type) feedback residuals of both stores, added up."""
        try:
            corr = dict(self.store.corrections())
        except StoreError as exc:
            self.failed(exc)
            corr = {}
        if self._fallback is not None:
            for key, value in self._fallback.corrections().items():
                corr[key] = corr.get(key, 0.0) + value
        return corr

    # ------------------------------------------------------------------ feedback
    def record_feedback(self, decision_id: str | None, score: float, comment: str | None,
                        run_id: UUID | str | None) -> str:
        """Store feedback (degrading if needed); returns the decision id it was attached to.

        Raises:
            FeedbackError: no decision id and no decision under ``run_id``, an unknown decision, or a
                score outside 0..1.
        """
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
            self.failed(exc)
        except FeedbackError:
            if self._fallback is None or self._fallback.get_decision(decision_id) is None:
                raise
        assert self._fallback is not None
        self._fallback.record_feedback(decision_id, score, comment)
        return decision_id

    # ------------------------------------------------------------------ spend ledger
    def spent(self, scope: str) -> float:
        """USD spent (settled + reserved) in ``scope``; raises :class:`StoreError` when unreadable."""
        return self.store.spent(scope)

    def reserve_spend(self, scopes: Mapping[str, float], amount: float) -> str | None:
        """Reserve ``amount`` in every scope; raises :class:`StoreError` when the ledger is unreadable."""
        return self.store.reserve_spend(scopes, amount)

    def settle_spend(self, reservation_id: str, cost_usd: float) -> None:
        """Settle a reservation; a store error degrades instead of raising (the answer exists)."""
        try:
            self.store.settle_spend(reservation_id, cost_usd)
        except StoreError as exc:
            self.failed(exc)
