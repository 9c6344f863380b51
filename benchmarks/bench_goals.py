"""The routing-quality goals, measured by ``optiroute bench`` on four data sets in one run.

For each set this runs :func:`optiroute.bench.evaluate.run_bench` (what ``optiroute bench --data DIR`` runs:
fit on train, quality predictor chosen by ``--predictor auto`` on a validation split carved from train,
every predictor kind also fitted and swept as its own method, baselines, metrics on test) with the
prompts' MiniLM vectors served from the shared cache (``scripts/embed_cache.py``), then checks the
goals:

- MMLU-Pro, 31-model pool, no category label: AIQ >= 0.76 and accuracy at 25 % of gpt-4o's cost >= 0.76;
- LLMRouter: AIQ above the per-task-best baseline (which *is* told the task label);
- RouteLLM MMLU and GSM8K (GPT-4 / Mixtral pair): APGR at least 0.1 above the random mix.

Writes ``benchmarks/results/goals.md`` (goals table: measured, target, met or missed and by how much,
and for a missed goal what was tried) and ``benchmarks/results/bench_<set>.md`` (each set's full
``report.md``); the other bench outputs (curve.csv, decisions.csv.gz, cost_quality.png) go to
``.cache/bench/<set>/``.

Run: ``python benchmarks/bench_goals.py [--data ../shared/data] [--sets mmlu_pro,...]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from embed_cache import load_or_embed  # noqa: E402

from optiroute.bench.evaluate import BenchResult, run_bench  # noqa: E402
from optiroute.bench.report import markdown, write_outputs  # noqa: E402

SETS = ["mmlu_pro", "llmrouter", "routellm/mmlu", "routellm/gsm8k"]

#: What was tried for each goal, shown only when the goal is missed (written by hand: it describes
#: experiments, not measurements; every number in the table is measured in this run).
TRIED = {
    "mmlu_pro": (
        "Four quality predictors behind one interface, each fitted on train only and swept on test "
        "in this run (rows `predictor <kind>` of bench_mmlu_pro.md): the kNN store blended with "
        "per-domain card priors, a Routoo-style predictor (MLP on P x - h_model, d=64), a "
        "shared-layer MLP with one logistic head per model, and the `task` kind (a logistic "
        "classifier learns the data's own category labels from MiniLM on train, ~79 % accurate on "
        "a train holdout, and the label-probability-weighted per-category table is blended with "
        "kNN); `auto` picks by validation AIQ on 15 % of train and now picks `task`. The `quality "
        "matrix, linear cost sweep` rows show the predictors alone stay below the goal too. While "
        "developing (same train/test protocol, scratch scripts, not re-run here) I also tried MLP "
        "widths 16 to 1024, dropout 0 to 0.5 and weight decay 1e-4 to 1e-2, averaging MLP seeds, "
        "kNN/MLP/task blends in probability and logit space, per-model logistic regression on "
        "MiniLM + word TF-IDF + length/option-count features (0.724, worse: 31 independent noisy "
        "heads), a TF-IDF word+char classifier for the category (87 % accurate, +0.000 AIQ), and "
        "within-category kNN residuals (0.739 at best), and a wider kNN blend grid for `task` (holdout "
        "Brier prefers weight 0.75 over 0.6, but an 8-point sweep on test falls from 0.743 to 0.739, "
        "0.736 at 0.9; the grid was kept): every variant landed between 0.72 and 0.747. "
        "Two ceiling checks explain why: shifting every model's prediction by each test prompt's "
        "TRUE difficulty (its mean score over the 31 models) leaves AIQ at 0.733, because a shared "
        "difficulty does not change which model is best; and a per-cluster table fitted ON THE TEST "
        "outcomes themselves reaches only 0.755 with 50 MiniLM K-Means clusters (0.749 with the 14 "
        "categories). Reaching 0.76 needs per-prompt, model-specific signal that MiniLM features of "
        "the question do not carry."
    ),
    "llmrouter": (
        "The same four predictors and auto selection (it picks `task`). The gap left is the "
        "predictor's: the `task` quality matrix under a linear cost sweep is itself just below the "
        "per-task-best baseline, which is told the true label of every test prompt, while `task` "
        "predicts it (about 88 % accurate from MiniLM; a word+char TF-IDF classifier reached 92 % "
        "and measured +0.002 AIQ in scratch runs, not adopted). Even the TRUE test labels with the "
        "same kNN blend measured only 0.638 on the linear sweep in a scratch run, so perfect label "
        "prediction would leave about 0.003 over the baseline. The router's scorer and policy "
        "used to lose a further ~0.02: at the cost-only setting the task filter and the "
        "low-confidence generalist overrode the caller, so the router never reached the cheapest "
        "model's cost (AIQ counts 0 left of a router's cheapest point). Cost-only preferences now "
        "get only the hard constraints, which recovered most of that."
    ),
    "routellm/mmlu": "The same three predictors and auto selection.",
    "routellm/gsm8k": (
        "The same three predictors; auto selection averages five disjoint 15 % validation splits "
        "here because one split holds only about 150 prompts."
    ),
}


def _with_prices(data: Path, set_name: str) -> Path:
    """The set's directory, or for a set without ``prices.csv`` (RouteLLM) a copy of it with one.

    RouteLLM records no cost; its two models' list prices come from the bundled registry cards
    (litellm price tables / vendor list prices, each row naming its source) and are written to
    ``.cache/bench/data/<set>/prices.csv`` beside links to the set's prompts and outcomes. APGR and
    CPT do not use cost; the cost-sweep metrics of these sets use these prices.
    """
    import pandas as pd

    from optiroute.catalog.registry import Registry

    src = data / set_name
    if any((src / n).exists() for n in ("prices.csv", "prices.csv.gz")):
        return src
    dst = ROOT / ".cache" / "bench" / "data" / set_name.replace("/", "__")
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("prompts.csv.gz", "outcomes.csv.gz"):
        link = dst / name
        if not link.exists():
            link.symlink_to((src / name).resolve())
    reg = Registry.default()
    models = sorted(pd.read_csv(src / "outcomes.csv.gz", usecols=["model"])["model"].unique())
    rows = [(m, reg.resolve(m).input_usd_per_mtok, reg.resolve(m).output_usd_per_mtok,
             f"optiroute registry card {reg.resolve(m).name}: {reg.resolve(m).sources.get('price', '')}")
            for m in models]
    pd.DataFrame(rows, columns=["model", "input_usd_per_mtok", "output_usd_per_mtok", "source"]).to_csv(
        dst / "prices.csv", index=False)
    return dst


def _embed_fn(set_name: str):
    def embed(ids: list[str], texts: list[str]) -> np.ndarray:
        return load_or_embed(set_name, ids, [str(t) for t in texts])

    return embed


def _summary(r: BenchResult, method: str):
    return next(s for s in r.summaries if s.method == method)


def _pair_row(r: BenchResult, method: str):
    assert r.pair is not None
    return next(row for row in r.pair.rows if row.method == method)


def goals_for(set_name: str, r: BenchResult) -> list[tuple[str, float, float, str]]:
    """(goal, measured, target, comparison) rows for one set's result."""
    router = _summary(r, "router")
    if set_name == "mmlu_pro":
        return [("MMLU-Pro AIQ (31 models, no category label)", router.aiq, 0.76, ">="),
                (f"MMLU-Pro accuracy at 25 % of {r.best_single}'s cost", router.quality_at_25, 0.76, ">=")]
    if set_name == "llmrouter":
        task = next(s for s in r.summaries if s.method.startswith("per-task best"))
        return [("LLMRouter AIQ above the per-task-best baseline", router.aiq, task.aiq, ">")]
    rand = _pair_row(r, "random mix").apgr
    name = "RouteLLM MMLU" if set_name.endswith("mmlu") else "RouteLLM GSM8K"
    return [(f"{name} APGR (strong {r.pair.strong}, weak {r.pair.weak}) >= random mix + 0.1",  # type: ignore[union-attr]
             _pair_row(r, "router").apgr, rand + 0.1, ">=")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--predictor", default="auto")
    ap.add_argument("--overhead-n", type=int, default=64)
    ap.add_argument("--outputs", type=Path, default=ROOT / ".cache" / "bench",
                    help="where each set's curve.csv, decisions and plot go (default .cache/bench/<set>)")
    args = ap.parse_args()
    results_dir = ROOT / "benchmarks" / "results"
    rows, per_set, t_all = [], [], time.perf_counter()
    for set_name in [s for s in args.sets.split(",") if s]:
        t0 = time.perf_counter()
        print(f"bench {set_name} ...", flush=True)
        r, decisions, ids = run_bench(_with_prices(args.data, set_name), predictor=args.predictor,
                                      embed=_embed_fn(set_name), overhead_n=args.overhead_n)
        out = args.outputs / set_name.replace("/", "__")
        write_outputs(r, decisions, ids, out)
        secs = time.perf_counter() - t0
        slug = set_name.replace("/", "_")
        r.data = f"../shared/data/{set_name}"  # the report names the set, not this machine's path
        (results_dir / f"bench_{slug}.md").write_text(
            f"`optiroute bench --data ../shared/data/{set_name} --predictor {args.predictor}` "
            f"({secs:.0f} s including fits)\n\n" + markdown(r), encoding="utf-8")
        per_set.append((set_name, r.predictor, secs))
        for goal, measured, target, op in goals_for(set_name, r):
            met = measured >= target if op == ">=" else measured > target
            rows.append((set_name, goal, measured, target, op, met))
        print(f"  done in {secs:.0f} s; predictor {r.predictor}", flush=True)

    lines = [
        "Measured by `python benchmarks/bench_goals.py` (each set: `optiroute bench`, fit on train, "
        f"evaluated on test; total {time.perf_counter() - t_all:.0f} s on this machine). Full reports: "
        "`benchmarks/results/bench_<set>.md`.",
        "",
        "| goal | measured | target | met? | margin |",
        "|---|---|---|---|---|",
    ]
    for _, goal, measured, target, op, met in rows:
        margin = measured - target
        verdict = "**met**" if met else "missed"
        lines.append(f"| {goal} | {measured:.3f} | {op} {target:.3f} | {verdict} | {margin:+.3f} |")
    missed = sorted({s for s, *_, met in rows if not met}, key=SETS.index)
    if missed:
        lines += ["", "What was tried where a goal is missed:", ""]
        lines += [f"- **{s}** (missed by {max(t - m for ss, _, m, t, _, met in rows if ss == s and not met):.3f}): "
                  f"{TRIED[s]}" for s in missed]
    lines += ["", "| set | quality predictor used by the router | bench time |", "|---|---|---|"]
    lines += [f"| {s} | {p} | {t:.0f} s |" for s, p, t in per_set]
    text = "\n".join(lines) + "\n"
    print(text)
    (results_dir / "goals.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
