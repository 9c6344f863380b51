"""ChatOptiRoute against deterministic fake candidates (hermetic; the real routing core)."""

import uuid

import pytest
from langchain_core.callbacks import get_usage_metadata_callback
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel

import optiroute
from langchain_optiroute import DECISION_EVENT, ChatOptiRoute, OptiRouteCallbackHandler
from optiroute import FallbackExhaustedError, InvalidInputError, Router
from tests.support.lc_fakes import EchoChat, NoToolsChat

MATH = "Prove that the square root of 2 is irrational, step by step."


@pytest.fixture(scope="module")
def router():
    return Router.default()


def make(router, **kw):
    big, small = EchoChat(model_name="gpt-4o"), EchoChat(model_name="gpt-4o-mini")
    return ChatOptiRoute(models=[big, small], router=router, **kw), big, small


class Untouchable:
    """A router stand-in that fails the test if anything reads it."""

    def __getattr__(self, name):
        raise AssertionError(f"the router was used ({name}) before the first call")


def test_construction_is_cheap_and_lazy():
    llm = ChatOptiRoute(models=[EchoChat(model_name="gpt-4o")], router=Untouchable())
    assert llm._llm_type == "optiroute"
    assert set(llm.models) == {"gpt-4o"}


def test_invoke_routes_and_stamps_the_decision(router):
    llm, big, small = make(router, preferences="quality-first")
    msg = llm.invoke(MATH)
    meta = msg.response_metadata["optiroute"]
    # the caller's own model name comes back; the card is a separate field
    assert meta["model"] == "gpt-4o" and meta["answered_by"] == "gpt-4o" and meta["card"] == "gpt-4o-2024-05-13"
    assert msg.content.startswith("gpt-4o: ") and len(big.calls) == 1 and not small.calls
    assert meta["reason"] and len(meta["decision_id"]) == 32


def test_preference_precedence(router):
    llm, _, _ = make(router, preferences="cost-effective")
    pick = lambda m: m.response_metadata["optiroute"]["model"]  # noqa: E731
    assert pick(llm.invoke(MATH)) == "gpt-4o-mini"                                   # constructor
    cfg = {"metadata": {"optiroute_preferences": "quality-first"}}
    assert pick(llm.invoke(MATH, config=cfg)) == "gpt-4o"                 # config > constructor
    bound = llm.bind(preferences="cost-effective")
    assert pick(bound.invoke(MATH, config=cfg)) == "gpt-4o-mini"                     # bind > config
    assert pick(bound.invoke(MATH, preferences="quality-first")) == "gpt-4o"  # kwarg > bind


def test_preference_precedence_is_the_documented_order(router):
    """per call > bound > optiroute.preferences scope > config metadata > constructor > router default
    (the order of optiroute.integration.resolve_preferences, shared with the LlamaIndex adapter)."""
    llm, _, _ = make(router, preferences="ethically-aligned")
    label = lambda m: m.response_metadata["optiroute"]["preferences"]  # noqa: E731
    cfg = {"metadata": {"optiroute_preferences": "latency-first"}}
    bound = llm.bind(preferences="quality-first")
    with optiroute.preferences("cost-effective"):
        assert label(bound.invoke(MATH, config=cfg, preferences="balanced")) == "balanced"  # per call > bound
        assert label(bound.invoke(MATH, config=cfg)) == "quality-first"                    # bound > scope
        assert label(llm.invoke(MATH, config=cfg)) == "cost-effective"                     # scope > metadata
        streamed = [c for c in llm.stream(MATH, config=cfg) if "optiroute" in c.response_metadata]
        assert label(streamed[0]) == "cost-effective"
    assert label(llm.invoke(MATH, config=cfg)) == "latency-first"                          # metadata > constructor
    streamed = [c for c in llm.stream(MATH, config=cfg) if "optiroute" in c.response_metadata]
    assert label(streamed[0]) == "latency-first"
    assert label(llm.invoke(MATH)) == "ethically-aligned"                                  # constructor > default
    plain, _, _ = make(router)
    assert label(plain.invoke(MATH)) == router.preferences.label()                         # the router's default


def test_user_key_precedence(router):
    llm, _, _ = make(router, user_key="field")
    user = lambda m: router.store.get_decision(m.response_metadata["optiroute"]["decision_id"]).user  # noqa: E731
    cfg = {"metadata": {"optiroute_user_key": "meta"}}
    assert user(llm.bind(user_key="bound").invoke("hi", config=cfg, user_key="call")) == "call"
    assert user(llm.bind(user_key="bound").invoke("hi", config=cfg)) == "bound"
    assert user(llm.invoke("hi", config=cfg)) == "meta"
    assert user(llm.invoke("hi")) == "field"


