"""Async paths of both adapters route off the event loop: a ticker task on the loop keeps ticking
while calls are routed (the decision runs in optiroute.integration's bounded worker pool), and a
database store's accounting at a call's end is written off the loop too, before the call returns."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.llms import MockLLM

from langchain_optiroute import ChatOptiRoute
from llama_index_optiroute import OptiRoute
from optiroute import Budget, Router
from optiroute.store.sql import SQLiteFeedbackStore
from tests.support.lc_fakes import EchoChat

#: The longest the loop may go without running the ticker while 8 calls route. Measured on the
#: 2-core development machine: 390-410 ms when the decisions ran on the loop, 20-40 ms with them in
#: the worker pool (the GIL is shared with the routing threads); the bound leaves room for a busy box.
STALL_BOUND_S = 0.15
PROMPTS = [f"Question {i}: explain how a {w} works, with an example and its trade-offs."
           for i, w in enumerate(["hash map", "B-tree", "bloom filter", "skip list", "trie", "heap",
                                  "ring buffer", "LRU cache"])]


@pytest.fixture(scope="module")
def router():
    r = Router.default()
    r.decide("warm up the encoder")  # load the parts first: the first load is not routing
    return r


async def longest_stall(start) -> tuple[float, object]:
    """Run ``start()`` (started once the ticker runs) while a ticker sleeps 1 ms at a time; return
    the longest gap between ticks and the work's result."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    try:
        result = await start()
    finally:
        done.set()
        await task
    return max(gaps), result


async def test_langchain_abatch_does_not_block_the_loop(router):
    llm = ChatOptiRoute(models=[EchoChat(model_name="gpt-4o"), EchoChat(model_name="gpt-4o-mini")],
                        router=router)
    stall, outs = await longest_stall(lambda: llm.abatch(PROMPTS))
    assert len(outs) == 8 and all("optiroute" in m.response_metadata for m in outs)
    assert stall < STALL_BOUND_S, f"the event loop stalled for {stall * 1000:.0f} ms"


async def test_langchain_astream_does_not_block_the_loop(router):
    llm = ChatOptiRoute(models=[EchoChat(model_name="gpt-4o"), EchoChat(model_name="gpt-4o-mini")],
                        router=router)

    async def consume(prompt: str) -> int:
        return len([c async for c in llm.astream(prompt)])

    stall, counts = await longest_stall(lambda: asyncio.gather(*(consume(p) for p in PROMPTS)))
    assert all(n > 1 for n in counts)
    assert stall < STALL_BOUND_S, f"the event loop stalled for {stall * 1000:.0f} ms"


async def test_llama_index_async_calls_do_not_block_the_loop(router):
    llm = OptiRoute(models={"gpt-4o": MockLLM(), "gpt-4o-mini": MockLLM()}, router=router)

    async def stream(prompt: str) -> str:
        gen = await llm.astream_chat([ChatMessage(role="user", content=prompt)])
        return "".join([r.delta or "" async for r in gen])

    def calls():
        calls = [llm.achat([ChatMessage(role="user", content=p)]) for p in PROMPTS[:4]]
        calls += [llm.acomplete(p) for p in PROMPTS[4:6]] + [stream(p) for p in PROMPTS[6:]]
        return asyncio.gather(*calls)

    stall, outs = await longest_stall(calls)
    assert len(outs) == 8
    assert stall < STALL_BOUND_S, f"the event loop stalled for {stall * 1000:.0f} ms"


