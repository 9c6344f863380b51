"""Copy a small, varied set of real prompts from ../shared/data/labels into the package.

``make demo`` and the tests route these; a user's clone has no ../shared, so they ship with the repo.
Sources (Apache-2.0): MT-Bench and Vicuna-80 questions (lm-sys FastChat), Arena-Hard v2.0 questions
(lmarena/arena-hard-auto @ 196f6b82), MMLU-Pro test questions (TIGER-AI-Lab/MMLU-Pro @ f418b116).

Run: ``python scripts/build_fixtures.py [--data ../shared/data]``; the selection is deterministic.
"""

from __future__ import annotations

import argparse
import csv
import gzip
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "core" / "data" / "demo_prompts.csv"

# (file, label, how many): the first rows of each label, in file order, short enough to print.
PICKS = [
    ("labels/mt_bench.csv", "writing", 1),
    ("labels/mt_bench.csv", "math", 1),
    ("labels/mt_bench.csv", "coding", 1),
    ("labels/mt_bench.csv", "extraction", 1),
    ("labels/mt_bench.csv", "roleplay", 1),
    ("labels/vicuna80.csv", "fermi", 1),
    ("labels/vicuna80.csv", "common-sense", 1),
    ("labels/arena_hard_v2.csv", "coding", 1),
    ("labels/arena_hard_v2.csv", "creative_writing", 1),
    ("labels/arena_hard_v2.csv", "math", 1),
]
MMLU_CATEGORIES = ["law", "health", "math"]
SOURCES = {
    "labels/mt_bench.csv": "MT-Bench (lm-sys FastChat, Apache-2.0)",
    "labels/vicuna80.csv": "Vicuna-80 (lm-sys FastChat, Apache-2.0)",
    "labels/arena_hard_v2.csv": "Arena-Hard v2.0 (lmarena/arena-hard-auto@196f6b82, Apache-2.0)",
    "mmlu_pro/prompts.csv.gz": "MMLU-Pro test split (TIGER-AI-Lab/MMLU-Pro@f418b116, Apache-2.0)",
}
MAX_CHARS = 1200


#: The end-to-end test's slice of MMLU-Pro: math and law prompts, four models whose strengths differ
#: by category (DeepSeek-Coder-V2 is strong at math and weak at law, jamba-1.5-large the reverse).
SLICE_DIR = ROOT / "tests" / "fixtures" / "mmlu_slice"
SLICE_MODELS = ["DeepSeek-Coder-V2", "jamba-1.5-large", "gpt-4o-2024-05-13", "Meta-Llama-3_1-8B-Instruct"]
SLICE_TASKS = {"math": (150, 10), "law": (150, 10)}  # category -> (train, test) prompts


def build_slice(data: Path) -> None:
    """Write tests/fixtures/mmlu_slice/{prompts.csv.gz, outcomes.csv.gz, prices.csv}."""
    import pandas as pd

    p = pd.read_csv(data / "mmlu_pro/prompts.csv.gz", dtype={"prompt_id": str})
    o = pd.read_csv(data / "mmlu_pro/outcomes.csv.gz", dtype={"prompt_id": str})
    o = o[o["model"].isin(SLICE_MODELS)]
    complete = o.groupby("prompt_id")["model"].nunique()
    p = p[p["prompt_id"].isin(complete[complete == len(SLICE_MODELS)].index)]
    p = p[p["text"].str.len() <= 1500]
    keep = []
    for task, (n_train, n_test) in SLICE_TASKS.items():
        for split, n in (("train", n_train), ("test", n_test)):
            keep.append(p[(p["task"] == task) & (p["split"] == split)].sort_values("prompt_id").head(n))
    sl = pd.concat(keep)
    SLICE_DIR.mkdir(parents=True, exist_ok=True)
    sl.to_csv(SLICE_DIR / "prompts.csv.gz", index=False)
    o[o["prompt_id"].isin(set(sl["prompt_id"]))].to_csv(SLICE_DIR / "outcomes.csv.gz", index=False)
    prices = pd.read_csv(data / "mmlu_pro/prices.csv")
    prices[prices["model"].isin(SLICE_MODELS)].to_csv(SLICE_DIR / "prices.csv", index=False)
    (SLICE_DIR / "SOURCE.md").write_text(
        "A slice of MMLU-Pro (TIGER-AI-Lab/MMLU-Pro @ f418b116, Apache-2.0) as rewritten in "
        "../shared/data/mmlu_pro: math and law prompts, outcomes of four models, prices from "
        "litellm price tables (late 2024). Built by scripts/build_fixtures.py.\n",
        encoding="utf-8",
    )
    print(f"wrote {len(sl)} prompts to {SLICE_DIR}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    rows: list[dict[str, str]] = []
    for rel, label, n in PICKS:
        with (args.data / rel).open(encoding="utf-8") as f:
            found = [r for r in csv.DictReader(f) if r["label"] == label and len(r["text"]) <= MAX_CHARS]
        for r in found[:n]:
            rows.append({"prompt_id": f"{Path(rel).stem}:{r['prompt_id']}", "label": label,
                         "source": SOURCES[rel], "text": r["text"]})
    with gzip.open(args.data / "mmlu_pro/prompts.csv.gz", "rt", encoding="utf-8") as f:
        test = [r for r in csv.DictReader(f) if r["split"] == "test" and len(r["text"]) <= MAX_CHARS]
    for cat in MMLU_CATEGORIES:
        r = next(r for r in test if r["task"] == cat)
        rows.append({"prompt_id": f"mmlu_pro:{r['prompt_id']}", "label": cat,
                     "source": SOURCES["mmlu_pro/prompts.csv.gz"], "text": r["text"]})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["prompt_id", "label", "source", "text"])
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {len(rows)} prompts to {OUT}")
    build_slice(args.data)


if __name__ == "__main__":
    main()
