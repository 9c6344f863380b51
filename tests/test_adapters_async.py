"""Async paths of both adapters route off the event loop: a ticker task on the loop keeps ticking
while calls are routed (the decision runs in optiroute.integration's bounded worker pool)."""

from __future__ import annotations

import asyncio
import time

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.llms import MockLLM

from langchain_optiroute import ChatOptiRoute
from llama_index_optiroute import OptiRoute
from optiroute import Router
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
