"""ChatOptiRoute against real models: ChatOpenAI clients talking to a llama.cpp server on 127.0.0.1."""

from __future__ import annotations

import uuid
from typing import Annotated, TypedDict

import pytest
from langchain_core.callbacks import get_usage_metadata_callback
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode

from langchain_optiroute import ChatOptiRoute, OptiRouteCallbackHandler
from optiroute import Router

SMOL, GEMMA = "SmolLM2-135M-Instruct", "gemma-3-270m"


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


@pytest.fixture(scope="module")
def router():
    return Router.default()


@pytest.fixture(scope="module")
def llm(router, openai_chat, local_models):
    models = {SMOL: openai_chat("smollm2")}
    if GEMMA in local_models:
        models[GEMMA] = openai_chat("gemma3-270m")
    return ChatOptiRoute(models=models, router=router, preferences="latency-first")


def test_invoke_real_model_in_an_lcel_chain(llm):
    # First call, before any observed latency: latency-first picks the faster card (SmolLM2).
    # Later calls may legitimately move as observed latencies replace the card estimates.
    msg = llm.invoke("What is the capital of France?")
    meta = msg.response_metadata
    assert meta["optiroute"]["model"] == SMOL
    assert meta["model_name"]  # from the server, untouched
    assert msg.usage_metadata["input_tokens"] > 0
    chain = ChatPromptTemplate.from_messages([("user", "Say hello to {name}.")]) | llm | StrOutputParser()
    text = chain.invoke({"name": "Ada"})
    assert isinstance(text, str) and text.strip()


def test_usage_is_counted_once(llm):
    with get_usage_metadata_callback() as cb:
        msg = llm.invoke("Name a colour.")
    (usage,) = cb.usage_metadata.values()
    assert usage["output_tokens"] == msg.usage_metadata["output_tokens"]


def test_stream_from_a_real_server(llm):
    chunks = list(llm.stream("Count from one to five."))
    assert len(chunks) > 1
    assert sum("optiroute" in c.response_metadata for c in chunks) == 1
    assert "".join(str(c.content) for c in chunks).strip()


async def test_async_and_batch(llm):
    msg = await llm.ainvoke("Name an animal.")
    assert msg.content
    chunks = [c async for c in llm.astream("Name a fruit.")]
    assert "".join(str(c.content) for c in chunks).strip()
    outs = await llm.abatch(["One word: sky colour?", "One word: grass colour?"])
    assert all(o.content for o in outs)


def test_forced_tool_call_with_a_tool_capable_local_model(router, openai_chat):
    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    llm = ChatOptiRoute(models={SMOL: openai_chat("smollm2-tools", max_tokens=64)}, router=router)
    msg = llm.bind_tools([add], tool_choice="add").invoke("What is 2 plus 3? Use the add tool.")
    assert msg.tool_calls and msg.tool_calls[0]["name"] == "add"
    assert set(msg.tool_calls[0]["args"]) == {"a", "b"}  # grammar-constrained structure


def test_json_mode_structured_output(router, openai_chat):
    llm = ChatOptiRoute(models={SMOL: openai_chat("smollm2", max_tokens=64)}, router=router)
    out = llm.with_structured_output(None, method="json_mode").invoke(
        "Return a JSON object with a key 'city' whose value is Paris."
    )
    assert isinstance(out, dict)


def test_connection_refused_falls_back_to_a_live_model(router, openai_chat):
    from langchain_openai import ChatOpenAI

    from optiroute.local.server import free_port

    dead = ChatOpenAI(model="gpt-4o", base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="x", max_retries=0,
                      timeout=5)
    llm = ChatOptiRoute(models={"gpt-4o": dead, SMOL: openai_chat("smollm2")}, router=router,
                        preferences="quality-first")
    msg = llm.invoke("Explain why the sky is blue in one sentence.")
    meta = msg.response_metadata["optiroute"]
    assert meta["model"] == "gpt-4o" and meta["answered_by"] == SMOL  # the caller's own name
    assert list(meta["fell_back_from"]) == ["gpt-4o"]
    assert "ConnectionError" in meta["fell_back_from"]["gpt-4o"]
    chunks = list(llm.stream("Say hi."))
    first = next(c for c in chunks if "optiroute" in c.response_metadata)
    assert first.response_metadata["optiroute"]["answered_by"] == SMOL


def test_feedback_from_a_real_call_reaches_the_store(llm, router):
    before = router.store.feedback_count()
    run_id = uuid.uuid4()
    llm.invoke("Is water wet?", config={"run_id": run_id})
    llm.record_feedback(run_id, 1.0)
    assert router.store.feedback_count() == before + 1


def test_langgraph_tool_loop_routes_every_step(router, openai_chat):
    @tool
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    llm = ChatOptiRoute(models={SMOL: openai_chat("smollm2-tools", max_tokens=64)}, router=router)

    def plan(state: State) -> dict:  # step 1: must call the tool; routed quality-first
        return {"messages": [llm.bind_tools([multiply], tool_choice="multiply").invoke(
            state["messages"], preferences="quality-first")]}

    def answer(state: State) -> dict:  # step 2: answer in prose; routed latency-first
        # llama.cpp's server rejects assistant messages whose content is null (tool-call
        # histories), so this step restates the tool result instead of replaying the history.
        result = state["messages"][-1].content
        prompt = f"The multiply tool returned {result}. Answer the question: {state['messages'][0].content}"
        return {"messages": [llm.invoke(prompt, preferences="latency-first")]}

    g = StateGraph(State)
    g.add_node("plan", plan)
    g.add_node("tools", ToolNode([multiply]))
    g.add_node("answer", answer)
    g.add_edge(START, "plan")
    g.add_edge("plan", "tools")
    g.add_edge("tools", "answer")
    g.add_edge("answer", END)
    handler = OptiRouteCallbackHandler()
    run_id = uuid.uuid4()
    out = g.compile().invoke({"messages": [HumanMessage("What is 6 times 7?")]},
                             config={"callbacks": [handler], "run_id": run_id})
    msgs = out["messages"]
    assert isinstance(msgs[1], AIMessage) and msgs[1].tool_calls[0]["name"] == "multiply"
    assert isinstance(msgs[2], ToolMessage)
    assert isinstance(msgs[3], AIMessage)
    decisions = handler.decision_ids(run_id)
    assert len(decisions) == 2 and len(set(decisions)) == 2  # each model call routed on its own
    prefs = [m.response_metadata["optiroute"]["preferences"] for m in (msgs[1], msgs[3])]
    assert prefs == ["quality-first", "latency-first"]
