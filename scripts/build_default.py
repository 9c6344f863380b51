"""Build the bundled default evaluation store ``core/data/default/`` from ../shared/data.

The default router's kNN store stacks the *train* splits of two sets with real per-prompt outcomes:

- MMLU-Pro (TIGER-AI-Lab/MMLU-Pro @ f418b116 / ff991b5b, Apache-2.0): 31 models, 0/1 correctness;
- LLMRouter (ulab-uiuc/LLMRouter @ 4e7a7969, MIT): 9 open models, task metric 0..1.

Models evaluated in only one set have NaN (unknown) outcomes on the other set's prompts. Test splits
are never included, so benchmarks on them stay honest. Embeddings come from the same pruning + MiniLM
path as routing (cached by ``scripts/embed_cache.py``) and are stored int8.

Run: ``python scripts/build_default.py [--data ../shared/data]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from embed_cache import load_or_embed  # noqa: E402

from optiroute.catalog.current import CURRENT  # noqa: E402
from optiroute.catalog.registry import Registry  # noqa: E402
from optiroute.fit.datasets import load_outcomes, load_prompts  # noqa: E402
from optiroute.fit.training import outcome_matrices  # noqa: E402
from optiroute.quality.index import OutcomeIndex  # noqa: E402
from optiroute.router.artifacts import DEFAULT_DIR, FORMAT_NAME, FORMAT_VERSION, _sha256  # noqa: E402

SETS = {
    "mmlu_pro": "TIGER-AI-Lab/MMLU-Pro @ f418b116 (eval_results/model_outputs_*_5shots.zip) and @ ff991b5b "
                "(eval_results/{gpt4o,deepseek}); Apache-2.0",
    "llmrouter": "ulab-uiuc/LLMRouter @ 4e7a7969 (data/dcrouter_preprocessed, data/example_data); MIT",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=DEFAULT_DIR)
    args = ap.parse_args()

    registry = Registry.default()
    embs, ids, tasks, frames = [], [], [], []
    for name in SETS:
        p = load_prompts(args.data / name / "prompts.csv.gz")
        p = p[p["split"] == "train"].reset_index(drop=True)
        o = load_outcomes(args.data / name / "outcomes.csv.gz")
        o = o[o["prompt_id"].isin(set(p["prompt_id"]))]
        pid = [f"{name}:{x}" for x in p["prompt_id"]]
        e = load_or_embed(name, p["prompt_id"].tolist(), p["text"].tolist())
        # Canonical card names, so one model evaluated in both sets (Llama-3.1-8B-Instruct) is one column.
        o = o.assign(prompt_id=name + ":" + o["prompt_id"], model=o["model"].map(lambda m: registry.get(m).name))
        embs.append(e)
        ids.extend(pid)
        tasks.extend(f"{name}:{t}" for t in p["task"])
        frames.append(o)
        print(f"{name}: {len(p)} train prompts, {o['model'].nunique()} models")
    import pandas as pd

    outcomes = pd.concat(frames, ignore_index=True)
    models = sorted(outcomes["model"].unique().tolist())
    scores, _ = outcome_matrices(ids, models, outcomes)
    index = OutcomeIndex(np.concatenate(embs), ids, tasks, models, scores, None, n_trees=16)

    # The pool a router without explicit candidates chooses from: the chat and API cards with measured
    # per-domain figures. Today's cards (current_models.json) have published benchmark numbers but no
    # outcomes in the store yet; a caller names them as candidates.
    current = {c["name"] for c in json.loads(CURRENT.read_text(encoding="utf-8"))["cards"]}
    pool = [c.name for c in registry if c.kind in ("api", "chat") and c.name not in current]

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*"):
        stale.unlink()
    index.save(out, with_ann=False)
    files = {f.name: _sha256(f) for f in sorted(out.iterdir())}
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "models": pool,
        "files": files,
        "sources": SETS,
        "prompts": len(ids),
        "note": "train splits only; registry and analyzer are bundled separately (models.json, analyzer.npz)",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    size = sum(f.stat().st_size for f in out.iterdir()) / 1e6
    print(f"wrote {out} ({len(ids)} prompts x {len(models)} models, {size:.1f} MB); pool of {len(pool)} models")


if __name__ == "__main__":
    main()
