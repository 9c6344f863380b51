"""The quality filters and the generalist serve the caller's accuracy weight, never override it.

Synthetic two-cluster data (``test_predictors``): ``alpha`` (10x the price) is right on cluster A,
``beta`` on cluster B. On cluster A ``beta`` is predicted far below half of ``alpha``, so the task
filter calls it not competent whenever the caller gives accuracy any weight.
"""

from __future__ import annotations

from optiroute import Router
from optiroute.routing.policy import PolicyConfig

from .test_predictors import FakeEmbedder, _frames


def _router(**policy) -> Router:
    prompts, outcomes, prices = _frames(200, 0)
    return Router.fit(prompts, outcomes, prices, embedder=FakeEmbedder(), predictor="task",
                      policy=PolicyConfig(**policy))


def test_cost_only_preferences_get_the_cheapest_model_even_where_it_is_predicted_weak() -> None:
    router = _router()
    texts = [f"cluster A new {i}" for i in range(5)]
    cheap = router.decide_batch(texts, preferences={"cost": 1.0})
    assert cheap.model_names == ["beta"] * 5
    # Any accuracy weight brings the task filter back: beta is not competent on cluster A.
    mostly_cost = router.decide_batch(texts, preferences={"accuracy": 0.05, "cost": 0.95})
    assert mostly_cost.model_names == ["alpha"] * 5
    assert cheap[0].score_of("beta").excluded is None and not cheap[0].generalist_fallback
    assert mostly_cost[0].score_of("beta").excluded == "predicted quality too low for this task type"


def test_low_confidence_never_swaps_a_cost_only_choice_for_the_generalist() -> None:
    router = _router(min_confidence=1.0)  # every decision is "unsure"
    texts = ["cluster B new 1", "cluster A new 2"]
    assert router.decide_batch(texts, preferences={"cost": 1.0}).model_names == ["beta", "beta"]
    # With accuracy in the preferences, unsure decisions go to the generalist (the card's strongest).
    d = router.decide_batch(texts, preferences={"accuracy": 0.5, "cost": 0.5})
    assert all(x.generalist_fallback for x in d)
    assert not any(x.generalist_fallback for x in router.decide_batch(texts, preferences={"cost": 1.0}))
