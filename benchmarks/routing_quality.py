"""Routing quality of the bundled default router on the MMLU-Pro test split (never used for fitting).

The default store holds MMLU-Pro and LLMRouter *train* prompts. Here the router chooses among the 31
MMLU-Pro models for each of the 3,609 test prompts, under a sweep of accuracy/cost weights and under
the named profiles, without being told the category; realised accuracy and cost come from the real
outcomes (cost = the data's per-cell cost; a missing cell, where a model skipped a question, counts as
unknown and the prompt is left out of that point's mean).

AIQ follows RouterBench: the area under the non-decreasing convex hull of (mean cost, accuracy),
cost normalised to [cheapest, most expensive single model]; left of the router's cheapest point the
curve counts as 0, right of its most expensive point it stays flat.

Run: ``python benchmarks/routing_quality.py [--data ../shared/data]``; writes
``benchmarks/results/routing_quality.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from embed_cache import load_or_embed  # noqa: E402

from optiroute import Router  # noqa: E402
from optiroute.fit.training import outcome_matrices  # noqa: E402
from optiroute.metrics.curves import aiq as hull_auc  # noqa: E402  (RouterBench AIQ, exact hull integral)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "routing_quality.md")
    args = ap.parse_args()

    p = pd.read_csv(args.data / "mmlu_pro/prompts.csv.gz", dtype={"prompt_id": str})
    o = pd.read_csv(args.data / "mmlu_pro/outcomes.csv.gz", dtype={"prompt_id": str})
    p = p[p["split"] == "test"].reset_index(drop=True)  # only the test prompts are routed (or embedded)
    emb = load_or_embed("mmlu_pro", p["prompt_id"].tolist(), p["text"].astype(str).tolist())
    models = sorted(o["model"].unique())
    scores, costs = outcome_matrices(p["prompt_id"].tolist(), models, o)

    router = Router.default()
    col = {m: j for j, m in enumerate(models)}

    def realise(names: list[str]) -> tuple[float, float, int]:
        j = np.array([col[n] for n in names])
        s = scores[np.arange(len(j)), j]
        c = costs[np.arange(len(j)), j]
        ok = ~np.isnan(s)
        return float(s[ok].mean()), float(c[ok].mean()), int((~ok).sum())

    single = {m: (float(np.nanmean(scores[:, j])), float(np.nanmean(costs[:, j]))) for m, j in col.items()}
    best = max(single, key=lambda m: single[m][0])
    c_lo, c_hi = min(c for _, c in single.values()), max(c for _, c in single.values())
    # Oracle: the cheapest model that gets the prompt right (else the cheapest model).
    order = np.argsort([single[m][1] for m in models])
    right = np.nan_to_num(scores[:, order], nan=0) > 0.5
    first = np.where(right.any(axis=1), right.argmax(axis=1), 0)
    oracle = realise([models[order[i]] for i in first])

    rows, points = [], []
    for lam in [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]:
        prefs = {"accuracy": 1 - lam, "cost": lam} if lam < 1 else {"cost": 1.0}
        res = router.decide_batch(p["text"].tolist(), preferences=prefs, candidates=models, embeddings=emb)
        acc, cost, miss = realise(res.model_names)
        points.append((cost, acc))
        rows.append((f"sweep cost weight {lam:.2f}", acc, cost, miss))
    for prof in ("quality-first", "balanced", "cost-effective", "latency-first"):
        res = router.decide_batch(p["text"].tolist(), preferences=prof, candidates=models, embeddings=emb)
        acc, cost, miss = realise(res.model_names)
        rows.append((f"profile {prof}", acc, cost, miss))
    aiq = hull_auc(points, c_lo, c_hi)
    single_aiq = hull_auc([(c, a) for a, c in single.values()], c_lo, c_hi)
    b_acc, b_cost = single[best]

    def at_budget(frac: float) -> float:
        ok = [a for c, a in points if c <= frac * b_cost]
        return max(ok) if ok else float("nan")

    match = [c for c, a in sorted(points) if a >= b_acc]
    lines = [
        f"Test prompts: {len(p)}; candidates: the {len(models)} MMLU-Pro models; best single model "
        f"{best}: accuracy {b_acc:.3f} at ${b_cost:.5f}/prompt; oracle {oracle[0]:.3f} at ${oracle[1]:.5f}.",
        "",
        "| metric | value |",
        "|---|---|",
        f"| **AIQ of the router's sweep** ({len(points)} operating points) | **{aiq:.3f}** |",
        f"| AIQ of the single models' own hull (no routing) | {single_aiq:.3f} |",
        f"| accuracy at <= 25 % of {best}'s cost | {at_budget(0.25):.3f} |",
        f"| accuracy at <= 50 % of {best}'s cost | {at_budget(0.5):.3f} |",
        f"| cost fraction at which the router first matches {best} | "
        + (f"{match[0] / b_cost:.3f} |" if match else "not reached |"),
        "",
        "| operating point | accuracy | mean $ / prompt | prompts left out (missing cell) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {n} | {a:.3f} | {c:.6f} | {m} |" for n, a, c, m in rows]
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
