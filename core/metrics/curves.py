"""Routing-quality metrics on operating points: pure numpy, no router, no data loading.

A router swept over its cost/quality trade-off yields *operating points*, each a pair
``(mean_cost, mean_quality)`` measured on a test split. The functions here turn such points into
the numbers the literature reports, so that every benchmark and ``optiroute bench`` computes them
one way:

* :func:`aiq` -- RouterBench's Average Improvement in Quality (Hu et al. 2024, "RouterBench: A
  Benchmark for Multi-LLM Routing System", arXiv:2403.12031, section 3).
* :func:`quality_at_cost` and :func:`cost_to_match` -- reading the same curve at a budget or at a
  target quality.
* :func:`apgr` and :func:`cpt` -- RouteLLM's Average Performance Gap Recovered and Call-Performance
  Threshold for a strong/weak pair (Ong et al. 2024, "RouteLLM: Learning to Route LLMs with
  Preference Data", arXiv:2406.18665, section 5.1; computed as in ``routellm/evals/evaluate.py``).

Points whose cost or quality is NaN are dropped (a NaN is an unknown, not a zero); an empty set of
points gives NaN rather than an exception so a report can still be written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

Point = tuple[float, float]

__all__ = ["aiq", "apgr", "cost_to_match", "cpt", "quality_at_cost", "upper_hull"]


def _clean(points: Iterable[Sequence[float]]) -> list[Point]:
    """Finite points only, as float pairs (NaN means "not measured" and must not count as 0)."""
    out: list[Point] = []
    for p in points:
        x, y = float(p[0]), float(p[1])
        if np.isfinite(x) and np.isfinite(y):
            out.append((x, y))
    return out


def upper_hull(points: Iterable[Sequence[float]]) -> list[Point]:
    """The non-decreasing upper convex hull of ``(cost, quality)`` points, sorted by cost.

    This is the frontier a user can actually reach: any point on a hull segment is realised in
    expectation by sending each prompt to one of the two end operating points at random, and a
    costlier point that is not better is never worth choosing (hence non-decreasing). The hull
    starts at the cheapest point (the best quality among equally cheap points).

    Args:
        points: ``(cost, quality)`` pairs; NaN pairs are ignored.

    Returns:
        Hull vertices in increasing cost and strictly increasing quality; empty if no finite point.
    """
    best_at: dict[float, float] = {}
    for c, q in _clean(points):
        best_at[c] = max(q, best_at.get(c, -np.inf))
    hull: list[Point] = []
    for c, q in sorted(best_at.items()):
        if hull and q <= hull[-1][1]:
            continue  # costlier but not better: never on the frontier
        while len(hull) >= 2:
            (c1, q1), (c2, q2) = hull[-2], hull[-1]
            # hull[-1] on or under the chord from hull[-2] to (c, q): not a vertex of the hull
            if (q2 - q1) * (c - c1) <= (q - q1) * (c2 - c1):
                hull.pop()
            else:
                break
        hull.append((c, q))
    return hull


def aiq(points: Iterable[Sequence[float]], c_lo: float, c_hi: float) -> float:
    """RouterBench AIQ: area under the non-decreasing upper convex hull, cost scaled to [0, 1].

    Definition (RouterBench, section 3): normalise cost as ``x = (c - c_lo) / (c_hi - c_lo)`` where
    ``c_lo``/``c_hi`` are the cheapest and most expensive single model's mean cost, take the
    non-decreasing convex hull ``R(x)`` of the router's operating points and integrate it over
    [0, 1]. Left of the router's cheapest point the curve counts as 0 (the router cannot operate
    there); right of its most expensive point it stays flat at its best quality (spending more
    buys nothing but is allowed). Parts of the hull outside [0, 1] are clipped. The integral is
    exact (piecewise linear), not sampled.

    Args:
        points: ``(mean_cost, mean_quality)`` operating points.
        c_lo: Mean cost of the cheapest single model.
        c_hi: Mean cost of the most expensive single model; must exceed ``c_lo``.

    Returns:
        AIQ in the units of quality (0..1 for accuracy); NaN if no finite point.

    Raises:
        ValueError: If ``c_hi <= c_lo`` (the normalisation would divide by zero or flip the axis).
    """
    if not c_hi > c_lo:
        raise ValueError(
            f"aiq needs c_hi > c_lo to normalise cost (got c_lo={c_lo}, c_hi={c_hi}); pass the "
            "cheapest and most expensive single model's mean cost, which must differ."
        )
    hull = upper_hull(points)
    if not hull:
        return float("nan")
    xs = np.array([(c - c_lo) / (c_hi - c_lo) for c, _ in hull])
    ys = np.array([q for _, q in hull])
    area = 0.0
    for i in range(len(xs) - 1):  # hull segments, clipped to [0, 1]
        a, b = max(xs[i], 0.0), min(xs[i + 1], 1.0)
        if b > a:
            ya, yb = np.interp([a, b], xs, ys)
            area += (b - a) * (ya + yb) / 2
    tail_start = max(xs[-1], 0.0)
    if tail_start < 1.0:  # flat beyond the router's costliest point
        area += (1.0 - tail_start) * ys[-1]
    return float(area)


def quality_at_cost(
    points: Iterable[Sequence[float]], max_cost: float, *, interpolate: bool = False
) -> float:
    """Best quality reachable at a mean cost of at most ``max_cost``.

    By default this is the best *measured* operating point whose cost is <= ``max_cost`` (what a
    user gets by picking that sweep setting). With ``interpolate=True`` it reads the upper hull
    at ``max_cost`` instead (reachable in expectation by mixing two operating points at random).

    Args:
        points: ``(mean_cost, mean_quality)`` operating points.
        max_cost: The budget, in the same units as the points' cost.
        interpolate: Read the hull (True) rather than the best measured point (False).

    Returns:
        The quality, or NaN if no point is that cheap.
    """
    pts = _clean(points)
    if interpolate:
        hull = upper_hull(pts)
        if not hull or hull[0][0] > max_cost:
            return float("nan")
        xs, ys = zip(*hull, strict=True)
        return float(np.interp(max_cost, xs, ys))
    ok = [q for c, q in pts if c <= max_cost]
    return max(ok) if ok else float("nan")


def cost_to_match(points: Iterable[Sequence[float]], target_quality: float) -> float | None:
    """The lowest mean cost at which the upper hull reaches ``target_quality``.

    Interpolated linearly on the hull segment that crosses the target (a random mix of its two
    end points realises that cost and quality in expectation). Divide by the best single model's
    cost to get "the cost fraction at which the router matches the best single model".

    Args:
        points: ``(mean_cost, mean_quality)`` operating points.
        target_quality: The quality to match, e.g. the best single model's accuracy.

    Returns:
        The cost, or None if no point reaches the target.
    """
    hull = upper_hull(points)
    if not hull or hull[-1][1] < target_quality:
        return None
    if hull[0][1] >= target_quality:
        return hull[0][0]
    for (c1, q1), (c2, q2) in zip(hull, hull[1:], strict=False):
        if q2 >= target_quality:
            return float(c1 + (c2 - c1) * (target_quality - q1) / (q2 - q1))
    return None  # unreachable: the last vertex reaches the target


def _pair_curve(points: Iterable[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(strong_fraction, quality)`` sorted by fraction (ties: mean quality)."""
    pts = _clean(points)
    if not pts:
        return np.array([]), np.array([])
    by: dict[float, list[float]] = {}
    for f, q in pts:
        by.setdefault(f, []).append(q)
    fs = np.array(sorted(by))
    qs = np.array([float(np.mean(by[f])) for f in fs])
    return fs, qs


