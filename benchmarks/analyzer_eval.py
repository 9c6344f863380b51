"""Analyzer quality on held-out, human-labelled prompt sets (never used for training).

- task type: macro-F1, accuracy, per-class F1 and the confusion matrix on MT-Bench (80), Vicuna-80 and
  Arena-Hard v2 (750), their labels mapped onto the analyzer's taxonomy by ``MAPPINGS`` below. Macro-F1
  of one set averages over the classes that set has (a prediction into any other class still counts
  as an error); the pooled row averages over all seven.
- domain: accuracy on the MMLU-Pro test split (14 categories).
- complexity: Spearman correlation with empirical difficulty (1 - mean model score) on the MMLU-Pro,
  LLMRouter and RouteLLM test splits;
- ablation: the task head retrained without the hand-written seed prompts (../shared/data only);
- speed: ``predict`` and ``analyze`` of one embedding (median of 2000 calls, one thread).

Run: ``.venv/bin/python benchmarks/analyzer_eval.py [--data ../shared/data]``; prints the tables and writes
``benchmarks/results/analyzer.md``. Embeddings come from ``scripts/embed_cache.py`` (computed once).
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

from optiroute.analysis.analyzer import TaskAnalyzer  # noqa: E402

#: Evaluation label -> analyzer task type. MT-Bench's stem/humanities questions ask for expert
#: explanations (knowledge); roleplay is writing in a persona; Vicuna's fermi and counterfactual
#: questions are estimation / what-if reasoning, "generic" is open advice (chat).
MAPPINGS = {
    "mt_bench": {"writing": "writing", "roleplay": "writing", "reasoning": "reasoning", "math": "math",
                 "coding": "coding", "extraction": "extraction", "stem": "knowledge", "humanities": "knowledge"},
    "vicuna80": {"generic": "chat", "knowledge": "knowledge", "roleplay": "writing", "common-sense": "reasoning",
                 "fermi": "reasoning", "counterfactual": "reasoning", "coding": "coding", "math": "math",
                 "writing": "writing"},
    "arena_hard_v2": {"coding": "coding", "math": "math", "creative_writing": "writing"},
}


def label_set(data: Path, name: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Embeddings, mapped gold task types and raw texts of one evaluation set."""
    df = pd.read_csv(data / "labels" / f"{name}.csv", dtype={"prompt_id": str})
    texts = df["text"].astype(str).tolist()
    emb = load_or_embed(f"labels/{name}", df["prompt_id"].tolist(), texts)
    return emb, [MAPPINGS[name][label] for label in df["label"]], texts


def task_scores(y: list[str], p: list[str], labels: list[str] | None = None) -> dict[str, object]:
    """Macro-F1 over ``labels`` (default: the gold classes present), accuracy and per-class F1."""
    from sklearn.metrics import f1_score

    labels = labels or sorted(set(y))
    per = f1_score(y, p, labels=labels, average=None, zero_division=0)
    return {"n": len(y), "macro_f1": float(np.mean(per)), "accuracy": float(np.mean(np.array(y) == np.array(p))),
            "per_class": {k: float(v) for k, v in zip(labels, per, strict=True)}}


def evaluate_tasks(an: TaskAnalyzer, data: Path) -> dict[str, dict[str, object]]:
    """Task-head scores per evaluation set and pooled (with predictions for the confusion tables)."""
    res: dict[str, dict[str, object]] = {}
    all_y: list[str] = []
    all_p: list[str] = []
    for name in MAPPINGS:
        emb, y, _ = label_set(data, name)
        p = [an.task_types[i] for i in an.predict(emb).task_probs.argmax(axis=1)]
        res[name] = {**task_scores(y, p), "y": y, "p": p}
        all_y += y
        all_p += p
    res["pooled"] = {**task_scores(all_y, all_p, list(an.task_types)), "y": all_y, "p": all_p}
    return res


def evaluate_splits(an: TaskAnalyzer, data: Path) -> list[tuple[str, float]]:
    """Domain accuracy and complexity Spearman on the test splits."""
    from scipy.stats import spearmanr

    rows: list[tuple[str, float]] = []
    for set_name in ("mmlu_pro", "llmrouter", "routellm/mmlu", "routellm/gsm8k"):
        p = pd.read_csv(data / set_name / "prompts.csv.gz", dtype={"prompt_id": str})
        p = p[p["split"] == "test"].reset_index(drop=True)
        emb = load_or_embed(set_name, p["prompt_id"].tolist(), p["text"].astype(str).tolist())
        out = an.predict(emb)
        o = pd.read_csv(data / set_name / "outcomes.csv.gz", dtype={"prompt_id": str}).dropna(subset=["score"])
        g = o.groupby("prompt_id")["score"]
        diff = (1 - g.mean()).reindex(p["prompt_id"]).to_numpy()
        n_models = int(g.count().max())
        ok = ~np.isnan(diff)
        rho = float(spearmanr(out.complexity[ok], diff[ok]).statistic)
        rows.append((f"complexity Spearman vs empirical difficulty, {set_name} test "
                     f"({int(ok.sum())} prompts, {n_models} models)", rho))
        if set_name == "mmlu_pro":
            dom = np.array([an.domains[i] for i in out.domain_probs.argmax(axis=1)])
            rows.append((f"domain accuracy, MMLU-Pro test ({len(p)} prompts, 14 classes)",
                         float(np.mean(dom == p["task"].to_numpy()))))
    return rows


