"""The LlamaIndex adapter on the paths a LlamaIndex user takes: Settings-level callbacks, the
instrumentation dispatcher, tool calls prepared and validated by each candidate, agents.

Offline: LlamaIndex's own mock LLMs as candidates, the real router.
"""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core import Settings
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent, LLMChatStartEvent
from llama_index.core.llms import MockLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool
from pydantic import Field

from llama_index_optiroute import OptiRoute, RoutingDecisionEvent
from optiroute import Router

MATH = "Prove that the square root of 2 is irrational, step by step."
BIG_CARD = "gpt-4o"  # decisions name the model as the caller did (its card: gpt-4o-2024-05-13)


@pytest.fixture(scope="module")
def router():
    return Router.default()


class Recorder(BaseEventHandler):
    events: list[Any] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "Recorder"

    def handle(self, event: Any, **kwargs: Any) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
def recorder():
    root = get_dispatcher()
    rec = Recorder()
    root.add_event_handler(rec)
    yield rec
    root.event_handlers.remove(rec)


class FormattedTools(MockFunctionCallingLLM):
    """A function-calling candidate with its own provider's tool format, its own rule for parallel
    tool calls (one unless allowed, as OpenAI's integration enforces) and an optional failure."""

    model: str = "fc"
    fail_with: Any = None
    prepared: list[dict[str, Any]] = Field(default_factory=list)

    def _prepare_chat_with_tools(self, tools, user_msg=None, chat_history=None, verbose=False,
                                 allow_parallel_tool_calls=False, tool_required=False, **kwargs):
        out = super()._prepare_chat_with_tools(tools, user_msg=user_msg, chat_history=chat_history)
        out["provider_tools"] = [f"{self.model}:{t.metadata.name}" for t in tools]
        self.prepared.append({"provider_tools": out["provider_tools"], **kwargs})
        return out

    def chat(self, messages, **kwargs):
        if self.fail_with is not None:
            raise self.fail_with
        return super().chat(messages, **kwargs)

    def _validate_chat_with_tools_response(self, response: ChatResponse, tools, allow_parallel_tool_calls=False,
                                           **kwargs):
        if not allow_parallel_tool_calls:
            calls = self.get_tool_calls_from_response(response, error_on_no_tool_call=False)
            if len(calls) > 1:
                blocks = [b for b in response.message.blocks if getattr(b, "tool_name", None) == calls[0].tool_name]
                response.message.blocks = blocks[:1]
        return response


def add(a: int = 1, b: int = 2) -> int:
    """Add two integers."""
    return a + b


def mul(a: int = 1, b: int = 2) -> int:
    """Multiply two integers."""
    return a * b


TOOLS = [FunctionTool.from_defaults(fn=add), FunctionTool.from_defaults(fn=mul)]


# ---------------------------------------------------------------- callbacks and instrumentation
def calls(llm) -> None:
    llm.complete("Tell me about owls")
    llm.chat([ChatMessage(role="user", content=MATH)])
    list(llm.stream_complete("Count to three"))
    list(llm.stream_chat([ChatMessage(role="user", content="Count to four")]))


def test_settings_callback_manager_counts_every_routed_call(router):
    alone = TokenCountingHandler(tokenizer=lambda text: text.split())
    calls(FormattedTools(callback_manager=CallbackManager([alone])))
    assert len(alone.llm_token_counts) == 4  # one LLM event per call, as the candidate reports them
    counter = TokenCountingHandler(tokenizer=lambda text: text.split())
    candidates = {"gpt-4o": FormattedTools(), "gpt-4o-mini": FormattedTools()}  # built before the settings
    old_cm, old_llm = Settings._callback_manager, Settings._llm
    try:
        Settings.callback_manager = CallbackManager([counter])
        Settings.llm = OptiRoute(models=candidates, router=router)
        calls(Settings.llm)
        assert len(counter.llm_token_counts) == 4
        assert [c.prompt_token_count for c in counter.llm_token_counts] == \
            [c.prompt_token_count for c in alone.llm_token_counts]
    finally:
        Settings._callback_manager, Settings._llm = old_cm, old_llm


async def acalls(llm) -> None:
    await llm.achat([ChatMessage(role="user", content=MATH)])
    await llm.acomplete("Tell me about owls")
    gen = await llm.astream_chat([ChatMessage(role="user", content="Count to three")])
    _ = [r async for r in gen]


async def test_async_calls_reach_the_callback_manager_once(router):
    alone = TokenCountingHandler(tokenizer=lambda text: text.split())
    await acalls(FormattedTools(callback_manager=CallbackManager([alone])))
    counter = TokenCountingHandler(tokenizer=lambda text: text.split())
    llm = OptiRoute(models={"gpt-4o": FormattedTools(), "gpt-4o-mini": FormattedTools()}, router=router,
                    callback_manager=CallbackManager([counter]))
    await acalls(llm)
    assert len(alone.llm_token_counts) >= 3 and len(counter.llm_token_counts) == len(alone.llm_token_counts)


