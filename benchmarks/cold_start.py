"""Cold start on MMLU-Pro: predict a model's per-category accuracy from its card alone.

Each of the 31 MMLU-Pro models is left out in turn. :class:`optiroute.catalog.cold_start.AbilityMap` is
fitted on the other 30 (their card features -> their measured per-category accuracy) and predicts the
held-out model's 14 per-category accuracies from its card features (kind, prices, context window,
sourced AlpacaEval / TruthfulQA / IFEval / safety / creative-writing metrics; metrics the registry
imputed count as missing) plus the card's ``facts`` (``params_b``, Arena Elo and MT-Bench, copied
from ``model_metrics.csv`` by ``scripts/build_registry.py``): exactly what
:func:`~optiroute.catalog.cold_start.predict_card_domains` uses. The
held-out model's own outcomes, MMLU-Pro accuracy and ``accuracy_by_domain`` are never used as
features. Accuracies are over all 12,032 prompts (train and test: nothing here is a router fit).

Reported: per held-out model, the Spearman correlation between predicted and actual per-category
accuracy (does the card say which categories the model is relatively good at), and the mean; beside
it the same for a card-free baseline (the other models' mean per category, i.e. "every model has
the average profile"). Because a within-model ranking is dominated by how hard each category is for
everybody, the table also gives the across-model view that routing needs: per category, the
Spearman between predicted and actual accuracy over the 31 held-out predictions, and the mean
absolute error.

Run: ``python benchmarks/cold_start.py [--data ../shared/data]``; writes
``benchmarks/results/cold_start.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from optiroute.catalog.cold_start import AbilityMap, card_features
from optiroute.catalog.registry import Registry

ROOT = Path(__file__).resolve().parents[1]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    ra = pd.Series(a).rank().to_numpy()
    rb = pd.Series(b).rank().to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cold_start.md")
    args = ap.parse_args()
    t0 = time.perf_counter()

    p = pd.read_csv(args.data / "mmlu_pro/prompts.csv.gz", dtype={"prompt_id": str})
    o = pd.read_csv(args.data / "mmlu_pro/outcomes.csv.gz", dtype={"prompt_id": str})
    o = o.merge(p[["prompt_id", "task"]], on="prompt_id")
    acc = o.pivot_table(index="model", columns="task", values="score", aggfunc="mean")
    models, cats = acc.index.tolist(), acc.columns.tolist()
    y = acc.to_numpy(dtype=np.float64)

    reg = Registry.default()
    # The features the product's cold start uses (predict_card_domains): each card with its facts.
    feats = [card_features(reg.get(m), reg.get(m).facts) for m in models]

    pred = np.zeros_like(y)
    base = np.zeros_like(y)
    alphas = []
    for i in range(len(models)):
        rest = [j for j in range(len(models)) if j != i]
        amap = AbilityMap.fit([feats[j] for j in rest], y[rest], cats)
        pred[i] = amap.predict([feats[i]])[0]
        base[i] = y[rest].mean(axis=0)
        alphas.append(amap.alpha)

    within = np.array([spearman(pred[i], y[i]) for i in range(len(models))])
    within_base = np.array([spearman(base[i], y[i]) for i in range(len(models))])
    across = np.array([spearman(pred[:, c], y[:, c]) for c in range(len(cats))])
    overall = spearman(pred.mean(axis=1), y.mean(axis=1))
    mae, mae_base = float(np.abs(pred - y).mean()), float(np.abs(base - y).mean())
    # Relative profile: does the card predict where a model is better or worse than its own average,
    # beyond the category difficulty everybody shares? (deviation from the other models' profile)
    rel = np.array([spearman(pred[i] - base[i], y[i] - base[i]) for i in range(len(models))])

    lines = [
        f"Leave-one-model-out over the {len(models)} MMLU-Pro models, {len(cats)} categories; ridge "
        f"strength chosen by inner leave-one-out (chosen values: {sorted(set(alphas))}). "
        f"Run time {time.perf_counter() - t0:.1f} s.",
        "",
        "| measure | card -> ability map | card-free baseline (other models' mean profile) |",
        "|---|---|---|",
        f"| **mean Spearman, predicted vs actual per-category accuracy (within each model)** | "
        f"**{np.nanmean(within):.3f}** | {np.nanmean(within_base):.3f} |",
        f"| median of the same | {np.nanmedian(within):.3f} | {np.nanmedian(within_base):.3f} |",
        f"| mean Spearman of the model's deviation from the average profile | {np.nanmean(rel):.3f} | "
        "n/a (predicts no deviation) |",
        f"| mean absolute error of per-category accuracy | {mae:.3f} | {mae_base:.3f} |",
        f"| Spearman across models of overall accuracy | {overall:.3f} | n/a (same for every model) |",
        f"| mean Spearman across models, per category | {np.nanmean(across):.3f} | n/a |",
        "",
        "| held-out model | actual accuracy | predicted | Spearman (card) | Spearman (baseline) |",
        "|---|---|---|---|---|",
    ]
    for i in np.argsort(-y.mean(axis=1)):
        lines.append(f"| {models[i]} | {y[i].mean():.3f} | {pred[i].mean():.3f} | {within[i]:.3f} | "
                     f"{within_base[i]:.3f} |")
    lines += ["", "| category | Spearman across the 31 held-out models |", "|---|---|"]
    lines += [f"| {c} | {across[k]:.3f} |" for k, c in enumerate(cats)]
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
