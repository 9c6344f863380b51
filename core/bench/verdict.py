"""The bottom line of a bench run: does routing beat the best single model here, by how much, at what
cost, and is the test split large enough to tell.

The comparison is the router's AIQ against the AIQ of the single models' own quality-cost curve
(choosing one model for everything, the best one for each budget). How sure that difference is comes
from a bootstrap over the test prompts: the prompts are resampled with replacement, every operating
point and every single model is re-averaged on the resample, and both AIQs are recomputed (paired, so
prompt difficulty cancels out). The 2.5th and 97.5th percentiles give a 95 % interval. When the
interval on the difference holds zero, the test split cannot tell routing from a single model, and
the verdict says so and how many prompts would narrow the interval enough.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel

from optiroute.metrics import curves as metrics

__all__ = ["N_BOOT", "Verdict", "bootstrap_verdict", "prompts_needed", "verdict_lines"]

#: Bootstrap resamples (1000 gives percentiles stable to about 0.002 AIQ on the bundled data).
N_BOOT = 1000
#: The AIQ precision a conclusive run should reach (half-width of the 95 % interval).
TARGET_HALF_WIDTH = 0.01


class Verdict(BaseModel):
    """What :func:`verdict_lines` says in words, as numbers."""

    n_test: int
    best_single: str
    best_quality: float
    best_cost_usd: float
    router_aiq: float
    router_aiq_ci: tuple[float, float]
    single_aiq: float
    gain: float
    gain_ci: tuple[float, float]
    quality_at_best_cost: float
    match_cost_fraction: float | None
    best_router_quality: float
    best_router_cost_usd: float
    n_boot: int


def _nanmean_weighted(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(B, k) weighted means of ``values`` (n, k) over rows, skipping NaN cells."""
    ok = ~np.isnan(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights @ np.where(ok, values, 0.0)) / (weights @ ok.astype(np.float64))


def bootstrap_verdict(
    decisions: np.ndarray, scores: np.ndarray, costs: np.ndarray, models: list[str], best_single: str,
    c_lo: float, c_hi: float, *, n_boot: int = N_BOOT, seed: int = 0,
) -> Verdict:
    """The router (``decisions``: (points, n) model indices) against the single models on the test
    outcomes ``scores``/``costs`` (n, models), with paired bootstrap intervals."""
    n = scores.shape[0]
    rows = np.arange(n)
    v_s = np.stack([scores[rows, d] for d in decisions], axis=1).astype(np.float64)  # (n, points)
    v_c = np.stack([costs[rows, d] for d in decisions], axis=1).astype(np.float64)
    v_c = np.where(np.isnan(v_s), np.nan, v_c)
    s_s, s_c = scores.astype(np.float64), np.where(np.isnan(scores), np.nan, costs).astype(np.float64)

    def curves(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return _nanmean_weighted(w, v_c), _nanmean_weighted(w, v_s), _nanmean_weighted(w, s_c), \
            _nanmean_weighted(w, s_s)

    def aiqs(rc: np.ndarray, rq: np.ndarray, sc: np.ndarray, sq: np.ndarray) -> tuple[float, float]:
        r = metrics.aiq([(c, q) for c, q in zip(rc, rq, strict=True) if math.isfinite(c) and math.isfinite(q)],
                        c_lo, c_hi)
        s = metrics.aiq([(c, q) for c, q in zip(sc, sq, strict=True) if math.isfinite(c) and math.isfinite(q)],
                        c_lo, c_hi)
        return r, s

    full = curves(np.ones((1, n)))
    r_aiq, s_aiq = aiqs(*(a[0] for a in full))
    rng = np.random.default_rng(seed)
    w = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)
    boot = curves(w)
    pairs = np.array([aiqs(*(a[b] for a in boot)) for b in range(n_boot)])
    r_lo, r_hi = np.nanpercentile(pairs[:, 0], [2.5, 97.5])
    g_lo, g_hi = np.nanpercentile(pairs[:, 0] - pairs[:, 1], [2.5, 97.5])

    j = models.index(best_single)
    b_q, b_c = float(full[3][0][j]), float(full[2][0][j])
    router_pts = [(float(c), float(q)) for c, q in zip(full[0][0], full[1][0], strict=True)
                  if math.isfinite(c) and math.isfinite(q)]
    match = metrics.cost_to_match(router_pts, b_q - 1e-9)
    top = max(router_pts, key=lambda p: (p[1], -p[0]))
    return Verdict(
        n_test=n, best_single=best_single, best_quality=b_q, best_cost_usd=b_c, router_aiq=r_aiq,
        router_aiq_ci=(float(r_lo), float(r_hi)), single_aiq=s_aiq, gain=r_aiq - s_aiq,
        gain_ci=(float(g_lo), float(g_hi)), quality_at_best_cost=metrics.quality_at_cost(router_pts, b_c * (1 + 1e-9)),
        match_cost_fraction=None if match is None else match / b_c,
        best_router_quality=top[1], best_router_cost_usd=top[0], n_boot=n_boot,
    )


