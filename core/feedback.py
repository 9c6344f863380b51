"""Durable feedback: decisions, thumbs up/down or scores, and observed call outcomes.

Routing learns from feedback through *residuals*: for each (model, task type), the mean of
``feedback score - predicted quality at decision time``. A model that keeps disappointing on math
prompts gets its math predictions lowered, with shrinkage so one vote moves little
(:meth:`FeedbackStore.corrections`).

Two stores share one interface: :class:`MemoryFeedbackStore` (the default; bounded, lost at exit) and
:class:`SQLiteFeedbackStore` (one file, WAL mode, created on first use). Prompt text is never stored.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from .errors import FeedbackError, StoreError

__all__ = ["DecisionRecord", "FeedbackStore", "MemoryFeedbackStore", "SQLiteFeedbackStore"]

#: Pseudo-count of the shrinkage applied to feedback residuals.
FEEDBACK_PRIOR = 5.0


class DecisionRecord(BaseModel):
    """What must be remembered of a decision to learn from feedback on it (no prompt text)."""

    model_config = ConfigDict(frozen=True)

    decision_id: str
    model: str
    task_type: str
    domain: str
    predicted_quality: float
    created_at: datetime


def _check_score(score: float) -> float:
    if isinstance(score, bool):
        return 1.0 if score else 0.0
    if not isinstance(score, (int, float)) or math.isnan(float(score)) or not 0 <= score <= 1:
        raise FeedbackError(
            f"Feedback score must be a number in 0..1 (1 = thumbs up, 0 = thumbs down), got {score!r}."
        )
    return float(score)


class FeedbackStore:
    """Base class: keeps residual aggregates in memory; subclasses add persistence."""

    def __init__(self) -> None:
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

    # --- shared -------------------------------------------------------------------------
    def record_decision(self, rec: DecisionRecord) -> None:
        """Remember a decision so feedback can reach it later."""
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

    def _add_residual(self, model: str, task: str, residual: float) -> None:
        with self._lock:
            agg = self._resid.setdefault((model, task), [0.0, 0.0])
            agg[0] += residual
            agg[1] += 1.0

    def corrections(self) -> dict[tuple[str, str], float]:
        """Shrunk mean residual per (model, task type): ``sum / (count + FEEDBACK_PRIOR)``."""
        with self._lock:
            return {k: s / (n + FEEDBACK_PRIOR) for k, (s, n) in self._resid.items()}

    def feedback_count(self) -> int:
        """Number of feedback events aggregated so far."""
        with self._lock:
            return int(sum(n for _, n in self._resid.values()))


class MemoryFeedbackStore(FeedbackStore):
    """In-process store keeping the last ``max_decisions`` decisions (oldest evicted first)."""

    def __init__(self, max_decisions: int = 100_000) -> None:
        super().__init__()
        self.max_decisions = max_decisions
        self._decisions: OrderedDict[str, DecisionRecord] = OrderedDict()
        self.feedback: list[tuple[str, float, str | None]] = []

    def _put_decision(self, rec: DecisionRecord) -> None:
        with self._lock:
            self._decisions[rec.decision_id] = rec
            while len(self._decisions) > self.max_decisions:
                self._decisions.popitem(last=False)

    def get_decision(self, decision_id: str) -> DecisionRecord | None:
        with self._lock:
            return self._decisions.get(decision_id)

    def _put_feedback(self, decision_id: str, score: float, comment: str | None) -> None:
        with self._lock:
            self.feedback.append((decision_id, score, comment))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY, model TEXT NOT NULL, task_type TEXT NOT NULL,
    domain TEXT NOT NULL, predicted_quality REAL NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, decision_id TEXT NOT NULL REFERENCES decisions(decision_id),
    score REAL NOT NULL, comment TEXT, created_at TEXT NOT NULL);
"""


class SQLiteFeedbackStore(FeedbackStore):
    """One SQLite file (WAL mode), created on first use; residuals are rebuilt from it on open.

    Args:
        path: the database file; its parent directory is created if missing.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            rows = conn.execute(
                "SELECT d.model, d.task_type, f.score - d.predicted_quality FROM feedback f "
                "JOIN decisions d USING (decision_id)"
            ).fetchall()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(
                f"Cannot open the feedback store {str(self.path)!r} ({exc}); check that the path "
                "is writable and is an SQLite database."
            ) from None
        for model, task, resid in rows:
            self._add_residual(model, task, float(resid))
        self._conn = conn
        return conn

    def _exec(self, sql: str, args: tuple[object, ...]) -> list[tuple[object, ...]]:
        with self._lock:
            conn = self._db() if self._conn is None else self._conn
        try:
            with self._lock, conn:
                return conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"Feedback store {str(self.path)!r} failed: {exc}.") from None

    def _put_decision(self, rec: DecisionRecord) -> None:
        self._exec(
            "INSERT OR REPLACE INTO decisions VALUES (?, ?, ?, ?, ?, ?)",
            (rec.decision_id, rec.model, rec.task_type, rec.domain, rec.predicted_quality,
             rec.created_at.isoformat()),
        )

    def get_decision(self, decision_id: str) -> DecisionRecord | None:
        rows = self._exec(
            "SELECT decision_id, model, task_type, domain, predicted_quality, created_at "
            "FROM decisions WHERE decision_id = ?",
            (decision_id,),
        )
        if not rows:
            return None
        d, m, t, dom, q, c = rows[0]
        return DecisionRecord(
            decision_id=str(d), model=str(m), task_type=str(t), domain=str(dom),
            predicted_quality=float(q),  # type: ignore[arg-type]
            created_at=datetime.fromisoformat(str(c)),
        )

    def _put_feedback(self, decision_id: str, score: float, comment: str | None) -> None:
        self._exec(
            "INSERT INTO feedback (decision_id, score, comment, created_at) VALUES (?, ?, ?, ?)",
            (decision_id, score, comment, datetime.now(timezone.utc).isoformat()),
        )

    def corrections(self) -> dict[tuple[str, str], float]:
        with self._lock:
            opened = self._conn is not None
        if not opened:
            self._exec("SELECT 1", ())  # opens the file and loads residuals
        return super().corrections()

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
