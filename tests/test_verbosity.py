"""Per-model answer length ("verbosity") measured at fit time, so predicted cost tracks billed cost.

MMLU-Pro's gpt-4o answers with ~380 tokens of chain of thought where most models write ~100; priced
with one per-prompt length estimate, its cost was predicted ~3x too low and batch budgets overspent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optiroute import Router
from optiroute.fit.training import measure_verbosity
from optiroute.router.calls import reservation_bound

from .test_predictors import FakeEmbedder, _frames


def test_measure_verbosity_is_a_ratio_of_sums_over_recorded_lengths() -> None:
    o = pd.DataFrame({"prompt_id": ["a", "b", "a", "b", "c"], "model": ["m", "m", "n", "n", "n"],
                      "output_tokens": [30.0, 90.0, 10.0, np.nan, 5.0]})
    est = np.array([20.0, 40.0, 5.0])
    got = measure_verbosity(["a", "b", "c"], ["m", "n"], o, est, min_rows=1)
    # m: (30 + 90) / (20 + 40); n: (10 + 5) / (20 + 5) (its missing length on b is not counted).
    assert got == pytest.approx({"m": 2.0, "n": 0.6})
    assert measure_verbosity(["a", "b", "c"], ["m", "n"], o, est, min_rows=3) == {}


def test_fit_measures_verbosity_and_prices_the_longer_answers() -> None:
    prompts, outcomes, prices = _frames(200, 0)
    outcomes["output_tokens"] = np.where(outcomes["model"] == "alpha", 300.0, 100.0)
    router = Router.fit(prompts, outcomes, prices, embedder=FakeEmbedder(), predictor="knn")
    a, b = router.registry.resolve("alpha"), router.registry.resolve("beta")
    assert a.verbosity == pytest.approx(3 * b.verbosity, rel=1e-4)
    assert "output_tokens" in a.sources["verbosity"]
    d = router.decide("cluster A new", preferences="quality-first")
    est_out = d.profile.est_output_tokens
    for name in ("alpha", "beta"):
        card = router.registry.resolve(name)
        expected = card.cost_usd(d.profile.est_input_tokens, est_out * card.verbosity)
        assert d.score_of(name).predicted_cost_usd == pytest.approx(expected, rel=0.02)
    # A spend reservation without max_tokens covers the verbose model's longer answer.
    bound = reservation_bound(router, d, [], None)
    assert bound >= a.cost_usd(d.profile.est_input_tokens, est_out * a.verbosity)


def test_without_recorded_lengths_costs_imply_them() -> None:
    """Data with cost_usd but no output_tokens still says how long each model answers."""
    prompts, outcomes, prices = _frames(200, 0)
    price = prices.set_index("model")
    in_tok = outcomes["prompt_id"].map(prompts.set_index("prompt_id")["text"].str.len()) / 4
    length = np.where(outcomes["model"] == "alpha", 300.0, 100.0)
    outcomes["cost_usd"] = (in_tok * outcomes["model"].map(price["input_usd_per_mtok"])
                            + length * outcomes["model"].map(price["output_usd_per_mtok"])) / 1e6
    outcomes["output_tokens"] = np.nan
    router = Router.fit(prompts, outcomes, prices, embedder=FakeEmbedder(), predictor="knn")
    a, b = router.registry.resolve("alpha"), router.registry.resolve("beta")
    assert a.verbosity == pytest.approx(3 * b.verbosity, rel=1e-4)
    assert "cost_usd" in a.sources["verbosity"]


def test_data_without_lengths_or_costs_keeps_the_cards_verbosity() -> None:
    prompts, outcomes, _ = _frames(200, 0)
    outcomes["output_tokens"] = np.nan
    outcomes["cost_usd"] = np.nan
    router = Router.fit(prompts, outcomes, None, embedder=FakeEmbedder(), predictor="knn")
    assert router.registry.resolve("alpha").verbosity == 1.0


def test_a_call_without_usage_records_its_estimated_length_as_whole_tokens() -> None:
    """The estimate times a fractional verbosity must still be a valid observation: on a failed
    call, an invalid record would replace the provider's own error."""
    prompts, outcomes, prices = _frames(200, 0)
    outcomes["output_tokens"] = np.where(outcomes["model"] == "alpha", 333.0, 100.0)
    router = Router.fit(prompts, outcomes, prices, embedder=FakeEmbedder(), predictor="knn")
    d = router.decide("cluster A new", preferences="quality-first", candidates=["alpha"])
    verbosity = router.registry.resolve("alpha").verbosity
    assert verbosity != round(verbosity)
    for ok in (True, False):
        ticket = router.begin_call(d)
        router.end_call(ticket, model="alpha", ok=ok, error=None if ok else "TimeoutError", decision=d)
    recs = router.store.observations()
    assert sorted(r.ok for r in recs) == [False, True]
    expected = round(d.profile.est_output_tokens * verbosity)
    assert all(r.output_tokens == expected for r in recs)


def test_implied_lengths_fill_only_what_the_costs_determine() -> None:
    from optiroute.catalog.registry import ModelCard
    from optiroute.fit.training import implied_output_tokens

    prompts = pd.DataFrame({"prompt_id": ["a"], "text": ["x" * 400]})  # 100 input tokens
    o = pd.DataFrame({"prompt_id": ["a"] * 4, "model": ["m", "m", "free", "m"],
                      "cost_usd": [3e-4, 5e-5, 1e-3, np.nan], "output_tokens": [np.nan, np.nan, np.nan, 7.0]})
    cards = {"m": ModelCard(name="m", input_usd_per_mtok=1.0, output_usd_per_mtok=2.0),
             "free": ModelCard(name="free", input_usd_per_mtok=0.0, output_usd_per_mtok=0.0)}
    got = implied_output_tokens(o, prompts, cards)["output_tokens"].tolist()
    # (300 - 100 x 1) / 2 = 100; a cost below the input's own price gives 0, not a negative length;
    # no output price determines nothing; a recorded length is kept.
    assert got[0] == pytest.approx(100.0) and got[1] == 0.0 and np.isnan(got[2]) and got[3] == 7.0
