"""The instrumentation event a routed LlamaIndex call dispatches, and the tag that names its run."""

from __future__ import annotations

from typing import Any

from llama_index.core.instrumentation.events.base import BaseEvent

__all__ = ["RUN_ID_TAG", "RoutingDecisionEvent"]

#: The ``instrument_tags`` key whose value (a UUID) is recorded as the run id of every decision made
#: inside the tagged block, so feedback by that run id finds them (also from another process).
RUN_ID_TAG = "optiroute_run_id"


class RoutingDecisionEvent(BaseEvent):
    """Emitted once per routed call with the decision summary (no prompt text)."""

    decision: dict[str, Any]

    @classmethod
    def class_name(cls) -> str:
        return "RoutingDecisionEvent"
