"""Spend budgets under concurrency against real local models: 200 concurrent routed calls.

The local GGUF models cost nothing, so their cards get a (made-up, documented here) price for this
test; what is checked is the ledger arithmetic under real concurrency, with real ChatOpenAI clients
talking to a real llama.cpp server and a real SQLite store on disk.
"""

from __future__ import annotations

import pytest

from optiroute import Budget, BudgetExceededError, Router
from optiroute.catalog.registry import Registry
from optiroute.store import SQLiteFeedbackStore

N_CALLS = 200
MAX_TOKENS = 8
LIMIT_USD = 0.6


@pytest.fixture()
def priced_router(tmp_path):
    registry = Registry.default().copy()
    for name in ("SmolLM2-135M-Instruct", "gemma-3-270m"):
        registry.update(name, input_usd_per_mtok=1000.0, output_usd_per_mtok=2000.0)
    store = SQLiteFeedbackStore(tmp_path / "optiroute.db")
    router = Router.default(registry=registry, store=store,
                            budget=Budget(total_usd=LIMIT_USD, per_user_usd=0.25))
    yield router
    store.close()


def test_200_concurrent_calls_never_overshoot_and_all_leave_a_row(priced_router, openai_chat, llama_server):
    from langchain_optiroute import ChatOptiRoute

    models = {"smollm2": openai_chat("smollm2", max_tokens=MAX_TOKENS)}
    if "gemma3-270m" in llama_server.config.read_text():
        models["gemma3-270m"] = openai_chat("gemma3-270m", max_tokens=MAX_TOKENS)
    llm = ChatOptiRoute(models=models, router=priced_router, max_tokens=MAX_TOKENS,
                        preferences="quality-first")
    prompts = [f"Say the number {i}." for i in range(N_CALLS)]
    users = ["alice" if i % 2 else "bob" for i in range(N_CALLS)]
    configs = [{"metadata": {"optiroute_user_key": u}, "max_concurrency": N_CALLS} for u in users]
    results = llm.batch(prompts, config=configs, return_exceptions=True)

    answered = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    other = [r for r in results if isinstance(r, Exception) and not isinstance(r, BudgetExceededError)]
    assert not other, other[:3]
    assert answered and refused, (len(answered), len(refused))

    store = priced_router.store
    rows = store.observations()
    # every call has its row: one per decision, answered or refused
    decision_ids = {r.response_metadata["optiroute"]["decision_id"] for r in answered}
    by_decision: dict[str, list] = {}
    for row in rows:
        by_decision.setdefault(row.decision_id, []).append(row)
    assert len(by_decision) == N_CALLS
    assert decision_ids <= set(by_decision)
    assert sum(1 for rs in by_decision.values() if any(r.ok for r in rs)) == len(answered)
    assert sum(1 for rs in by_decision.values() if any(r.error == "BudgetExceededError" for r in rs)) == len(refused)

    # the ledger: the total never overshoots a limit by more than one call's cost (the reservations
    # are upper bounds: max_tokens is set and the input estimate is padded)
    costs = [r.cost_usd or 0.0 for r in rows if r.ok]
    one_call = max(costs)
    total = priced_router.spent()["router:default"]
    assert total == pytest.approx(sum(costs))
    assert total <= LIMIT_USD + one_call
    for user in ("alice", "bob"):
        user_costs = [r.cost_usd or 0.0 for r in rows if r.ok and r.user == user]
        assert priced_router.spent(user)[f"user:default:{user}"] == pytest.approx(sum(user_costs))
        assert sum(user_costs) <= 0.25 + one_call
