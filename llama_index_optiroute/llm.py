"""``OptiRoute``: a LlamaIndex FunctionCallingLLM that routes every call to one of its candidates.

Each call is analysed and routed by the OptiRoute core (async calls route in a worker thread, off
the event loop), then the chosen candidate's own public method (``chat``, ``complete``,
``stream_chat`` ...) runs on a copy of it that reports to *this* model's callback manager: our methods
are deliberately *not* decorated with ``llm_chat_callback``, so each attempt produces exactly one
LLM start/end pair, on the handlers set on ``OptiRoute`` (``Settings.callback_manager``), and the
instrumentation events name the candidate that answered. The decision is dispatched as a
:class:`RoutingDecisionEvent` and stored in the response's ``additional_kwargs["optiroute"]``.
Retryable provider errors move down the fallback chain; with tools, each attempt prepares the tools
and validates the answer with its own candidate's rules.

What a routed call means (preference precedence, the plan, fallbacks, accounting, the stamped
payload, feedback lookup) is :mod:`optiroute.integration`'s, shared with the LangChain adapter; this
module translates LlamaIndex's calls into it and its results back into LlamaIndex objects.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

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
from llama_index.core.instrumentation.dispatcher import active_instrument_tags
from llama_index.core.instrumentation.span import active_span_id
from llama_index.core.llms.function_calling import FunctionCallingLLM
from pydantic import ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from optiroute import InvalidInputError
from optiroute.integration import (
    STAMP_KEY,
    CallPlan,
    Route,
    aadmit,
    aroute_call,
    check_timeout,
    own_error,
    record_feedback,
    resolve_candidates,
    resolve_preferences,
    resolve_user_key,
    route_call,
    router_or_default,
)

from ._calls import delta_chars, usage_of
from ._events import RUN_ID_TAG, RoutingDecisionEvent

__all__ = ["OptiRoute", "RoutingDecisionEvent"]

dispatcher = get_dispatcher(__name__)
_TOOLS = "optiroute_tools"


@dataclass(frozen=True)
class _ToolCall:
    """A ``chat_with_tools`` request, kept as given so each candidate prepares it in its own format."""

    tools: tuple[Any, ...]
    user_msg: str | ChatMessage | None
    chat_history: list[ChatMessage] | None
    verbose: bool
    allow_parallel_tool_calls: bool
    tool_required: bool
    kwargs: dict[str, Any]

    def prepare(self, llm: Any) -> dict[str, Any]:
        """The candidate's own chat kwargs for this request (its tool schema, its ``tool_choice``)."""
        return cast(dict[str, Any], llm._prepare_chat_with_tools_compat(
            list(self.tools), user_msg=self.user_msg, chat_history=self.chat_history, verbose=self.verbose,
            allow_parallel_tool_calls=self.allow_parallel_tool_calls, tool_required=self.tool_required,
            **self.kwargs,
        ))

    def validate(self, llm: Any, response: Any) -> Any:
        """The candidate's own check of its answer (e.g. one tool call unless parallel ones are allowed)."""
        return llm._validate_chat_with_tools_response(
            response, list(self.tools), allow_parallel_tool_calls=self.allow_parallel_tool_calls, **self.kwargs)


