"""The in-process feedback store: the default backend of :class:`~optiroute.store.records.FeedbackStore`.

Bounded (oldest decisions and observations evicted first) and lost at exit; its spend ledger is
guarded by a lock but not shared between processes, so budgets shared by replicas need a SQL store.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict, deque

from optiroute.store.records import DecisionRecord, FeedbackRecord, FeedbackStore, ObservationRecord, _now, _utc

__all__ = ["MemoryFeedbackStore"]


class MemoryFeedbackStore(FeedbackStore):
    """In-process store: the last ``max_decisions`` decisions (oldest evicted first) and feedback
    events, the last ``max_observations`` observations, and a spend ledger guarded by a lock.

    Nothing survives the process, and the ledger is not shared with other processes: use a SQL
    store for budgets shared by several replicas.
    """

    def __init__(
        self, max_decisions: int = 100_000, *, keep_prompts: bool = False,
        max_observations: int = 100_000,
    ) -> None:
        super().__init__(keep_prompts=keep_prompts)
        self.max_decisions = max_decisions
        self._decisions: OrderedDict[str, DecisionRecord] = OrderedDict()
        self._runs: dict[str, str] = {}
        self._feedback: deque[FeedbackRecord] = deque(maxlen=max_decisions)
        self._observations: deque[ObservationRecord] = deque(maxlen=max_observations)
        self._ledger: dict[str, list[float]] = {}  # scope -> [settled, reserved]
        self._open: dict[str, tuple[float, tuple[str, ...]]] = {}  # reservation -> (amount, scopes)

    def _put_decision(self, rec: DecisionRecord) -> None:
        with self._lock:
            self._decisions[rec.decision_id] = rec
            self._decisions.move_to_end(rec.decision_id)
            if rec.run_id is not None:
                latest = self._decisions.get(self._runs.get(rec.run_id, ""))
                if latest is None or _utc(latest.created_at) <= _utc(rec.created_at):
                    self._runs[rec.run_id] = rec.decision_id
            while len(self._decisions) > self.max_decisions:
                _, old = self._decisions.popitem(last=False)
                if old.run_id is not None and self._runs.get(old.run_id) == old.decision_id:
                    del self._runs[old.run_id]

    def __len__(self) -> int:
        """Decisions held (at most ``max_decisions``)."""
        with self._lock:
            return len(self._decisions)

    def get_decision(self, decision_id: str) -> DecisionRecord | None:
        with self._lock:
            return self._decisions.get(decision_id)

    def decision_for_run(self, run_id: str) -> DecisionRecord | None:
        with self._lock:
            return self._decisions.get(self._runs.get(run_id, ""))

    def _put_feedback(self, decision_id: str, score: float, comment: str | None) -> None:
        with self._lock:
            self._feedback.append(
                FeedbackRecord(decision_id=decision_id, score=score, comment=comment, created_at=_now())
            )

    def feedback(self, decision_id: str | None = None) -> list[FeedbackRecord]:
        with self._lock:
            return [f for f in self._feedback if decision_id is None or f.decision_id == decision_id]

    def _put_observation(self, rec: ObservationRecord) -> None:
        with self._lock:
            self._observations.append(rec)

    def observations(
        self, *, model: str | None = None, decision_id: str | None = None, limit: int | None = None
    ) -> list[ObservationRecord]:
        with self._lock:
            rows = [
                o for o in self._observations
                if (model is None or o.model == model)
                and (decision_id is None or o.decision_id == decision_id)
            ]
        return rows if limit is None else rows[max(len(rows) - limit, 0):]

    def _reserve(self, scopes: dict[str, float], amount: float) -> str | None:
        keys = tuple(sorted(scopes))
        with self._lock:
            rows = [self._ledger.get(k, [0.0, 0.0]) for k in keys]
            if any(settled + reserved >= scopes[k] for k, (settled, reserved) in zip(keys, rows, strict=True)):
                return None
            for k in keys:
                self._ledger.setdefault(k, [0.0, 0.0])[1] += amount
            rid = uuid.uuid4().hex
            self._open[rid] = (amount, keys)
            return rid

    def _settle(self, reservation_id: str, cost_usd: float) -> bool:
        with self._lock:
            entry = self._open.pop(reservation_id, None)
            if entry is None:
                return False
            amount, keys = entry
            for k in keys:
                row = self._ledger[k]
                row[0] += cost_usd
                row[1] -= amount
            return True

    def spent(self, scope: str) -> float:
        with self._lock:
            settled, reserved = self._ledger.get(scope, (0.0, 0.0))
            return settled + reserved
