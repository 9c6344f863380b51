"""Feedback by run id or decision id from anywhere that shares the store, and the two framework
handlers that forward a rating on a whole run to every routing decision inside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import ConfigurableField, RunnableLambda
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.dispatcher import instrument_tags
from llama_index.core.llms import MockLLM

from langchain_optiroute import ChatOptiRoute, OptiRouteCallbackHandler
from llama_index_optiroute import RUN_ID_TAG, OptiRoute, OptiRouteEventHandler
from optiroute import FeedbackError, Router, SQLiteFeedbackStore
from tests.support.lc_fakes import EchoChat

MATH = "Prove that the square root of 2 is irrational, step by step."
ROOT = Path(__file__).resolve().parents[1]


def lc(router, **kw) -> ChatOptiRoute:
    return ChatOptiRoute(models=[EchoChat(model_name="gpt-4o"), EchoChat(model_name="gpt-4o-mini")], router=router,
                         **kw)


@pytest.fixture
def shared(tmp_path):
    """Two routers on one SQLite file: what two processes of one service see."""
    path = tmp_path / "feedback.db"
    return path, Router.default(store=SQLiteFeedbackStore(path)), Router.default(store=SQLiteFeedbackStore(path))


def rated(path) -> int:
    """Feedback rows in the shared file, as a third process would count them."""
    return SQLiteFeedbackStore(path).feedback_count()


@pytest.mark.parametrize("entry", ["invoke", "streaming", "stream", "configurable"])
def test_langchain_run_id_feedback_from_another_router_on_the_store(shared, entry):
    path, here, there = shared
    run_id = uuid.uuid4()
    config = {"run_id": run_id}
    if entry == "configurable":
        llm = lc(here).configurable_fields(preferences=ConfigurableField(id="prefs"))
        config["configurable"] = {"prefs": "quality-first"}
        llm.invoke(MATH, config=config)
    elif entry == "stream":
        list(lc(here).stream(MATH, config=config))
    else:
        lc(here, streaming=entry == "streaming").invoke(MATH, config=config)
    remote = lc(there)
    did = remote.decision_id_of(run_id)
    assert did == here.decision_for_run(run_id)
    remote.record_feedback(run_id, 1.0)
    assert rated(path) == 1
    with pytest.raises(FeedbackError, match="run id"):
        remote.record_feedback(uuid.uuid4(), 1.0)


def test_langchain_feedback_from_another_process(shared):
    path, here, _ = shared
    run_id = uuid.uuid4()
    msg = lc(here, streaming=True).invoke(MATH, config={"run_id": run_id})
    script = (
        "import json, sys; from optiroute import Router, SQLiteFeedbackStore; "
        "from langchain_optiroute import ChatOptiRoute; from tests.support.lc_fakes import EchoChat; "
        "r = Router.default(store=SQLiteFeedbackStore(sys.argv[1])); "
        "llm = ChatOptiRoute(models=[EchoChat(model_name='gpt-4o')], router=r); "
        "print(json.dumps([llm.decision_id_of(sys.argv[2]), llm.record_feedback(sys.argv[2], 0.0)]))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", script, str(path), str(run_id)], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=300, check=True)
    did, _ = json.loads(out.stdout.strip().splitlines()[-1])
    assert did == msg.response_metadata["optiroute"]["decision_id"]
    assert rated(path) == 1


def test_langchain_handler_forwards_a_chain_rating_to_each_decision(shared):
    path, here, there = shared
    llm = lc(here)
    handler = OptiRouteCallbackHandler(router=here)
    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | llm | RunnableLambda(lambda m: m.content) | llm
    run_id = uuid.uuid4()
    chain.invoke({"q": "hello"}, config={"callbacks": [handler], "run_id": run_id})
    ids = handler.record_feedback(run_id, 1.0)
    assert len(ids) == 2 and rated(path) == 2
    # another process knows only the store, which holds the model calls' own run ids
    model_run = uuid.uuid4()
    llm.invoke("and again", config={"callbacks": [handler], "run_id": model_run})
    assert OptiRouteCallbackHandler(router=there).record_feedback(model_run, 0.5) == handler.decision_ids(model_run)
    with pytest.raises(FeedbackError, match="run id"):
        OptiRouteCallbackHandler(router=there).record_feedback(run_id, 0.5)  # a chain run: in memory only


async def test_llama_index_handler_forwards_a_run_rating_to_each_decision(shared):
    path, here, there = shared
    handler = OptiRouteEventHandler(router=here)
    root = get_dispatcher()
    root.add_event_handler(handler)
    try:
        llm = OptiRoute(models={"gpt-4o": MockLLM(), "gpt-4o-mini": MockLLM()}, router=here)
        run_id = str(uuid.uuid4())
        with instrument_tags({RUN_ID_TAG: run_id}):
            llm.chat([ChatMessage(role="user", content=MATH)])
            await llm.acomplete("Then say it shorter.")
        llm.complete("untagged")
        ids = handler.record_feedback(run_id, 1.0)
        assert len(ids) == 2 and rated(path) == 2
        assert here.decision_for_run(run_id) == ids[-1]
        remote = OptiRoute(models={"gpt-4o": MockLLM()}, router=there)
        remote.record_feedback(run_id, 0.0)  # by run id, through the shared store
        assert rated(path) == 3
    finally:
        root.event_handlers.remove(handler)
