"""The store interface: decisions, feedback, observed calls and the spend ledger, with two backends.

Routing learns from feedback through *residuals*: for each (model, task type), the mean of
``feedback score - predicted quality at decision time``. A model that keeps disappointing on math
prompts gets its math predictions lowered, with shrinkage so one vote moves little
(:meth:`FeedbackStore.corrections`). Residuals are aggregated in memory and rebuilt from the
database when a durable store opens.

Backends share :class:`FeedbackStore`: :class:`MemoryFeedbackStore` (:mod:`optiroute.store.memory`;
the default; bounded, lost at exit) and the SQL stores of :mod:`optiroute.store.sql` (``SQLStore``
for any SQLAlchemy URL, ``SQLiteFeedbackStore`` for one file, ``open_store`` for either), which
:mod:`optiroute.store` re-exports lazily so that ``import optiroute`` never imports SQLAlchemy.

Prompt text is dropped before writing unless the store was created with ``keep_prompts=True``.

The spend ledger (:meth:`FeedbackStore.reserve_spend`) admits a reservation only while every scope
it touches is under its limit, atomically, so concurrent callers overshoot a limit by at most one
call's reserved amount: see :mod:`optiroute.schema.budget` for how the router uses it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from optiroute.errors import FeedbackError, InvalidConstraintsError
from optiroute.schema.numbers import real

__all__ = ["DecisionRecord", "FeedbackRecord", "FeedbackStore", "ObservationRecord"]

#: Pseudo-count of the shrinkage applied to feedback residuals.
FEEDBACK_PRIOR = 5.0
#: Stored error messages are cut to this many characters (provider errors can be long).
MAX_ERROR_CHARS = 2000


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(dt: datetime) -> datetime:
    """Naive datetimes are taken as UTC, so naive and aware timestamps compare."""
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt


class DecisionRecord(BaseModel):
    """What must be remembered of a decision to learn from feedback on it.

    ``prompt`` is kept only by stores created with ``keep_prompts=True``; other stores drop it
    before writing, so passing it is always safe.
    """

    model_config = ConfigDict(frozen=True)

    decision_id: str
    model: str
    task_type: str
    domain: str
    predicted_quality: float
    created_at: datetime
    run_id: str | None = None
    user: str | None = None
    prompt: str | None = None


class FeedbackRecord(BaseModel):
    """One feedback event as stored: a score in 0..1 on a decision, with an optional comment."""

    model_config = ConfigDict(frozen=True)

    decision_id: str
    score: float
    comment: str | None = None
    created_at: datetime


class ObservationRecord(BaseModel):
    """One routed call as observed: latency, tokens, cost and outcome (no prompt or answer text)."""

    model_config = ConfigDict(frozen=True)

    decision_id: str | None = None
    model: str
    latency_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    ok: bool = True
    error: str | None = None
    user: str | None = None
    run_id: str | None = None
    created_at: datetime = Field(default_factory=_now)


def _check_score(score: float) -> float:
    if isinstance(score, bool):
        return 1.0 if score else 0.0
    return real(score, "Feedback score", lo=0.0, hi=1.0, error=FeedbackError,
                hint="1 = thumbs up, 0 = thumbs down, or any score between.")


def _check_usd(value: float, what: str) -> float:
    return real(value, what, lo=0.0, error=InvalidConstraintsError, hint="It is an amount of USD.")


def _check_scopes(scopes: Mapping[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, limit in scopes.items():
        if not isinstance(key, str) or not key:
            raise InvalidConstraintsError(f"Spend scope keys must be non-empty strings, got {key!r}.")
        out[key] = real(limit, f"The limit of spend scope {key!r}", lo=0.0, error=InvalidConstraintsError)
    return out


class FeedbackStore:
    """Base class of every store: residual aggregates in memory, validation, the common API.

    Subclasses implement the ``_put_*`` hooks and the readers; the public writers validate first.
    All methods are thread-safe.

    Args:
        keep_prompts: store ``DecisionRecord.prompt``; by default it is dropped before writing.
    """

    def __init__(self, *, keep_prompts: bool = False) -> None:
        self.keep_prompts = keep_prompts
        self._lock = threading.RLock()
        self._resid: dict[tuple[str, str], list[float]] = {}

    # --- to implement -------------------------------------------------------------------
    def _put_decision(self, rec: DecisionRecord) -> None:
        raise NotImplementedError

    def get_decision(self, decision_id: str) -> DecisionRecord | None:
        """The stored record of ``decision_id``, or ``None``."""
        raise NotImplementedError

    def _put_feedback(self, decision_id: str, score: float, comment: str | None) -> None:
        raise NotImplementedError

    def decision_for_run(self, run_id: str) -> DecisionRecord | None:
        """The latest decision (by ``created_at``) recorded with ``run_id``, or ``None``."""
        raise NotImplementedError(f"{type(self).__name__} does not index decisions by run id.")

    def feedback(self, decision_id: str | None = None) -> list[FeedbackRecord]:
        """Stored feedback, oldest first; only that of ``decision_id`` when given."""
        raise NotImplementedError(f"{type(self).__name__} cannot read feedback back.")

    def feedback_history(self) -> list[tuple[str, str, str, float, float]]:
        """``(model, task type, domain, score, predicted quality)`` of every stored feedback, oldest
        first: what a router relearns from when it starts on an existing store. Database stores
        answer with one joined query; this default looks each decision up."""
        out = []
        for f in self.feedback():
            rec = self.get_decision(f.decision_id)
            if rec is not None:
                out.append((rec.model, rec.task_type, rec.domain, float(f.score), float(rec.predicted_quality)))
        return out

    def _put_observation(self, rec: ObservationRecord) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not record observations.")

    def observations(
        self, *, model: str | None = None, decision_id: str | None = None, limit: int | None = None
    ) -> list[ObservationRecord]:
        """Recorded observations matching the filters, oldest first; with ``limit``, the latest
        ``limit`` of them (still oldest first)."""
        raise NotImplementedError(f"{type(self).__name__} does not record observations.")

    def _reserve(self, scopes: dict[str, float], amount: float) -> str | None:
        raise NotImplementedError(f"{type(self).__name__} has no spend ledger.")

    def _settle(self, reservation_id: str, cost_usd: float) -> bool:
        raise NotImplementedError(f"{type(self).__name__} has no spend ledger.")

    def spent(self, scope: str) -> float:
        """USD charged to ``scope``: settled costs plus outstanding reservations (0.0 if unknown)."""
        raise NotImplementedError(f"{type(self).__name__} has no spend ledger.")

    @property
    def schema_version(self) -> int:
        """The schema version of the data behind this store (see :mod:`optiroute.store.schema`)."""
        from optiroute.store.schema import SCHEMA_VERSION

        return SCHEMA_VERSION

    def close(self) -> None:
        """Release connections; a durable store reopens on its next use."""

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- shared -------------------------------------------------------------------------
    def record_decision(self, rec: DecisionRecord) -> None:
        """Remember a decision so feedback (by decision id or run id) can reach it later."""
        if rec.prompt is not None and not getattr(self, "keep_prompts", False):
            rec = rec.model_copy(update={"prompt": None})
        self._put_decision(rec)

    def record_feedback(self, decision_id: str, score: float, comment: str | None = None) -> None:
        """Attach a score in 0..1 to a decision and update the residuals.

        Raises:
            FeedbackError: unknown decision id or a score outside 0..1.
        """
        value = _check_score(score)
        rec = self.get_decision(decision_id)
        if rec is None:
            raise FeedbackError(
                f"Unknown decision id {decision_id!r}: it was not made by this router or has been "
                "evicted; use a persistent store (SQLiteFeedbackStore) to keep older decisions."
            )
        self._put_feedback(decision_id, value, comment)
        self._add_residual(rec.model, rec.task_type, value - rec.predicted_quality)

    def record_observation(self, rec: ObservationRecord) -> None:
        """Record one observed call (its error message is cut to ``MAX_ERROR_CHARS``)."""
        if rec.error is not None and len(rec.error) > MAX_ERROR_CHARS:
            rec = rec.model_copy(update={"error": rec.error[:MAX_ERROR_CHARS]})
        self._put_observation(rec)

    def reserve_spend(self, scopes: Mapping[str, float], amount: float) -> str | None:
        """Atomically reserve ``amount`` USD in every scope, if every scope has room.

        A scope has room while ``settled + outstanding reservations < limit`` (``scopes`` maps
        scope key -> limit). Either one reservation is recorded against all scopes and its id is
        returned, or nothing is recorded and ``None`` is returned. Because admission is atomic
        (across threads, and across processes sharing a database), a scope's final spend exceeds
        its limit by at most one reserved amount, provided calls cost no more than they reserved.
        With no scopes there is nothing to limit: an id is returned and nothing is recorded.

        Raises:
            InvalidConstraintsError: a negative or non-finite amount, a NaN limit, an empty key.
            StoreError: the ledger cannot be read or written (durable stores).
        """
        checked = _check_scopes(scopes)
        value = _check_usd(amount, "The reserved amount")
        if not checked:
            return uuid.uuid4().hex
        return self._reserve(checked, value)

    def settle_spend(self, reservation_id: str, cost_usd: float) -> bool:
        """Replace a reservation by the call's actual cost (``0.0`` releases it).

        Idempotent: returns ``True`` when this call settled the reservation, ``False`` when it was
        already settled or is unknown (e.g. made with no scopes); the ledger is then unchanged.

        Raises:
            InvalidConstraintsError: a negative or non-finite cost.
            StoreError: the ledger cannot be written (durable stores).
        """
        return self._settle(reservation_id, _check_usd(cost_usd, "The settled cost"))

    def _add_residual(self, model: str, task: str, residual: float) -> None:
        with self._lock:
            agg = self._resid.setdefault((model, task), [0.0, 0.0])
            agg[0] += residual
            agg[1] += 1.0

    def _load_residuals(self, rows: Iterable[tuple[Any, Any, Any]]) -> None:
        """Replace the aggregates by ``(model, task_type, residual)`` rows read from a database."""
        with self._lock:
            self._resid = {}
            for model, task, resid in rows:
                self._add_residual(str(model), str(task), float(resid))

    def corrections(self) -> dict[tuple[str, str], float]:
        """Shrunk mean residual per (model, task type): ``sum / (count + FEEDBACK_PRIOR)``."""
        with self._lock:
            return {k: s / (n + FEEDBACK_PRIOR) for k, (s, n) in self._resid.items()}

    def feedback_count(self) -> int:
        """Number of feedback events aggregated so far."""
        with self._lock:
            return int(sum(n for _, n in self._resid.values()))
