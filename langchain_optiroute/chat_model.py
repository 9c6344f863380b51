"""``ChatOptiRoute``: a LangChain chat model that routes every call to one of its candidates.

Each call is analysed and routed by the OptiRoute core; the chosen candidate's own
``_generate/_agenerate/_stream/_astream`` then runs under *our* run manager, so a call is one LLM run
(tokens are counted once by ``get_usage_metadata_callback``). The candidate's own cache and callbacks
are therefore bypassed; its ``rate_limiter`` is honoured explicitly. Retryable provider errors move
down the decision's fallback chain; others surface as is.

What a routed call means (preference precedence, the plan, fallbacks, accounting, the stamped
payload, feedback lookup) is :mod:`optiroute.integration`'s, shared with the LlamaIndex adapter; this
module translates LangChain's call into it and its results back into LangChain objects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, ValidationError, field_validator

from optiroute import InvalidInputError
from optiroute.integration import (
    PREFERENCES_METADATA_KEY,
    STAMP_KEY,
    USER_METADATA_KEY,
    CallPlan,
    RunIndex,
    aplan_call,
    check_timeout,
    decision_id_of,
    own_error,
    plan_call,
    record_feedback,
    resolve_preferences,
    resolve_user_key,
    router_or_default,
)

from ._candidates import Candidate, candidate_of, chat_model_of
from ._profile import combined_profile
from ._routing import (
    Call,
    active_run_manager,
    aemit_decision,
    answer_identity,
    emit_decision,
    name_answer,
    run_manager_of,
    stamp_message,
    with_run_id,
)
from ._streaming import aacquire, acquire, astream_chain, message_usage, stream_chain
from .structured import STRUCTURED_KWARG, candidate_kwargs, format_tools, neutral_tool_choice, structured_runnable

__all__ = ["ChatOptiRoute"]

METADATA_KEY = STAMP_KEY
CALL_KWARG = "optiroute_call"


def _name_of(model: BaseChatModel) -> str:
    for attr in ("model_name", "model", "model_id", "deployment_name"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__


class ChatOptiRoute(BaseChatModel):
    """A chat model that routes each call to the best candidate for the caller's preferences.

    Args:
        models: the candidates, a list of chat models (named after their ``model``/``model_name``)
            or a ``{name: model}`` mapping; names are resolved against the router's registry
            (unknown names get a neutral prior and a warning). A candidate may be a chat-model
            Runnable (``.bind(...)``, ``.with_retry(...)``): bound kwargs are kept, other wrappers run
            as a child run with their own behaviour.
        router: an :class:`optiroute.Router`; ``None`` shares one ``Router.default()`` per process.
        preferences: default preferences (profile name, weights or Preferences). What applies, the
            same order as in the LlamaIndex adapter (:func:`optiroute.integration.resolve_preferences`):
            ``invoke(..., preferences=...)`` > ``.bind(preferences=...)`` / :meth:`with_preferences` > an active
            ``optiroute.preferences(...)`` scope > config metadata ``{"optiroute_preferences": ...}`` >
            this field > the router's default.
        constraints: default hard constraints (merged with per-call ``constraints=``).
        user_key: the caller key charged for per-user spend budgets (see ``Router(budget=...)``);
            ``invoke(..., user_key=...)`` (or bound) > config metadata ``{"optiroute_user_key": ...}`` >
            this field.
            A call refused by a budget raises :class:`optiroute.BudgetExceededError`.
        temperature, max_tokens: forwarded to the chosen candidate when set.
        timeout: seconds each candidate may take (``None``: no limit); a candidate that takes longer
            counts as a retryable failure and the next one of the fallback chain is tried (for streams:
            the wait for the first chunk). Synchronous candidate calls run in a daemon thread that is
            abandoned at the deadline; async ones are cancelled. Candidates keep their own timeouts.

    Example:
        ```python
        llm = ChatOptiRoute(models=[ChatOpenAI(model="gpt-4o-mini"), ChatOpenAI(model="gpt-4o")],
                            preferences="cost-effective")
        chain = prompt | llm | StrOutputParser()
        llm.invoke("Prove Fermat's little theorem", preferences="quality-first")
        ```
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True, protected_namespaces=())

    models: dict[str, Any] = Field(default_factory=dict)
    router: Any = Field(default=None, exclude=True, repr=False)
    preferences: Any = None
    bound_preferences: Any = None
    constraints: Any = None
    user_key: str | None = None
    model_name: str = Field(default="optiroute", alias="model")
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    max_retries: int | None = None
    api_key: SecretStr | None = None
    streaming: bool = False

    _runs: RunIndex = PrivateAttr(default_factory=RunIndex)

    def __init__(self, **kwargs: Any) -> None:
        try:
            super().__init__(**kwargs)
        except ValidationError as exc:  # our own check (timeout) raises an OptiRouteError: surface it
            inner = own_error(exc)
            if inner is not None:
                raise inner from None
            raise

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float | None:
        return check_timeout(value, "ChatOptiRoute timeout")

    @field_validator("models", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return dict(value)
        if isinstance(value, Sequence) and not isinstance(value, str):
            named: dict[str, Any] = {}
            for model in value:
                name = _name_of(chat_model_of(model)) if isinstance(model, Runnable) else str(model)
                key, i = name, 2
                while key in named:
                    key, i = f"{name}#{i}", i + 1
                named[key] = model
            return named
        return value

    @field_validator("models", mode="after")
    @classmethod
    def _runnable_candidates(cls, value: dict[str, Any]) -> dict[str, Any]:
        for model in value.values():
            candidate_of(model)  # raises the fix-it error for anything that is not a chat model
        return value

    def _chat_models(self) -> dict[str, BaseChatModel]:
        """Candidate key -> the chat model inside it (limits, tools and profile are the model's)."""
        return {k: chat_model_of(m) for k, m in self.models.items()}

    def _candidate(self, key: str) -> Candidate:
        return candidate_of(self.models[key])

    # ------------------------------------------------------------------ plumbing
    def _resolve_model_profile(self) -> ModelProfile | None:
        """The candidates' profiles combined (smallest limits; a feature only if all have it)."""
        models = self._chat_models().values()
        return combined_profile(models, (_supports_tools(m) for m in models))

    @property
    def _llm_type(self) -> str:
        return "optiroute"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "candidates": sorted(self.models)}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """What a run starts with, before anything is routed: ``ls_provider="optiroute"`` and this
        model's name (or a per-call ``model=``). The answer then names the candidate that answered,
        which the tracers put in the run's metadata when it ends
        (:data:`langchain_optiroute._routing.ANSWER_INFO_KEY`)."""
        params = LangSmithParams(ls_provider="optiroute", ls_model_type="chat")
        model = kwargs.get("model")
        params["ls_model_name"] = model if isinstance(model, str) else self.model_name
        temperature = kwargs.get("temperature", self.temperature)
        if isinstance(temperature, (int, float)):
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if isinstance(max_tokens, int):
            params["ls_max_tokens"] = max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    def get_num_tokens(self, text: str) -> int:
        """Approximate tokens as characters / 4 (the default downloads a GPT-2 tokenizer)."""
        return max(1, len(text) // 4) if text else 0

    def get_token_ids(self, text: str) -> list[int]:
        """Not available offline for a router of many models; use :meth:`get_num_tokens`."""
        raise NotImplementedError("ChatOptiRoute counts tokens approximately; use get_num_tokens().")

    def _router(self) -> Any:
        """The router given, or the one ``Router.default()`` both adapters share per process."""
        return router_or_default(self.router)

    # ------------------------------------------------------------------ planning
    def _plan_args(self, messages: list[BaseMessage], run_manager: Any, kwargs: dict[str, Any],
                   call: Call | None) -> dict[str, Any]:
        """Translate one LangChain call into :func:`optiroute.integration.plan_call`'s arguments (pops
        the routing kwargs, so what is left goes to the candidate)."""
        if not self.models:
            raise InvalidInputError("ChatOptiRoute needs at least one candidate model in `models`.")
        metadata = getattr(run_manager, "metadata", None) or (call.config.get("metadata") if call else None) or {}
        prefs = resolve_preferences(call=kwargs.pop("preferences", None),  # .bind() arrives here too
                                    bound=self.bound_preferences, metadata=metadata.get(PREFERENCES_METADATA_KEY),
                                    field=self.preferences)
        user = resolve_user_key(call=kwargs.pop("user_key", None), metadata=metadata.get(USER_METADATA_KEY),
                                field=self.user_key)
        constraints = kwargs.pop("constraints", None) or self.constraints
        run_id = getattr(run_manager, "run_id", None) or (call.run_id if call else None)
        kwargs.pop("model", None)  # a per-call model= override names the trace only
        cap = kwargs.get("max_tokens") or self.max_tokens
        structured = kwargs.get(STRUCTURED_KWARG)
        chat_models = self._chat_models()
        return {
            "router": self._router(), "messages": messages, "candidates": {k: k for k in self.models},
            "objects": chat_models,
            "preferences": prefs, "constraints": constraints, "user": user, "run_id": run_id,
            "needs_tools": bool(kwargs.get("tools")) or bool(getattr(structured, "needs_tools", False)),
            "tool_capable": {k for k, m in chat_models.items() if _supports_tools(m)},
            "max_tokens": cap if isinstance(cap, int) else None,
            "candidate_max_tokens": {k: _max_tokens_of(m) for k, m in chat_models.items()},
        }

    def _plan(
        self, messages: list[BaseMessage], run_manager: Any, kwargs: dict[str, Any], call: Call | None = None
    ) -> CallPlan:
        """Route and admit one call (see :meth:`_plan_args`)."""
        args = self._plan_args(messages, run_manager, kwargs, call)
        plan = plan_call(args.pop("router"), args.pop("messages"), **args)
        self._runs.remember(plan.run_id, plan.decision.decision_id)
        return plan

    async def _aplan(
        self, messages: list[BaseMessage], run_manager: Any, kwargs: dict[str, Any], call: Call | None = None
    ) -> CallPlan:
        """:meth:`_plan` with the routing in a worker thread, so the event loop is never blocked."""
        args = self._plan_args(messages, run_manager, kwargs, call)
        plan = await aplan_call(args.pop("router"), args.pop("messages"), **args)
        self._runs.remember(plan.run_id, plan.decision.decision_id)
        return plan

    def _call_kwargs(self, cand: Candidate, kwargs: dict[str, Any]) -> dict[str, Any]:
        """What one attempt sends to its candidate: the kwargs bound around it, our generation settings,
        and tools / structured output translated by the candidate's own integration (see
        :mod:`langchain_optiroute.structured`)."""
        out = {**cand.kwargs, **kwargs}
        if self.temperature is not None:
            out.setdefault("temperature", self.temperature)
        if self.max_tokens is not None:
            out.setdefault("max_tokens", self.max_tokens)
        return candidate_kwargs(cand.model, out)

    def _name_answer(self, result: ChatResult, plan: CallPlan, key: str, stop: list[str] | None,
                     call_kwargs: dict[str, Any]) -> ChatResult:
        """Name the candidate that answered on the result, for the tracers (see
        :data:`langchain_optiroute._routing.ANSWER_INFO_KEY`)."""
        identity = answer_identity(self._candidate(key).model, key, plan.decision.decision_id, stop or self.stop,
                                   call_kwargs)
        for gen in result.generations:
            name_answer(gen, identity)
        return result

    # ------------------------------------------------------------------ streaming entry points
    def stream(self, input: LanguageModelInput, config: Any = None, *, stop: list[str] | None = None,
               **kwargs: Any) -> Iterator[AIMessageChunk]:
        cfg, call = with_run_id(config)
        yield from super().stream(input, cfg, stop=stop, **{CALL_KWARG: call}, **kwargs)

    async def astream(self, input: LanguageModelInput, config: Any = None, *, stop: list[str] | None = None,
                      **kwargs: Any) -> AsyncIterator[AIMessageChunk]:
        cfg, call = with_run_id(config)
        async for chunk in super().astream(input, cfg, stop=stop, **{CALL_KWARG: call}, **kwargs):
            yield chunk

    def _get_invocation_params(self, stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        kwargs.pop(CALL_KWARG, None)  # plumbing, not a model parameter: keep it out of traces
        return super()._get_invocation_params(stop=stop, **kwargs)

    # ------------------------------------------------------------------ LangChain's cache
    def _get_llm_string(self, stop: list[str] | None = None, **kwargs: Any) -> str:
        """The cache key's model part, with the routing inputs that apply to this call: the same
        prompt under other preferences (from any source: kwarg, bind, scope, config metadata) or for
        another caller key is another entry, never the answer routed for someone else."""
        kwargs.pop(CALL_KWARG, None)
        metadata = getattr(run_manager_of(None), "metadata", None) or {}
        prefs = resolve_preferences(call=kwargs.get("preferences"), bound=self.bound_preferences,
                                    metadata=metadata.get(PREFERENCES_METADATA_KEY), field=self.preferences)
        user = resolve_user_key(call=kwargs.get("user_key"), metadata=metadata.get(USER_METADATA_KEY),
                                field=self.user_key)
        constraints = kwargs.get("constraints") or self.constraints
        routing = repr(sorted({"preferences": repr(prefs), "user_key": user, "constraints": repr(constraints)}.items()))
        return f"{super()._get_llm_string(stop=stop, **kwargs)}---optiroute:{routing}"

    def _convert_cached_generations(self, cache_val: list[Any]) -> list[ChatGeneration]:
        """A cache hit makes no routing decision: its stamp says ``cached`` and drops the decision id
        (feedback on it would otherwise reach the decision of the call that filled the cache)."""
        out = []
        for gen in super()._convert_cached_generations(cache_val):
            stamp = (gen.message.response_metadata or {}).get(STAMP_KEY)
            if isinstance(stamp, Mapping):
                fresh = {k: v for k, v in stamp.items() if k != "decision_id"}
                fresh["cached"] = True
                message = gen.message.model_copy(
                    update={"response_metadata": {**gen.message.response_metadata, STAMP_KEY: fresh}})
                gen = ChatGeneration(message=message, generation_info=gen.generation_info)
            out.append(gen)
        return out

    # ------------------------------------------------------------------ run manager for streamed invokes
    def _generate_with_cache(self, messages: list[BaseMessage], stop: list[str] | None = None,
                             run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        # langchain-core streams an invoke (streaming=True, astream_events, LangGraph "messages")
        # by calling _stream without the run manager: keep it where _stream finds it.
        with active_run_manager(run_manager):
            return super()._generate_with_cache(messages, stop=stop, run_manager=run_manager, **kwargs)

    async def _agenerate_with_cache(self, messages: list[BaseMessage], stop: list[str] | None = None,
                                    run_manager: AsyncCallbackManagerForLLMRun | None = None,
                                    **kwargs: Any) -> ChatResult:
        with active_run_manager(run_manager):
            return await super()._agenerate_with_cache(messages, stop=stop, run_manager=run_manager, **kwargs)

    # ------------------------------------------------------------------ sync
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        kwargs.pop(CALL_KWARG, None)
        plan = self._plan(messages, run_manager, kwargs)

        def call(key: str) -> ChatResult:
            cand = self._candidate(key)
            call_kwargs = self._call_kwargs(cand, kwargs)
            result = cand.generate(messages, stop or self.stop, run_manager, call_kwargs)
            return self._name_answer(result, plan, key, stop, call_kwargs)

        try:
            emit_decision(run_manager, plan.decision)
            key, result = plan.run(call, usage=_result_usage, before=lambda k: acquire(self._candidate(k).model),
                                   timeout_s=self.timeout)
        except BaseException as exc:
            plan.failed(exc)  # a no-op when the plan already closed the call
            raise
        for gen in result.generations:
            stamp_message(gen.message, plan.summary(key))
        return result

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        call = kwargs.pop(CALL_KWARG, None)
        # the run's manager names the run and its metadata; the candidate still gets the one
        # langchain-core passed (None when it reports the chunks itself, so tokens are sent once)
        run = run_manager if call is not None else run_manager_of(run_manager)
        plan = self._plan(messages, run, kwargs, call)
        try:
            emit_decision(run, plan.decision, call)
            yield from stream_chain(self, plan, messages, stop, run_manager, kwargs)
        except BaseException as exc:
            plan.failed(exc)
            raise

    # ------------------------------------------------------------------ async
    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        kwargs.pop(CALL_KWARG, None)
        plan = await self._aplan(messages, run_manager, kwargs)

        async def call(key: str) -> ChatResult:
            cand = self._candidate(key)
            call_kwargs = self._call_kwargs(cand, kwargs)
            result = await cand.agenerate(messages, stop or self.stop, run_manager, call_kwargs)
            return self._name_answer(result, plan, key, stop, call_kwargs)

        async def before(key: str) -> None:
            await aacquire(self._candidate(key).model)

        try:
            await aemit_decision(run_manager, plan.decision)
            key, result = await plan.arun(call, usage=_result_usage, before=before, timeout_s=self.timeout)
        except BaseException as exc:
            plan.failed(exc)
            raise
        for gen in result.generations:
            stamp_message(gen.message, plan.summary(key))
        return result

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        call = kwargs.pop(CALL_KWARG, None)
        run = run_manager if call is not None else run_manager_of(run_manager)
        plan = await self._aplan(messages, run, kwargs, call)
        try:
            await aemit_decision(run, plan.decision, call)
            async for chunk in astream_chain(self, plan, messages, stop, run_manager, kwargs):
                yield chunk
        except BaseException as exc:
            plan.failed(exc)
            raise

    def with_preferences(self, preferences: Any) -> ChatOptiRoute:
        """A copy that routes every call under ``preferences``, ranked like ``.bind(preferences=...)``.

        Unlike a ``.bind`` layer it stays a ``ChatOptiRoute``, so code that calls ``bind_tools`` on the
        model it is given (``create_agent``, LangGraph's prebuilt agents) keeps the preferences.
        """
        return self.model_copy(update={"bound_preferences": preferences})

    # ------------------------------------------------------------------ tools & structure
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Any],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools; each candidate tried formats them (and ``tool_choice``) with its own
        ``bind_tools``, and only tool-capable candidates stay eligible.

        ``tool_choice``: ``"auto"``, ``"none"``, ``"any"`` (``"required"`` and ``True`` mean the same),
        or a tool's name.
        """
        choice = neutral_tool_choice(tool_choice)
        return self.bind(tools=format_tools(tools), **({"tool_choice": choice} if choice else {}), **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: str = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """Structured output by ``function_calling`` (forced tool), ``json_mode`` or ``json_schema``; the
        candidate tried translates the request with its own ``with_structured_output``."""
        return structured_runnable(self, schema, include_raw=include_raw, method=method, strict=strict, **kwargs)

    # ------------------------------------------------------------------ feedback
    def decision_id_of(self, target: AIMessage | UUID | str) -> str:
        """The decision behind an AI message, a run id or (passed through) a decision id.

        Raises:
            FeedbackError: the message carries no decision, or no decision is known for the run id.
        """
        return decision_id_of(self._router(), _feedback_source(target), runs=self._runs)

    def record_feedback(self, target: AIMessage | UUID | str, score: float, *, comment: str | None = None) -> None:
        """Thumbs up (1.0) / down (0.0) or a 0..1 score for a routed answer, run id or decision id."""
        record_feedback(self._router(), _feedback_source(target), score, comment=comment, runs=self._runs)


def _feedback_source(target: Any) -> Any:
    """A message's stamped metadata; run and decision ids pass through."""
    return target.response_metadata if isinstance(target, BaseMessage) else target


def _result_usage(result: ChatResult) -> tuple[int | None, int | None]:
    return message_usage(result.generations[0].message)


def _max_tokens_of(model: BaseChatModel) -> int | None:
    """A candidate client's own output cap (``max_tokens``, or in ``extra_body`` for OpenAI-compatible
    servers), so a call without a cap still reserves a true upper bound of its cost."""
    value = getattr(model, "max_tokens", None)
    extra = getattr(model, "extra_body", None)
    if not isinstance(value, int) and isinstance(extra, Mapping):
        value = extra.get("max_tokens")
    return value if isinstance(value, int) else None


def _supports_tools(model: BaseChatModel) -> bool:
    return type(model).bind_tools is not BaseChatModel.bind_tools
