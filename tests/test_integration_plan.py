"""The one call path both adapters translate (``optiroute.integration``), and the two adapters agreeing
on it: preference precedence, the shared default router, the stamped payload, fallbacks, feedback.

Hermetic: the real routing core with fake candidates (``EchoChat`` for LangChain, ``EchoLLM`` below
for LlamaIndex); no network, no model server.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import pytest
from llama_index.core.base.llms.types import (
    ChatMessage,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from llama_index.core.tools import FunctionTool
from pydantic import Field

import optiroute
from langchain_optiroute import ChatOptiRoute
from llama_index_optiroute import OptiRoute
from optiroute import FallbackExhaustedError, FeedbackError, InvalidInputError, Router
from optiroute import integration as oi
from optiroute.integration import default_router
from tests.support.lc_fakes import EchoChat

MATH = "Prove that the square root of 2 is irrational, step by step."
BIG, SMALL = "gpt-4o", "gpt-4o-mini"
BIG_CARD = "gpt-4o-2024-05-13"  # what the registry resolves "gpt-4o" to
BIG_NAME = BIG  # what decisions and the stamped metadata name it: the caller's own model string


class EchoLLM(CustomLLM):
    """Answers ``"<model>: <prompt>"`` with token usage; can fail, stream and 'parse tool calls'."""

    model: str = "echo"
    fail_with: Any = None
    fail_stream_first: Any = None
    function_calling: bool = False
    max_tokens: int | None = None
    calls: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model, is_function_calling_model=self.function_calling)

    def _reply(self, prompt: str, kwargs: dict[str, Any]) -> CompletionResponse:
        self.calls.append(kwargs)
        if self.fail_with is not None:
            raise self.fail_with
        text = f"{self.model}: {prompt}"
        return CompletionResponse(text=text, additional_kwargs={"prompt_tokens": 5, "completion_tokens": 3})

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return self._reply(prompt, kwargs)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        if self.fail_stream_first is not None:
            raise self.fail_stream_first
        words = self._reply(prompt, kwargs).text.split(" ")

        def gen() -> CompletionResponseGen:
            for i, w in enumerate(words):
                yield CompletionResponse(text=" ".join(words[: i + 1]), delta=w if i == 0 else " " + w)

        return gen()

    def get_tool_calls_from_response(self, response: Any, error_on_no_tool_call: bool = True, **kwargs: Any) -> Any:
        return [f"parsed by {self.model}"]


@pytest.fixture(scope="module")
def router():
    return Router.default()


def msgs(text: str = MATH) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=text)]


def li(router, **kw) -> OptiRoute:
    return OptiRoute(models={BIG: EchoLLM(model=BIG), SMALL: EchoLLM(model=SMALL)}, router=router, **kw)


def lc(router, **kw) -> ChatOptiRoute:
    return ChatOptiRoute(models=[EchoChat(model_name=BIG), EchoChat(model_name=SMALL)], router=router, **kw)


# ------------------------------------------------------------------------------------ precedence
def test_resolve_preferences_has_one_order():
    full = {"call": "balanced", "bound": "quality-first", "metadata": "latency-first", "field": "ethically-aligned"}
    with optiroute.preferences("cost-effective"):
        assert oi.resolve_preferences(**full) == "balanced"
        assert oi.resolve_preferences(**{**full, "call": None}) == "quality-first"
        scoped = oi.resolve_preferences(**{**full, "call": None, "bound": None})
        assert scoped.name == "cost-effective"  # the scope beats metadata and the field
    assert oi.resolve_preferences(metadata="latency-first", field="ethically-aligned") == "latency-first"
    assert oi.resolve_preferences(field="ethically-aligned") == "ethically-aligned"
    assert oi.resolve_preferences() is None  # the router's default


def test_resolve_user_key_has_the_same_order_without_a_scope():
    assert oi.resolve_user_key(call="a", bound="b", metadata="c", field="d") == "a"
    assert oi.resolve_user_key(bound="b", metadata="c", field="d") == "b"
    assert oi.resolve_user_key(metadata="c", field="d") == "c"
    assert oi.resolve_user_key(metadata="", field="d") == "d"
    assert oi.resolve_user_key() is None


def test_llama_index_precedence_matches_the_documented_order(router):
    llm = li(router, preferences="ethically-aligned")
    label = lambda r: r.additional_kwargs["optiroute"]["preferences"]  # noqa: E731
    bound = llm.with_preferences("quality-first")
    with optiroute.preferences("cost-effective"):
        assert label(bound.chat(msgs(), preferences="balanced")) == "balanced"   # per call > bound
        assert label(bound.chat(msgs())) == "quality-first"                       # bound > scope
        assert label(llm.chat(msgs())) == "cost-effective"                        # scope > constructor
        assert label(llm.complete(MATH)) == "cost-effective"
    assert label(llm.chat(msgs())) == "ethically-aligned"                         # constructor > router default
    assert label(li(router).chat(msgs())) == router.preferences.label()           # router default


# ------------------------------------------------------------------------------------ shared router
def test_both_adapters_share_one_lock_guarded_default_router(monkeypatch):
    built: list[object] = []

    def fake_default(cls, **kwargs):
        built.append(object())
        return built[-1]

    monkeypatch.setattr(default_router, "_DEFAULT", None)
    monkeypatch.setattr(Router, "default", classmethod(fake_default))
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(oi.shared_default_router())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and all(r is built[0] for r in got)
    chat = ChatOptiRoute(models=[EchoChat(model_name=BIG)])
    llm = OptiRoute(models={BIG: EchoLLM(model=BIG)})
    assert chat._router() is llm._router() is built[0]
    given = object()
    assert ChatOptiRoute(models=[EchoChat(model_name=BIG)], router=given)._router() is given
    assert OptiRoute(models={BIG: EchoLLM(model=BIG)}, router=given)._router() is given


# ------------------------------------------------------------------------------------ stamped payload
def test_both_adapters_stamp_the_same_payload(router):
    a = lc(router, preferences="quality-first").invoke(MATH).response_metadata["optiroute"]
    b = li(router, preferences="quality-first").chat(msgs()).additional_kwargs["optiroute"]
    assert set(a) == set(b) and "answered_by" in a and "fell_back_from" not in a
    assert a["model"] == b["model"] == a["answered_by"] == b["answered_by"] == BIG_NAME
    assert a["card"] == b["card"] == BIG_CARD  # the card is a separate field
    slow = TimeoutError("slow")
    a = ChatOptiRoute(models=[EchoChat(model_name=BIG, fail_with=slow), EchoChat(model_name=SMALL)],
                      router=router, preferences="quality-first").invoke(MATH).response_metadata["optiroute"]
    b = OptiRoute(models={BIG: EchoLLM(model=BIG, fail_with=slow), SMALL: EchoLLM(model=SMALL)},
                  router=router, preferences="quality-first").chat(msgs()).additional_kwargs["optiroute"]
    assert set(a) == set(b) and a["fell_back_from"] == b["fell_back_from"] == {BIG_NAME: "TimeoutError"}
    assert a["answered_by"] == b["answered_by"] == SMALL


# ------------------------------------------------------------------------------------ plan_call
def test_plan_keeps_caller_keys_and_resolves_names(router):
    plan = oi.plan_call(router, MATH, candidates={"big": BIG, "small": SMALL}, preferences="quality-first")
    assert plan.decision.model == BIG_NAME and plan.decision.card == BIG_CARD
    assert plan.chain[0] == "big" and set(plan.chain) == {"big", "small"}
    key, out = plan.run(lambda k: f"answer from {k}")
    assert (key, out) == ("big", "answer from big") and plan.closed
    assert plan.summary(key)["answered_by"] == BIG_NAME


def test_tools_restrict_the_pool_with_a_fix_it_error(router):
    plan = oi.plan_call(router, MATH, candidates={BIG: BIG, SMALL: SMALL}, preferences="quality-first",
                        needs_tools=True, tool_capable={SMALL})
    assert plan.chain == [SMALL] and plan.decision.model == SMALL
    with pytest.raises(InvalidInputError, match="tool calling"):
        oi.plan_call(router, MATH, candidates={BIG: BIG}, needs_tools=True, tool_capable=set())
    with pytest.raises(InvalidInputError, match="at least one candidate"):
        oi.plan_call(router, MATH, candidates={})


def test_admission_reserves_with_the_known_output_cap(router, monkeypatch):
    seen: list[int | None] = []
    real = router.open_call
    monkeypatch.setattr(router, "open_call", lambda d, **kw: seen.append(kw["max_tokens"]) or real(d, **kw))
    cands = {BIG: BIG, SMALL: SMALL}
    for kw in ({"max_tokens": 7}, {"candidate_max_tokens": {BIG: 30, SMALL: 20}},
               {"candidate_max_tokens": {BIG: 30, SMALL: None}}, {}):
        oi.plan_call(router, MATH, candidates=cands, **kw).failed(None)
    assert seen == [7, 30, None, None]


def test_run_falls_back_then_closes_on_exhaustion_and_surfaces_other_errors(router):
    def plan():
        return oi.plan_call(router, MATH, candidates={BIG: BIG, SMALL: SMALL}, preferences="quality-first")

    def flaky(key: str) -> str:
        if key == BIG:
            raise ConnectionError("down")
        return "ok"

    p = plan()
    assert p.run(flaky, usage=lambda _: (5, 2)) == (SMALL, "ok")
    assert set(p.errors) == {BIG_NAME} and p.summary(SMALL)["fell_back_from"] == {BIG_NAME: "ConnectionError"}
    p = plan()
    with pytest.raises(FallbackExhaustedError) as info:
        p.run(lambda k: (_ for _ in ()).throw(TimeoutError(k)))
    assert p.closed and set(info.value.errors) == {BIG_NAME, SMALL}
    p = plan()
    with pytest.raises(ValueError, match="bad request"):
        p.run(lambda k: (_ for _ in ()).throw(ValueError("bad request")))
    assert p.closed and not p.errors


def test_streams_fall_back_before_the_first_item_and_settle_when_stopped_early(router):
    p = oi.plan_call(router, MATH, candidates={BIG: BIG, SMALL: SMALL}, preferences="quality-first")

    def start(key: str):
        if key == BIG:
            raise ConnectionRefusedError("refused")
        return iter(["a", "b", "c"])

    opened = p.open_stream(start)
    assert (opened.key, opened.first) == (SMALL, "a") and not p.closed
    stream = p.relay(opened, each=str.upper)
    assert next(stream) == "A"
    stream.close()  # the consumer stops: what streamed was paid for
    assert p.closed and p.summary(opened.key)["fell_back_from"] == {BIG_NAME: "ConnectionRefusedError"}


async def test_async_run_and_stream(router):
    p = oi.plan_call(router, MATH, candidates={BIG: BIG, SMALL: SMALL}, preferences="quality-first")

    async def call(key: str) -> str:
        await asyncio.sleep(0)
        if key == BIG:
            raise TimeoutError("slow")
        return key

    assert await p.arun(call) == (SMALL, SMALL) and p.closed

    async def agen():
        yield 1
        yield 2

    async def start(key: str):  # an awaitable of a stream, as LlamaIndex's astream_* return
        return agen()

    p = oi.plan_call(router, MATH, candidates={BIG: BIG}, preferences="quality-first")
    opened = await p.aopen_stream(start)
    assert [x async for x in p.arelay(opened)] == [1, 2] and p.closed


# ------------------------------------------------------------------------------------ feedback
def test_feedback_target_reads_stamps_run_ids_and_decision_ids():
    did, run = uuid.uuid4().hex, uuid.uuid4()
    assert oi.feedback_target({"optiroute": {"decision_id": did}}).decision_id == did
    assert oi.feedback_target({"decision_id": did}).decision_id == did
    assert oi.feedback_target(did) == oi.FeedbackTarget(decision_id=did)
    assert oi.feedback_target(run) == oi.FeedbackTarget(run_id=str(run))
    assert oi.feedback_target(str(run)) == oi.FeedbackTarget(run_id=str(run))
    runs = oi.RunIndex(limit=2)
    runs.remember(run, did)
    assert oi.feedback_target(run, runs=runs).decision_id == did
    for i in range(3):
        runs.remember(f"r{i}", "x")
    assert runs.get(run) is None  # bounded
    with pytest.raises(FeedbackError, match="no OptiRoute decision"):
        oi.feedback_target({"model_name": "gpt-4o"})
    with pytest.raises(FeedbackError):
        oi.feedback_target(42)  # type: ignore[arg-type]


def test_record_feedback_by_stamp_run_id_and_decision_id(router):
    before = router.store.feedback_count()
    run_id = uuid.uuid4()
    plan = oi.plan_call(router, "Is the sea salty?", candidates={BIG: BIG}, run_id=run_id)
    key, _ = plan.run(lambda k: "yes")
    stamp = {"optiroute": plan.summary(key)}
    assert oi.record_feedback(router, stamp, 1.0) == plan.decision.decision_id
    assert oi.record_feedback(router, run_id, 0.0) == plan.decision.decision_id  # via the store
    assert oi.record_feedback(router, plan.decision.decision_id, 0.5) == plan.decision.decision_id
    assert router.store.feedback_count() == before + 3
    with pytest.raises(FeedbackError, match="run id"):
        oi.record_feedback(router, uuid.uuid4(), 1.0)


def test_llama_index_feedback_by_response_and_decision_id(router):
    llm = li(router)
    before = router.store.feedback_count()
    resp = llm.chat(msgs("Is the sea salty?"))
    llm.record_feedback(resp, 1.0)
    llm.record_feedback(resp.additional_kwargs["optiroute"]["decision_id"], 0.0)
    assert router.store.feedback_count() == before + 2
    with pytest.raises(FeedbackError):
        llm.record_feedback(EchoLLM(model=BIG).chat(msgs()), 1.0)


# ------------------------------------------------------------------------------------ LlamaIndex paths
def test_llama_index_streams_fall_back_and_stamp_every_item(router):
    llm = OptiRoute(models={BIG: EchoLLM(model=BIG, fail_stream_first=ConnectionRefusedError("refused")),
                            SMALL: EchoLLM(model=SMALL)}, router=router, preferences="quality-first")
    parts = list(llm.stream_chat(msgs()))
    assert parts and all(p.additional_kwargs["optiroute"]["answered_by"] == SMALL for p in parts)
    assert parts[-1].message.content.startswith(f"{SMALL}: ")
    text = "".join(p.delta or "" for p in llm.stream_complete("One, two,"))
    assert text.startswith(f"{SMALL}: ")


async def test_llama_index_async_paths(router):
    llm = li(router, preferences="quality-first")
    assert (await llm.achat(msgs())).additional_kwargs["optiroute"]["answered_by"] == BIG_NAME
    assert (await llm.acomplete("Water is")).text.startswith(f"{BIG}: ")
    gen = await llm.astream_chat(msgs("Say hi."))
    assert [x async for x in gen]
    gen2 = await llm.astream_complete("Hello")
    assert "".join([x.delta or "" async for x in gen2]).startswith(BIG)


def test_llama_index_dead_chain_and_tools_without_a_function_calling_candidate(router):
    dead = OptiRoute(models={BIG: EchoLLM(model=BIG, fail_with=ConnectionError("down"))}, router=router)
    with pytest.raises(FallbackExhaustedError):
        dead.chat(msgs("hi"))
    tool = FunctionTool.from_defaults(fn=lambda a, b: a * b, name="multiply", description="Multiply.")
    with pytest.raises(InvalidInputError, match="tool calling"):
        li(router).chat_with_tools([tool], user_msg="6 times 7?")


def test_llama_index_parses_tool_calls_with_the_candidate_that_answered(router):
    llm = li(router, preferences="quality-first")
    resp = llm.chat(msgs())
    assert resp.additional_kwargs["optiroute"]["answered_by"] == BIG_NAME  # the model string, not the key
    assert llm.get_tool_calls_from_response(resp) == [f"parsed by {BIG}"]
    with pytest.raises(InvalidInputError, match="not routed"):
        llm.get_tool_calls_from_response(EchoLLM(model=BIG).chat(msgs()))


def test_llama_index_per_call_constraints_route_and_are_not_forwarded(router):
    small = EchoLLM(model=SMALL)
    llm = OptiRoute(models={BIG: EchoLLM(model=BIG), SMALL: small}, router=router, preferences="quality-first")
    resp = llm.chat(msgs(), constraints={"blocked_models": [BIG]})
    assert resp.additional_kwargs["optiroute"]["model"] == SMALL and "constraints" not in small.calls[-1]
