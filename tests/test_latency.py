"""The online latency estimate: damped, log-scale, fading."""

import math

import pytest

from optiroute.learning.latency import LatencyTracker


def test_unobserved_model_has_no_ratio_and_unit_multiplier():
    t = LatencyTracker()
    assert t.ratio("m") is None
    assert t.ratios(["m"]) == [1.0]


def test_one_slow_call_is_damped_by_the_card_prior():
    t = LatencyTracker(prior_weight=2.0)
    t.observe("m", 8.0, 1.0)  # e.g. the first call to a local server also loads the weights
    assert t.ratio("m") == pytest.approx(8.0 ** (1 / 3))


def test_a_model_that_stays_slow_converges_to_its_observed_ratio():
    t = LatencyTracker(prior_weight=2.0, decay=0.2)
    for _ in range(50):
        t.observe("m", 20.0, 1.0)
    # the effective count saturates at 1/decay = 5, so the shrinkage floor is 5/7
    assert t.ratio("m") == pytest.approx(20.0 ** (5 / 7))
    assert t.ratio("m") > 8


def test_recent_calls_outweigh_old_ones():
    t = LatencyTracker()
    for _ in range(20):
        t.observe("m", 10.0, 1.0)
    slow = t.ratio("m")
    for _ in range(20):
        t.observe("m", 1.0, 1.0)
    assert t.ratio("m") < 1.1 < slow


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_meaningless_times_are_ignored(bad):
    t = LatencyTracker()
    t.observe("m", bad, 1.0)
    assert t.ratio("m") is None


def test_reset_and_argument_validation():
    t = LatencyTracker()
    t.observe("a", 2.0, 1.0)
    t.observe("b", 2.0, 1.0)
    t.reset("a")
    assert t.ratio("a") is None and t.ratio("b") is not None
    t.reset()
    assert t.ratio("b") is None
    with pytest.raises(ValueError):
        LatencyTracker(decay=0)


def test_an_unobserved_model_borrows_its_groups_ratio():
    t = LatencyTracker(prior_weight=0.0)
    t.observe("smol", 3.0, 1.0, group="local")
    assert t.ratios(["smol", "gemma", "gpt"], ["local", "local", "openai"]) == pytest.approx([3.0, 3.0, 1.0])
    # once observed, a model's own ratio wins over the group's
    t.observe("gemma", 1.0, 1.0, group="local")
    assert t.ratios(["gemma"], ["local"]) == pytest.approx([1.0])
