"""Scorer, policy and card-prior predictor on hand-built candidates (no registry needed)."""

from types import SimpleNamespace

import numpy as np
import pytest

from optiroute import Constraints
from optiroute.quality.priors import card_prior
from optiroute.routing import policy as pol
from optiroute.routing.scoring import card_matrix, score


def card(name, acc=0.7, tools=True, json=True, ctx=128_000, dom=None, task=None, **metrics):
    m = {"accuracy": acc, "harmlessness": 0.5, "honesty": 0.5, "helpfulness": 0.5, "steerability": 0.5,
         "creativity": 0.5}
    m.update(metrics)
    return SimpleNamespace(name=name, aliases=[name.upper()], supports_tools=tools, supports_json=json,
                           context_window=ctx, metrics=m, accuracy_by_domain=dom or {}, accuracy_by_task=task or {})


def test_quality_first_vs_cost_effective_trade_off():
    q = np.array([[0.9, 0.6]], dtype=np.float32)
    cost = np.array([[0.01, 0.0001]], dtype=np.float32)
    lat = np.array([[2.0, 2.0]], dtype=np.float32)
    cm = card_matrix([card("big"), card("small")])
    ok = np.ones((1, 2), bool)
    best_quality = score({"accuracy": 0.98, "cost": 0.02}, q, cost, lat, cm, ok).total.argmax()
    best_cost = score({"accuracy": 0.35, "cost": 0.65}, q, cost, lat, cm, ok).total.argmax()
    assert (best_quality, best_cost) == (0, 1)


def test_small_quality_gaps_do_not_outweigh_big_cost_gaps():
    q = np.array([[0.95, 0.93]], dtype=np.float32)  # a 2-point gap is under the range floor
    cost = np.array([[0.01, 0.001]], dtype=np.float32)
    t = score({"accuracy": 0.6, "cost": 0.4}, q, cost, np.ones_like(q), card_matrix([card("a"), card("b")]),
              np.ones((1, 2), bool))
    assert t.sub["accuracy"][0, 0] == pytest.approx(0.1)
    assert t.total.argmax() == 1


def test_ineligible_pairs_never_win_and_do_not_shift_scaling():
    q = np.array([[0.9, 0.5, 0.1]], dtype=np.float32)
    ok = np.array([[False, True, True]])
    cards = card_matrix([card("a"), card("b"), card("c")])
    t = score({"accuracy": 1.0}, q, np.ones_like(q), np.ones_like(q), cards, ok)
    assert t.total[0, 0] == -np.inf and t.total.argmax() == 1
    assert t.sub["accuracy"][0, 1] == pytest.approx(1.0)


def test_card_dimensions_use_card_metrics():
    cards = [card("safe", harmlessness=0.9), card("edgy", harmlessness=0.2)]
    q = np.array([[0.7, 0.7]], dtype=np.float32)
    t = score({"harmlessness": 0.7, "accuracy": 0.3}, q, np.ones_like(q), np.ones_like(q), card_matrix(cards),
              np.ones((1, 2), bool))
    assert t.total.argmax() == 0 and t.sub["harmlessness"][0, 1] == pytest.approx(0.2)


def test_hard_constraints_give_codes():
    cards = [card("a", tools=False), card("b", json=False), card("c", ctx=1000), card("d"), card("e")]
    cons = Constraints(needs_tools=True, needs_json=True, max_cost_usd=0.01, blocked_models=("E",))
    cost = np.array([[0, 0, 0, 0.05, 0]], dtype=np.float32)
    codes = pol.hard_mask(cards, cons, np.array([2000.0]), cost, np.ones_like(cost))
    assert codes.tolist() == [[pol.Exclusion.TOOLS, pol.Exclusion.JSON, pol.Exclusion.CONTEXT, pol.Exclusion.COST,
                               pol.Exclusion.NOT_ALLOWED]]
    allowed = pol.hard_mask(cards, Constraints(allowed_models=("D",)), np.array([10.0]), np.zeros((1, 5)),
                            np.zeros((1, 5)))
    assert (allowed[0] == 0).tolist() == [False, False, False, True, False]


def test_task_and_domain_filters_and_nothing_fits():
    codes = np.zeros((2, 3), np.int8)
    quality = np.array([[0.8, 0.3, 0.7], [0.05, 0.04, 0.02]], dtype=np.float32)
    dom = np.array([[0.8, 0.8, 0.2], [np.nan, np.nan, np.nan]], dtype=np.float32)
    new, nothing = pol.soft_mask(codes, quality, dom, pol.PolicyConfig())
    assert new[0].tolist() == [0, pol.Exclusion.TASK, pol.Exclusion.DOMAIN]
    assert nothing.tolist() == [False, True]  # all below min_quality: widen to the generalist
    assert (new[1] == 0).all()


def test_generalist_is_strongest_eligible_or_named():
    cards = [card("a", acc=0.5), card("b", acc=0.9), card("c", acc=0.7)]
    ok = np.array([[True, True, True], [True, False, True], [False, False, False]])
    assert pol.generalist_index(cards, ok, None).tolist() == [1, 2, -1]
    assert pol.generalist_index(cards, ok, "a").tolist() == [0, 0, -1]


def test_card_prior_uses_domain_then_overall_and_difficulty():
    cards = [card("a", acc=0.5, dom={"law": 0.2}, task={"math": 0.9})]
    p = card_prior(cards, ["law", "law", "biology"], ["math", "writing", "writing"], np.array([0.5, 0.5, 0.5]))
    assert p[:, 0].tolist() == pytest.approx([0.2, 0.2, 0.5], abs=1e-3)
    hard = card_prior(cards, ["biology"], ["writing"], np.array([0.9]))
    easy = card_prior(cards, ["biology"], ["writing"], np.array([0.1]))
    assert hard[0, 0] < 0.5 < easy[0, 0]
