"""Routing under load: throughput and p50/p99 routing overhead at 1, 8 and 64 concurrent callers.

Two measurements, both loopback-only and bounded in calls and time:

1. ``Router.decide`` from N threads (N = 1, 8, 64) sharing one ``Router.default()``: each call's time
   inside ``decide`` (what a caller waits for a decision, queueing for the GIL and the 2 cores
   included) and the decisions per second of the whole run.
2. ``ChatOptiRoute.ainvoke`` from N concurrent asyncio tasks on one event loop (and the longest
   stall of that loop, seen by a 1 ms ticker task), with two real
   ``ChatOpenAI`` candidates (``gpt-4o-mini`` and ``gpt-4o`` cards) pointed at a trivial
   OpenAI-compatible fake server started by this script in a separate process on 127.0.0.1 (it answers
   every chat completion at once with a fixed one-word reply, so the model's own time is only HTTP).
   ChatOptiRoute's own overhead per call = routed call time - the candidate's own ``_agenerate``
   time (measured by a thin ``ChatOpenAI`` subclass around the same call). The same candidate called
   directly (``ChatOpenAI.ainvoke``) at the same concurrency is reported beside it.
3. The same as 2 against a second fake server that answers after ``--reply-ms`` (default 1 s, a short
   real completion): an async server's normal state, where calls wait on their providers and the
   decisions of concurrent calls arrive spread out.

``decide`` is CPU work (MiniLM encode + heads + kNN); async calls run it in a bounded pool of worker
threads, off the event loop, but concurrent calls still share the cores: at 64 tasks the overhead a
call sees includes waiting for the other decisions. That is the honest number for a single-process
asyncio service on this machine.

Run: ``python benchmarks/load.py [--calls 1:120,8:320,64:640] [--max-seconds 40] [--reply-ms 1000]``; writes
``benchmarks/results/load.md``. Prompts cycle through the bundled demo prompts (`core/data/demo_prompts.csv`).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = ["gpt-4o-mini", "gpt-4o"]
REPLY = json.dumps({
    "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "fake",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 8, "completion_tokens": 1, "total_tokens": 9},
}).encode()


# ---------------------------------------------------------------------------- the fake server
def _fake_server(port_out: mp.Queue, lifetime_s: float, delay_s: float = 0.0) -> None:
    """HTTP/1.1 keep-alive server answering any request with REPLY after ``delay_s`` (a provider's
    own latency, slept without holding anything); stops after ``lifetime_s``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                if delay_s:
                    await asyncio.sleep(delay_s)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(REPLY)).encode() + b"\r\n\r\n" + REPLY)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=256)
        port_out.put(server.sockets[0].getsockname()[1])
        await asyncio.sleep(lifetime_s)
        server.close()

    asyncio.run(main())


# ---------------------------------------------------------------------------- helpers
def _prompts() -> list[str]:
    with (ROOT / "core" / "data" / "demo_prompts.csv").open(encoding="utf-8") as f:
        return [row["text"] for row in csv.DictReader(f)]


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def _row(times_s: list[float], wall_s: float) -> dict[str, float]:
    ms = [t * 1000 for t in times_s]
    return {"calls": len(ms), "per_s": len(ms) / wall_s, "p50": _pct(ms, 50), "p99": _pct(ms, 99),
            "mean": statistics.fmean(ms)}


# ---------------------------------------------------------------------------- 1. decide
def bench_decide(router, prompts: list[str], workers: int, calls: int, max_s: float) -> dict[str, float]:
    times: list[float] = []
    lock = threading.Lock()
    counter = iter(range(calls))
    deadline = time.perf_counter() + max_s

    def worker() -> None:
        while time.perf_counter() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            t0 = time.perf_counter()
            router.decide(prompts[i % len(prompts)], candidates=CANDIDATES, preferences="balanced")
            dt = time.perf_counter() - t0
            with lock:
                times.append(dt)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for f in [pool.submit(worker) for _ in range(workers)]:
            f.result()
    return _row(times, time.perf_counter() - start)


# ---------------------------------------------------------------------------- 2. ChatOptiRoute
async def bench_ainvoke(routed, direct, prompts: list[str], workers: int, calls: int, max_s: float) -> dict:
    own: dict[str, list[float]] = {"routed": [], "overhead": [], "direct": []}

    async def run(kind: str) -> float:
        queue = iter(range(calls))
        deadline = time.perf_counter() + max_s
        sem = asyncio.Semaphore(workers)

        async def one(i: int) -> None:
            async with sem:
                if time.perf_counter() > deadline:
                    return
                p = prompts[i % len(prompts)]
                t0 = time.perf_counter()
                msg = await (routed if kind == "routed" else direct).ainvoke(p)
                dt = time.perf_counter() - t0
                if kind == "routed":
                    assert msg.response_metadata["optiroute"]["answered_by"] in CANDIDATES
                    own["routed"].append(dt)
                    own["overhead"].append(dt - msg.response_metadata["candidate_s"])
                else:
                    own["direct"].append(dt)

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in queue))
        return time.perf_counter() - start

    async def ticking(kind: str) -> tuple[float, float]:
        """Run one measurement while a ticker task sleeps 1 ms at a time on the same loop; the
        longest gap between its ticks is how long the loop was blocked (minus the 1 ms)."""
        gaps: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.01)
        try:
            wall = await run(kind)
        finally:
            done.set()
            await task
        return wall, max(gaps) * 1000

    wall_routed, stall_routed = await ticking("routed")
    wall_direct, stall_direct = await ticking("direct")
    return {"routed": _row(own["routed"], wall_routed), "overhead": _row(own["overhead"], wall_routed),
            "direct": _row(own["direct"], wall_direct), "stall": {"routed": stall_routed, "direct": stall_direct}}