def apgr(
    points: Iterable[Sequence[float]], weak_quality: float, strong_quality: float
) -> float:
    """RouteLLM APGR: average performance gap recovered over the share of strong-model calls.

    Definition (RouteLLM, section 5.1): for a router sending a fraction ``f`` of calls to the strong
    model with quality ``r(f)``, ``PGR(f) = (r(f) - r_weak) / (r_strong - r_weak)`` and
    ``APGR = integral of PGR(f) df``. As in RouteLLM's evaluation code, the integral is the
    trapezoid rule over the measured points, normalised by the same integral of the two flat
    single-model lines over the same range of ``f``; a sweep should therefore include both
    ends (f = 0 and f = 1). A random mix scores 0.5, a perfect router close to 1.

    Args:
        points: ``(strong_fraction, quality)`` pairs, fraction in [0, 1].
        weak_quality: Quality of the weak model alone.
        strong_quality: Quality of the strong model alone; must differ from ``weak_quality``.

    Returns:
        APGR; NaN with fewer than two distinct fractions.

    Raises:
        ValueError: If the two models are equally good (there is no gap to recover).
    """
    if strong_quality == weak_quality:
        raise ValueError(
            "apgr needs a quality gap between the strong and weak model (both are "
            f"{strong_quality}); pick a pair whose single-model qualities differ."
        )
    fs, qs = _pair_curve(points)
    if len(fs) < 2:
        return float("nan")
    span = fs[-1] - fs[0]
    area = float(np.sum((fs[1:] - fs[:-1]) * (qs[1:] + qs[:-1]) / 2))
    return (area - weak_quality * span) / ((strong_quality - weak_quality) * span)


def cpt(
    points: Iterable[Sequence[float]],
    weak_quality: float,
    strong_quality: float,
    gap_fraction: float,
) -> float | None:
    """RouteLLM CPT(x): the smallest share of strong-model calls that recovers x of the gap.

    Definition (RouteLLM, section 5.1): ``CPT(x%)`` is the minimum percentage of calls to the strong
    model needed to reach quality ``r_weak + x * (r_strong - r_weak)``. Read on the piecewise
    linear curve through the measured points, at its first crossing of the target (RouteLLM's code
    uses ``np.interp`` on the same curve, which agrees when the curve is increasing).

    Args:
        points: ``(strong_fraction, quality)`` pairs, fraction in [0, 1].
        weak_quality: Quality of the weak model alone.
        strong_quality: Quality of the strong model alone.
        gap_fraction: x as a fraction, e.g. 0.5 for CPT(50%).

    Returns:
        The strong-call fraction in [0, 1], or None if the curve never reaches the target.
    """
    target = weak_quality + gap_fraction * (strong_quality - weak_quality)
    fs, qs = _pair_curve(points)
    if len(fs) == 0:
        return None
    if qs[0] >= target:
        return float(fs[0])
    for i in range(1, len(fs)):
        if qs[i] >= target:
            return float(fs[i - 1] + (fs[i] - fs[i - 1]) * (target - qs[i - 1]) / (qs[i] - qs[i - 1]))
    return None
