"""An instrumentation event handler that ties LlamaIndex runs to OptiRoute decisions, for feedback.

Add it to the root dispatcher and tag a run (a query, an agent run, a chat turn) with a run id::

    handler = OptiRouteEventHandler()
    get_dispatcher().add_event_handler(handler)
    with instrument_tags({RUN_ID_TAG: str(run_id)}):
        await agent.run(user_msg=...)
    handler.record_feedback(run_id, 1.0)  # every routed call of that run is rated

``OptiRoute`` also records the tagged run id with each decision in the router's store, so a rating
given later by run id, in another process that shares the store, still reaches the run's latest
decision.
"""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.base import BaseEvent
from pydantic import PrivateAttr

from optiroute.integration import forward_feedback, router_or_default

from ._events import RUN_ID_TAG, RoutingDecisionEvent

__all__ = ["RUN_ID_TAG", "OptiRouteEventHandler"]


class OptiRouteEventHandler(BaseEventHandler):
    """Collects routing decisions by the run id tag (``RUN_ID_TAG``) and by span id.

    Args:
        router: the router ratings go to; ``None`` is the process-wide default router the adapters
            share (pass the one your ``OptiRoute`` uses if you gave it one).
    """

    router: Any = None
    _runs: dict[str, list[str]] = PrivateAttr(default_factory=dict)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def class_name(cls) -> str:
        return "OptiRouteEventHandler"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if not isinstance(event, RoutingDecisionEvent):
            return
        did = str(event.decision.get("decision_id") or "")
        if not did:
            return
        keys = [str(event.tags[RUN_ID_TAG])] if event.tags.get(RUN_ID_TAG) else []
        if event.span_id:
            keys.append(str(event.span_id))
        with self._lock:
            for key in keys:
                self._runs.setdefault(key, []).append(did)

    def decision_ids(self, run: UUID | str) -> list[str]:
        """Decision ids made under a run id tag (or inside a span id), in order."""
        with self._lock:
            return list(self._runs.get(str(run), []))

    def record_feedback(self, run: UUID | str, score: float, *, comment: str | None = None) -> list[str]:
        """Forward a rating (1.0 up, 0.0 down, or 0..1) to every decision made under ``run``; returns
        their ids. A run this handler did not see is looked up in the router's store.

        Raises:
            FeedbackError: no decision is known for the run, or the score is outside 0..1.
        """
        return forward_feedback(router_or_default(self.router), run, self.decision_ids(run), score, comment=comment)
