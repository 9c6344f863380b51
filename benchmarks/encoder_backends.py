"""Encoder backends: ONNX Runtime (int8 weights) vs sentence-transformers on torch, in one run.

Everything is compared with plain sentence-transformers on torch (``SentenceTransformer.encode``,
torch's default thread count, its own 256-word-piece cut) on the same prompts, as given:

- single-prompt latency, p50: a short prompt (the bundled demo prompts of at most 30 words) and a
  ~1,500-word chat transcript (routing reads its first 32 and last 94 word pieces, see
  ``optiroute.analysis.reading``; plain sentence-transformers its first 256): the raw encode
  of each backend and ``Router.default().decide()`` with each backend's embedder;
- batch throughput on MMLU-Pro-length prompts (``--n`` test-split prompts of
  ``<data>/mmlu_pro/prompts.csv.gz``): raw encode and ``decide_batch``;
- quality: mean / min cosine of the onnx vectors to torch's, and the share of identical
  ``Router.default().decide_batch(...)`` decisions (``explore=False``) between the two backends' vectors
  on up to ``--n`` test prompts of each shared set, under the ``balanced`` and ``quality-first``
  profiles;
- the reading window: the default (a prompt of up to 256 word pieces read whole, a longer one by its
  head and tail, 128 pieces) against reading the first 256 (sentence-transformers' cut) and the first
  128 (the length the model was trained at), on the same quality and speed measures (the window's
  effect on routing quality, AIQ per set, is ``benchmarks/reading_window.py``).

Our embedders run each text single-threaded (the router's default, see ``MiniLMEmbedder``); the
onnx batch path runs ``batch_threads`` texts at once (default: every core); "plain" torch splits
each product over every core. Measurements are interleaved so machine noise hits every backend alike: latency is the
p50 over all passes, throughput the best of ``--batch-repeats`` rounds.

Run: ``python benchmarks/encoder_backends.py [--data ../shared/data] [--n 300] [--repeats 20]``
(writes ``benchmarks/results/encoder_backends.md``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SETS = ("mmlu_pro", "llmrouter", "routellm/mmlu", "routellm/gsm8k", "routellm/mt_bench")
PROFILES = ("balanced", "quality-first")


def _test_prompts(data: Path, name: str, n: int, seed: int = 0) -> list[str]:
    df = pd.read_csv(data / name / "prompts.csv.gz")
    test = df[df["split"] == "test"]
    if len(test) < n:  # routellm/mt_bench has 18 test prompts: take the whole set
        test = df
    return test.sample(n=min(n, len(test)), random_state=seed)["text"].astype(str).tolist()


def _chat_prompts(data: Path, count: int = 5, words: int = 1500) -> list[str]:
    """Deterministic ~1,500-word chat transcripts: user turns from LLMRouter and MMLU-Pro prompts with
    short assistant replies, ending with a user question."""
    pool = pd.read_csv(data / "llmrouter" / "prompts.csv.gz")["text"].astype(str).tolist()
    pool += pd.read_csv(data / "mmlu_pro" / "prompts.csv.gz", nrows=4000)["text"].astype(str).tolist()
    rng = np.random.default_rng(7)
    out = []
    for _ in range(count):
        turns: list[str] = []
        n = 0
        while n < words:
            text = pool[int(rng.integers(len(pool)))]
            turns.append(f"User: {text}\n\nAssistant: Thanks, here is a short answer to that; ask me for more detail.")
            n += len(text.split()) + 15
        turns.append("User: Given everything above, which of my questions was the hardest, and why?")
        out.append("\n\n".join(turns))
    return out


def _p50_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1e3


def _interleaved(
    fns: dict[str, tuple[Callable[[], object], Callable[[str], object]]], prompts: Sequence[str], repeats: int
) -> dict[str, float]:
    """p50 milliseconds of each ``(setup, fn)`` over ``repeats`` passes of ``prompts``, the functions
    interleaved; ``setup`` (torch's thread count) runs before the clock starts."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for text in prompts:
            for k, (setup, fn) in fns.items():
                setup()
                t0 = time.perf_counter()
                fn(text)
                times[k].append(time.perf_counter() - t0)
    return {k: _p50_ms(v) for k, v in times.items()}


def _throughputs(
    fns: dict[str, tuple[Callable[[], object], Callable[[], object]]], n: int, repeats: int
) -> dict[str, float]:
    """Items per second of each ``(setup, fn)``, best of ``repeats`` interleaved rounds (every function
    once per round, so a burst of machine noise does not land on one of them only)."""
    best = {k: float("inf") for k in fns}
    for _ in range(repeats):
        for k, (setup, fn) in fns.items():
            setup()
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return {k: n / v for k, v in best.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--n", type=int, default=300, help="prompts per set (batch throughput and agreement)")
    ap.add_argument("--repeats", type=int, default=20, help="passes over the latency prompts")
    ap.add_argument("--batch-repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "encoder_backends.md")
    args = ap.parse_args()

    import onnxruntime
    import torch
    from sentence_transformers import SentenceTransformer

    from optiroute import Router
    from optiroute.analysis.embedding import MiniLMEmbedder, prune_text
    from optiroute.cli.demo import load_demo_prompts

    started = datetime.now(timezone.utc)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    torch_threads = torch.get_num_threads()
    path = MiniLMEmbedder(backend="torch")._path()
    plain = SentenceTransformer(path, device="cpu")

    def plain_encode(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return np.asarray(plain.encode(list(texts), batch_size=batch_size,
                                       normalize_embeddings=True, convert_to_numpy=True), dtype=np.float32)

    emb = {
        "onnx": MiniLMEmbedder(backend="onnx", threads=1),  # batch_threads: every core
        "onnx_seq": MiniLMEmbedder(backend="onnx", threads=1, batch_threads=1),
        "onnx_2t": MiniLMEmbedder(backend="onnx", threads=2),  # each run on 2 threads, one run at a time
        "onnx256": MiniLMEmbedder(backend="onnx", threads=1, max_tokens=256),
        "onnx128": MiniLMEmbedder(backend="onnx", threads=1, max_tokens=128),
        "onnx_shared": MiniLMEmbedder(backend="onnx", threads=1),  # int8 in shared length buckets
        "onnx_fp32": MiniLMEmbedder(backend="onnx", threads=1, precision="fp32", max_tokens=256),
        "torch1": MiniLMEmbedder(backend="torch", threads=1),
    }
    for e in emb.values():
        e.encode(["warm up"])
    emb["onnx_shared"]._load_onnx().per_text = False
    torch.set_num_threads(torch_threads)

    def all_threads() -> None:
        torch.set_num_threads(torch_threads)

    def one_thread() -> None:
        torch.set_num_threads(1)

    def ours(key: str) -> tuple[Callable[[], object], Callable[[str], object]]:
        e = emb[key]
        return (one_thread if e.backend == "torch" else all_threads), lambda t: e.encode([t])

    def unbucketed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """int8 without length buckets: batches of 64 in input order, padded to their longest text."""
        runtime = emb["onnx"]._load_onnx()
        ids = runtime.token_ids([prune_text(t)[0] for t in texts])
        return np.concatenate([runtime._run(ids[s : s + batch_size]) for s in range(0, len(ids), batch_size)])

    routers = {k: Router.default(embedder=emb[k]) for k in ("onnx", "torch1")}
    for r in routers.values():
        r.decide("warm up")

    short = [p["text"] for p in load_demo_prompts() if len(p["text"].split()) <= 30]
    chats = _chat_prompts(args.data)
    chat_words = statistics.median(len(c.split()) for c in chats)
    tok = emb["onnx"]._load_onnx()
    chat_tokens = statistics.median(len(tok.token_ids([prune_text(c)[0]])[0]) for c in chats)
    rows: list[tuple[str, str, str, str, str]] = []  # measurement, torch reference, onnx, ratio, target
    lat: dict[str, dict[str, float]] = {}

    def latency(key: str, label: str, prompts: list[str], repeats: int) -> None:
        fns: dict[str, tuple[Callable[[], object], Callable[[str], object]]] = {
            "plain": (all_threads, lambda t: plain_encode([t])),
            "onnx": ours("onnx"),
            "onnx256": ours("onnx256"),
            "onnx128": ours("onnx128"),
            "onnx_2t": ours("onnx_2t"),
            "onnx_fp32": ours("onnx_fp32"),
            "torch1": ours("torch1"),
            "decide_onnx": (all_threads, lambda t: routers["onnx"].decide(t)),
            "decide_torch1": (one_thread, lambda t: routers["torch1"].decide(t)),
        }
        res = lat[key] = _interleaved(fns, prompts, repeats)
        n = len(prompts) * repeats
        ref = res["plain"]
        rows.append((f"{label}: raw encode p50 (n={n})", f"{ref:.2f} ms", f"{res['onnx']:.2f} ms",
                     f"{res['onnx'] / ref:.2f}", ""))
        rows.append((f"{label}: `decide()` p50 (onnx embedder) / plain torch encode p50", f"{ref:.2f} ms",
                     f"{res['decide_onnx']:.2f} ms", f"**{res['decide_onnx'] / ref:.2f}**", "<= 0.5"))
        rows.append((f"{label}: `decide()` p50 (onnx embedder) / our torch embedder's encode p50 (1 thread)",
                     f"{res['torch1']:.2f} ms", f"{res['decide_onnx']:.2f} ms",
                     f"{res['decide_onnx'] / res['torch1']:.2f}", ""))
        print(label, {k: round(v, 2) for k, v in res.items()}, flush=True)

    latency("short", f"short prompt ({len(short)} demo prompts of <= 30 words)", short, args.repeats)
    latency("chat", f"chat prompt (~{chat_words:.0f} words, {len(chats)} transcripts; {chat_tokens:.0f} word "
            "pieces read)", chats, max(2, args.repeats // 2))

    # Batch throughput on MMLU-Pro-length prompts.
    mmlu = _test_prompts(args.data, "mmlu_pro", args.n)
    n = len(mmlu)
    thr = _throughputs({
        "plain": (all_threads, lambda: plain_encode(mmlu)),
        "onnx": (all_threads, lambda: emb["onnx"].encode(mmlu)),
        "onnx_seq": (all_threads, lambda: emb["onnx_seq"].encode(mmlu)),
        "onnx_2t": (all_threads, lambda: emb["onnx_2t"].encode(mmlu)),
        "onnx256": (all_threads, lambda: emb["onnx256"].encode(mmlu)),
        "onnx128": (all_threads, lambda: emb["onnx128"].encode(mmlu)),
        "onnx_shared": (all_threads, lambda: emb["onnx_shared"].encode(mmlu)),
        "onnx_unbucketed": (all_threads, lambda: unbucketed(mmlu)),
        "onnx_fp32": (all_threads, lambda: emb["onnx_fp32"].encode(mmlu)),
        "torch1": (one_thread, lambda: emb["torch1"].encode(mmlu)),
        "decide_onnx": (all_threads, lambda: routers["onnx"].decide_batch(mmlu, explore=False)),
        "decide_torch1": (one_thread, lambda: routers["torch1"].decide_batch(mmlu, explore=False)),
    }, n, args.batch_repeats)
    all_threads()
    print("throughput", {k: round(v, 1) for k, v in thr.items()}, flush=True)
    mmlu_tokens = statistics.median(len(r) for r in tok.token_ids([prune_text(t)[0] for t in mmlu]))
    label = f"MMLU-Pro batch ({n} test prompts, median {mmlu_tokens:.0f} word pieces read, batch_size 64)"
    ref = thr["plain"]
    rows.append((f"{label}: raw encode throughput", f"{ref:.1f}/s", f"{thr['onnx']:.1f}/s",
                 f"**{thr['onnx'] / ref:.2f}x**", ">= 2x"))
    rows.append((f"{label}: `decide_batch` throughput (onnx embedder) / plain torch encode", f"{ref:.1f}/s",
                 f"{thr['decide_onnx']:.1f}/s", f"**{thr['decide_onnx'] / ref:.2f}x**", ">= 2x"))
    rows.append((f"{label}: `decide_batch` throughput, onnx / torch embedder (1 thread)",
                 f"{thr['decide_torch1']:.1f}/s", f"{thr['decide_onnx']:.1f}/s",
                 f"{thr['decide_onnx'] / thr['decide_torch1']:.2f}x", ""))
    shared = emb["onnx_shared"].encode(mmlu)
    alone = emb["onnx"].encode(mmlu)
    shared_cos = (shared * alone).sum(axis=1)

    n_at_once = emb["onnx"].batch_threads
    w = f"{n_at_once} run{'s' if n_at_once > 1 else ''}"

    def variant_row(name: str, key: str | None, batch_key: str) -> str:
        cells = []
        for which in ("short", "chat"):
            if key is None:
                cells.append("same as above")
            else:
                v = lat[which][key]
                cells.append(f"{v:.2f} ms ({v / lat[which]['plain']:.2f})")
        t = thr[batch_key]
        cells.append(f"{t:.1f}/s ({t / thr['plain']:.2f}x)")
        return f"| {name} | " + " | ".join(cells) + " |"

    variants = [
        "| encoder | short p50 (ratio to plain) | chat p50 (ratio) | MMLU-Pro batch (ratio) |",
        "|---|---|---|---|",
        variant_row(f"plain sentence-transformers, torch, {torch_threads} threads", "plain", "plain"),
        variant_row("our torch backend, 1 thread", "torch1", "torch1"),
        variant_row(f"onnx fp32, length buckets of 64, {w} at once", "onnx_fp32", "onnx_fp32"),
        variant_row(f"**onnx int8, each text alone, {w} at once, reading window (the default)**", "onnx",
                    "onnx"),
        variant_row("onnx int8, each text alone, one at a time, reading window", None, "onnx_seq"),
        variant_row(f"onnx int8, each text alone, {w} at once, first 256 word pieces", "onnx256", "onnx256"),
        variant_row(f"onnx int8, each text alone, {w} at once, 128 word pieces", "onnx128", "onnx128"),
        variant_row("onnx int8, each text alone on 2 threads (`threads=2`), one at a time", "onnx_2t", "onnx_2t"),
        variant_row(f"onnx int8, length buckets of 64, {w} at once (shared activation scales: cosine to the "
                    f"text alone mean {shared_cos.mean():.4f}, min {shared_cos.min():.4f})", None, "onnx_shared"),
        variant_row("onnx int8, batches of 64 in input order, one at a time (no buckets, shared scales)", None,
                    "onnx_unbucketed"),
    ]

    # Quality: cosine to torch and identical decisions, per set and profile.
    router = routers["onnx"]
    quality_rows: list[str] = []
    keys = ("onnx", "onnx256", "onnx128", "onnx_fp32")
    all_cos: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    agree_all: dict[str, list[bool]] = {k: [] for k in keys}
    for name in SETS:
        texts = _test_prompts(args.data, name, args.n)
        ref_emb = plain_encode(texts)
        per: dict[str, str] = {}
        for key in keys:
            e = emb[key].encode(texts)
            cos = (e * ref_emb).sum(axis=1)
            all_cos[key].append(cos)
            shares = []
            for prof in PROFILES:
                a = router.decide_batch(texts, preferences=prof, embeddings=ref_emb, explore=False).model_names
                b = router.decide_batch(texts, preferences=prof, embeddings=e, explore=False).model_names
                same = [x == y for x, y in zip(a, b, strict=True)]
                agree_all[key].extend(same)
                shares.append(f"{np.mean(same):.3f}")
            per[key] = f"{cos.mean():.4f} / {cos.min():.4f} | {' / '.join(shares)}"
        quality_rows.append(f"| {name} | {len(texts)} | " + " | ".join(per[k] for k in keys) + " |")
        print(name, per, flush=True)
    for key in keys:
        c = np.concatenate(all_cos[key])
        per[key] = f"**{c.mean():.4f} / {c.min():.4f}** | **{np.mean(agree_all[key]):.3f}**"
    quality_rows.append(f"| all | {len(np.concatenate(all_cos['onnx']))} | " + " | ".join(per[k] for k in keys) + " |")
    for key, what in (("onnx256", "int8 reading the first 256 word pieces, as torch does"),
                      ("onnx", "int8 with the default reading window")):
        c = np.concatenate(all_cos[key])
        rows.append((f"mean / min cosine to torch, all sets ({what})", "1", f"{c.mean():.4f} / {c.min():.4f}", "",
                     "routing unchanged"))
        rows.append((f"identical `decide_batch` decisions, all sets and both profiles ({what})", "",
                     f"{np.mean(agree_all[key]):.3f}", "", "routing unchanged"))

    finished = datetime.now(timezone.utc)
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [
        f"Measured {started:%Y-%m-%d %H:%M}-{finished:%H:%M} UTC by `benchmarks/encoder_backends.py` on "
        f"{os.cpu_count()} cores ({cpu}); onnxruntime {onnxruntime.__version__}, torch {torch.__version__}. "
        f"Reference: plain sentence-transformers on torch ({torch_threads} threads, 256 word pieces); onnx: our "
        f"embedder, int8, reading window `{emb['onnx'].window.tag}` (up to {emb['onnx'].tokens} word pieces "
        "read whole, a longer prompt by its head and tail), 1 thread per run, batch encodes run "
        f"{emb['onnx'].batch_threads} texts at once (`batch_threads`). 1-minute load average before / after "
        f"the run: {load_before:.2f} / "
        f"{os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan'):.2f} (other processes share "
        "the cores; plain torch's second thread suffers most when the other core is busy).",
        "",
        "| measurement | plain torch (reference) | onnx int8 | ratio | target |",
        "|---|---|---|---|---|",
        *[f"| {m} | {a} | {b} | {r} | {t} |" for m, a, b, r, t in rows],
        "",
        "Quality per set (test-split prompts; mt_bench: all 80): mean / min cosine to plain torch | share of "
        "identical decisions under balanced / quality-first (`explore=False`, same router, only the vectors "
        "differ); onnx int8 with the default reading window (long prompts by head and tail, so their "
        "vectors differ from torch's first 256 by design; `benchmarks/reading_window.py` measures the AIQ), "
        "with the first 256 and the first 128 word pieces, and onnx fp32 with the first 256 (the floor: "
        "numerically the same function as torch):",
        "",
        "| set | prompts | int8, window: cosine | identical | int8, first 256: cosine | identical "
        "| int8, first 128: cosine | identical | fp32, first 256: cosine | identical |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *quality_rows,
        "",
        "Encoder variants (latency: p50 of the same interleaved runs; batch: best of "
        f"{args.batch_repeats} interleaved rounds):",
        "",
        *variants,
    ]
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
