"""Decision overhead and import cost, measured in one run (results go into BENCHMARKS.md).

- ``decide()`` median wall time vs the raw MiniLM encode of the same prompt (the floor: routing must
  embed the prompt anyway), both single-threaded, on the bundled demo prompts;
- ``decide_batch`` decisions per second vs a raw batch encode of the same prompts;
- fresh-interpreter import times of ``optiroute``, ``langchain_optiroute``, ``llama_index_optiroute``
  and whether any of them imports torch.

Run: ``python benchmarks/overhead.py [--repeats 30] [--out benchmarks/results/overhead.md]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _import_cost(module: str, runs: int = 5) -> tuple[float, bool]:
    code = (
        f"import time, sys; t=time.perf_counter(); import {module}; d=time.perf_counter()-t; "
        "print(d, 'torch' in sys.modules)"
    )
    times, torch = [], False
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        t, tor = out.stdout.split()
        times.append(float(t))
        torch = torch or tor == "True"
    return statistics.median(times), torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "overhead.md")
    args = ap.parse_args()

    from optiroute import Router
    from optiroute.analysis.embedding import prune_text
    from optiroute.cli.demo import DEMO_CANDIDATES, load_demo_prompts

    prompts = [p["text"] for p in load_demo_prompts()]
    router = Router.default()
    router.decide("warm up", candidates=DEMO_CANDIDATES)  # loads embedder, heads, store, Annoy
    embedder = router.embedder

    # Interleave the two measurements so that machine noise hits both equally.
    enc, dec = [], []
    for _ in range(args.repeats):
        for text in prompts:
            t0 = time.perf_counter()
            embedder.encode([prune_text(text)[0]])
            t1 = time.perf_counter()
            router.decide(text, candidates=DEMO_CANDIDATES)
            t2 = time.perf_counter()
            enc.append(t1 - t0)
            dec.append(t2 - t1)
    enc_ms, dec_ms = statistics.median(enc) * 1e3, statistics.median(dec) * 1e3

    batch = prompts * max(1, 2000 // len(prompts))
    t0 = time.perf_counter()
    embedder.encode([prune_text(t)[0] for t in batch], batch_size=64)
    t_enc = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = router.decide_batch(batch, candidates=DEMO_CANDIDATES)
    t_dec = time.perf_counter() - t0
    assert len(res.model_names) == len(batch)

    imports = {m: _import_cost(m) for m in ("optiroute", "langchain_optiroute", "llama_index_optiroute")}
    lines = [
        "| measurement | value |",
        "|---|---|",
        f"| raw MiniLM encode, one prompt (median of {len(enc)}) | {enc_ms:.2f} ms |",
        f"| `decide()`, same prompts (median of {len(dec)}) | {dec_ms:.2f} ms |",
        f"| **decide / encode ratio** (goal <= 1.2) | **{dec_ms / enc_ms:.3f}** |",
        f"| raw batch encode, {len(batch)} prompts | {len(batch) / t_enc:.0f} prompts/s |",
        f"| `decide_batch`, same prompts | {len(batch) / t_dec:.0f} decisions/s |",
        f"| decide_batch / batch encode time ratio | {t_dec / t_enc:.3f} |",
    ]
    for m, (t, torch) in imports.items():
        lines.append(f"| `import {m}` (fresh interpreter, median of 5) | {t * 1e3:.0f} ms, torch imported: {torch} |")
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n", encoding="utf-8")
    print(json.dumps({"decide_ms": dec_ms, "encode_ms": enc_ms, "ratio": dec_ms / enc_ms}))


if __name__ == "__main__":
    main()
