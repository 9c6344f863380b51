"""A cold ``optiroute bench`` with each encoder backend: the wait a user has fitting on their own data.

A cold bench embeds every prompt (train and test) before it fits anything, so the encoder decides how
long a user waits. This runs the real CLI, ``optiroute bench --data <dir> --out <dir> --overhead-n 0``,
in a fresh process per run, on a stratified sample of MMLU-Pro (train and test in the data's
proportions), with no embedding cache, once with ``OPTIROUTE_EMBED_BACKEND=torch`` and once with
``onnx``, in alternating order over ``--rounds`` rounds, and reports each run's wall time and the
ratio of the medians. The onnx backend's exported model is the one cached on this machine (the one-time
export on first use is timed separately, in a fresh cache folder, and reported beside). The AIQ each
run reports is printed too: the two backends fit and route on slightly different vectors.

Run: ``python benchmarks/cold_bench.py [--data ../shared/data] [--n 2000] [--rounds 1]``; writes
``benchmarks/results/cold_bench.md``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("torch", "onnx")


def _sample(data: Path, n: int, seed: int, dst: Path) -> tuple[int, int]:
    """Write an MMLU-Pro sample of ``n`` prompts (train/test in the data's proportions) to ``dst``."""
    p = pd.read_csv(data / "mmlu_pro/prompts.csv.gz", dtype={"prompt_id": str})
    frac = min(1.0, n / len(p))
    sub = p.groupby("split", group_keys=False).sample(frac=frac, random_state=seed)
    o = pd.read_csv(data / "mmlu_pro/outcomes.csv.gz", dtype={"prompt_id": str})
    dst.mkdir(parents=True, exist_ok=True)
    sub.to_csv(dst / "prompts.csv.gz", index=False)
    o[o["prompt_id"].isin(set(sub["prompt_id"]))].to_csv(dst / "outcomes.csv.gz", index=False)
    shutil.copy(data / "mmlu_pro/prices.csv", dst / "prices.csv")
    counts = sub["split"].value_counts()
    return int(counts.get("train", 0)), int(counts.get("test", 0))


def _optiroute() -> str:
    exe = Path(sys.executable).with_name("optiroute")
    return str(exe) if exe.exists() else "optiroute"


def _run(backend: str, data: Path, out: Path, env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds of one cold bench and the router's AIQ line from its report."""
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([_optiroute(), "bench", "--data", str(data), "--out", str(out), "--overhead-n", "0"],
                   check=True, env={**env, "OPTIROUTE_EMBED_BACKEND": backend},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    report = (out / "report.md").read_text(encoding="utf-8")
    m = re.search(r"AIQ[^0-9]*([01]\.\d+)", report)
    return wall, m.group(1) if m else "?"


def _export_seconds(env: dict[str, str]) -> float:
    """The onnx backend's one-time export (and int8 build) into an empty cache folder."""
    with tempfile.TemporaryDirectory() as cache:
        code = ("import time; from optiroute.analysis.embedding import MiniLMEmbedder; "
                f"e = MiniLMEmbedder(backend='onnx', cache_dir={cache!r}); t = time.perf_counter(); "
                "e.encode(['warm up']); print(time.perf_counter() - t)")
        res = subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True, text=True)
        return float(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--n", type=int, default=2000, help="prompts sampled from MMLU-Pro (train + test)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cold_bench.md")
    args = ap.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    started = datetime.now(timezone.utc)
    load_before = os.getloadavg()[0]
    walls: dict[str, list[float]] = {b: [] for b in BACKENDS}
    aiqs: dict[str, list[str]] = {b: [] for b in BACKENDS}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "mmlu_pro_sample"
        n_train, n_test = _sample(args.data, args.n, args.seed, data)
        for r in range(args.rounds):
            for backend in (BACKENDS if r % 2 == 0 else BACKENDS[::-1]):
                wall, aiq = _run(backend, data, Path(tmp) / f"out_{backend}", env)
                walls[backend].append(wall)
                aiqs[backend].append(aiq)
                print(f"round {r + 1}: {backend} {wall:.1f} s (AIQ {aiq})", flush=True)
        export = _export_seconds(env)
    finished = datetime.now(timezone.utc)
    med = {b: statistics.median(w) for b, w in walls.items()}
    rows = [
        f"Measured {started:%Y-%m-%d %H:%M}-{finished:%H:%M} UTC by `benchmarks/cold_bench.py` on "
        f"{os.cpu_count()} cores: `optiroute bench --overhead-n 0` in a fresh process, no embedding cache, on "
        f"{n_train + n_test} MMLU-Pro prompts ({n_train} train / {n_test} test, sampled with seed {args.seed}), "
        f"{args.rounds} round(s), backends alternating. 1-minute load average before / after: "
        f"{load_before:.2f} / {os.getloadavg()[0]:.2f} (other processes share the cores).",
        "",
        "| backend | wall time per run | router AIQ in its report |",
        "|---|---|---|",
        *[f"| {b} | {', '.join(f'{w:.1f} s' for w in walls[b])} | {', '.join(aiqs[b])} |" for b in BACKENDS],
        "",
        f"Cold bench, onnx / torch wall time: **{med['onnx'] / med['torch']:.2f}x** "
        f"(torch / onnx: **{med['torch'] / med['onnx']:.2f}x faster**; target >= 2x). The onnx backend's one-time "
        f"export into an empty cache, paid on a machine's first use only: {export:.1f} s.",
    ]
    args.out.write_text("\n".join(rows) + "\n", encoding="utf-8")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
