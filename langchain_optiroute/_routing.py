"""Glue between a LangChain call and an OptiRoute decision: the plan, metadata stamping, events."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID, uuid4

from langchain_core.callbacks import AsyncCallbackManager, CallbackManager
from langchain_core.messages import BaseMessage

__all__ = ["DECISION_EVENT", "Call", "Plan", "with_run_id", "aemit_decision", "emit_decision", "shared_default_router", "stamp_message"]

#: Name of the custom event that carries each routing decision (visible in ``astream_events``).
DECISION_EVENT = "optiroute_decision"

_DEFAULT: Any = None
_DEFAULT_LOCK = threading.Lock()


def shared_default_router() -> Any:
    """One ``Router.default()`` per process, shared by every ChatOptiRoute built without a router
    (LangChain may rebuild chat models per call under ``configurable_fields``)."""
    global _DEFAULT
    if _DEFAULT is None:
        with _DEFAULT_LOCK:
            if _DEFAULT is None:
                from optiroute import Router

                _DEFAULT = Router.default()
    return _DEFAULT


class Plan:
    """A decision, the ordered (name, candidate) chain to try, and the call's accounting.

    The accounting (:class:`optiroute.router.calls.CallAccount`) has already admitted the call under the
    router's budget; exactly one of :meth:`observe` / :meth:`failed` closes it, and every failed
    fallback attempt leaves a row through :meth:`attempt_failed`.
    """

    def __init__(self, decision: Any, chain: list[tuple[str, Any]], router: Any, account: Any = None) -> None:
        self.decision = decision
        self.chain = chain
        self.router = router
        self.account = account
        self.names = [n for n, _ in chain]
        self.models = dict(chain)
        self.errors: dict[str, BaseException] = {}

    def summary(self, used: str, errors: dict[str, BaseException]) -> dict[str, Any]:
        """The decision summary for response metadata, plus which model answered and why."""
        out = self.decision.summary()
        out["answered_by"] = used
        if errors:
            out["fell_back_from"] = {m: type(e).__name__ for m, e in errors.items()}
        return out

    def observe(self, used: str, seconds: float, message: BaseMessage | None) -> None:
        """Close the call as answered by ``used``: settle its cost, record latency and tokens."""
        usage = (getattr(message, "usage_metadata", None) or {}) if message is not None else {}
        if self.account is not None:
            self.account.succeeded(used, seconds, usage.get("input_tokens"), usage.get("output_tokens"))

    def attempt_failed(self, name: str, exc: BaseException) -> None:
        """A candidate failed with a retryable error; the call moves down the chain."""
        self.errors[name] = exc
        if self.account is not None:
            self.account.attempt_failed(name, exc)

    def failed(self, exc: BaseException | None) -> None:
        """Close a call that produced no answer (releases its budget reservation)."""
        if self.account is not None:
            self.account.failed(exc)

    @property
    def closed(self) -> bool:
        """True once the call was closed by :meth:`observe` or :meth:`failed`."""
        return self.account is None or self.account.closed


def stamp_message(message: BaseMessage, summary: dict[str, Any]) -> None:
    """Put the decision under ``response_metadata["optiroute"]`` (one chunk only when streaming,
    because merging chunks concatenates repeated strings)."""
    message.response_metadata = {**(message.response_metadata or {}), "optiroute": summary}


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


def with_run_id(config: Any) -> tuple[dict[str, Any], Call]:
    """A copy of ``config`` with a fixed run id, and the matching :class:`Call`."""
    from langchain_core.runnables.config import ensure_config

    cfg = dict(ensure_config(config))
    run_id = cfg.get("run_id") or uuid4()
    cfg["run_id"] = run_id
    return cfg, Call(run_id, cfg)


def _from_call(call: Call, cls: type) -> Any:
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