def _text(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": str(getattr(m.role, "value", m.role)), "content": m.content or ""} for m in messages]


class OptiRoute(FunctionCallingLLM):
    """An LLM that routes each call to the best candidate for the caller's preferences.

    Args:
        models: candidate LlamaIndex LLMs, a list (named by their ``model``) or ``{name: llm}``.
        router: an :class:`optiroute.Router`; ``None`` shares one ``Router.default()`` per process.
        preferences: default preferences. What applies, the same order as in the LangChain adapter
            (:func:`optiroute.integration.resolve_preferences`): ``chat(..., preferences=...)`` >
            :meth:`with_preferences` > an active ``optiroute.preferences(...)`` scope > this field >
            the router's default.
        constraints: default hard constraints (per call: ``chat(..., constraints=...)``).
        user_key: the caller key charged for per-user spend budgets (``Router(budget=...)``); per
            call ``chat(..., user_key=...)``. A refused call raises ``optiroute.BudgetExceededError``
            (for streams: on the first read, when the stream is admitted).
        timeout: seconds each candidate may take (``None``: no limit); a candidate that takes longer
            counts as a retryable failure and the next one of the fallback chain is tried (for streams:
            the wait for the first item). Synchronous candidate calls run in a daemon thread that is
            abandoned at the deadline; async ones are cancelled.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    models: dict[str, Any] = Field(default_factory=dict)
    router: Any = Field(default=None, exclude=True, repr=False)
    preferences: Any = None
    bound_preferences: Any = None
    constraints: Any = None
    user_key: str | None = None
    timeout: float | None = None

    _bound: dict[str, tuple[Any, Any, Any]] = PrivateAttr(default_factory=dict)
    _bound_lock: Any = PrivateAttr(default_factory=threading.Lock)

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
        try:
            super().__init__(models=models or {}, **kwargs)
        except ValidationError as exc:  # our own check (timeout) raises an OptiRouteError: surface it
            inner = own_error(exc)
            if inner is not None:
                raise inner from None
            raise

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float | None:
        return check_timeout(value, "OptiRoute timeout")

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
    def _router(self) -> Any:
        """The router given, or the one ``Router.default()`` both adapters share per process."""
        return router_or_default(self.router)

    def _route_args(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any], tools: bool) -> dict[str, Any]:
        """Translate one LlamaIndex call into :func:`optiroute.integration.route_call`'s arguments
        (pops the routing kwargs, so what is left goes to the candidate)."""
        if not self.models:
            raise InvalidInputError("OptiRoute needs at least one candidate LLM in `models`.")
        prefs = resolve_preferences(call=kwargs.pop("preferences", None), bound=self.bound_preferences,
                                    field=self.preferences)
        user = resolve_user_key(call=kwargs.pop("user_key", None), field=self.user_key)
        constraints = kwargs.pop("constraints", None) or self.constraints
        run_id = (active_instrument_tags.get() or {}).get(RUN_ID_TAG)
        return {
            "router": self._router(), "messages": _text(messages), "candidates": {k: k for k in self.models},
            "objects": self.models,
            "preferences": prefs, "constraints": constraints, "user": user, "needs_tools": tools,
            "run_id": str(run_id) if run_id else None,
            "tool_capable": {k for k, m in self.models.items() if m.metadata.is_function_calling_model},
        }

    def _route(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any], *, tools: bool = False) -> Route:
        """Route one call (see :meth:`_route_args`) and dispatch the decision event."""
        args = self._route_args(messages, kwargs, tools)
        route = route_call(args.pop("router"), args.pop("messages"), **args)
        dispatcher.event(RoutingDecisionEvent(decision=route.decision.summary()))
        return route

    async def _aroute(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any], *, tools: bool = False) -> Route:
        """:meth:`_route` with the decision made in a worker thread, off the event loop."""
        args = self._route_args(messages, kwargs, tools)
        route = await aroute_call(args.pop("router"), args.pop("messages"), **args)
        dispatcher.event(RoutingDecisionEvent(decision=route.decision.summary()))
        return route

    def _admit_args(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        cap = kwargs.get("max_tokens")
        return {"max_tokens": cap if isinstance(cap, int) else None,
                "candidate_max_tokens": {k: getattr(m, "max_tokens", None) for k, m in self.models.items()}}

    def _admit(self, route: Route, kwargs: dict[str, Any]) -> CallPlan:
        """Admit the call under the router's budget (raises BudgetExceededError when spent)."""
        return route.admit(**self._admit_args(kwargs))

    async def _aadmit(self, route: Route, kwargs: dict[str, Any]) -> CallPlan:
        """:meth:`_admit` in a worker thread (the reservation writes to the store)."""
        return await aadmit(route, **self._admit_args(kwargs))

    def _candidate(self, key: str) -> Any:
        """The candidate ``key`` reporting to *this* model's callback manager.

        A candidate's decorated methods emit the LLM start/end events (and the instrumentation
        events, which name the candidate that answered) on its own callback manager; a copy that
        shares this model's manager makes each routed call reach the handlers set on ``OptiRoute``
        (``Settings.callback_manager``: token counting, tracing) exactly once.
        """
        model = self.models[key]
        manager = self.callback_manager
        if model.callback_manager is manager:
            return model
        with self._bound_lock:
            cached = self._bound.get(key)
            if cached is None or cached[0] is not manager or cached[1] is not model:
                cached = (manager, model, model.model_copy(update={"callback_manager": manager}))
                self._bound[key] = cached
        return cached[2]

    @staticmethod
    def _stamp(response: Any, summary: dict[str, Any]) -> Any:
        response.additional_kwargs = {**(response.additional_kwargs or {}), STAMP_KEY: summary}
        return response

    # ------------------------------------------------------------------ one attempt
    def _chat_once(self, key: str, messages: Sequence[ChatMessage], kwargs: dict[str, Any],
                   tools: _ToolCall | None) -> ChatResponse:
        llm = self._candidate(key)
        if tools is None:
            return cast(ChatResponse, llm.chat(messages, **kwargs))
        resp = llm.chat(**tools.prepare(llm))
        return cast(ChatResponse, tools.validate(llm, resp))

    async def _achat_once(self, key: str, messages: Sequence[ChatMessage], kwargs: dict[str, Any],
                          tools: _ToolCall | None) -> ChatResponse:
        llm = self._candidate(key)
        if tools is None:
            return cast(ChatResponse, await llm.achat(messages, **kwargs))
        resp = await llm.achat(**tools.prepare(llm))
        return cast(ChatResponse, tools.validate(llm, resp))

    def _stream_once(self, key: str, messages: Sequence[ChatMessage], kwargs: dict[str, Any],
                     tools: _ToolCall | None) -> Any:
        llm = self._candidate(key)
        return llm.stream_chat(messages, **kwargs) if tools is None else llm.stream_chat(**tools.prepare(llm))

    async def _astream_once(self, key: str, messages: Sequence[ChatMessage], kwargs: dict[str, Any],
                            tools: _ToolCall | None) -> Any:
        llm = self._candidate(key)
        if tools is None:
            return await llm.astream_chat(messages, **kwargs)
        return await llm.astream_chat(**tools.prepare(llm))

    # ------------------------------------------------------------------ chat / complete
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        tools: _ToolCall | None = kwargs.pop(_TOOLS, None)
        plan = self._admit(self._route(messages, kwargs, tools=tools is not None), kwargs)
        key, resp = plan.run(lambda k: self._chat_once(k, messages, kwargs, tools), usage=usage_of,
                             timeout_s=self.timeout)
        return cast(ChatResponse, self._stamp(resp, plan.summary(key)))

    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        tools: _ToolCall | None = kwargs.pop(_TOOLS, None)
        plan = await self._aadmit(await self._aroute(messages, kwargs, tools=tools is not None), kwargs)
        key, resp = await plan.arun(lambda k: self._achat_once(k, messages, kwargs, tools), usage=usage_of,
                                    timeout_s=self.timeout)
        return cast(ChatResponse, self._stamp(resp, plan.summary(key)))

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        plan = self._admit(self._route([ChatMessage(role=MessageRole.USER, content=prompt)], kwargs), kwargs)
        key, resp = plan.run(lambda k: self._candidate(k).complete(prompt, formatted=formatted, **kwargs),
                             usage=usage_of, timeout_s=self.timeout)
        return cast(CompletionResponse, self._stamp(resp, plan.summary(key)))

    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        route = await self._aroute([ChatMessage(role=MessageRole.USER, content=prompt)], kwargs)
        plan = await self._aadmit(route, kwargs)
        key, resp = await plan.arun(lambda k: self._candidate(k).acomplete(prompt, formatted=formatted, **kwargs),
                                    usage=usage_of, timeout_s=self.timeout)
        return cast(CompletionResponse, self._stamp(resp, plan.summary(key)))

    # ------------------------------------------------------------------ streaming
    # Streams route at once (routing errors surface at the call, the decision event is sent) but are
    # admitted and opened lazily, on the first read, like LlamaIndex's own streams: a stream the
    # caller never reads reserves nothing, and one dropped after starting is closed (and accounted
    # as cancelled) by Python. The candidate's stream opens under the routed call's span (``span``,
    # the one active when the call was routed), so its span and events nest under the decision's.
    def _stream(self, route: Route, kwargs: dict[str, Any], start: Any, span: str | None) -> Any:
        plan = self._admit(route, kwargs)
        token = active_span_id.set(span)
        try:
            opened = plan.open_stream(start, timeout_s=self.timeout)
        finally:
            active_span_id.reset(token)
        summary = plan.summary(opened.key)
        yield from plan.relay(opened, usage=usage_of, each=lambda item: self._stamp(item, dict(summary)),
                              size=delta_chars)

    async def _astream(self, route: Route, kwargs: dict[str, Any], start: Any, span: str | None) -> Any:
        plan = await self._aadmit(route, kwargs)
        token = active_span_id.set(span)
        try:
            opened = await plan.aopen_stream(start, timeout_s=self.timeout)
        finally:
            active_span_id.reset(token)
        summary = plan.summary(opened.key)
        async for item in plan.arelay(opened, usage=usage_of, each=lambda item: self._stamp(item, dict(summary)),
                                      size=delta_chars):
            yield item

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        tools: _ToolCall | None = kwargs.pop(_TOOLS, None)
        route = self._route(messages, kwargs, tools=tools is not None)
        return cast(ChatResponseGen,
                    self._stream(route, kwargs, lambda k: self._stream_once(k, messages, kwargs, tools),
                                 active_span_id.get()))

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        route = self._route([ChatMessage(role=MessageRole.USER, content=prompt)], kwargs)
        return cast(CompletionResponseGen, self._stream(
            route, kwargs, lambda k: self._candidate(k).stream_complete(prompt, formatted=formatted, **kwargs),
            active_span_id.get()))

    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        tools: _ToolCall | None = kwargs.pop(_TOOLS, None)
        route = await self._aroute(messages, kwargs, tools=tools is not None)
        return cast(ChatResponseAsyncGen,
                    self._astream(route, kwargs, lambda k: self._astream_once(k, messages, kwargs, tools),
                                  active_span_id.get()))

    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        route = await self._aroute([ChatMessage(role=MessageRole.USER, content=prompt)], kwargs)
        return cast(CompletionResponseAsyncGen, self._astream(
            route, kwargs, lambda k: self._candidate(k).astream_complete(prompt, formatted=formatted, **kwargs),
            active_span_id.get()))

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
        """Keep the tool request as given; the routed call prepares it for each candidate it tries.

        Routing happens in ``chat``/``achat``/``stream_chat``/``astream_chat`` (off the event loop
        for the async ones), among function-calling candidates only; each attempt, fallbacks
        included, prepares the tools in its own provider's format and validates its answer by its
        own rules (``allow_parallel_tool_calls``).
        """
        msgs = list(chat_history or [])
        if user_msg is not None:
            msgs.append(user_msg if isinstance(user_msg, ChatMessage)
                        else ChatMessage(role=MessageRole.USER, content=user_msg))
        if tool_required and kwargs.get("tool_choice") is None and len(tools) == 1:
            # "Must call a tool" with exactly one tool is "call this tool"; naming it lets servers
            # that only constrain named tools (llama.cpp's function-calling formats) comply.
            kwargs["tool_choice"] = tools[0].metadata.name
        routing: dict[str, Any] = {k: kwargs.pop(k) for k in ("preferences", "user_key", "constraints")
                                   if k in kwargs}
        request = _ToolCall(tools=tuple(tools), user_msg=user_msg, chat_history=chat_history, verbose=verbose,
                            allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required,
                            kwargs=kwargs)
        return {"messages": msgs, _TOOLS: request, **routing}

    def get_tool_calls_from_response(self, response: ChatResponse, error_on_no_tool_call: bool = True,
                                     **kwargs: Any) -> list[Any]:
        """Parse tool calls the way the candidate that answered does."""
        meta = (response.additional_kwargs or {}).get(STAMP_KEY) or {}
        used = meta.get("answered_by")  # a card name, like the decision's model
        key = used if used in self.models else None
        if key is None and isinstance(used, str) and self.models:
            key = resolve_candidates(self._router(), {k: k for k in self.models}).get(used)
        if key is None:
            raise InvalidInputError("This response was not routed by OptiRoute; parse it with the model that made it.")
        return self.models[key].get_tool_calls_from_response(
            response, error_on_no_tool_call=error_on_no_tool_call, **kwargs
        )

    # ------------------------------------------------------------------ feedback
    def record_feedback(self, target: Any, score: float, *, comment: str | None = None) -> None:
        """Feedback (1.0 up, 0.0 down, or 0..1) on a routed response, a decision id or a run id (the
        ``RUN_ID_TAG`` instrument tag a call ran under; looked up in the router's store, so any
        process sharing it can rate)."""
        source = target if isinstance(target, (str, UUID)) else (getattr(target, "additional_kwargs", None) or {})
        record_feedback(self._router(), source, score, comment=comment)