def timing(an: TaskAnalyzer, emb: np.ndarray, text: str, repeat: int = 2000) -> list[tuple[str, float]]:
    """Median microseconds of ``predict`` and ``analyze`` for one prompt (embedding given)."""
    import time

    x = emb[:1]
    rows = []
    calls = (("predict()", lambda: an.predict(x)), ("analyze() incl. TaskProfile", lambda: an.analyze(x, [text])))
    for label, fn in calls:
        fn()
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        rows.append((f"{label}, one prompt, median us", 1e6 * float(np.median(ts))))
    return rows


def language_split(an: TaskAnalyzer, data: Path) -> list[tuple[str, float]]:
    """Arena-Hard v2 task accuracy on mostly-ASCII (English-like) prompts vs the rest: MiniLM is an
    English model, and a quarter of Arena-Hard v2 is in other languages and scripts."""
    emb, y, texts = label_set(data, "arena_hard_v2")
    p = np.array([an.task_types[i] for i in an.predict(emb).task_probs.argmax(axis=1)])
    ascii_ = np.array([sum(ord(c) < 128 for c in t) >= 0.95 * max(1, len(t)) for t in texts])
    ok = p == np.array(y)
    return [(f"Arena-Hard v2 task accuracy, prompts >= 95 % ASCII ({int(ascii_.sum())})", float(ok[ascii_].mean())),
            (f"Arena-Hard v2 task accuracy, other prompts ({int((~ascii_).sum())})", float(ok[~ascii_].mean()))]


def ablation(data: Path) -> str:
    """Task-head table of the analyzer rebuilt from ../shared/data only (no seed prompts)."""
    from build_analyzer import Config, build

    an = build(data, Config(seed_prompts=None))
    res = evaluate_tasks(an, data)
    lines = ["| set (no seed prompts) | n | task macro-F1 | accuracy | per-class F1 |", "|---|---|---|---|---|"]
    for name, r in res.items():
        per = ", ".join(f"{k} {v:.2f}" for k, v in r["per_class"].items())  # type: ignore[union-attr]
        lines.append(f"| {name} | {r['n']} | {r['macro_f1']:.3f} | {r['accuracy']:.3f} | {per} |")
    return "\n".join(lines)


def markdown(tasks: dict[str, dict[str, object]], splits: list[tuple[str, float]], task_types: list[str]) -> str:
    """The results as markdown tables."""
    lines = ["| set | n | task macro-F1 | accuracy | per-class F1 |", "|---|---|---|---|---|"]
    for name, r in tasks.items():
        per = ", ".join(f"{k} {v:.2f}" for k, v in r["per_class"].items())  # type: ignore[union-attr]
        label = "**all three pooled** (macro over 7 classes)" if name == "pooled" else name
        lines.append(f"| {label} | {r['n']} | {r['macro_f1']:.3f} | {r['accuracy']:.3f} | {per} |")
    lines += ["", "| check | value |", "|---|---|"]
    lines += [f"| {k} | {v:.3f} |" if abs(v) <= 1 else f"| {k} | {v:.1f} |" for k, v in splits]
    for name, r in tasks.items():
        if name == "pooled":
            continue
        ct = pd.crosstab(pd.Series(r["y"], name="gold"), pd.Series(r["p"], name="predicted"))
        ct = ct.reindex(columns=[t for t in task_types], fill_value=0)
        lines += ["", f"Confusion, {name} (rows gold, columns predicted):", "",
                  "| gold \\ predicted | " + " | ".join(ct.columns) + " |",
                  "|---|" + "---|" * len(ct.columns)]
        lines += [f"| {i} | " + " | ".join(str(int(v)) for v in row) + " |" for i, row in ct.iterrows()]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--analyzer", type=Path, default=None, help="an analyzer .npz (default: the bundled one)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "analyzer.md")
    ap.add_argument("--no-ablation", action="store_true", help="skip retraining without seed prompts")
    args = ap.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    an = TaskAnalyzer.load(args.analyzer) if args.analyzer else TaskAnalyzer.default()
    emb, _, texts = label_set(args.data, "mt_bench")
    splits = evaluate_splits(an, args.data) + language_split(an, args.data) + timing(an, emb, texts[0])
    table = markdown(evaluate_tasks(an, args.data), splits, list(an.task_types))
    if not args.no_ablation:
        table += "\n\nAblation: the same build without scripts/data/seed_prompts.csv:\n\n" + ablation(args.data)
    mapping = "; ".join(f"{s}: " + ", ".join(f"{k}->{v}" for k, v in m.items()) for s, m in MAPPINGS.items())
    table += f"\n\nLabel mapping: {mapping}.\n"
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()
