"""Routing metrics on hand-computed cases (areas and crossings worked out on paper in the comments)."""

from __future__ import annotations

import math

import pytest

from optiroute.metrics.curves import aiq, apgr, cost_to_match, cpt, quality_at_cost, upper_hull


def test_upper_hull_drops_points_under_the_chord_and_costlier_worse_points() -> None:
    # (0.5, 0.6) lies under the chord (0,0.5)-(1,1) whose value at 0.5 is 0.75; (2, 0.9) is costlier and worse.
    assert upper_hull([(1, 1.0), (0, 0.5), (0.5, 0.6), (2, 0.9)]) == [(0.0, 0.5), (1.0, 1.0)]
    # Equal cost: the better point wins; NaN points are ignored.
    assert upper_hull([(0, 0.2), (0, 0.5), (float("nan"), 0.9), (1, float("nan"))]) == [(0.0, 0.5)]
    assert upper_hull([]) == []


def test_aiq_two_point_line() -> None:
    # Trapezoid under the line from 0.5 to 1.0 over [0, 1]: (0.5 + 1.0) / 2 = 0.75.
    assert aiq([(0, 0.5), (1, 1.0)], 0, 1) == pytest.approx(0.75)
    # A point under the chord changes nothing.
    assert aiq([(0, 0.5), (0.5, 0.6), (1, 1.0)], 0, 1) == pytest.approx(0.75)


def test_aiq_point_above_the_chord() -> None:
    # 0.5 * (0.5 + 0.9) / 2 + 0.5 * (0.9 + 1.0) / 2 = 0.35 + 0.475 = 0.825.
    assert aiq([(0, 0.5), (0.5, 0.9), (1, 1.0)], 0, 1) == pytest.approx(0.825)


def test_aiq_non_decreasing_flat_tail() -> None:
    # (1, 0.8) is worse than (0.5, 0.9): the curve stays flat at 0.9 from 0.5 on: 0.35 + 0.5 * 0.9 = 0.8.
    assert aiq([(0, 0.5), (0.5, 0.9), (1, 0.8)], 0, 1) == pytest.approx(0.8)


def test_aiq_zero_left_of_cheapest_point_and_cost_normalised() -> None:
    # One point at normalised cost 0.5: zero on [0, 0.5), 0.8 on [0.5, 1]: 0.4.
    assert aiq([(0.5, 0.8)], 0, 1) == pytest.approx(0.4)
    # Costs 2..4 normalise to 0..1: the same 0.75 as the unit case.
    assert aiq([(2, 0.5), (4, 1.0)], 2, 4) == pytest.approx(0.75)
    # Clipping: the hull from (-1, 0) to (1, 1) is 0.5 at x = 0, so [0, 1] gives (0.5 + 1) / 2 = 0.75.
    assert aiq([(-1, 0.0), (1, 1.0)], 0, 1) == pytest.approx(0.75)
    # Beyond c_hi the curve is ignored: hull (0, 0.5)-(2, 1.0) is 0.75 at x = 1: (0.5 + 0.75) / 2 = 0.625.
    assert aiq([(0, 0.5), (2, 1.0)], 0, 1) == pytest.approx(0.625)


def test_aiq_edge_cases() -> None:
    assert math.isnan(aiq([], 0, 1))
    with pytest.raises(ValueError, match="c_hi > c_lo"):
        aiq([(0, 1)], 1, 1)


def test_quality_at_cost_measured_and_interpolated() -> None:
    pts = [(0.1, 0.4), (0.5, 0.7), (1.0, 0.9)]
    assert quality_at_cost(pts, 0.6) == pytest.approx(0.7)  # best measured point with cost <= 0.6
    assert quality_at_cost(pts, 0.5) == pytest.approx(0.7)  # inclusive
    # On the hull segment (0.5, 0.7)-(1.0, 0.9): 0.7 + 0.2 * (0.1 / 0.5) = 0.74.
    assert quality_at_cost(pts, 0.6, interpolate=True) == pytest.approx(0.74)
    assert math.isnan(quality_at_cost(pts, 0.05))
    assert math.isnan(quality_at_cost(pts, 0.05, interpolate=True))


def test_cost_to_match() -> None:
    pts = [(0.1, 0.4), (0.5, 0.7), (1.0, 0.9)]
    # Target 0.8 crosses (0.5, 0.7)-(1.0, 0.9) half way: cost 0.75.
    assert cost_to_match(pts, 0.8) == pytest.approx(0.75)
    assert cost_to_match(pts, 0.3) == pytest.approx(0.1)  # the cheapest point already reaches it
    assert cost_to_match(pts, 0.9) == pytest.approx(1.0)
    assert cost_to_match(pts, 0.95) is None


def test_apgr_random_mix_is_one_half_and_a_concave_curve_more() -> None:
    weak, strong = 0.4, 0.8
    line = [(f / 10, weak + (strong - weak) * f / 10) for f in range(11)]
    assert apgr(line, weak, strong) == pytest.approx(0.5)
    # Area: 0.5 * (0.4 + 0.8) / 2 + 0.5 * 0.8 = 0.7; (0.7 - 0.4) / (0.8 - 0.4) = 0.75.
    assert apgr([(0, 0.4), (0.5, 0.8), (1, 0.8)], weak, strong) == pytest.approx(0.75)
    # Unsorted input and a partial range: over [0, 0.5] the area is 0.3 vs weak 0.2 / strong 0.4 -> 0.5.
    assert apgr([(0.5, 0.8), (0, 0.4)], weak, strong) == pytest.approx(0.5)


def test_apgr_edge_cases() -> None:
    assert math.isnan(apgr([(0.5, 0.6)], 0.4, 0.8))
    with pytest.raises(ValueError, match="gap"):
        apgr([(0, 0.5), (1, 0.5)], 0.5, 0.5)


def test_cpt() -> None:
    pts = [(0, 0.4), (0.5, 0.8), (1, 0.8)]
    # 50 % of the gap is 0.6, reached a quarter of the way along (0,0.4)-(0.5,0.8): 0.25.
    assert cpt(pts, 0.4, 0.8, 0.5) == pytest.approx(0.25)
    # 80 %: 0.72 -> 0.5 * (0.32 / 0.4) = 0.4.
    assert cpt(pts, 0.4, 0.8, 0.8) == pytest.approx(0.4)
    assert cpt(pts, 0.4, 0.8, 0.0) == pytest.approx(0.0)
    assert cpt([(0, 0.4), (1, 0.6)], 0.4, 0.8, 0.8) is None  # never reaches 0.72
    assert cpt([], 0.4, 0.8, 0.5) is None
