"""A callback handler that ties chain / agent run ids to OptiRoute decisions, for later feedback.

Modelled on ``UsageMetadataCallbackHandler``: small, thread-safe, no I/O. Attach it to a chain run
(``config={"callbacks": [handler]}``); every routed model call inside records its decision under its
own run id and under every ancestor run id the callback system reports, so feedback given on the
chain's run id (e.g. from LangSmith or your UI) reaches the decisions it contains:
``handler.record_feedback(chain_run_id, 1.0)`` forwards the rating to each of them. A run id this
handler never saw (another process, a restarted server) is looked up in the router's store, which
records the run id of every routed model call (not of the chains around it: those live in this
handler's memory only).
"""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from optiroute.integration import STAMP_KEY, forward_feedback, router_or_default

__all__ = ["OptiRouteCallbackHandler"]


class OptiRouteCallbackHandler(BaseCallbackHandler):
    """Collects routing decisions by run id.

    Args:
        router: the router the ratings go to; ``None`` is the process-wide default router the
            adapters share (pass the one your ``ChatOptiRoute`` uses if you gave it one).

    Attributes:
        decisions: run id (str) -> the decision ids made inside that run, in order.
    """

    def __init__(self, router: Any = None) -> None:
        super().__init__()
        self.router = router
        self._lock = threading.Lock()
        self._parents: dict[str, str] = {}
        self.decisions: dict[str, list[str]] = {}

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                       **kwargs: Any) -> None:
        if parent_run_id is not None:
            with self._lock:
                self._parents[str(run_id)] = str(parent_run_id)

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID,
                            parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        if parent_run_id is not None:
            with self._lock:
                self._parents[str(run_id)] = str(parent_run_id)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, parent_run_id: UUID | None = None,
                   **kwargs: Any) -> None:
        ids = []
        for gens in response.generations:
            for gen in gens:
                meta = getattr(getattr(gen, "message", None), "response_metadata", None) or {}
                did = (meta.get(STAMP_KEY) or {}).get("decision_id")  # a cache hit has none
                if did:
                    ids.append(str(did))
        if not ids:
            return
        with self._lock:
            node: str | None = str(run_id)
            if parent_run_id is not None:
                self._parents.setdefault(str(run_id), str(parent_run_id))
            seen = set()
            while node is not None and node not in seen:
                seen.add(node)
                self.decisions.setdefault(node, []).extend(ids)
                node = self._parents.get(node)

    def decision_ids(self, run_id: UUID | str) -> list[str]:
        """Decision ids made inside ``run_id`` (the run itself or any descendant)."""
        with self._lock:
            return list(self.decisions.get(str(run_id), []))

    def record_feedback(self, run_id: UUID | str, score: float, *, comment: str | None = None) -> list[str]:
        """Forward a rating (1.0 up, 0.0 down, or 0..1) on a chain / agent / model run to every routing
        decision made inside it; returns their ids.

        A run this handler did not see is looked up in the router's store (its latest decision), so a
        rating collected in another process that shares the store still arrives.

        Raises:
            FeedbackError: no decision is known for the run, or the score is outside 0..1.
        """
        return forward_feedback(router_or_default(self.router), run_id, self.decision_ids(run_id), score,
                                comment=comment)
