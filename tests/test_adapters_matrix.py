"""The matrix: every LangChain entry a user takes x every way of giving preferences routes to the same
model, with exactly one chat-model start/end pair (and one decision) per routed call.

Entries: invoke, stream, astream, astream_events, batch, abatch, a LangGraph graph streamed in each
stream mode, and ``create_agent`` (langchain 1.x) running a multi-step tool loop. Preferences: per-call
kwarg, ``.bind``, config metadata, an ``optiroute.preferences`` scope. Offline: fake candidates, the
real router.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph

import optiroute
from langchain_optiroute import DECISION_EVENT, ChatOptiRoute
from optiroute import Router
from tests.support.lc_fakes import EchoChat

MATH = "Prove that the square root of 2 is irrational, step by step."
BIG = "gpt-4o"  # decisions name the model as the caller did (its card: gpt-4o-2024-05-13)
HOWS = ["kwarg", "bind", "metadata", "scope"]
ENTRIES = ["invoke", "stream", "astream", "astream_events", "batch", "abatch",
           "graph-messages", "graph-updates", "graph-values", "agent"]


@pytest.fixture(scope="module")
def router():
    return Router.default()


class Pairs(BaseCallbackHandler):
    """Chat-model starts and ends, and decisions, as seen by a handler in the run's callbacks."""

    def __init__(self) -> None:
        self.starts: list[uuid.UUID] = []
        self.ends: list[uuid.UUID] = []
        self.models: list[str] = []

    def on_chat_model_start(self, serialized, messages, *, run_id, **kwargs):
        self.starts.append(run_id)

    def on_llm_end(self, response, *, run_id, **kwargs):
        self.ends.append(run_id)

    def on_custom_event(self, name, data, *, run_id, **kwargs):
        if name == DECISION_EVENT:
            self.models.append(data["model"])


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def stamps(messages: list[Any]) -> list[str]:
    return [m.response_metadata["optiroute"]["model"] for m in messages
            if isinstance(m, BaseMessage) and "optiroute" in m.response_metadata]


async def run(entry: str, how: str, router) -> tuple[list[str], Pairs, int]:
    """Run one entry with preferences given one way; returns (stamped models, handler, routed calls)."""
    llm = ChatOptiRoute(models=[EchoChat(model_name="gpt-4o"), EchoChat(model_name="gpt-4o-mini")], router=router,
                        preferences="cost-effective")
    pairs = Pairs()
    config: dict[str, Any] = {"callbacks": [pairs]}
    kwargs: dict[str, Any] = {}
    model: Any = llm
    if how == "kwarg":
        kwargs = {"preferences": "quality-first"}
    elif how == "bind":
        model = llm.bind(preferences="quality-first")
    elif how == "metadata":
        config["metadata"] = {"optiroute_preferences": "quality-first"}
    if entry == "agent" and how in ("kwarg", "bind"):
        # create_agent calls bind_tools on the model it is given, which a .bind layer forwards to the
        # model inside (dropping the bound kwargs): with_preferences binds and stays a ChatOptiRoute
        model = llm.with_preferences("quality-first")
    elif entry.startswith("graph") and how == "kwarg":
        model = llm.bind(preferences="quality-first")  # a graph node's call takes no kwargs of ours
    if entry.startswith("graph") or entry == "agent":
        return await run_graph(entry, model, config, pairs)
    if entry == "invoke":
        out = [model.invoke(MATH, config=config, **kwargs)]
    elif entry == "stream":
        out = [merge(list(model.stream(MATH, config=config, **kwargs)))]
    elif entry == "astream":
        out = [merge([c async for c in model.astream(MATH, config=config, **kwargs)])]
    elif entry == "astream_events":
        events = [e async for e in model.astream_events(MATH, config=config, version="v2", **kwargs)]
        out = [e["data"]["output"] for e in events if e["event"] == "on_chat_model_end"]
    elif entry == "batch":
        out = model.batch([MATH, MATH], config=config, **kwargs)
    else:
        out = await model.abatch([MATH, MATH], config=config, **kwargs)
    return stamps(out), pairs, len(out)


def merge(chunks: list[Any]) -> Any:
    merged = chunks[0]
    for c in chunks[1:]:
        merged += c
    return merged


async def run_graph(entry: str, model: Any, config: dict[str, Any], pairs: Pairs) -> tuple[list[str], Pairs, int]:
    inputs = {"messages": [HumanMessage(MATH)]}
    if entry == "agent":
        agent = create_agent(model, tools=[add], system_prompt="Use the add tool, then answer.")
        result = await agent.ainvoke({"messages": [HumanMessage("What is 1 + 2?")]}, config=config)
        ai = [m for m in result["messages"] if isinstance(m, AIMessage)]
        assert ai[0].tool_calls and not ai[-1].tool_calls and "tool" in [m.type for m in result["messages"]]
        return stamps(ai), pairs, len(ai)

    def node(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState).add_node("model", node).add_edge(START, "model").compile()
    mode = entry.split("-")[1]
    parts = list(graph.stream(inputs, config=config, stream_mode=mode))
    if mode == "messages":
        return [merge([m for m, _ in parts]).response_metadata["optiroute"]["model"]], pairs, 1
    final = parts[-1]["model"]["messages"] if mode == "updates" else parts[-1]["messages"]
    return stamps(final), pairs, 1


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("entry", ENTRIES)
async def test_every_entry_routes_every_way_once(router, entry, how):
    if how == "scope":
        with optiroute.preferences("quality-first"):
            models, pairs, calls = await run(entry, how, router)
    else:
        models, pairs, calls = await run(entry, how, router)
    assert models == [BIG] * calls and calls >= 1
    assert pairs.models == [BIG] * calls                         # one decision per routed call
    assert len(pairs.starts) == calls and sorted(map(str, pairs.ends)) == sorted(map(str, pairs.starts))
    if entry == "agent":
        assert calls == 2                                        # the tool call, then the answer
