"""The router's feedback loop: record each decision with the quality it was predicted *before*
feedback, learn from the feedback given on it, and correct later predictions.

Residuals are taken against the pre-feedback prediction (see
:mod:`optiroute.learning.feedback_memory`: taken against the corrected one, they settle at half the
real gap), so each routed row's applied correction travels with its arrays
(:class:`~optiroute.routing.batch.RouteArrays`) until the decision is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import numpy as np

from optiroute.catalog.registry import ModelCard
from optiroute.catalog.table import card_names
from optiroute.learning.feedback_memory import FeedbackMemory, store_history
from optiroute.routing.batch import RouteArrays
from optiroute.schema.decision import RoutingDecision
from optiroute.store.guarded import GuardedStore
from optiroute.store.records import DecisionRecord

__all__ = ["FeedbackLoop"]


class FeedbackLoop:
    """Feedback memory and the store, joined where routing meets them.

    Args:
        memory: what feedback taught this router (pooled residuals, rated prompts).
        store: the guarded store that keeps decisions and feedback.
    """

    def __init__(self, memory: FeedbackMemory, store: GuardedStore) -> None:
        self.memory = memory
        self._store = store

    def corrections(
        self, cards: Sequence[ModelCard], tasks: list[str], domains: list[str], emb: np.ndarray,
        complexity: np.ndarray,
    ) -> np.ndarray | None:
        """Feedback corrections (n, m): pooled task/domain residuals and, with ``keep_prompts``, the
        rated neighbours; the first call also reads the feedback a durable store kept earlier."""
        if not self.memory.history_loaded:
            self.memory.load_history(store_history(self._store.store))
        # The store's per-(model, task) residuals are the group estimate of groups="store" only.
        task_corr = self._store.corrections() if self.memory.groups == "store" else {}
        return self.memory.corrections(card_names(cards), tasks, domains, emb, task_corr, complexity)

    def record_decision(
        self, arrays: RouteArrays, i: int, decision: RoutingDecision, *, run_id: str | None,
        user: str | None, prompt: str | None,
    ) -> None:
        """Store row ``i``'s decision with its pre-feedback quality, and keep what its feedback needs."""
        w = arrays.names.index(decision.model)
        card = arrays.card_of(w)  # the store and feedback memory key outcomes by card
        base = min(max(float(arrays.quality[i, w]) - arrays.correction(i, w), 0.0), 1.0)
        self.memory.remember(decision.decision_id, arrays.embedding(i), float(arrays.out.complexity[i]))
        self._store.write(
            "record_decision",
            DecisionRecord.model_construct(
                decision_id=decision.decision_id, model=card,
                task_type=decision.profile.task_type, domain=decision.profile.domain,
                predicted_quality=base, created_at=decision.created_at,
                run_id=None if run_id is None else str(run_id), user=user, prompt=prompt,
            ),
        )

    def record_feedback(self, decision_id: str | None, score: float, comment: str | None,
                        run_id: UUID | str | None) -> str:
        """Store the feedback and learn from it; returns the decision id it was attached to.

        Raises:
            FeedbackError: unknown decision id or run id, or a score outside 0..1.
        """
        did = self._store.record_feedback(decision_id, score, comment, run_id)
        rec = self._store.get_decision(did)
        if rec is not None:
            self.memory.learn(did, float(score), model=rec.model, task=rec.task_type,
                              domain=rec.domain, base_quality=rec.predicted_quality)
        return did
