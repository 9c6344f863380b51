"""Traces name the model that answered a routed call, not "optiroute".

LangChain: LangSmith's own ``LangChainTracer`` (its network calls replaced by a record of what it
would post at the run's start and patch at its end) and ``collect_runs``, over invoke, stream,
ainvoke, astream and a fallback. LlamaIndex: a real instrumentation event handler and span handler,
and a legacy callback handler. Offline: fake candidates (langchain-core's and LlamaIndex's own fakes
among them), the real router.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from itertools import cycle
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.tracers import LangChainTracer
from langchain_core.tracers.context import collect_runs
from langsmith import Client
from langsmith.schemas import LangSmithInfo
from llama_index.core.base.llms.types import ChatMessage, LLMMetadata
from llama_index.core.callbacks import CallbackManager
from llama_index.core.callbacks.base_handler import BaseCallbackHandler as LlamaCallbackHandler
from llama_index.core.callbacks.schema import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent, LLMChatStartEvent
from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler
from llama_index.core.llms.callbacks import llm_chat_callback
from llama_index.core.llms.mock import MockFunctionCallingLLM
from pydantic import Field

from langchain_optiroute import ChatOptiRoute
from llama_index_optiroute import OptiRoute, RoutingDecisionEvent
from optiroute import Router
from tests.support.lc_fakes import EchoChat

MATH = "Prove that the square root of 2 is irrational, step by step."
CHEAP = "Say hi."


@pytest.fixture(scope="module")
def router():
    return Router.default()


class RecordingTracer(LangChainTracer):
    """LangSmith's tracer, recording the run metadata it would post (start) and patch (end)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("client", Client(api_key="offline-test", api_url="http://127.0.0.1:9",
                                           info=LangSmithInfo(), auto_batch_tracing=False))
        super().__init__(**kwargs)
        self.posted: list[dict[str, Any]] = []
        self.patched: list[dict[str, Any]] = []

    def copy_with_metadata_defaults(self, **kwargs: Any) -> RecordingTracer:
        # langchain-core copies the tracer per call (with the call's metadata defaults): share the record
        twin = super().copy_with_metadata_defaults(**kwargs)
        assert isinstance(twin, RecordingTracer)
        twin.posted, twin.patched = self.posted, self.patched
        return twin

    def _persist_run_single(self, run: Any) -> None:
        self.posted.append(copy.deepcopy(run.extra.get("metadata") or {}))

    def _update_run_single(self, run: Any) -> None:  # type: ignore[override]
        self.patched.append(copy.deepcopy(run.extra.get("metadata") or {}))


def make(router, **kw):
    """gpt-4o answers quality-first prompts; gpt-4o-mini is langchain-core's own fake (it names no
    model, so the trace uses the candidate's key) and answers cost-effective ones."""
    mini = GenericFakeChatModel(messages=cycle([AIMessage("hi from the small model")]))
    return ChatOptiRoute(models={"gpt-4o": EchoChat(model_name="gpt-4o"), "gpt-4o-mini": mini}, router=router, **kw)


def merged(chunks: Any) -> AIMessageChunk:
    out = AIMessageChunk(content="")
    for chunk in chunks:
        out += chunk
    return out


def _config(tracer: RecordingTracer) -> dict[str, Any]:
    return {"callbacks": [tracer]}


def _one_llm_run(tracer: RecordingTracer) -> tuple[dict[str, Any], dict[str, Any]]:
    assert len(tracer.posted) == 1 and len(tracer.patched) == 1
    return tracer.posted[0], tracer.patched[0]


@pytest.mark.parametrize("path", ["invoke", "stream", "ainvoke", "astream", "streaming_invoke"])
async def test_langsmith_run_ends_naming_the_answering_candidate(router, path):
    llm = make(router, preferences="quality-first", **({"streaming": True} if path == "streaming_invoke" else {}))
    tracer = RecordingTracer()
    if path in ("invoke", "streaming_invoke"):
        msg = llm.invoke(MATH, config=_config(tracer))
    elif path == "stream":
        msg = merged(llm.stream(MATH, config=_config(tracer)))
    elif path == "ainvoke":
        msg = await llm.ainvoke(MATH, config=_config(tracer))
    else:
        msg = merged([c async for c in llm.astream(MATH, config=_config(tracer))])
    assert msg.response_metadata["optiroute"]["model"] == "gpt-4o"
    start, end = _one_llm_run(tracer)
    assert start["ls_provider"] == "optiroute" and start["ls_model_name"] == "optiroute"  # nothing routed yet
    assert end["ls_provider"] == "echo" and end["ls_model_name"] == "gpt-4o"              # the candidate's own
    gateway = end["ls_gateway_info"]
    assert gateway["router"] == "optiroute" and gateway["candidate"] == "gpt-4o"
    assert gateway["decision_id"] == msg.response_metadata["optiroute"]["decision_id"]
    assert "lc_gateway_metadata" not in msg.response_metadata  # the trace's, not the caller's