def test_instrumentation_sees_each_routed_call_once_naming_the_candidate(router, recorder):
    llm = OptiRoute(models={"gpt-4o": FormattedTools(model="gpt-4o"), "gpt-4o-mini": MockLLM()}, router=router,
                    preferences="quality-first")
    llm.chat([ChatMessage(role="user", content=MATH)])
    starts, ends = recorder.of(LLMChatStartEvent), recorder.of(LLMChatEndEvent)
    assert len(starts) == 1 and len(ends) == 1 and len(recorder.of(RoutingDecisionEvent)) == 1
    assert starts[0].model_dict["class_name"] == "MockFunctionCallingLLM"  # the candidate, not "OptiRoute"


# ---------------------------------------------------------------- tools
def test_fallback_prepares_tools_with_its_own_model(router):
    big = FormattedTools(model="gpt-4o", fail_with=ConnectionError("down"))
    small = FormattedTools(model="gpt-4o-mini")
    llm = OptiRoute(models={"gpt-4o": big, "gpt-4o-mini": small}, router=router, preferences="quality-first")
    resp = llm.chat_with_tools(TOOLS, user_msg="What is 1 + 2?", tool_choice="add")
    meta = resp.additional_kwargs["optiroute"]
    assert meta["model"] == BIG_CARD and meta["answered_by"] == "gpt-4o-mini"
    assert big.prepared[-1]["provider_tools"] == ["gpt-4o:add", "gpt-4o:mul"]
    assert small.prepared[-1] == {"provider_tools": ["gpt-4o-mini:add", "gpt-4o-mini:mul"], "tool_choice": "add"}
    assert [c.tool_name for c in llm.get_tool_calls_from_response(resp)] == ["add"]


@pytest.mark.parametrize("parallel", [False, True])
async def test_allow_parallel_tool_calls_follows_the_candidates_rule(router, parallel):
    alone = FormattedTools(model="gpt-4o")
    expected = len(alone.get_tool_calls_from_response(
        alone.chat_with_tools(TOOLS, user_msg="add and multiply", allow_parallel_tool_calls=parallel)))
    assert expected == (2 if parallel else 1)
    llm = OptiRoute(models={"gpt-4o": FormattedTools(model="gpt-4o")}, router=router)
    for resp in (llm.chat_with_tools(TOOLS, user_msg="add and multiply", allow_parallel_tool_calls=parallel),
                 await llm.achat_with_tools(TOOLS, user_msg="add and multiply",
                                            allow_parallel_tool_calls=parallel)):
        assert len(llm.get_tool_calls_from_response(resp)) == expected


async def test_streamed_tool_calls_route_among_function_calling_candidates(router):
    llm = OptiRoute(models={"gpt-4o": MockLLM(), "gpt-4o-mini": FormattedTools(model="gpt-4o-mini")},
                    router=router, preferences="quality-first")
    parts = list(llm.stream_chat_with_tools(TOOLS, user_msg="What is 1 + 2?"))
    assert parts[-1].additional_kwargs["optiroute"]["answered_by"] == "gpt-4o-mini"
    gen = await llm.astream_chat_with_tools(TOOLS, user_msg="What is 1 + 2?")
    parts = [p async for p in gen]
    assert {c.tool_name for c in llm.get_tool_calls_from_response(parts[-1])} == {"add", "mul"}


# ---------------------------------------------------------------- agents
@pytest.mark.parametrize("workflow", [False, True])
async def test_function_agent_runs_a_tool_loop_over_two_candidates(router, recorder, workflow):
    big, small = FormattedTools(model="gpt-4o"), FormattedTools(model="gpt-4o-mini")
    llm = OptiRoute(models={"gpt-4o": big, "gpt-4o-mini": small}, router=router, preferences="quality-first")
    agent = FunctionAgent(name="calc", description="Does arithmetic.", tools=[TOOLS[0]], llm=llm,
                          system_prompt="Use the tools.")
    runner = AgentWorkflow(agents=[agent]) if workflow else agent
    result = await runner.run(user_msg="What is 1 + 2? Use the add tool.")
    assert "Tool calls complete." in str(result)
    decisions = recorder.of(RoutingDecisionEvent)
    assert len(decisions) == 2  # the tool call, then the answer after the tool result
    assert {d.decision["model"] for d in decisions} == {BIG_CARD}
    assert big.prepared and not small.prepared


class BreaksMidStream(MockLLM):
    """Streams one piece, then the provider connection drops."""

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        def gen() -> Any:
            yield CompletionResponse(text="a", delta="a")
            raise ConnectionError("dropped")

        return gen()


def test_a_stream_failing_mid_way_is_recorded_as_failed(router, recorder):
    own = Router.default()
    llm = OptiRoute(models={"gpt-4o": BreaksMidStream()}, router=own)
    chat = [ChatMessage(role="user", content="hi")]
    for stream in (lambda: llm.stream_complete("hi"), lambda: llm.stream_chat(chat)):
        with pytest.raises(ConnectionError):
            list(stream())
    rows = own.store.observations()
    assert len(rows) == 2 and all(not r.ok and r.error == "ConnectionError" for r in rows)
    assert not recorder.of(LLMChatEndEvent)  # the candidate's own instrumentation saw no clean end either
