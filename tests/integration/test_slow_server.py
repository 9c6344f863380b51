"""Observed latencies replace the card estimates, so latency-first routing moves off a model that slows down.

Two model cards with *equal* latency estimates are served by one real llama.cpp server (SmolLM2-135M)
through two loopback delay proxies (:class:`tests.support.slow_proxy.SlowProxy`), each wrapped as a real
``ChatOpenAI`` candidate of ``ChatOptiRoute``. The cards differ only in accuracy, so latency-first
routing starts on the more accurate one (A). Then A's proxy is slowed down by two seconds per
response, and the test asserts on the decisions the router actually makes: within a bounded number
of calls it routes to B and settles there.

Both proxies add the same base delay, so the measured latency is dominated by something the test
controls rather than by CPU contention on a shared machine (a 135M model answers a cached 4-token
prompt in well under the base delay); the server runs on one thread for the same reason.
"""

from __future__ import annotations

import pytest

from langchain_optiroute import ChatOptiRoute
from optiroute import Router
from optiroute.catalog.registry import ModelCard, Registry
from optiroute.local import LlamaServer
from optiroute.routing.policy import PolicyConfig
from tests.support.slow_proxy import SlowProxy

A, B = "local-a", "local-b"
BASE_DELAY_S = 1.0
SLOW_BY_S = 2.0
MAX_SLOW_CALLS = 4  # calls the slowed model may still get before routing settles elsewhere
SETTLED = 3  # consecutive decisions for B that count as "moved"
MAX_CALLS = 12
PROMPT = "Name one colour."


def _card(name: str, accuracy: float) -> ModelCard:
    # Equal latency estimates; distinct providers, because the two proxies are separate deployments
    # (models of one provider share an observed-latency pool: see optiroute.learning.latency).
    return ModelCard(name=name, provider=f"proxy-{name}", kind="chat", input_usd_per_mtok=0.0,
                     output_usd_per_mtok=0.0, context_window=2048, ttft_s=0.5, tokens_per_s=100.0,
                     metrics={"accuracy": accuracy})


@pytest.fixture(scope="module")
def setup(local_models):
    from langchain_openai import ChatOpenAI

    smol = str(local_models["SmolLM2-135M-Instruct"].path)
    server = LlamaServer([{"model": smol, "model_alias": "smollm2", "chat_format": "chatml"}], threads=1).start()
    proxies = {A: SlowProxy(server.port, delay=BASE_DELAY_S, lifetime_s=300).start(),
               B: SlowProxy(server.port, delay=BASE_DELAY_S, lifetime_s=300).start()}
    # No evaluation store knows these two cards, so the router's confidence is the analyzer's alone;
    # min_confidence=0 keeps the generalist fallback (always the more accurate A) out of a latency test.
    router = Router(registry=Registry([_card(A, 0.65), _card(B, 0.40)]), policy=PolicyConfig(min_confidence=0.0))
    chat = {name: ChatOpenAI(model="smollm2", base_url=p.base_url, api_key="not-needed", temperature=0,
                             max_retries=0, timeout=60, extra_body={"max_tokens": 4})
            for name, p in proxies.items()}
    for model in chat.values():  # load the weights and cache the prompt before anything is timed
        model.invoke(PROMPT)
    llm = ChatOptiRoute(models=chat, router=router, preferences="latency-first")
    try:
        yield llm, router, proxies
    finally:
        for p in proxies.values():
            p.stop()
        server.stop()


def _call(llm: ChatOptiRoute, **kw) -> dict:
    msg = llm.invoke(PROMPT, **kw)
    meta = msg.response_metadata["optiroute"]
    assert meta["answered_by"] == meta["model"]  # nothing failed: no fallback hides the decision
    return meta


def _ratios(router: Router) -> str:
    return f"observed/estimated latency: A {router.latency_ratio(A)}, B {router.latency_ratio(B)}"


def test_latency_first_moves_off_a_model_that_slows_down(setup):
    llm, router, proxies = setup

    # Before any observation the cards decide: equal latency, A is more accurate.
    assert router.latency_ratio(A) is None and router.latency_ratio(B) is None
    assert _call(llm)["model"] == A

    # Observe B as well (pinned by a per-call constraint), so both models have measured latencies.
    for _ in range(2):
        assert _call(llm, constraints={"allowed_models": [B]})["model"] == B
    assert router.latency_ratio(B) is not None

    # Same speed: latency-first keeps choosing the more accurate A.
    steady = [_call(llm)["model"] for _ in range(3)]
    assert steady == [A, A, A], _ratios(router)
    before = router.latency_ratio(A)

    # A slows down by SLOW_BY_S per response. Each call routed to A teaches the router a little
    # (observations are damped, so one slow call alone need not flip it); once A's observed latency
    # outweighs its accuracy edge, routing moves to B. A call that still goes to A only adds evidence,
    # so the decisions settle on B after a bounded number of calls.
    proxies[A].delay = BASE_DELAY_S + SLOW_BY_S
    decisions: list[str] = []
    while len(decisions) < MAX_CALLS and decisions[-SETTLED:] != [B] * SETTLED:
        decisions.append(_call(llm)["model"])
    print(f"decisions after the slowdown: {decisions}; {_ratios(router)}")
    assert decisions[-SETTLED:] == [B] * SETTLED, f"routing did not settle on B: {decisions}, {_ratios(router)}"
    assert decisions[0] == A  # the first slow call is what taught the router (it cannot foresee it)
    assert decisions.count(A) <= MAX_SLOW_CALLS, f"the slowed model kept getting calls: {decisions}"
    assert router.latency_ratio(A) > before  # what moved the decisions: A's observed latency
    assert router.latency_ratio(A) > router.latency_ratio(B)
