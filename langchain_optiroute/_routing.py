"""Glue between a LangChain call and an OptiRoute decision: metadata stamping, run ids, events.

The call itself (preferences, plan, fallbacks, accounting) is :mod:`optiroute.integration`'s, shared
with the LlamaIndex adapter; this module only translates it into LangChain objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from uuid import UUID, uuid4

from langchain_core.callbacks import AsyncCallbackManager, CallbackManager
from langchain_core.messages import BaseMessage

from optiroute.integration import STAMP_KEY

__all__ = ["DECISION_EVENT", "Call", "aemit_decision", "active_run_manager", "emit_decision", "run_manager_of",
           "stamp_message", "with_run_id"]

#: Name of the custom event that carries each routing decision (visible in ``astream_events``).
DECISION_EVENT = "optiroute_decision"


#: The run manager of the LLM run being generated in this context. langchain-core's
#: ``_generate_with_cache`` calls ``_stream``/``_astream`` *without* its run manager when it streams
#: an ``invoke`` (``streaming=True``, ``astream_events``, LangGraph ``stream_mode="messages"``), so
#: ``ChatOptiRoute`` sets it around that call and ``_stream`` reads it back: without it the call would
#: lose its config metadata (per-call preferences, user key), its run id and its decision event.
_RUN_MANAGER: ContextVar[Any] = ContextVar("optiroute_run_manager", default=None)


@contextmanager
def active_run_manager(run_manager: Any) -> Iterator[None]:
    """Make ``run_manager`` the one :func:`run_manager_of` finds, for the duration of the block."""
    token = _RUN_MANAGER.set(run_manager)
    try:
        yield
    finally:
        _RUN_MANAGER.reset(token)


def run_manager_of(run_manager: Any) -> Any:
    """The run manager given, else the one set by :func:`active_run_manager` (or ``None``)."""
    return run_manager if run_manager is not None else _RUN_MANAGER.get()


def stamp_message(message: BaseMessage, summary: dict[str, Any]) -> None:
    """Put the plan's summary under ``response_metadata["optiroute"]`` (one chunk only when
    streaming, because merging chunks concatenates repeated strings)."""
    message.response_metadata = {**(message.response_metadata or {}), STAMP_KEY: summary}


def _manager(run_manager: Any, cls: type) -> Any:
    return cls(
        handlers=run_manager.handlers,
        inheritable_handlers=run_manager.inheritable_handlers,
        parent_run_id=run_manager.parent_run_id,
        tags=run_manager.tags,
        inheritable_tags=run_manager.inheritable_tags,
        metadata=run_manager.metadata,
        inheritable_metadata=run_manager.inheritable_metadata,
    )


class Call:
    """The run id and config of one streamed call.

    langchain-core calls ``_stream``/``_astream`` without a run manager, so ``ChatOptiRoute.stream``
    fixes the run id up front and passes this through the call kwargs; it gives streaming the
    config metadata (per-call preferences) and the run id (feedback, custom events) that
    ``_generate`` gets from its run manager.
    """

    __slots__ = ("config", "run_id")

    def __init__(self, run_id: UUID, config: dict[str, Any]) -> None:
        self.run_id = run_id
        self.config = config


def with_run_id(config: Any) -> tuple[Any, Call]:
    """A copy of ``config`` with a fixed run id, and the matching :class:`Call`."""
    from langchain_core.runnables.config import ensure_config

    cfg: dict[str, Any] = dict(ensure_config(config))
    run_id: UUID = cfg.get("run_id") or uuid4()
    cfg["run_id"] = run_id
    return cfg, Call(run_id, cfg)


def _from_call(call: Call, cls: type[CallbackManager] | type[AsyncCallbackManager]) -> Any:
    return cls.configure(
        inheritable_callbacks=call.config.get("callbacks"),
        inheritable_tags=call.config.get("tags"),
        inheritable_metadata=call.config.get("metadata"),
    )


def emit_decision(run_manager: Any, decision: Any, call: Call | None = None) -> None:
    """Dispatch the decision as a custom event on the model's run (``astream_events`` shows it)."""
    if run_manager is not None:
        if run_manager.handlers:
            _manager(run_manager, CallbackManager).on_custom_event(
                DECISION_EVENT, decision.summary(), run_id=run_manager.run_id
            )
    elif call is not None:
        _from_call(call, CallbackManager).on_custom_event(DECISION_EVENT, decision.summary(), run_id=call.run_id)


async def aemit_decision(run_manager: Any, decision: Any, call: Call | None = None) -> None:
    """Async twin of :func:`emit_decision`."""
    if run_manager is not None:
        if run_manager.handlers:
            await _manager(run_manager, AsyncCallbackManager).on_custom_event(
                DECISION_EVENT, decision.summary(), run_id=run_manager.run_id
            )
    elif call is not None:
        await _from_call(call, AsyncCallbackManager).on_custom_event(
            DECISION_EVENT, decision.summary(), run_id=call.run_id
        )
