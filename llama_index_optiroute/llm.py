"""``OptiRoute``: a LlamaIndex FunctionCallingLLM that routes every call to one of its candidates.

Each call is analysed and routed by the OptiRoute core, then the chosen candidate's own public method
(``chat``, ``complete``, ``stream_chat`` ...) runs. Our methods are deliberately *not* decorated with
``llm_chat_callback``: the candidate's decorated method emits the LLM start/end events, so each call
produces exactly one pair. The decision is dispatched as a :class:`RoutingDecisionEvent` and stored in
the response's ``additional_kwargs["optiroute"]``. Retryable provider errors move down the fallback
chain (:mod:`optiroute.router.fallback`, shared with the LangChain adapter).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.base import BaseEvent
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM
from pydantic import ConfigDict, Field

from optiroute.errors import FallbackExhaustedError, FeedbackError, InvalidInputError
from optiroute.router.fallback import is_retryable

from ._calls import _Route, _usage, arun_chain, run_chain

__all__ = ["OptiRoute", "RoutingDecisionEvent"]

dispatcher = get_dispatcher(__name__)
_PIN = "optiroute_pin"


class RoutingDecisionEvent(BaseEvent):
    """Emitted once per routed call with the decision summary (no prompt text)."""

    decision: dict[str, Any]

    @classmethod
    def class_name(cls) -> str:
        return "RoutingDecisionEvent"


def _text(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": str(getattr(m.role, "value", m.role)), "content": m.content or ""} for m in messages]


class OptiRoute(FunctionCallingLLM):
    """An LLM that routes each call to the best candidate for the caller's preferences.

    Args:
        models: candidate LlamaIndex LLMs, a list (named by their ``model``) or ``{name: llm}``.
        router: an :class:`optiroute.Router`; ``None`` shares one ``Router.default()`` per process.
        preferences: default preferences. Per call: ``chat(..., preferences=...)`` >
            :meth:`with_preferences` > an ``optiroute.preferences(...)`` scope > this field.
        constraints: default hard constraints.
        user_key: the caller key charged for per-user spend budgets (``Router(budget=...)``); per
            call ``chat(..., user_key=...)``. A refused call raises ``optiroute.BudgetExceededError``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    models: dict[str, Any] = Field(default_factory=dict)
    router: Any = None
    preferences: Any = None
    bound_preferences: Any = None
    constraints: Any = None
    user_key: str | None = None

    def __init__(self, models: Any = None, **kwargs: Any) -> None:
        if models is not None and not isinstance(models, dict):
            named: dict[str, Any] = {}
            for llm in models:
                name = str(getattr(llm, "model", None) or getattr(llm, "model_name", None) or type(llm).__name__)
                key, i = name, 2
                while key in named:
                    key, i = f"{name}#{i}", i + 1
                named[key] = llm
            models = named
        super().__init__(models=models or {}, **kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "OptiRoute"

    # ------------------------------------------------------------------ metadata
    @property
    def metadata(self) -> LLMMetadata:
        metas = [m.metadata for m in self.models.values()]
        return LLMMetadata(
            context_window=min((m.context_window for m in metas), default=3900),
            num_output=min((m.num_output for m in metas), default=256),
            is_chat_model=True,
            is_function_calling_model=any(m.is_function_calling_model for m in metas),
            model_name="optiroute",
        )

    def with_preferences(self, preferences: Any) -> OptiRoute:
        """A copy that routes every call under ``preferences`` (for APIs that drop kwargs)."""
        return self.model_copy(update={"bound_preferences": preferences})

    # ------------------------------------------------------------------ routing
    def _plan(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any], *, tools: bool = False) -> _Route:
        from optiroute.schema.preferences import current_preferences

        if not self.models:
            raise InvalidInputError("OptiRoute needs at least one candidate LLM in `models`.")
        prefs = kwargs.pop("preferences", None)
        user = kwargs.pop("user_key", None) or self.user_key
        if prefs is None:
            prefs = self.bound_preferences
        if prefs is None:
            prefs = current_preferences() or self.preferences
        router = _router_of(self)
        registry = router.registry
        names = {registry.resolve(k).name: k for k in reversed(list(self.models))}
        pool = list(names)
        if tools:
            pool = [n for n in pool if self.models[names[n]].metadata.is_function_calling_model]
            if not pool:
                raise InvalidInputError("Tools were given but no candidate is a function-calling model.")
        decision = router.decide(_text(messages), preferences=prefs, constraints=self.constraints,
                                 candidates=pool, user=user)
        dispatcher.event(RoutingDecisionEvent(decision=decision.summary()))
        chain = [names[m] for m in [decision.model, *decision.fallbacks] if m in names]
        return _Route(decision, chain, user)

    def _account(self, route: _Route, kwargs: dict[str, Any]) -> Any:
        """Admit the call under the router's budget (raises BudgetExceededError when spent)."""
        router = _router_of(self)
        names = [router.registry.resolve(k).name for k in route.chain]
        caps = [kwargs.get("max_tokens") or getattr(self.models[k], "max_tokens", None) for k in route.chain]
        cap = max(caps) if caps and all(isinstance(c, int) for c in caps) else None
        return router.open_call(route.decision, chain=names, user=route.user, max_tokens=cap)

    def _timed(self, account: Any, call: Any) -> Any:
        """Wrap a per-candidate call so its latency, tokens and cost reach the router."""

        def run(name: str) -> Any:
            start = time.perf_counter()
            out = call(name)
            account.succeeded(name, time.perf_counter() - start, *_usage(out))
            return out

        return run

    def _atimed(self, account: Any, call: Any) -> Any:
        async def run(name: str) -> Any:
            start = time.perf_counter()
            out = await call(name)
            account.succeeded(name, time.perf_counter() - start, *_usage(out))
            return out

        return run

    @staticmethod
    def _stamp(response: Any, decision: Any, used: str, errors: dict[str, BaseException]) -> Any:
        summary = decision.summary()
        summary["answered_by"] = used
        if errors:
            summary["fell_back_from"] = {m: type(e).__name__ for m, e in errors.items()}
        response.additional_kwargs = {**(response.additional_kwargs or {}), "optiroute": summary}
        return response

    # ------------------------------------------------------------------ chat / complete
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        pin = kwargs.pop(_PIN, None)
        route = pin if pin else self._plan(messages, kwargs)
        account = self._account(route, kwargs)
        name, resp, errors = run_chain(
            account, route.chain, self._timed(account, lambda n: self.models[n].chat(messages, **kwargs)))
        return self._stamp(resp, route.decision, name, errors)

    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        pin = kwargs.pop(_PIN, None)
        route = pin if pin else self._plan(messages, kwargs)
        account = self._account(route, kwargs)
        name, resp, errors = await arun_chain(
            account, route.chain, self._atimed(account, lambda n: self.models[n].achat(messages, **kwargs)))
        return self._stamp(resp, route.decision, name, errors)

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        route = self._plan([ChatMessage(role=MessageRole.USER, content=prompt)], kwargs)
        account = self._account(route, kwargs)
        name, resp, errors = run_chain(account, route.chain, self._timed(
            account, lambda n: self.models[n].complete(prompt, formatted=formatted, **kwargs)))
        return self._stamp(resp, route.decision, name, errors)

    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        route = self._plan([ChatMessage(role=MessageRole.USER, content=prompt)], kwargs)
        account = self._account(route, kwargs)
        name, resp, errors = await arun_chain(account, route.chain, self._atimed(
            account, lambda n: self.models[n].acomplete(prompt, formatted=formatted, **kwargs)))
        return self._stamp(resp, route.decision, name, errors)

    # ------------------------------------------------------------------ streaming
    def _first(self, account: Any, chain: list[str], start: Any) -> tuple[str, Any, Any, dict[str, BaseException]]:
        errors: dict[str, BaseException] = {}
        try:
            for name in chain:
                try:
                    gen = start(name)
                    first = next(gen, None)
                    return name, gen, first, errors
                except Exception as exc:  # failed before the first token: fall back
                    if not is_retryable(exc):
                        raise
                    errors[name] = exc
                    account.attempt_failed(name, exc)
            raise FallbackExhaustedError(errors) from list(errors.values())[-1]
        except BaseException as exc:
            account.failed(exc)
            raise

    async def _afirst(self, account: Any, chain: list[str], start: Any) -> tuple[str, Any, Any, dict[str, BaseException]]:
        errors: dict[str, BaseException] = {}
        try:
            for name in chain:
                try:
                    gen = await start(name)
                    first = await anext(gen, None)
                    return name, gen, first, errors
                except Exception as exc:
                    if not is_retryable(exc):
                        raise
                    errors[name] = exc
                    account.attempt_failed(name, exc)
            raise FallbackExhaustedError(errors) from list(errors.values())[-1]
        except BaseException as exc:
            account.failed(exc)
            raise

    def _stream(self, route: _Route, kwargs: dict[str, Any], start: Any) -> Any:
        account = self._account(route, kwargs)
        began = time.perf_counter()
        name, gen, first, errors = self._first(account, route.chain, start)

        def stream() -> Any:
            last = first
            try:
                if first is not None:
                    yield self._stamp(first, route.decision, name, errors)
                for item in gen:
                    last = item
                    yield self._stamp(item, route.decision, name, errors)
            finally:  # also when the consumer stops early: what was streamed was paid for
                account.succeeded(name, time.perf_counter() - began, *_usage(last))

        return stream()

    async def _astream(self, route: _Route, kwargs: dict[str, Any], start: Any) -> Any:
        account = self._account(route, kwargs)
        began = time.perf_counter()
        name, gen, first, errors = await self._afirst(account, route.chain, start)

        async def stream() -> Any:
            last = first
            try:
                if first is not None:
                    yield self._stamp(first, route.decision, name, errors)
                async for item in gen:
                    last = item
                    yield self._stamp(item, route.decision, name, errors)
            finally:
                account.succeeded(name, time.perf_counter() - began, *_usage(last))

        return stream()

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        pin = kwargs.pop(_PIN, None)
        route = pin if pin else self._plan(messages, kwargs)
        return self._stream(route, kwargs, lambda n: self.models[n].stream_chat(messages, **kwargs))

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        route = self._plan([ChatMessage(role=MessageRole.USER, content=prompt)], kwargs)
        return self._stream(route, kwargs,
                            lambda n: self.models[n].stream_complete(prompt, formatted=formatted, **kwargs))

    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        pin = kwargs.pop(_PIN, None)
        route = pin if pin else self._plan(messages, kwargs)
        return await self._astream(route, kwargs, lambda n: self.models[n].astream_chat(messages, **kwargs))

    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        route = self._plan([ChatMessage(role=MessageRole.USER, content=prompt)], kwargs)
        return await self._astream(
            route, kwargs, lambda n: self.models[n].astream_complete(prompt, formatted=formatted, **kwargs))

    # ------------------------------------------------------------------ tools
    def _prepare_chat_with_tools(
        self,
        tools: Sequence[Any],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Route first (function-calling candidates only), then let the winner prepare its tool call;
        the follow-up ``chat`` is pinned to that winner (its fallbacks stay tool-capable)."""
        msgs = list(chat_history or [])
        if user_msg is not None:
            msgs.append(user_msg if isinstance(user_msg, ChatMessage) else ChatMessage(role=MessageRole.USER, content=user_msg))
        if tool_required and kwargs.get("tool_choice") is None and len(tools) == 1:
            # "Must call a tool" with exactly one tool is "call this tool"; naming it lets servers
            # that only constrain named tools (llama.cpp's function-calling formats) comply.
            kwargs["tool_choice"] = tools[0].metadata.name
        route_kwargs = {"preferences": kwargs.pop("preferences", None), "user_key": kwargs.pop("user_key", None)}
        route = self._plan(msgs, route_kwargs, tools=True)
        winner: LLM = self.models[route.chain[0]]
        prepared = winner._prepare_chat_with_tools_compat(  # type: ignore[attr-defined]
            tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required, **kwargs,
        )
        prepared[_PIN] = route
        return prepared

    def get_tool_calls_from_response(self, response: ChatResponse, error_on_no_tool_call: bool = True,
                                     **kwargs: Any) -> list[Any]:
        """Parse tool calls the way the candidate that answered does."""
        meta = (response.additional_kwargs or {}).get("optiroute") or {}
        used = meta.get("answered_by")
        if used not in self.models:
            raise InvalidInputError("This response was not routed by OptiRoute; parse it with the model that made it.")
        return self.models[used].get_tool_calls_from_response(
            response, error_on_no_tool_call=error_on_no_tool_call, **kwargs
        )

    # ------------------------------------------------------------------ feedback
    def record_feedback(self, target: Any, score: float, *, comment: str | None = None) -> None:
        """Feedback (1.0 up, 0.0 down, or 0..1) on a routed response or a decision id."""
        if isinstance(target, str):
            decision_id = target
        else:
            meta = (getattr(target, "additional_kwargs", None) or {}).get("optiroute")
            if not meta:
                raise FeedbackError("This response carries no OptiRoute decision (was it routed by OptiRoute?).")
            decision_id = meta["decision_id"]
        _router_of(self).record_feedback(decision_id, score, comment=comment)


_DEFAULT: Any = None


def _router_of(llm: OptiRoute) -> Any:
    """The LLM's router, or one ``Router.default()`` shared by the process."""
    global _DEFAULT
    if llm.router is not None:
        return llm.router
    if _DEFAULT is None:
        from optiroute import Router

        _DEFAULT = Router.default()
    return _DEFAULT