def _usd(x: float) -> str:
    return f"${x:.2g}" if x < 0.01 else f"${x:.3f}"


def prompts_needed(v: Verdict, half_width: float = TARGET_HALF_WIDTH) -> int:
    """Test prompts for a 95 % interval of ``half_width`` on the AIQ gain (intervals shrink as 1/sqrt(n))."""
    hw = (v.gain_ci[1] - v.gain_ci[0]) / 2
    return int(math.ceil(v.n_test * (hw / half_width) ** 2 / 50.0) * 50) if hw > 0 else v.n_test


def verdict_lines(v: Verdict) -> list[str]:
    """The verdict in plain words: first line the answer, then how much, at what cost, how sure."""
    lo, hi = v.gain_ci
    best = v.best_single
    if lo > 0:
        head = (f"Routing beats always using one model here: AIQ {v.router_aiq:.3f} vs {v.single_aiq:.3f} for the "
                f"best single model at each budget (+{v.gain:.3f}; 95 % interval +{lo:.3f} to +{hi:.3f}).")
    elif hi < 0:
        head = (f"Routing does worse than choosing one model here: AIQ {v.router_aiq:.3f} vs {v.single_aiq:.3f} "
                f"for the best single model at each budget ({v.gain:+.3f}; 95 % interval {lo:+.3f} to {hi:+.3f}).")
    else:
        head = (f"Not conclusive: routing's AIQ {v.router_aiq:.3f} vs {v.single_aiq:.3f} for the best single model "
                f"at each budget ({v.gain:+.3f}), but the 95 % interval {lo:+.3f} to {hi:+.3f} includes no "
                "difference.")
    lines = [head]
    if math.isfinite(v.quality_at_best_cost):
        lines.append(f"At the cost of {best} ({_usd(v.best_cost_usd)} per prompt) the router scores "
                     f"{v.quality_at_best_cost:.3f} against its {v.best_quality:.3f} "
                     f"({v.quality_at_best_cost - v.best_quality:+.3f}).")
    if v.match_cost_fraction is not None:
        saving = 1 - v.match_cost_fraction
        lines.append(f"It matches {best}'s quality at {100 * v.match_cost_fraction:.0f} % of its cost"
                     + (f" (saves {100 * saving:.0f} %)." if saving > 0 else "."))
    else:
        lines.append(f"It never reaches {best}'s quality: its best point is {v.best_router_quality:.3f} at "
                     f"{_usd(v.best_router_cost_usd)} per prompt.")
    hw = (hi - lo) / 2
    if lo <= 0 <= hi or hw > TARGET_HALF_WIDTH:
        lines.append(f"Warning: {v.n_test} test prompts are too few to measure a difference this small: the AIQ "
                     f"gain is known to +/- {hw:.3f} ({v.n_boot} bootstrap resamples of the test prompts). "
                     f"About {prompts_needed(v)} test prompts would narrow it to +/- {TARGET_HALF_WIDTH}.")
    return lines