def test_tokens_are_counted_once(router):
    llm, _, _ = make(router, preferences="quality-first")
    with get_usage_metadata_callback() as cb:
        llm.invoke("hello there")
    (usage,) = cb.usage_metadata.values()
    assert usage["input_tokens"] == 5


def test_lcel_chain_and_batch(router):
    llm, _, _ = make(router)
    chain = ChatPromptTemplate.from_messages([("user", "Tell me about {topic}")]) | llm | StrOutputParser()
    out = chain.batch([{"topic": "owls"}, {"topic": "tax law"}])
    assert len(out) == 2 and all("Tell me about" in o for o in out)


def test_stream_puts_metadata_on_exactly_one_chunk(router):
    llm, _, _ = make(router, preferences="quality-first")
    chunks = list(llm.stream("count to five please"))
    assert len(chunks) > 2 and all(isinstance(c, AIMessageChunk) for c in chunks)
    assert sum("optiroute" in c.response_metadata for c in chunks) == 1
    merged = chunks[0]
    for c in chunks[1:]:
        merged += c
    assert merged.response_metadata["optiroute"]["model"] == "gpt-4o"
    assert merged.response_metadata["model_name"] == "gpt-4o"
    assert merged.usage_metadata["input_tokens"] == 5


async def test_async_paths(router):
    llm, _, _ = make(router, preferences="quality-first")
    msg = await llm.ainvoke(MATH)
    assert msg.response_metadata["optiroute"]["model"] == "gpt-4o"
    chunks = [c async for c in llm.astream("hello world again")]
    assert sum("optiroute" in c.response_metadata for c in chunks) == 1
    outs = await llm.abatch(["a question", "another question"])
    assert len(outs) == 2


async def test_decision_is_a_custom_event(router):
    llm, _, _ = make(router)
    events = [e async for e in llm.astream_events("hi there", version="v2")]
    custom = [e for e in events if e["event"] == "on_custom_event"]
    assert custom and custom[0]["name"] == DECISION_EVENT and custom[0]["data"]["model"]


def test_retryable_errors_fall_back_and_others_surface(router):
    big = EchoChat(model_name="gpt-4o", fail_with=TimeoutError("slow"))
    small = EchoChat(model_name="gpt-4o-mini")
    llm = ChatOptiRoute(models=[big, small], router=router, preferences="quality-first")
    msg = llm.invoke(MATH)
    meta = msg.response_metadata["optiroute"]
    assert meta["model"] == "gpt-4o" and meta["answered_by"] == "gpt-4o-mini"
    assert meta["fell_back_from"] == {"gpt-4o": "TimeoutError"}
    bad = ChatOptiRoute(models=[EchoChat(model_name="gpt-4o", fail_with=ValueError("bad request")), small],
                        router=router, preferences="quality-first")
    with pytest.raises(ValueError, match="bad request"):
        bad.invoke(MATH)
    dead = ChatOptiRoute(models=[EchoChat(model_name="gpt-4o", fail_with=ConnectionError("down"))], router=router)
    with pytest.raises(FallbackExhaustedError):
        dead.invoke("hi")


def test_stream_failing_before_first_chunk_falls_back(router):
    big = EchoChat(model_name="gpt-4o", fail_stream_first=ConnectionRefusedError("refused"))
    llm = ChatOptiRoute(models=[big, EchoChat(model_name="gpt-4o-mini")], router=router, preferences="quality-first")
    chunks = list(llm.stream(MATH))
    meta = next(c.response_metadata["optiroute"] for c in chunks if "optiroute" in c.response_metadata)
    assert meta["answered_by"] == "gpt-4o-mini"
    assert "".join(c.content for c in chunks).startswith("gpt-4o-mini:")


async def test_async_fallback(router):
    big = EchoChat(model_name="gpt-4o", fail_with=TimeoutError("slow"))
    llm = ChatOptiRoute(models=[big, EchoChat(model_name="gpt-4o-mini")], router=router, preferences="quality-first")
    msg = await llm.ainvoke(MATH)
    assert msg.response_metadata["optiroute"]["answered_by"] == "gpt-4o-mini"


def test_feedback_by_message_run_id_and_decision_id(router):
    llm, _, _ = make(router)
    before = router.store.feedback_count()
    msg = llm.invoke("What is the boiling point of water?")
    llm.record_feedback(msg, 1.0)
    run_id = uuid.uuid4()
    llm.invoke("And at altitude?", config={"run_id": run_id})
    llm.record_feedback(run_id, 0.0)
    third = llm.invoke("Thanks!")
    llm.record_feedback(third.response_metadata["optiroute"]["decision_id"], 0.5)
    assert router.store.feedback_count() == before + 3


