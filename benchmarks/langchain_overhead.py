"""End-to-end cost of routing in LangChain: ChatOptiRoute vs calling the same local model directly.

Starts a llama.cpp server on 127.0.0.1 with SmolLM2-135M-Instruct, then alternates (so machine noise
hits both equally, and in alternating order) ``ChatOpenAI.invoke`` and ``ChatOptiRoute.invoke`` over
the same short prompts, with a fixed short answer length (``max_tokens``). Reports medians and their
ratio (goal: routing adds at most 10 % to a short local-model call). llama.cpp's server is not
bit-deterministic across requests even at temperature 0, so answer lengths of the two arms can
differ a little; the ``decide`` time alone, relative to the direct call, is the routing share
itself.

Run: ``python benchmarks/langchain_overhead.py [--rounds 15] [--max-tokens 32]``; writes
``benchmarks/results/langchain_overhead.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPTS = [
    "Name a primary colour.",
    "What is 2 + 2?",
    "Give me a synonym for happy.",
    "Translate 'cat' into French.",
    "Name a planet in our solar system.",
]


def main() -> None:
    from langchain_openai import ChatOpenAI

    from langchain_optiroute import ChatOptiRoute
    from optiroute import Router
    from optiroute.local import LlamaServer, find_local_models

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "langchain_overhead.md")
    args = ap.parse_args()

    smol = find_local_models(assemble=False)["SmolLM2-135M-Instruct"]
    server = LlamaServer([{"model": str(smol.path), "model_alias": "smollm2", "chat_format": "chatml"}]).start()
    try:
        # llama.cpp's server ignores max_completion_tokens (what max_tokens= sends); extra_body works.
        direct = ChatOpenAI(model="smollm2", base_url=server.base_url, api_key="x",
                            extra_body={"max_tokens": args.max_tokens}, temperature=0)
        routed = ChatOptiRoute(models={"SmolLM2-135M-Instruct": direct}, router=Router.default())
        routed.invoke("warm up")  # loads the embedder, analyzer and store once
        direct.invoke("warm up")
        d_times, r_times, decide_times, tokens = [], [], [], []
        def timed(llm, p):
            t0 = time.perf_counter()
            msg = llm.invoke(p)
            return time.perf_counter() - t0, msg.usage_metadata["output_tokens"]

        for i in range(args.rounds):
            for p in PROMPTS:
                # Alternate which arm goes first: llama.cpp reuses the KV cache of an identical
                # prompt, so a fixed order would hand the second arm a cheaper prompt evaluation.
                if i % 2 == 0:
                    (dt, dtok), (rt, rtok) = timed(direct, p), timed(routed, p)
                else:
                    (rt, rtok), (dt, dtok) = timed(routed, p), timed(direct, p)
                t0 = time.perf_counter()
                routed._router().decide(p, candidates=["SmolLM2-135M-Instruct"])
                decide_times.append(time.perf_counter() - t0)
                d_times.append(dt)
                r_times.append(rt)
                tokens.append((dtok, rtok))
    finally:
        server.stop()
    d, r, dec = (statistics.median(x) * 1e3 for x in (d_times, r_times, decide_times))
    lines = [
        "| measurement (median) | value |",
        "|---|---|",
        f"| `ChatOpenAI.invoke` direct, SmolLM2-135M via llama.cpp, max_tokens={args.max_tokens} "
        f"({len(d_times)} calls) | {d:.1f} ms |",
        f"| `ChatOptiRoute.invoke`, same model and prompts, interleaved ({len(r_times)} calls) | {r:.1f} ms |",
        f"| `Router.decide` alone | {dec:.1f} ms |",
        f"| output tokens per call (direct / routed, median) | {statistics.median(t for t, _ in tokens):.0f} / "
        f"{statistics.median(t for _, t in tokens):.0f} |",
        f"| **routed / direct** (goal <= 1.10) | **{r / d:.3f}** |",
        f"| decide alone / direct call (the routing share of a call) | {dec / d:.3f} |",
    ]
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