class WriterNotingStore(SQLiteFeedbackStore):
    """The real SQLite store, noting the thread of each budget reservation and observation row."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.writers: list[int] = []
        self.reservers: list[int] = []

    def _put_observation(self, rec) -> None:
        self.writers.append(threading.get_ident())
        super()._put_observation(rec)

    def _reserve(self, scopes, amount):
        self.reservers.append(threading.get_ident())
        return super()._reserve(scopes, amount)


@pytest.fixture()
def db_router(tmp_path):
    store = WriterNotingStore(tmp_path / "state.db")
    r = Router.default(store=store, budget=Budget(total_usd=5.0))
    r.decide("warm up the encoder")
    yield r, store
    store.close()


def _settled_row(router, store, decision_id: str):
    rows = store.observations(decision_id=decision_id)
    assert len(rows) == 1, rows
    row = rows[0]
    assert row.ok and row.cost_usd and row.cost_usd > 0 and row.latency_s is not None
    return row


async def test_database_accounting_is_written_off_the_loop_before_the_call_returns(db_router):
    router, store = db_router
    loop_thread = threading.get_ident()
    llm = ChatOptiRoute(models=[EchoChat(model_name="gpt-4o"), EchoChat(model_name="gpt-4o-mini")],
                        router=router)

    msg = await llm.ainvoke(PROMPTS[0])  # whole answer
    first = _settled_row(router, store, msg.response_metadata["optiroute"]["decision_id"])
    chunks = [c async for c in llm.astream(PROMPTS[1])]  # a stream that completes
    streamed = next(c for c in chunks if "optiroute" in c.response_metadata)
    second = _settled_row(router, store, streamed.response_metadata["optiroute"]["decision_id"])

    assert len(store.writers) == 2 and loop_thread not in store.writers
    assert len(store.reservers) == 2 and loop_thread not in store.reservers
    # settled at the answers' cost (the reservations were released), not left reserved
    assert list(router.spent().values()) == [pytest.approx(first.cost_usd + second.cost_usd)]


async def test_llama_index_database_accounting_is_written_off_the_loop(db_router):
    router, store = db_router
    loop_thread = threading.get_ident()
    llm = OptiRoute(models={"gpt-4o": MockLLM(), "gpt-4o-mini": MockLLM()}, router=router)
    out = await llm.achat([ChatMessage(role="user", content=PROMPTS[2])])
    _settled_row(router, store, out.additional_kwargs["optiroute"]["decision_id"])

    async def stream() -> str:
        gen = await llm.astream_chat([ChatMessage(role="user", content=PROMPTS[3])])
        return "".join([r.delta or "" async for r in gen])

    assert await stream()
    assert len(store.writers) == 2 and loop_thread not in store.writers
    assert len(store.reservers) == 2 and loop_thread not in store.reservers


async def test_memory_store_accounting_stays_complete(router):
    llm = ChatOptiRoute(models=[EchoChat(model_name="gpt-4o"), EchoChat(model_name="gpt-4o-mini")],
                        router=router)
    msg = await llm.ainvoke(PROMPTS[3])
    rows = router.store.observations(decision_id=msg.response_metadata["optiroute"]["decision_id"])
    assert len(rows) == 1 and rows[0].ok and rows[0].latency_s is not None


class GatedStore(WriterNotingStore):
    """The real SQLite store whose observation rows wait for ``gate`` (a slow database)."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.writing = threading.Event()

    def _put_observation(self, rec) -> None:
        self.writing.set()
        assert self.gate.wait(10), "the test never opened the gate"
        super()._put_observation(rec)


async def test_a_caller_cancelled_while_its_answer_is_accounted_is_still_charged(tmp_path):
    store = GatedStore(tmp_path / "state.db")
    router = Router.default(store=store, budget=Budget(total_usd=5.0))
    llm = ChatOptiRoute(models=[EchoChat(model_name="gpt-4o"), EchoChat(model_name="gpt-4o-mini")],
                        router=router)
    try:
        task = asyncio.create_task(llm.ainvoke(PROMPTS[4]))
        assert await asyncio.to_thread(store.writing.wait, 30)  # the answer exists; its row is being written
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        store.gate.set()
        for _ in range(200):  # the write finishes whole in its thread
            if store.observations():
                break
            await asyncio.sleep(0.01)
        rows = store.observations()
        assert len(rows) == 1 and rows[0].ok and rows[0].cost_usd and rows[0].cost_usd > 0
        assert list(router.spent().values()) == [pytest.approx(rows[0].cost_usd)]  # charged, not released
    finally:
        store.gate.set()
        store.close()