def _timed_chat_openai():
    from langchain_openai import ChatOpenAI

    class TimedChatOpenAI(ChatOpenAI):
        """ChatOpenAI that stamps its own ``_agenerate`` wall time on the message it returns."""

        async def _agenerate(self, *args, **kwargs):
            t0 = time.perf_counter()
            result = await super()._agenerate(*args, **kwargs)
            msg = result.generations[0].message
            msg.response_metadata = {**msg.response_metadata, "candidate_s": time.perf_counter() - t0}
            return result

    return TimedChatOpenAI


# ---------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", default="1:120,8:320,64:640",
                    help="concurrency:calls pairs (calls per level; the same for both measurements)")
    ap.add_argument("--max-seconds", type=float, default=40.0, help="time bound per level and measurement")
    ap.add_argument("--reply-ms", type=float, default=1000.0,
                    help="the provider's own latency in the third measurement (a short real completion)")
    ap.add_argument("--latency-calls", default="1:20,64:512",
                    help="concurrency:calls pairs for the measurement with provider latency")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "load.md")
    args = ap.parse_args()
    levels = [tuple(int(x) for x in pair.split(":")) for pair in args.calls.split(",")]
    latency_levels = [tuple(int(x) for x in pair.split(":")) for pair in args.latency_calls.split(",")]

    import torch

    torch.set_num_threads(1)
    from langchain_optiroute import ChatOptiRoute
    from optiroute import Router

    t_start = time.perf_counter()
    load_before = os.getloadavg()[0]
    prompts = _prompts()
    router = Router.default()
    for p in prompts[:5]:  # load embedder, analyzer, store and Annoy index once
        router.decide(p, candidates=CANDIDATES)

    ctx = mp.get_context("spawn")
    ports: mp.Queue = ctx.Queue()
    server = ctx.Process(target=_fake_server, args=(ports, 900.0), daemon=True)
    server.start()
    base_url = f"http://127.0.0.1:{ports.get(timeout=60)}/v1"
    slow_server = ctx.Process(target=_fake_server, args=(ports, 900.0, args.reply_ms / 1000), daemon=True)
    slow_server.start()
    slow_url = f"http://127.0.0.1:{ports.get(timeout=60)}/v1"
    timed = _timed_chat_openai()

    def pair(url: str):
        cands = {m: timed(model=m, base_url=url, api_key="not-needed", max_retries=0, timeout=60)
                 for m in CANDIDATES}
        return ChatOptiRoute(models=cands, router=router, preferences="balanced"), cands["gpt-4o-mini"]

    routed, direct = pair(base_url)
    routed_slow, direct_slow = pair(slow_url)

    decide_rows, invoke_rows, latency_rows = {}, {}, {}

    async def measure() -> None:
        # One event loop for the whole run: ChatOpenAI caches its async HTTP client per loop.
        top = max(w for w, _ in [*levels, *latency_levels])
        # Warm the HTTP pools at the highest concurrency, so no level pays for opening connections.
        await bench_ainvoke(routed, direct, prompts, top, top, 30)
        await bench_ainvoke(routed_slow, direct_slow, prompts, top, top, 30)
        for workers, calls in levels:
            decide_rows[workers] = bench_decide(router, prompts, workers, calls, args.max_seconds)
            print(f"decide   x{workers:<3} {decide_rows[workers]}", flush=True)
            invoke_rows[workers] = await bench_ainvoke(routed, direct, prompts, workers, calls, args.max_seconds)
            print(f"ainvoke  x{workers:<3} {invoke_rows[workers]}", flush=True)
        for workers, calls in latency_levels:
            latency_rows[workers] = await bench_ainvoke(routed_slow, direct_slow, prompts, workers, calls,
                                                        args.max_seconds)
            print(f"ainvoke with {args.reply_ms:g} ms provider latency x{workers:<3} {latency_rows[workers]}",
                  flush=True)

    try:
        asyncio.run(measure())
    finally:
        for proc in (server, slow_server):
            proc.terminate()
            proc.join(timeout=10)
    total = time.perf_counter() - t_start

    lines = [
        "# Routing under load (`benchmarks/load.py`)",
        "",
        f"Measured in one run on {platform.machine()}, {os.cpu_count()} CPU cores (shared with other jobs), "
        f"Python {platform.python_version()}, torch threads 1; total run time {total:.0f} s; 1-minute load "
        f"average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after the run (other people's jobs "
        "share the machine, so repeated runs differ by tens of percent). "
        "Router: `Router.default()` (bundled registry, analyzer, kNN store), candidates "
        f"{CANDIDATES}, preferences `balanced`, prompts cycling over the {len(prompts)} bundled demo prompts.",
        "",
        "## 1. `Router.decide` from concurrent threads",
        "",
        "Time inside `decide` per call (queueing for the GIL and the cores included) and decisions per "
        "second over the run.",
        "",
        "| concurrent callers | calls | decisions/s | p50 ms | p99 ms | mean ms |",
        "|---|---|---|---|---|---|",
    ]
    for w, r in decide_rows.items():
        lines.append(f"| {w} | {r['calls']} | {r['per_s']:.1f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['mean']:.1f} |")
    lines += [
        "",
        "## 2. `ChatOptiRoute.ainvoke` from concurrent asyncio tasks",
        "",
        "Candidates are real `ChatOpenAI` clients against a trivial loopback fake OpenAI-compatible server "
        "(started by the script in its own process; answers at once with a fixed reply), so the "
        "candidate's own time is HTTP on loopback only. *Overhead* = routed call time minus the "
        "candidate's own `_agenerate` time in the same call. *Direct* = `ChatOpenAI.ainvoke` of one "
        "candidate at the same concurrency.",
        "",
        "*Longest loop stall* = the longest gap between the ticks of a task that sleeps 1 ms at a "
        "time on the same event loop during the run (how long the loop could not serve anything).",
        "",
        "| concurrent tasks | calls | routed calls/s | routed p50 ms | routed p99 ms | overhead p50 ms | "
        "overhead p99 ms | longest loop stall ms (routed) | direct calls/s | direct p50 ms | direct p99 ms | "
        "longest loop stall ms (direct) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w, r in invoke_rows.items():
        ro, ov, di, st = r["routed"], r["overhead"], r["direct"], r["stall"]
        lines.append(f"| {w} | {ro['calls']} | {ro['per_s']:.1f} | {ro['p50']:.1f} | {ro['p99']:.1f} | "
                     f"{ov['p50']:.1f} | {ov['p99']:.1f} | {st['routed']:.1f} | {di['per_s']:.1f} | "
                     f"{di['p50']:.1f} | {di['p99']:.1f} | {st['direct']:.1f} |")
    single = latency_rows.get(1)
    lines += [
        "",
        f"## 3. An async server with provider latency: `ChatOptiRoute.ainvoke` when the model takes "
        f"{args.reply_ms:g} ms",
        "",
        f"The same two candidates against a second fake server that answers after {args.reply_ms:g} ms (a short "
        "real completion; the wait holds no CPU), which is how an async server spends its time: calls "
        "overlap while they wait for their providers, so decisions arrive spread out instead of all "
        "queueing on the cores at once as in section 2.",
        "",
        "| concurrent tasks | calls | routed calls/s | routed p50 ms | overhead p50 ms | overhead p99 ms | "
        "overhead p50 / single caller's | longest loop stall ms (routed) | direct calls/s | direct p50 ms | "
        "longest loop stall ms (direct) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w, r in latency_rows.items():
        ro, ov, di, st = r["routed"], r["overhead"], r["direct"], r["stall"]
        ratio = ov["p50"] / single["overhead"]["p50"] if single else float("nan")
        lines.append(f"| {w} | {ro['calls']} | {ro['per_s']:.1f} | {ro['p50']:.1f} | {ov['p50']:.1f} | "
                     f"{ov['p99']:.1f} | **{ratio:.2f}** | **{st['routed']:.1f}** | {di['per_s']:.1f} | "
                     f"{di['p50']:.1f} | {st['direct']:.1f} |")
    lines += [
        "",
        "How to read it: `decide` is CPU-bound Python/numpy/torch work, so on 2 shared cores the "
        "decisions per second of one process stay roughly flat (or fall, as threads contend for the "
        "GIL) whatever the number of callers; more callers raise the time each call waits (p50/p99), "
        "not the throughput. In asyncio, `ChatOptiRoute` routes in a bounded pool of worker threads "
        "(`optiroute.integration.workers`, as many as the cores), so the event loop keeps reading "
        "other tasks' HTTP responses while calls are routed (the stall column); the decisions still "
        "share the cores and the GIL, so at 8 and 64 tasks a routed call's time is mostly waiting for "
        "other tasks' decisions. Routed calls/s is the robust number, and the direct columns show the "
        "same loop and server without routing. To serve more routed calls per second, run more worker "
        "processes (one router each), as with any CPU-bound Python service.",
        "",
        f"Command: `python benchmarks/load.py --calls {args.calls} --max-seconds {args.max_seconds:g} "
        f"--reply-ms {args.reply_ms:g} --latency-calls {args.latency_calls}`. "
        "Each level stops issuing calls after the time bound, so `calls` is what actually ran.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