def test_other_preferences_name_the_other_candidate(router):
    tracer = RecordingTracer()
    msg = make(router, preferences="cost-effective").invoke(CHEAP, config=_config(tracer))
    assert msg.content == "hi from the small model"
    _, end = _one_llm_run(tracer)
    # a candidate that names no model of its own is named by its key; its provider is its own
    assert end["ls_model_name"] == "gpt-4o-mini" and end["ls_provider"] == "genericfakechatmodel"


@pytest.mark.parametrize("stream", [False, True])
def test_after_a_fallback_the_run_names_the_model_that_answered(router, stream):
    big = EchoChat(model_name="gpt-4o", fail_with=ConnectionError("down"), fail_stream_first=ConnectionError("down"))
    llm = ChatOptiRoute(models=[big, EchoChat(model_name="gpt-4o-mini")], router=router, preferences="quality-first")
    with collect_runs() as runs:
        msg = merged(llm.stream(MATH)) if stream else llm.invoke(MATH)
    stamp = msg.response_metadata["optiroute"]
    assert stamp["model"] == "gpt-4o" and stamp["answered_by"] == "gpt-4o-mini"  # decided, then fell back
    (run,) = runs.traced_runs
    assert run.extra["metadata"]["ls_model_name"] == "gpt-4o-mini"
    assert run.extra["metadata"]["ls_gateway_info"]["candidate"] == "gpt-4o-mini"


class GatewayChunks(EchoChat):
    """A candidate that itself went through a gateway: its *last* chunk names what the gateway resolved."""

    def _stream(self, messages, stop=None, run_manager=None, **kwargs) -> Iterator[ChatGenerationChunk]:
        chunks = list(super()._stream(messages, stop=stop, run_manager=run_manager, **kwargs))
        info = {"lc_gateway_metadata": {"model": self.model_name, "provider": "gw", "region": "eu"}}
        chunks[-1] = ChatGenerationChunk(message=chunks[-1].message, generation_info=info)
        yield from chunks


def test_a_streamed_candidates_own_gateway_info_is_kept_without_doubling_names(router):
    llm = ChatOptiRoute(models=[GatewayChunks(model_name="gpt-4o")], router=router)
    with collect_runs() as runs:
        list(llm.stream(MATH))
    meta = runs.traced_runs[0].extra["metadata"]
    assert meta["ls_model_name"] == "gpt-4o" and meta["ls_provider"] == "gatewaychunks"  # not "gpt-4ogpt-4o"
    assert meta["ls_gateway_info"]["region"] == "eu"


def test_a_cache_hit_keeps_naming_the_model_that_made_the_answer(router):
    from langchain_core.caches import InMemoryCache

    llm = make(router, preferences="quality-first", cache=InMemoryCache())
    llm.invoke(MATH)
    with collect_runs() as runs:
        hit = llm.invoke(MATH)
    assert hit.response_metadata["optiroute"]["cached"] is True
    assert runs.traced_runs[0].extra["metadata"]["ls_model_name"] == "gpt-4o"


