"""Embed every prompt of a data set once and cache it for the build scripts.

The analyzer, registry and default-store builds (and the benchmarks) all need MiniLM embeddings of the
same ../shared/data prompts; this computes them once with the routing path's own pruning + MiniLM and
caches ``(prompt_ids, float16 embeddings)`` in ``.cache/emb/<set>.npz`` (gitignored), keyed by a hash
of the texts so a changed data set is re-embedded.

Run ``python scripts/embed_cache.py [--data ../shared/data] [sets...]`` to warm the cache.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "emb"
SETS = ["mmlu_pro", "llmrouter", "routellm/mmlu", "routellm/gsm8k", "routellm/mt_bench"]
LABEL_SETS = ["labels/mt_bench", "labels/vicuna80", "labels/arena_hard_v2", "labels/arena_hard_v0_1"]


def _row_hash(prompt_id: str, text: str) -> str:
    return hashlib.sha1(f"{prompt_id}\x00{text}".encode("utf-8", "replace")).hexdigest()[:16]


def load_or_embed(set_name: str, prompt_ids: Sequence[str], texts: Sequence[str]) -> np.ndarray:
    """Float32 unit embeddings of ``texts``; rows already cached (same id and text) are reused, the
    rest are embedded and added, so subsets and supersets of a set share one cache file."""
    from optiroute.embedding import MiniLMEmbedder

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{set_name.replace('/', '__')}.npz"
    keys = [_row_hash(str(i), t) for i, t in zip(prompt_ids, texts)]
    cached: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            if "hashes" in z:
                cached = dict(zip(z["hashes"].tolist(), z["emb"]))
    missing = [i for i, k in enumerate(keys) if k not in cached]
    if missing:
        new = MiniLMEmbedder(threads=None).encode([texts[i] for i in missing], batch_size=64, show_progress=True)
        for i, e in zip(missing, new):
            cached[keys[i]] = e.astype(np.float16)
        hashes = np.array(list(cached))
        np.savez(path, hashes=hashes, emb=np.stack([cached[h] for h in hashes.tolist()]).astype(np.float16))
    return np.stack([cached[k] for k in keys]).astype(np.float32)


def embed_set(data: Path, name: str) -> np.ndarray:
    """Embed one set of ../shared/data (a prompts.csv.gz directory or a labels/*.csv file)."""
    import pandas as pd

    if name.startswith("labels/"):
        df = pd.read_csv(data / f"{name}.csv", dtype={"prompt_id": str})
    else:
        df = pd.read_csv(data / name / "prompts.csv.gz", dtype={"prompt_id": str})
    return load_or_embed(name, df["prompt_id"].tolist(), df["text"].astype(str).tolist())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("sets", nargs="*", default=SETS + LABEL_SETS)
    args = ap.parse_args()
    for name in args.sets:
        emb = embed_set(args.data, name)
        print(f"{name}: {emb.shape}")


if __name__ == "__main__":
    main()
