"""Every path a LangChain user takes carries the routing inputs to the decision.

Constructor ``preferences="cost-effective"`` routes to gpt-4o-mini; config metadata / bind / kwarg /
scope ``quality-first`` must route to gpt-4o on every entry (invoke, streaming=True, stream, astream,
astream_events, batch, abatch, LangGraph stream modes, configurable_fields), with the run id recorded
and exactly one start/end callback pair per routed call. Offline: fake candidates, the real router.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import ConfigurableField
from langgraph.graph import START, MessagesState, StateGraph

import optiroute
from langchain_optiroute import DECISION_EVENT, ChatOptiRoute
from optiroute import FeedbackError, Router
from tests.support.lc_fakes import EchoChat

MATH = "Prove that the square root of 2 is irrational, step by step."
BIG = "gpt-4o"  # decisions name the model as the caller did (its card: gpt-4o-2024-05-13)
SMALL = "gpt-4o-mini"
META = {"metadata": {"optiroute_preferences": "quality-first"}}


@pytest.fixture(scope="module")
def router():
    return Router.default()


def make(router, **kw):
    kw.setdefault("preferences", "cost-effective")
    return ChatOptiRoute(models=[EchoChat(model_name="gpt-4o"), EchoChat(model_name="gpt-4o-mini")],
                         router=router, **kw)


class Counter(BaseCallbackHandler):
    """Counts chat-model start/end pairs and custom decision events, per run id."""

    def __init__(self) -> None:
        self.starts: list[uuid.UUID] = []
        self.ends: list[uuid.UUID] = []
        self.decisions: list[dict[str, Any]] = []

    def on_chat_model_start(self, serialized, messages, *, run_id, **kwargs):
        self.starts.append(run_id)

    def on_llm_end(self, response, *, run_id, **kwargs):
        self.ends.append(run_id)

    def on_custom_event(self, name, data, *, run_id, **kwargs):
        if name == DECISION_EVENT:
            self.decisions.append(data)


class AsyncCounter(AsyncCallbackHandler, Counter):
    async def on_chat_model_start(self, serialized, messages, *, run_id, **kwargs):
        self.starts.append(run_id)

    async def on_llm_end(self, response, *, run_id, **kwargs):
        self.ends.append(run_id)

    async def on_custom_event(self, name, data, *, run_id, **kwargs):
        if name == DECISION_EVENT:
            self.decisions.append(data)


def model_of(msg: BaseMessage) -> str:
    return msg.response_metadata["optiroute"]["model"]


def first_stamp(chunks) -> dict[str, Any]:
    stamps = [c.response_metadata["optiroute"] for c in chunks if "optiroute" in c.response_metadata]
    assert len(stamps) == 1
    return stamps[0]


def check_one_call(router, counter: Counter, run_id: uuid.UUID, model: str = BIG) -> None:
    assert counter.starts == [run_id] and counter.ends == [run_id]
    assert [d["model"] for d in counter.decisions] == [model]
    assert router.decision_for_run(run_id) == counter.decisions[0]["decision_id"]


# ---------------------------------------------------------------- one model, every entry
@pytest.mark.parametrize("streaming", [False, True])
def test_invoke_routes_by_config_metadata_with_and_without_streaming(router, streaming):
    llm = make(router, streaming=streaming)
    counter, run_id = Counter(), uuid.uuid4()
    msg = llm.invoke(MATH, config={**META, "callbacks": [counter], "run_id": run_id})
    assert model_of(msg) == BIG
    check_one_call(router, counter, run_id)
    assert llm.decision_id_of(run_id) == msg.response_metadata["optiroute"]["decision_id"]


@pytest.mark.parametrize("streaming", [False, True])
async def test_ainvoke_routes_by_config_metadata_with_and_without_streaming(router, streaming):
    llm = make(router, streaming=streaming)
    counter, run_id = AsyncCounter(), uuid.uuid4()
    msg = await llm.ainvoke(MATH, config={**META, "callbacks": [counter], "run_id": run_id})
    assert model_of(msg) == BIG
    check_one_call(router, counter, run_id)


def test_stream_routes_by_config_metadata(router):
    counter, run_id = Counter(), uuid.uuid4()
    chunks = list(make(router).stream(MATH, config={**META, "callbacks": [counter], "run_id": run_id}))
    assert first_stamp(chunks)["model"] == BIG
    check_one_call(router, counter, run_id)


async def test_astream_routes_by_config_metadata(router):
    counter, run_id = AsyncCounter(), uuid.uuid4()
    chunks = [c async for c in make(router).astream(MATH, config={**META, "callbacks": [counter], "run_id": run_id})]
    assert first_stamp(chunks)["model"] == BIG
    check_one_call(router, counter, run_id)


@pytest.mark.parametrize("streaming", [False, True])
async def test_astream_events_routes_and_shows_the_decision(router, streaming):
    events = [e async for e in make(router, streaming=streaming).astream_events(MATH, config=META, version="v2")]
    custom = [e for e in events if e["event"] == "on_custom_event" and e["name"] == DECISION_EVENT]
    ends = [e for e in events if e["event"] == "on_chat_model_end"]
    assert [c["data"]["model"] for c in custom] == [BIG] and len(ends) == 1
    assert model_of(ends[0]["data"]["output"]) == BIG


@pytest.mark.parametrize("streaming", [False, True])
def test_batch_routes_each_input_by_its_config(router, streaming):
    llm = make(router, streaming=streaming)
    outs = llm.batch([MATH, MATH], config=[META, {}])
    assert [model_of(m) for m in outs] == [BIG, SMALL]


@pytest.mark.parametrize("streaming", [False, True])
async def test_abatch_routes_each_input_by_its_config(router, streaming):
    llm = make(router, streaming=streaming)
    outs = await llm.abatch([MATH, MATH], config=[META, {}])
    assert [model_of(m) for m in outs] == [BIG, SMALL]


@pytest.mark.parametrize("how", ["kwarg", "bind", "scope", "metadata"])
@pytest.mark.parametrize("streaming", [False, True])
def test_every_way_of_giving_preferences_reaches_a_streamed_call(router, how, streaming):
    llm = make(router, streaming=streaming)
    runnable, kwargs, config = llm, {}, {}
    if how == "kwarg":
        kwargs = {"preferences": "quality-first"}
    elif how == "bind":
        runnable = llm.bind(preferences="quality-first")
    elif how == "metadata":
        config = META
    if how == "scope":
        with optiroute.preferences("quality-first"):
            msg = runnable.invoke(MATH, config=config, **kwargs)
            chunks = list(runnable.stream(MATH, config=config, **kwargs))
    else:
        msg = runnable.invoke(MATH, config=config, **kwargs)
        chunks = list(runnable.stream(MATH, config=config, **kwargs))
    assert model_of(msg) == BIG and first_stamp(chunks)["model"] == BIG


def test_user_key_reaches_a_streaming_invoke(router):
    llm = make(router, streaming=True)
    msg = llm.invoke("hi", config={"metadata": {"optiroute_user_key": "alice"}})
    assert router.store.get_decision(msg.response_metadata["optiroute"]["decision_id"]).user == "alice"


# ---------------------------------------------------------------- configurable_fields
@pytest.mark.parametrize("streaming", [False, True])
def test_configurable_fields_route_and_feedback_by_run_id(router, streaming):
    llm = make(router, streaming=streaming).configurable_fields(
        preferences=ConfigurableField(id="prefs", name="Routing preferences"))
    run_id = uuid.uuid4()
    msg = llm.invoke(MATH, config={"configurable": {"prefs": "quality-first"}, "run_id": run_id})
    assert model_of(msg) == BIG
    plain = make(router)
    assert plain.decision_id_of(run_id) == msg.response_metadata["optiroute"]["decision_id"]
    before = router.store.feedback_count()
    plain.record_feedback(run_id, 1.0)
    assert router.store.feedback_count() == before + 1
    chunks = list(llm.stream(MATH, config={"configurable": {"prefs": "quality-first"}}))
    assert first_stamp(chunks)["model"] == BIG


# ---------------------------------------------------------------- LangGraph
def graph_of(llm):
    def node(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [llm.invoke(state["messages"])]}

    return StateGraph(MessagesState).add_node("model", node).add_edge(START, "model").compile()


def agraph_of(llm):
    async def node(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [await llm.ainvoke(state["messages"])]}

    return StateGraph(MessagesState).add_node("model", node).add_edge(START, "model").compile()


def _answer(mode: str, parts: list[Any]) -> dict[str, Any]:
    if mode == "messages":
        return first_stamp([m for m, _ in parts if isinstance(m, AIMessage)])
    if mode == "updates":
        return parts[-1]["model"]["messages"][-1].response_metadata["optiroute"]
    return parts[-1]["messages"][-1].response_metadata["optiroute"]


@pytest.mark.parametrize("mode", ["messages", "updates", "values"])
def test_langgraph_stream_modes_route_by_config_metadata(router, mode):
    graph = graph_of(make(router))
    counter, run_id = Counter(), uuid.uuid4()
    inputs = {"messages": [HumanMessage(MATH)]}
    parts = list(graph.stream(inputs, config={**META, "callbacks": [counter], "run_id": run_id}, stream_mode=mode))
    assert _answer(mode, parts)["model"] == BIG
    assert len(counter.starts) == 1 and counter.ends == counter.starts
    assert [d["model"] for d in counter.decisions] == [BIG]
    assert router.decision_for_run(counter.starts[0]) == counter.decisions[0]["decision_id"]


@pytest.mark.parametrize("mode", ["messages", "updates", "values"])
async def test_langgraph_astream_modes_route_by_config_metadata(router, mode):
    graph = agraph_of(make(router))
    inputs = {"messages": [HumanMessage(MATH)]}
    parts = [p async for p in graph.astream(inputs, config=META, stream_mode=mode)]
    assert _answer(mode, parts)["model"] == BIG


async def test_langgraph_astream_events_show_the_decision(router):
    for graph in (graph_of(make(router)), agraph_of(make(router))):
        events = [e async for e in graph.astream_events({"messages": [HumanMessage(MATH)]}, config=META,
                                                        version="v2")]
        custom = [e for e in events if e["event"] == "on_custom_event" and e["name"] == DECISION_EVENT]
        assert [c["data"]["model"] for c in custom] == [BIG]
        ends = [e for e in events if e["event"] == "on_chat_model_end"]
        assert len(ends) == 1 and model_of(ends[0]["data"]["output"]) == BIG


# ---------------------------------------------------------------- LangChain's cache
@pytest.mark.parametrize("streaming", [False, True])
def test_cache_keys_include_the_routing_inputs_and_never_reuse_a_decision(router, streaming):
    from langchain_core.caches import InMemoryCache

    llm = make(router, cache=InMemoryCache(), streaming=streaming)
    cheap = llm.invoke(MATH)
    assert model_of(cheap) == SMALL
    best = llm.invoke(MATH, config=META)                       # other preferences: not the cached answer
    assert model_of(best) == BIG
    with optiroute.preferences("quality-first"):
        assert model_of(llm.invoke(MATH)) == BIG                # a scope is a routing input too
    assert model_of(llm.invoke(MATH, preferences="quality-first")) == BIG
    again = llm.invoke(MATH)                                   # same inputs: served from the cache
    stamp = again.response_metadata["optiroute"]
    assert again.content == cheap.content and stamp["cached"] is True and stamp["model"] == SMALL
    assert "decision_id" not in stamp                          # no decision was made for this call
    with pytest.raises(FeedbackError, match="cache"):
        llm.record_feedback(again, 1.0)
    assert cheap.response_metadata["optiroute"]["decision_id"] != best.response_metadata["optiroute"]["decision_id"]
    assert "cached" not in llm.invoke(MATH, config={"metadata": {"optiroute_user_key": "bob"}}).response_metadata[
        "optiroute"]                                           # another caller key is charged: routed


async def test_async_cache_keys_include_the_routing_inputs(router):
    from langchain_core.caches import InMemoryCache

    llm = make(router, cache=InMemoryCache())
    assert model_of(await llm.ainvoke(MATH)) == SMALL
    assert model_of(await llm.ainvoke(MATH, config=META)) == BIG
    assert (await llm.ainvoke(MATH, config=META)).response_metadata["optiroute"]["cached"] is True


def test_callback_handler_skips_cached_answers(router):
    from langchain_core.caches import InMemoryCache

    from langchain_optiroute import OptiRouteCallbackHandler

    llm, handler = make(router, cache=InMemoryCache()), OptiRouteCallbackHandler()
    first, second = uuid.uuid4(), uuid.uuid4()
    msg = llm.invoke(MATH, config={"callbacks": [handler], "run_id": first})
    llm.invoke(MATH, config={"callbacks": [handler], "run_id": second})
    assert handler.decision_ids(first) == [msg.response_metadata["optiroute"]["decision_id"]]
    assert handler.decision_ids(second) == []


def test_with_preferences_ranks_like_bind_and_survives_bind_tools(router):
    llm = make(router).with_preferences("quality-first")
    assert isinstance(llm, ChatOptiRoute)
    with optiroute.preferences("cost-effective"):
        assert model_of(llm.invoke(MATH, config={"metadata": {"optiroute_preferences": "cost-effective"}})) == BIG
    assert model_of(llm.invoke(MATH, preferences="cost-effective")) == SMALL      # a per-call kwarg still wins

    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    assert model_of(llm.bind_tools([add]).invoke(MATH)) == BIG


async def test_a_candidate_that_disables_streaming_with_tools_answers_whole(router):
    """``disable_streaming="tool_calling"`` on a candidate (a server that streams tool calls badly) is
    honoured when a routed call streams: its tool call arrives in one piece; without tools it streams."""

    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    llm = ChatOptiRoute(models=[EchoChat(model_name="gpt-4o", disable_streaming="tool_calling")], router=router)
    tools = llm.bind_tools([add])
    for chunks in (list(tools.stream(MATH)), [c async for c in tools.astream(MATH)]):
        assert [c.tool_call_chunks[0]["name"] for c in chunks if c.tool_call_chunks] == ["add"]
        assert [c for c in chunks if c.content] == []
    assert len([c for c in llm.stream(MATH) if c.content]) > 1  # no tools: it streams word by word