def test_hosted_candidates_are_named_as_langsmith_prices_them():
    """What the run of each hosted candidate of the cookbook's mix would end with (built offline; the
    identity is computed from the candidate and the kwargs of the attempt, tools included)."""
    from langchain_anthropic import ChatAnthropic
    from langchain_google_genai import ChatGoogleGenerativeAI
    from langchain_openai import ChatOpenAI

    from langchain_optiroute._routing import answer_identity
    from langchain_optiroute.structured import candidate_kwargs

    tool = {"type": "function", "function": {"name": "multiply", "description": "Multiply.", "parameters": {
        "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}}}
    for model, provider, name in ((ChatOpenAI(model="gpt-4o-mini", api_key="sk-offline"), "openai", "gpt-4o-mini"),
                                  (ChatAnthropic(model="claude-haiku-4-5", api_key="offline"), "anthropic",
                                   "claude-haiku-4-5"),
                                  (ChatGoogleGenerativeAI(model="gemini-2.5-flash", google_api_key="offline"),
                                   "google_genai", "gemini-2.5-flash")):
        kwargs = candidate_kwargs(model, {"tools": [tool], "tool_choice": "multiply", "temperature": 0.2})
        identity = answer_identity(model, "key", "d1", None, kwargs)
        assert (identity["provider"], identity["model"]) == (provider, name)


# ---------------------------------------------------------------- LlamaIndex
class Recorder(BaseEventHandler):
    events: list[Any] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "ObservabilityRecorder"

    def handle(self, event: Any, **kwargs: Any) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
def instrumented():
    root = get_dispatcher()
    events, spans = Recorder(), SimpleSpanHandler()
    root.add_event_handler(events)
    root.add_span_handler(spans)
    yield events, spans
    root.event_handlers.remove(events)
    root.span_handlers.remove(spans)


class Named(MockFunctionCallingLLM):
    """A candidate with a model name in its metadata, as every provider integration has."""

    model: str = "mock"

    @property
    def metadata(self) -> LLMMetadata:
        return super().metadata.model_copy(update={"model_name": self.model})


class Down(Named):
    """A provider that is down: its own instrumented ``chat`` starts, then fails."""

    @llm_chat_callback()
    def chat(self, messages, **kwargs):
        raise ConnectionError("down")


def li_router(router, big: Any = None) -> OptiRoute:
    return OptiRoute(models={"gpt-4o": big or Named(model="gpt-4o"), "gpt-4o-mini": Named(model="gpt-4o-mini")},
                     router=router)


@pytest.mark.parametrize("path", ["chat", "achat", "stream_chat", "astream_chat"])
async def test_llama_index_chat_events_name_the_answering_model(router, instrumented, path):
    events, spans = instrumented
    llm, msgs = li_router(router), [ChatMessage(role="user", content=MATH)]
    if path == "chat":
        resp = llm.chat(msgs, preferences="quality-first")
    elif path == "achat":
        resp = await llm.achat(msgs, preferences="quality-first")
    elif path == "stream_chat":
        resp = list(llm.stream_chat(msgs, preferences="quality-first"))[-1]
    else:
        resp = [r async for r in await llm.astream_chat(msgs, preferences="quality-first")][-1]
    starts, ends = events.of(LLMChatStartEvent), events.of(LLMChatEndEvent)
    (decision,) = events.of(RoutingDecisionEvent)
    assert decision.decision["model"] == "gpt-4o" and starts and ends  # (the mock's achat calls its chat)
    assert {e.model_dict["model_name"] for e in starts} == {"gpt-4o"}
    assert {e.model_dict["class_name"] for e in starts} == {"MockFunctionCallingLLM"}
    assert {e.response.additional_kwargs["optiroute"]["answered_by"] for e in ends} == {"gpt-4o"}
    assert resp.additional_kwargs["optiroute"]["decision_id"] == decision.decision["decision_id"]
    by_id = {s.id_: s for s in spans.completed_spans}
    assert by_id[decision.span_id].id_.startswith(f"OptiRoute.{path}-")
    # the candidate's span (streams: opened on the first read) is a child of the routed call's span
    assert by_id[starts[0].span_id].parent_id == decision.span_id


def test_llama_index_fallback_events_name_the_model_that_answered(router, instrumented):
    events, _ = instrumented
    llm = li_router(router, big=Down(model="gpt-4o"))
    resp = llm.chat([ChatMessage(role="user", content=MATH)], preferences="quality-first")
    assert resp.additional_kwargs["optiroute"]["answered_by"] == "gpt-4o-mini"
    ends = events.of(LLMChatEndEvent)
    assert [e.model_dict["model_name"] for e in events.of(LLMChatStartEvent)] == ["gpt-4o", "gpt-4o-mini"]
    assert len(ends) == 1 and ends[0].response.additional_kwargs["optiroute"]["answered_by"] == "gpt-4o-mini"


class LegacyRecorder(LlamaCallbackHandler):
    """A legacy callback handler (what Langfuse's and older tracers hook): records each LLM event's
    serialized model."""

    def __init__(self) -> None:
        super().__init__(event_starts_to_ignore=[], event_ends_to_ignore=[])
        self.models: list[str] = []

    def on_event_start(self, event_type, payload=None, event_id="", parent_id="", **kwargs):
        if event_type == CBEventType.LLM and payload:
            self.models.append(payload[EventPayload.SERIALIZED].get("model_name"))
        return event_id

    def on_event_end(self, event_type, payload=None, event_id="", **kwargs):
        return None

    def start_trace(self, trace_id=None):
        return None

    def end_trace(self, trace_id=None, trace_map=None):
        return None


def test_llama_index_callback_events_serialize_the_answering_model(router):
    legacy = LegacyRecorder()
    llm = OptiRoute(models={"gpt-4o": Named(model="gpt-4o"), "gpt-4o-mini": Named(model="gpt-4o-mini")},
                    router=router, callback_manager=CallbackManager([legacy]))
    llm.chat([ChatMessage(role="user", content=CHEAP)], preferences="cost-effective")
    llm.chat([ChatMessage(role="user", content=MATH)], preferences="quality-first")
    assert legacy.models == ["gpt-4o-mini", "gpt-4o"]
