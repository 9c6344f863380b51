"""Analyzer quality on held-out, human-labelled prompt sets (never used for training).

- task-type macro-F1, accuracy and per-class F1 on MT-Bench (80), Vicuna-80 and Arena-Hard v2 (750),
  with their labels mapped onto the analyzer's taxonomy (mapping below);
- domain accuracy on the MMLU-Pro test split (14 categories);
- complexity: Spearman correlation with empirical difficulty (1 - mean model score) on the MMLU-Pro
  and LLMRouter test splits.

Run: ``python benchmarks/analyzer_eval.py [--data ../shared/data]``; writes
``benchmarks/results/analyzer.md``.
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

from optiroute.analyzer import TaskAnalyzer  # noqa: E402

MAPPINGS = {
    "mt_bench": {"writing": "writing", "roleplay": "writing", "reasoning": "reasoning", "math": "math",
                 "coding": "coding", "extraction": "extraction", "stem": "knowledge", "humanities": "knowledge"},
    "vicuna80": {"generic": "chat", "knowledge": "knowledge", "roleplay": "writing", "common-sense": "reasoning",
                 "fermi": "reasoning", "counterfactual": "reasoning", "coding": "coding", "math": "math",
                 "writing": "writing"},
    "arena_hard_v2": {"coding": "coding", "math": "math", "creative_writing": "writing"},
}


def f1_table(y: list[str], p: list[str], labels: list[str]) -> tuple[float, float, dict[str, float]]:
    from sklearn.metrics import f1_score

    present = sorted(set(y))
    per = f1_score(y, p, labels=present, average=None, zero_division=0)
    macro = float(np.mean(per))
    acc = float(np.mean(np.array(y) == np.array(p)))
    return macro, acc, dict(zip(present, (float(v) for v in per)))


def main() -> None:
    from scipy.stats import spearmanr

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "analyzer.md")
    args = ap.parse_args()
    an = TaskAnalyzer.default()
    lines = ["| set | n | task macro-F1 | accuracy | per-class F1 |", "|---|---|---|---|---|"]
    all_y: list[str] = []
    all_p: list[str] = []
    for name, mapping in MAPPINGS.items():
        df = pd.read_csv(args.data / f"labels/{name}.csv", dtype={"prompt_id": str})
        emb = load_or_embed(f"labels/{name}", df["prompt_id"].tolist(), df["text"].astype(str).tolist())
        pred = [an.task_types[i] for i in an.predict(emb).task_probs.argmax(axis=1)]
        y = [mapping[label] for label in df["label"]]
        macro, acc, per = f1_table(y, pred, an.task_types)
        all_y += y
        all_p += pred
        lines.append(f"| {name} | {len(y)} | {macro:.3f} | {acc:.3f} | "
                     + ", ".join(f"{k} {v:.2f}" for k, v in per.items()) + " |")
    macro, acc, per = f1_table(all_y, all_p, an.task_types)
    lines.append(f"| **all three pooled** | {len(all_y)} | **{macro:.3f}** | {acc:.3f} | "
                 + ", ".join(f"{k} {v:.2f}" for k, v in per.items()) + " |")

    # domain accuracy + complexity on test splits
    extra = ["", "| check | value |", "|---|---|"]
    for set_name in ("mmlu_pro", "llmrouter"):
        p = pd.read_csv(args.data / set_name / "prompts.csv.gz", dtype={"prompt_id": str})
        emb = load_or_embed(set_name, p["prompt_id"].tolist(), p["text"].astype(str).tolist())
        test = (p["split"] == "test").to_numpy()
        out = an.predict(emb[test])
        o = pd.read_csv(args.data / set_name / "outcomes.csv.gz", dtype={"prompt_id": str})
        diff = (1 - o.groupby("prompt_id")["score"].mean()).reindex(p.loc[test, "prompt_id"]).to_numpy()
        ok = ~np.isnan(diff)
        rho = spearmanr(out.complexity[ok], diff[ok]).statistic
        extra.append(f"| complexity Spearman vs empirical difficulty, {set_name} test ({ok.sum()} prompts) | {rho:.3f} |")
        if set_name == "mmlu_pro":
            dom = [an.domains[i] for i in out.domain_probs.argmax(axis=1)]
            acc_d = float(np.mean(np.array(dom) == p.loc[test, "task"].to_numpy()))
            extra.append(f"| domain accuracy, MMLU-Pro test ({test.sum()} prompts, 14 classes) | {acc_d:.3f} |")
    table = "\n".join(lines + extra)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
