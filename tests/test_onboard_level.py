"""The onboarded model's accuracy estimate and its standard error, on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optiroute.onboard.level import estimate_level


def test_level_is_the_other_models_mean_plus_the_mean_edge_on_the_measured_prompts() -> None:
    # The other model: 0.5, 0.5, 0, 1 (store mean 0.5). Measured: prompts 0, 1, 3 with edges +0.5, -0.5, 0.
    others = np.array([[0.5], [0.5], [0.0], [1.0]])
    col = np.array([1.0, 0.0, np.nan, 1.0])
    est = estimate_level(others, ["x", "x", "y", "y"], col, ["x", "z"])
    assert est.level == pytest.approx(0.5)
    assert est.se == pytest.approx(round(0.5 / math.sqrt(3), 5))  # sd of (0.5, -0.5, 0) / sqrt(3)
    assert est.n == 3
    assert est.by_domain == {"x": (pytest.approx(0.5), 2)}  # y is not a domain; z has no outcome


def test_a_model_better_on_hard_prompts_is_rated_above_its_raw_mean() -> None:
    # Measured only on the two hard prompts (others score 0 there) and right on one: edge +0.5.
    others = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    col = np.array([1.0, 0.0, np.nan, np.nan])
    est = estimate_level(others, [""] * 4, col, [])
    assert est.level == pytest.approx(1.0 - 0.01)  # 0.5 store mean + 0.5 edge, clipped to 0.99
    assert est.by_domain == {}


def test_one_outcome_has_a_wide_error_and_no_other_models_fall_back_to_half() -> None:
    est = estimate_level(np.zeros((3, 0)), [""] * 3, np.array([1.0, np.nan, np.nan]), [])
    assert est.level == pytest.approx(0.99) and est.se == 0.5 and est.n == 1
