"""What the frameworks read from a routed model: its profile, serialisation without the router, and
candidates that are chat-model Runnables (``.bind``, ``.with_retry``)."""

from __future__ import annotations

import json
import uuid

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd
from langchain_openai import ChatOpenAI
from llama_index.core.llms import MockLLM

from langchain_optiroute import ChatOptiRoute
from llama_index_optiroute import OptiRoute
from optiroute import InvalidInputError, Router
from tests.support.lc_fakes import EchoChat, NoToolsChat

MATH = "Prove that the square root of 2 is irrational, step by step."


@pytest.fixture(scope="module")
def router():
    return Router.default()


def test_profile_combines_the_candidates(router):
    big = ChatOpenAI(model="gpt-4o", api_key="sk-test-not-a-key")
    small = ChatOpenAI(model="gpt-4o-mini", api_key="sk-test-not-a-key")
    small.profile = {**small.profile, "max_input_tokens": 64_000, "image_inputs": False}
    profile = ChatOptiRoute(models=[big, small], router=router).profile
    assert profile["max_input_tokens"] == 64_000                       # the smallest context
    assert profile["max_output_tokens"] == min(big.profile["max_output_tokens"], small.profile["max_output_tokens"])
    assert profile["tool_calling"] is True and profile["image_inputs"] is False
    with_fake = ChatOptiRoute(models=[big, NoToolsChat(model_name="gpt-4o-mini")], router=router).profile
    assert with_fake["tool_calling"] is False and with_fake["max_input_tokens"] == big.profile["max_input_tokens"]
    assert ChatOptiRoute(models=[EchoChat(model_name="gpt-4o")], router=router).profile is None


def test_serialisation_leaves_the_router_out(router):
    llm = ChatOptiRoute(models=[EchoChat(model_name="gpt-4o")], router=router, preferences="quality-first")
    assert "Router" not in json.dumps(dumpd(llm)) and "router" not in llm.model_dump()
    li = OptiRoute(models={"gpt-4o": MockLLM()}, router=router, preferences="quality-first")
    data = json.loads(li.to_json())
    assert "router" not in data and data["preferences"] == "quality-first" and data["class_name"] == "OptiRoute"


class Starts(BaseCallbackHandler):
    def __init__(self) -> None:
        self.starts: list[uuid.UUID] = []

    def on_chat_model_start(self, serialized, messages, *, run_id, **kwargs):
        self.starts.append(run_id)


def test_bound_candidates_run_with_their_bound_kwargs_as_one_run(router):
    big = EchoChat(model_name="gpt-4o")
    llm = ChatOptiRoute(models=[big.bind(temperature=0.1, seed=7), EchoChat(model_name="gpt-4o-mini")],
                        router=router, preferences="quality-first")
    assert set(llm.models) == {"gpt-4o", "gpt-4o-mini"}
    starts = Starts()
    msg = llm.invoke(MATH, config={"callbacks": [starts]})
    assert msg.content.startswith("gpt-4o: ") and big.calls[-1]["temperature"] == 0.1 and big.calls[-1]["seed"] == 7
    assert len(starts.starts) == 1
    assert "".join(c.content for c in llm.stream(MATH)).startswith("gpt-4o: ") and big.calls[-1]["seed"] == 7


async def test_retrying_candidates_keep_their_retries(router):
    flaky = EchoChat(model_name="gpt-4o", fail_with=ValueError("flaky"))
    retried = flaky.with_retry(retry_if_exception_type=(ValueError,), stop_after_attempt=3,
                               wait_exponential_jitter=False)
    llm = ChatOptiRoute(models={"gpt-4o": retried, "gpt-4o-mini": EchoChat(model_name="gpt-4o-mini")},
                        router=router, preferences="quality-first")
    with pytest.raises(ValueError, match="flaky"):
        llm.invoke(MATH)
    assert len(flaky.calls) == 3                                       # the candidate's own retry policy ran
    flaky.fail_with = None
    assert (await llm.ainvoke(MATH)).content.startswith("gpt-4o: ")
    assert "".join([c.content async for c in llm.astream(MATH)]).startswith("gpt-4o: ")


def test_a_candidate_must_be_a_chat_model(router):
    with pytest.raises(InvalidInputError, match="chat model"):
        ChatOptiRoute(models={"gpt-4o": object()}, router=router)
