"""Opt-in exploration: a share of decisions goes to a random eligible model, and says so.

Without it feedback and observed latency only ever reach the models routing picks, so a model it
leaves (after a slowdown, or a few unlucky ratings) is never re-measured.
"""

from __future__ import annotations

import numpy as np
import pytest

from optiroute import Router
from optiroute.errors import InvalidInputError
from optiroute.routing.policy import PolicyConfig, explore_choice

from .test_predictors import FakeEmbedder, _frames


def _router(**policy) -> Router:
    prompts, outcomes, prices = _frames(200, 0)
    return Router.fit(prompts, outcomes, prices, embedder=FakeEmbedder(), predictor="task",
                      policy=PolicyConfig(**policy))


def test_explore_choice_draws_uniformly_among_eligible_models_only() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    eligible = np.ones((n, 3), dtype=bool)
    eligible[:, 2] = False  # never eligible: never drawn
    winner, explored = explore_choice(np.zeros(n, dtype=int), eligible, 0.3, rng)
    assert explored.mean() == pytest.approx(0.3, abs=0.015)
    picks = winner[explored]
    assert set(picks.tolist()) == {0, 1} and (picks == 1).mean() == pytest.approx(0.5, abs=0.03)
    assert (winner[~explored] == 0).all()
    none = np.zeros((5, 3), dtype=bool)  # nothing eligible (never happens after the hard check): untouched
    w, e = explore_choice(np.zeros(5, dtype=int), none, 1.0, rng)
    assert not e.any() and (w == 0).all()


def test_off_by_default_and_never_in_budgeted_batches() -> None:
    texts = [f"cluster A q{i}" for i in range(200)]
    plain = _router()
    assert not any(d.explored for d in plain.decide_batch(texts[:20], preferences="quality-first"))
    router = _router(explore=0.5, explore_seed=1)
    budgeted = router.decide_batch(texts, budget_usd=10.0)
    assert not budgeted.parts[0].explored.any()
    assert not router.decide_batch(texts, preferences="quality-first", explore=False).parts[0].explored.any()


def test_explored_decisions_reach_other_models_and_explain_themselves() -> None:
    router = _router(explore=0.5, explore_seed=3)
    texts = [f"cluster A q{i}" for i in range(400)]
    batch = router.decide_batch(texts, preferences="quality-first")
    explored = batch.parts[0].explored
    assert 0.4 < explored.mean() < 0.6
    names = np.array(batch.model_names)
    assert (names[~explored] == "alpha").all()  # by score, alpha is right on cluster A
    assert (names[explored] == "beta").mean() == pytest.approx(0.5, abs=0.1)
    i = int(np.flatnonzero(explored & (names == "beta"))[0])
    d = batch[i]
    assert d.explored and d.model == "beta" and d.reason.startswith("Exploring:")
    assert "the best-scoring model was alpha" in d.reason
    # Single decisions explore too (per-call routing is where feedback comes from).
    picks = {router.decide(f"cluster A single {k}", preferences="quality-first").model for k in range(40)}
    assert picks == {"alpha", "beta"}


def test_explore_share_is_validated() -> None:
    with pytest.raises(ValueError):
        PolicyConfig(explore=0.9)
    with pytest.raises(InvalidInputError):
        _router(explore=0.2).decide_batch("not a list")
