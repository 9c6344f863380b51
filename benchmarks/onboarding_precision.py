"""How precisely a few percent of the train prompts measure a model: the tables under the
onboarding benchmark (imported by ``benchmarks/onboarding.py``; no routing, only the store)."""

from __future__ import annotations

import warnings

import numpy as np

from optiroute.onboard.level import estimate_level
from optiroute.onboard.onboarding import Representatives
from optiroute.quality.index import OutcomeIndex


def noise_lines(ix: OutcomeIndex, models: list[str], frac: float) -> list[str]:
    """How precisely ``frac`` of the train prompts can measure each model (a measured explanation).

    A model's *edge* on a prompt is its outcome minus the mean of all models' outcomes there. Routing
    among strong models needs each one's edge per category; the table compares how much that edge
    really varies across categories with the standard error of estimating it from the
    representatives a category gets at ``frac`` (and of the overall edge from all of them).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        level = np.nanmean(ix.scores, axis=1)
    tasks = np.array(ix.tasks)
    cats = sorted(set(ix.tasks))
    n = round(frac * len(ix))
    per_cat = n / len(cats)
    out = ["", (f"Why {frac:.0%} is hard (train split, measured): per held-out model, the spread (SD over the "
                f"{len(cats)} categories) of its per-category edge over the all-model mean, against the "
                f"standard error of one category's edge from ~{per_cat:.0f} representatives and of the "
                f"overall edge from {n}."), "",
           "| model | overall edge | SD of per-category edge | SE of one category's edge | SE of the overall edge |",
           "|---|---|---|---|---|"]
    for m in models:
        r = ix.scores[:, ix.models.index(m)] - level
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            edges = np.array([np.nanmean(r[tasks == c]) for c in cats])
        sd = float(np.nanstd(r))
        out.append(f"| {m} | {np.nanmean(r):+.3f} | {np.nanstd(edges):.3f} | {sd / np.sqrt(per_cat):.3f} | "
                   f"{sd / np.sqrt(n):.3f} |")
    return out


def precision_lines(ix: OutcomeIndex, sets: dict[tuple[float, int], Representatives],
                    models: list[str]) -> list[str]:
    """Is the accuracy estimate's reported standard error honest? Every stored model in turn.

    For each set of representatives (share, seed) and each of the store's models: its outcomes on
    the representatives only, the others' outcomes everywhere, and
    :func:`optiroute.onboard.level.estimate_level`; the error is against the model's true mean train
    outcome. A calibrated error has SD(error / SE) near 1 and covers the truth in about 95 % of the
    +/- 1.96 SE intervals.
    """
    top = max(f for f, _ in sets)
    rows: dict[float, list[tuple[float, float]]] = {}
    mine: dict[str, list[str]] = {m: [] for m in models}
    for (frac, _seed), reps in sorted(sets.items()):
        r = np.asarray(reps.rows)
        for j, m in enumerate(ix.models):
            y = ix.scores[:, j].astype(np.float64)
            col = np.full(len(y), np.nan)
            col[r] = y[r]
            est = estimate_level(np.delete(ix.scores, j, axis=1), ix.tasks, col, [])
            true = float(np.nanmean(y))
            rows.setdefault(frac, []).append((est.level - true, est.se))
            if m in mine and frac == top:
                mine[m].append(f"{est.level:.3f} +/- {est.se:.3f}")
    out = ["", ("Precision of the accuracy estimate onboarding reports (`OnboardResult.accuracy_estimate` "
                "+/- `accuracy_se`), for each of the store's models left out in turn, on the benchmark's "
                "representatives (error against the model's mean train outcome):"), "",
           "| share of train prompts | estimates | RMSE | mean reported SE | SD(error / SE) | within +/- 1.96 SE |",
           "|---|---|---|---|---|---|"]
    for frac, vals in sorted(rows.items()):
        err = np.array([e for e, _ in vals])
        se = np.array([s for _, s in vals])
        out.append(f"| {frac:.1%} | {len(vals)} | {np.sqrt((err ** 2).mean()):.4f} | {se.mean():.4f} | "
                   f"{(err / se).std():.2f} | {(np.abs(err) <= 1.96 * se).mean():.0%} |")
    out += ["", f"The held-out models at {top:.0%} (one estimate per clustering seed; true = mean train outcome):", "",
            "| model | true | estimates (+/- SE) |", "|---|---|---|"]
    for m, ests in mine.items():
        out.append(f"| {m} | {np.nanmean(ix.scores[:, ix.models.index(m)]):.3f} | {'; '.join(ests)} |")
    return out
