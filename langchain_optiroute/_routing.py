"""Glue between a LangChain call and an OptiRoute decision: metadata stamping, run ids, events.

The call itself (preferences, plan, fallbacks, accounting) is :mod:`optiroute.integration`'s, shared
with the LlamaIndex adapter; this module only translates it into LangChain objects.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from uuid import UUID, uuid4

from langchain_core.callbacks import AsyncCallbackManager, CallbackManager
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk

from optiroute.integration import STAMP_KEY

__all__ = ["ANSWER_INFO_KEY", "DECISION_EVENT", "Call", "aemit_decision", "active_run_manager", "answer_identity",
           "emit_decision", "name_answer", "run_manager_of", "stamp_message", "unname_later_chunk", "with_run_id"]

log = logging.getLogger(__name__)

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


#: The ``generation_info`` key under which a response names the model a gateway resolved for it.
#: langchain-core's tracers (LangSmith's ``LangChainTracer``, ``collect_runs``, any ``BaseTracer``)
#: promote its ``model`` / ``provider`` to the run's ``ls_model_name`` / ``ls_provider`` metadata,
#: and the whole dict to ``ls_gateway_info``, when the run ends; LangSmith's cost tracking and model
#: filters read those two keys. A routed call is exactly such a per-request resolution, so the run
#: that started as ``optiroute`` ends naming the candidate that answered. It never reaches
#: ``response_metadata`` (langchain-core keeps it on the trace only).
ANSWER_INFO_KEY = "lc_gateway_metadata"


def answer_identity(model: BaseChatModel, key: str, decision_id: str, stop: list[str] | None,
                    kwargs: Mapping[str, Any]) -> dict[str, str]:
    """Who answered, as the candidate names itself to LangSmith: its own ``_get_ls_params``
    (``ls_provider``, ``ls_model_name``; the candidate key when it names no model), plus the routing
    that chose it (``router``, ``candidate``, ``decision_id``)."""
    try:
        params: Mapping[str, Any] = model._get_ls_params(stop=stop, **kwargs)
    except Exception:  # naming the run is observability: it must never cost the answer
        log.debug("could not read %s's LangSmith params", key, exc_info=True)
        params = {}
    provider, name = params.get("ls_provider"), params.get("ls_model_name")
    return {"provider": provider if isinstance(provider, str) and provider else type(model).__name__.lower(),
            "model": name if isinstance(name, str) and name else key,
            "router": "optiroute", "candidate": key, "decision_id": decision_id}


def name_answer(generation: ChatGeneration, identity: Mapping[str, str]) -> None:
    """Name the answering model on one generation (or the first chunk of a stream) for the tracers
    (see :data:`ANSWER_INFO_KEY`); a gateway the candidate itself went through keeps its extra keys."""
    info = generation.generation_info or {}
    theirs = info.get(ANSWER_INFO_KEY)
    merged = {**(theirs if isinstance(theirs, Mapping) else {}), **identity}
    generation.generation_info = {**info, ANSWER_INFO_KEY: merged}


def unname_later_chunk(chunk: ChatGenerationChunk, identity: Mapping[str, str]) -> ChatGenerationChunk:
    """Drop the keys of :func:`name_answer`'s identity from a later chunk's own gateway info:
    merging chunks concatenates repeated strings (``"gpt-4o"`` twice would become ``"gpt-4ogpt-4o"``)."""
    info = chunk.generation_info
    theirs = info.get(ANSWER_INFO_KEY) if info else None
    if isinstance(theirs, Mapping) and info is not None:
        rest = {k: v for k, v in theirs.items() if k not in identity}
        kept = {k: v for k, v in info.items() if k != ANSWER_INFO_KEY}
        chunk.generation_info = {**kept, ANSWER_INFO_KEY: rest} if rest else (kept or None)
    return chunk


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