def test_run_id_feedback_finds_decisions_made_by_another_instance(router):
    llm, _, _ = make(router)
    run_id = uuid.uuid4()
    msg = llm.invoke("Hello there", config={"run_id": run_id})
    rebuilt, _, _ = make(router)  # e.g. configurable_fields builds a new model per call
    assert rebuilt.decision_id_of(run_id) == msg.response_metadata["optiroute"]["decision_id"]


def test_callback_handler_maps_chain_runs_to_decisions(router):
    llm, _, _ = make(router)
    handler = OptiRouteCallbackHandler()
    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | llm
    run_id = uuid.uuid4()
    msg = chain.invoke({"q": "hello"}, config={"callbacks": [handler], "run_id": run_id})
    assert handler.decision_ids(run_id) == [msg.response_metadata["optiroute"]["decision_id"]]


def test_bind_tools_keeps_only_tool_capable_candidates(router):
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    tools_model = EchoChat(model_name="gpt-4o-mini")
    llm = ChatOptiRoute(models=[NoToolsChat(model_name="gpt-4o"), tools_model], router=router,
                        preferences="quality-first")
    msg = llm.bind_tools([add], tool_choice="add").invoke("What is 1 + 2?")
    assert msg.tool_calls[0]["name"] == "add"
    assert msg.response_metadata["optiroute"]["model"] == "gpt-4o-mini"
    assert tools_model.calls[-1]["tools"][0]["function"]["name"] == "add"
    no_tools = ChatOptiRoute(models=[NoToolsChat(model_name="gpt-4o")], router=router)
    with pytest.raises(InvalidInputError, match="tool"):
        no_tools.bind_tools([add]).invoke("1+2?")


class Answer(BaseModel):
    a: int
    b: int


def test_structured_output_methods(router):
    fc = ChatOptiRoute(models=[EchoChat(model_name="gpt-4o")], router=router)
    assert fc.with_structured_output(Answer).invoke("give me a and b") == Answer(a=1, b=2)
    js = ChatOptiRoute(models=[EchoChat(model_name="gpt-4o", reply='{"a": 3, "b": 4}')], router=router)
    assert js.with_structured_output(Answer, method="json_mode").invoke("json please") == Answer(a=3, b=4)
    assert js.with_structured_output(Answer.model_json_schema(), method="json_schema").invoke("x") == {"a": 3, "b": 4}
    raw = js.with_structured_output(Answer, method="json_mode", include_raw=True).invoke("x")
    assert raw["parsed"] == Answer(a=3, b=4) and raw["parsing_error"] is None
    assert js.models["gpt-4o"].calls[-1]["response_format"]["type"] == "json_object"
    with pytest.raises(ValueError, match="method"):
        js.with_structured_output(Answer, method="xml")


def test_offline_token_counting_and_ls_params(router):
    llm, _, _ = make(router, temperature=0.2, max_tokens=64)
    assert llm.get_num_tokens("abcd" * 10) == 10
    assert llm.get_num_tokens_from_messages([HumanMessage("hello world")]) > 0
    params = llm._get_ls_params(model="override")
    assert params["ls_provider"] == "optiroute" and params["ls_model_name"] == "override"
    assert params["ls_temperature"] == 0.2 and params["ls_max_tokens"] == 64


def test_forwarded_generation_settings(router):
    llm, big, _ = make(router, temperature=0.3, max_tokens=12, preferences="quality-first")
    llm.invoke(MATH)
    assert big.calls[-1]["temperature"] == 0.3 and big.calls[-1]["max_tokens"] == 12


def test_feedback_through_the_adapter_changes_later_routing():
    router = Router.default()  # its own feedback store
    llm = ChatOptiRoute(models=[EchoChat(model_name="gpt-4o"), EchoChat(model_name="gpt-4o-mini")],
                        router=router, preferences="quality-first")
    first = llm.invoke(MATH).response_metadata["optiroute"]["model"]
    for _ in range(40):
        msg = llm.invoke(MATH)
        if msg.response_metadata["optiroute"]["model"] != first:
            break
        llm.record_feedback(msg, 0.0)  # thumbs down on the same model, again and again
    assert msg.response_metadata["optiroute"]["model"] != first


def test_observed_latency_reaches_the_router():
    router = Router.default()
    llm = ChatOptiRoute(models=[EchoChat(model_name="gpt-4o")], router=router)
    assert router.latency_ratio("gpt-4o") is None
    llm.invoke("hello")
    assert router.latency_ratio("gpt-4o") is not None
