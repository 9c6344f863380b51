"""Embed every prompt of a data set once and cache it for the build scripts and benchmarks.

The analyzer build, the default-store build and the benchmarks all need MiniLM embeddings of the same
../shared/data prompts. This computes them once, with the routing path's own :func:`prune_text` +
:class:`MiniLMEmbedder`, and caches ``prompt_ids``, float16 embeddings and a per-row key in
``.cache/emb/<set>.npz`` (gitignored). The key hashes (set, prompt id, text), so a changed or added
prompt is re-embedded while unchanged rows are reused, and subsets and supersets of a set share one
file. Each embedder (backend, precision, length: :attr:`MiniLMEmbedder.name`) has its own folder, so
switching ``OPTIROUTE_EMBED_BACKEND`` never mixes vectors; the file also records the embedder and
pruning settings, and a cache made with other settings is ignored and rebuilt.

Run ``.venv/bin/python scripts/embed_cache.py [--data ../shared/data] [sets...]`` to warm the cache
(default: every set, MMLU-Pro and LLMRouter first; all splits).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "emb"
#: Prompt sets in warm-up order (the default store needs MMLU-Pro and LLMRouter first).
SETS = ["mmlu_pro", "llmrouter", "routellm/mmlu", "routellm/gsm8k"]
#: Human-labelled sets: Arena-Hard v0.1 trains the analyzer; the other three only evaluate it.
LABEL_SETS = ["labels/arena_hard_v0_1", "labels/mt_bench", "labels/vicuna80", "labels/arena_hard_v2"]
#: What the cached vectors depend on besides the text and the embedder; a mismatch invalidates the file.
PRUNING = "prune_text(max_words=256, head=64, tail=192)|normalized"


def _embedder() -> Any:
    """The embedder the cache is for: the routing path's default backend, every core."""
    from optiroute.analysis.embedding import MiniLMEmbedder

    return MiniLMEmbedder(threads=None)


def embedder_name() -> str:
    """The name of the embedder the cached vectors come from (backend, precision, reading window)."""
    return str(_embedder().name)


def _settings() -> str:
    return f"{embedder_name()}|{PRUNING}"


def _key(set_name: str, prompt_id: str, text: str) -> str:
    return hashlib.sha1(f"{set_name}\x00{prompt_id}\x00{text}".encode("utf-8", "replace")).hexdigest()[:16]


def _path(set_name: str) -> Path:
    tag = "".join(c if c.isalnum() or c in "-_." else "_" for c in _embedder().name)
    return CACHE / tag / f"{set_name.replace('/', '__')}.npz"


def _read(path: Path) -> tuple[dict[str, int], np.ndarray, list[str]]:
    """Cached rows of one file as (key -> row, float16 matrix, prompt ids); empty if unusable."""
    empty: tuple[dict[str, int], np.ndarray, list[str]] = ({}, np.zeros((0, 384), np.float16), [])
    if not path.exists():
        return empty
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["settings"]) != _settings():
                print(f"{path.name}: made with other embedding settings, re-embedding", file=sys.stderr)
                return empty
            keys, emb, ids = z["keys"].tolist(), z["emb"], z["prompt_ids"].tolist()
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        print(f"{path.name}: unreadable cache ({type(exc).__name__}), re-embedding", file=sys.stderr)
        return empty
    return {k: i for i, k in enumerate(keys)}, emb, ids


def _write(path: Path, keys: list[str], emb: np.ndarray, ids: list[str]) -> None:
    """Write atomically, so a concurrent reader or an interrupted run never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, settings=np.array(_settings()), keys=np.array(keys), emb=emb.astype(np.float16),
                     prompt_ids=np.array(ids))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_or_embed(set_name: str, prompt_ids: Sequence[str], texts: Sequence[str]) -> np.ndarray:
    """Float32 unit embeddings of ``texts``, one row per prompt, in the given order.

    Rows already cached under ``set_name`` (same prompt id and text) are reused; the others are
    embedded with a progress bar and added to the cache.
    """
    if len(prompt_ids) != len(texts):
        raise ValueError(f"{len(prompt_ids)} prompt ids but {len(texts)} texts for {set_name!r}")
    path = _path(set_name)
    index, emb, ids = _read(path)
    keys = [_key(set_name, str(i), t) for i, t in zip(prompt_ids, texts, strict=True)]
    todo = sorted({k: j for j, k in enumerate(keys) if k not in index}.values())
    if todo:
        print(f"{set_name}: embedding {len(todo)} of {len(keys)} prompts", file=sys.stderr)
        new = _embedder().encode([texts[j] for j in todo], batch_size=64, show_progress=True)
        all_keys = list(index) + [keys[j] for j in todo]
        emb = np.concatenate([emb, new.astype(np.float16)])
        ids = ids + [str(prompt_ids[j]) for j in todo]
        _write(path, all_keys, emb, ids)
        index = {k: i for i, k in enumerate(all_keys)}
    return emb[[index[k] for k in keys]].astype(np.float32)


def embed_set(data: Path, name: str) -> np.ndarray:
    """Embed one set of ../shared/data: a ``<set>/prompts.csv.gz`` directory or ``labels/<set>.csv``."""
    import pandas as pd

    path = data / f"{name}.csv" if name.startswith("labels/") else data / name / "prompts.csv.gz"
    df = pd.read_csv(path, dtype={"prompt_id": str})
    return load_or_embed(name, df["prompt_id"].tolist(), df["text"].astype(str).tolist())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("sets", nargs="*", default=SETS + LABEL_SETS, help=f"default: {' '.join(SETS + LABEL_SETS)}")
    args = ap.parse_args()
    for name in args.sets:
        emb = embed_set(args.data, name)
        print(f"{name}: {emb.shape[0]} prompts x {emb.shape[1]} cached in {_path(name)}")


if __name__ == "__main__":
    main()
