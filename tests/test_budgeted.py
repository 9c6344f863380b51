"""Budgeted batches (one total budget over a batch) and batch mode (one model for a whole batch).

The allocator is checked against brute force on small random instances; the router path on a router
fitted on the MMLU-Pro slice with a deterministic hash embedder (fast, no model load).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optiroute import BudgetExceededError, OptiRouteError, Router
from optiroute.errors import InvalidConstraintsError, InvalidInputError, NoEligibleModelError
from optiroute.router.batch_mode import BatchModelChoice
from optiroute.routing.budgeted import BudgetedBatch, allocate, hard_eligible
from optiroute.routing.scoring import card_matrix, score
from tests.support.fakes import HashEmbedder

SLICE = Path(__file__).parent / "fixtures" / "mmlu_slice"


@pytest.fixture(scope="module")
def router() -> Router:
    return Router.fit(SLICE / "prompts.csv.gz", SLICE / "outcomes.csv.gz", SLICE / "prices.csv",
                      embedder=HashEmbedder())


@pytest.fixture(scope="module")
def texts() -> list[str]:
    p = pd.read_csv(SLICE / "prompts.csv.gz", dtype={"prompt_id": str})
    return p["text"].tolist()[:60]


def _brute(q, c, e, budget):
    n, m = q.shape
    best = -np.inf
    for combo in itertools.product(range(m), repeat=n):
        combo = np.array(combo)
        if e[np.arange(n), combo].all() and c[np.arange(n), combo].sum() <= budget:
            best = max(best, q[np.arange(n), combo].sum())
    return best


def test_allocate_against_brute_force_on_random_instances() -> None:
    rng = np.random.default_rng(7)
    exact = 0
    for _ in range(120):
        n, m = 5, 4
        q, c = rng.random((n, m)), rng.random((n, m)) * 0.01 + 1e-4
        e = rng.random((n, m)) > 0.25
        e[np.arange(n), rng.integers(0, m, n)] = True
        cheapest = np.where(e, c, np.inf).min(axis=1).sum()
        budget = cheapest + rng.random() * 0.02
        choice, a = allocate(q, c, e, budget)
        rows = np.arange(n)
        assert e[rows, choice].all()
        assert a.total_cost_usd == pytest.approx(c[rows, choice].sum())
        assert a.total_cost_usd <= budget
        assert a.total_quality == pytest.approx(q[rows, choice].sum())
        opt = _brute(q, c, e, budget)
        assert a.upper_bound >= opt - 1e-9          # the LP bound really bounds the optimum
        assert a.total_quality <= opt + 1e-9
        # Greedy on the hull is within one prompt's largest quality gain of the optimum.
        assert opt - a.total_quality <= (np.where(e, q, -np.inf).max(axis=1) - q.min(axis=1)).max() + 1e-9
        exact += abs(opt - a.total_quality) < 1e-9
    assert exact >= 60  # near-optimal in practice, not just in bound


def test_collinear_hull_points_never_overspend() -> None:
    """Equal slopes along a row (collinear points) must be taken in order, whatever the rounding."""
    rng = np.random.default_rng(1)
    for _ in range(300):
        c = np.sort(rng.random((50, 4)) * 1e-3, axis=1)
        q = 0.1 + (c - c[:, :1]) * rng.uniform(100, 1000, (50, 1))
        budget = c[:, 0].sum() + rng.random() * (c[:, 3] - c[:, 0]).sum()
        choice, a = allocate(q, c, np.ones_like(q, dtype=bool), budget)
        assert c[np.arange(50), choice].sum() <= budget
        assert a.upper_bound >= a.total_quality


def test_budget_extremes_cheapest_and_best() -> None:
    q = np.array([[0.2, 0.9, 0.5], [0.8, 0.1, 0.85]])
    c = np.array([[1.0, 10.0, 3.0], [2.0, 1.0, 50.0]])
    e = np.ones_like(q, dtype=bool)
    choice, a = allocate(q, c, e, 2.0)               # exactly the cheapest assignment
    assert choice.tolist() == [0, 1] and a.min_budget_usd == pytest.approx(2.0)
    choice, a = allocate(q, c, e, 1000.0)            # unlimited: best quality everywhere
    assert choice.tolist() == [1, 2] and a.max_useful_usd == pytest.approx(60.0)
    # $13: row 1 upgrades 1 -> 0 (+0.7 for $1) first; row 0's hull 0 -> 2 -> 1 (+0.3 for $2, +0.4 for
    # $7); row 1's 0 -> 2 (+0.05 for $48) never fits. 2 + 1 + 2 + 7 = 12 <= 13.
    choice, a = allocate(q, c, e, 13.0)
    assert choice.tolist() == [1, 0] and a.total_cost_usd == pytest.approx(12.0)
    choice, _ = allocate(q, c, e, 11.0)              # $11: the +0.4 step ($7) no longer fits
    assert choice.tolist() == [2, 0]


def test_budget_below_the_cheapest_assignment_says_the_minimum() -> None:
    q = np.array([[0.5, 0.9]])
    c = np.array([[0.004, 0.02]])
    with pytest.raises(BudgetExceededError, match=r"at least \$0\.004") as info:
        allocate(q, c, np.ones((1, 2), bool), 0.001)
    assert isinstance(info.value, OptiRouteError)
    with pytest.raises(InvalidConstraintsError):
        allocate(q, c, np.ones((1, 2), bool), -1.0)
    with pytest.raises(InvalidConstraintsError):
        allocate(q, c, np.ones((1, 2), bool), float("nan"))
    with pytest.raises(NoEligibleModelError):
        allocate(q, c, np.zeros((1, 2), bool), 1.0)


def test_routoo_alpha_selector_respects_budget_and_targets() -> None:
    rng = np.random.default_rng(3)
    q, c = rng.random((200, 6)), rng.random((200, 6)) * 0.01 + 1e-4
    e = np.ones_like(q, dtype=bool)
    for budget in (0.5, 1.0, 2.0):
        choice, a = allocate(q, c, e, budget, alpha=0.5)
        assert a.total_cost_usd <= budget and a.method == "routoo(alpha=0.5)"
    # alpha = 0 and a huge budget: every prompt gets its best-quality model.
    choice, _ = allocate(q, c, e, 1e6, alpha=0.0)
    assert (choice == q.argmax(axis=1)).all()
    # The hull greedy is at least as good as Routoo's selector at the same budget here.
    g, ag = allocate(q, c, e, 1.0)
    r, ar = allocate(q, c, e, 1.0, alpha=1.0)
    assert ag.total_quality >= ar.total_quality - 1e-9


def test_decide_batch_with_a_budget(router: Router, texts: list[str]) -> None:
    free = router.decide_batch(texts)
    cost = np.concatenate([p.cost for p in free.parts])
    budget = float(cost.min(axis=1).sum() + 0.3 * (cost.max(axis=1).sum() - cost.min(axis=1).sum()))
    res = router.decide_batch(texts, budget_usd=budget)
    assert isinstance(res, BudgetedBatch) and len(res) == len(texts)
    chosen_cost = res.column("cost")
    assert chosen_cost.sum() == pytest.approx(res.total_cost_usd, rel=1e-5)
    assert res.total_cost_usd <= budget
    assert res.allocation.total_quality == pytest.approx(res.column("quality").sum(), rel=1e-5)
    # More money never buys less predicted quality here, and a big budget buys the best everywhere.
    big = router.decide_batch(texts, budget_usd=1e3)
    quality = np.concatenate([p.quality for p in big.parts])
    assert np.allclose(big.column("quality"), quality.max(axis=1))
    assert big.allocation.total_quality >= res.allocation.total_quality
    d = res[0]
    assert d.model == res.model_names[0] and "budget" in d.reason


def test_decide_batch_budget_keeps_hard_constraints(router: Router, texts: list[str]) -> None:
    blocked = "DeepSeek-Coder-V2"
    res = router.decide_batch(texts, budget_usd=10.0, constraints={"blocked_models": [blocked]})
    assert blocked not in set(res.model_names)
    with pytest.raises(BudgetExceededError, match="Raise budget_usd to at least"):
        router.decide_batch(texts, budget_usd=1e-9)


def test_choose_batch_model_matches_its_sample(router: Router, texts: list[str]) -> None:
    choice = router.choose_batch_model(texts, sample=0.25, min_sample=5, seed=1, preferences="balanced")
    assert isinstance(choice, BatchModelChoice)
    assert choice.sample_size == 15 and choice.batch_size == 60
    again = router.choose_batch_model(texts, sample=0.25, min_sample=5, seed=1, preferences="balanced")
    assert again.model == choice.model and again.sample_indices == choice.sample_indices
    sample = [texts[i] for i in choice.sample_indices]
    res = router.decide_batch(sample, preferences="balanced")
    total = np.concatenate([p.total for p in res.parts])
    names = res.parts[0].names
    cards = [router.registry.resolve(n) for n in names]
    hard = np.concatenate([score(p.prefs.normalized(), p.quality, p.cost, p.latency, card_matrix(cards),
                                 hard_eligible(p)).total for p in res.parts])
    assert choice.model == names[int(hard.mean(axis=0).argmax())]
    # The per-prompt task/domain filters drop a model on some sampled prompts: batch mode scores it
    # there anyway (only hard constraints exclude for a whole batch), so the choice above is the best
    # on every prompt's full scores, not the one model no prompt filters out.
    filtered = ~np.isfinite(total)
    assert filtered.any() and np.isfinite(hard[filtered]).all()
    assert choice.agreement == pytest.approx(np.mean(np.array(res.model_names) == choice.model))
    assert sum(choice.shares.values()) == pytest.approx(1.0, abs=1e-3)
    # A quality-first batch picks the model with the best predicted quality on average.
    q = router.choose_batch_model(texts, sample=1.0, preferences={"accuracy": 1.0})
    pq = np.concatenate([p.quality for p in router.decide_batch(texts, preferences={"accuracy": 1.0}).parts])
    assert q.sample_size == 60 and 0.0 <= q.agreement <= 1.0
    assert q.predicted_quality == pytest.approx(pq[:, names.index(q.model)].mean(), rel=1e-5)


def test_choose_batch_model_rejects_bad_input(router: Router, texts: list[str]) -> None:
    with pytest.raises(InvalidInputError):
        router.choose_batch_model(texts, sample=0.0)
    with pytest.raises(InvalidInputError):
        router.choose_batch_model([], sample=0.1)
    with pytest.raises(InvalidInputError):
        router.choose_batch_model("one prompt")


def test_batch_mode_checks_every_prompt_of_the_batch_for_length(router: Router, texts: list[str]) -> None:
    # One very long prompt that the sample (seed 1, 25 %) does not include. Cost-only preferences keep
    # every model eligible on the sample (no quality filters), so the cheapest wins there.
    choice = router.choose_batch_model(texts, sample=0.25, min_sample=5, seed=1, preferences={"cost": 1.0})
    outside = next(i for i in range(len(texts)) if i not in choice.sample_indices)
    card = router.registry.resolve(choice.model)
    long = list(texts)
    long[outside] = "word " * int(card.context_window * 4 / 5 + 100)  # ~context_window tokens + slack
    again = router.choose_batch_model(long, sample=0.25, min_sample=5, seed=1, preferences={"cost": 1.0})
    assert again.sample_indices == choice.sample_indices  # same sample: the long prompt is not in it
    assert again.model != choice.model and again.unfit.get(choice.model) == 1
    assert router.registry.resolve(again.model).context_window > card.context_window
    assert choice.unfit == {}
