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
3. The same as 2 against fake servers that answer after about ``--reply-ms`` (default 1 s, a short
   real completion): an async server's normal state, where calls wait on their providers. Two
   arrival patterns, each run ``--repeats`` times: *in step* (every reply takes exactly that long,
   so calls started together come back together: the worst case) and *spread* (each reply's delay
   drawn from a seeded lognormal distribution, median ``--reply-ms``, log-space deviation
   ``--spread``, an assumption standing in for a real provider's varying latency). Beside the
   overhead: the event loop's longest stall routed and direct and their difference, and the loop
   thread's own CPU per call.
4. ``decide`` one prompt at a time against ``decide_batch`` in groups (CPU and wall time per
   decision, same model or not): whether micro-batching concurrent decisions would pay.

``decide`` is CPU work (MiniLM encode + heads + kNN); async calls run it in a bounded pool of worker
threads, off the event loop, but concurrent calls still share the cores: at 64 tasks the overhead a
call sees includes waiting for the other decisions. That is the honest number for a single-process
asyncio service on this machine.

Run: ``python benchmarks/load.py [--calls 1:60,8:160,64:320] [--latency-calls 1:12,16:96,64:320]
[--spread 0.5] [--repeats 2]``; writes ``benchmarks/results/load.md``. Prompts cycle through the
bundled demo prompts (`core/data/demo_prompts.csv`).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import multiprocessing as mp
import os
import platform
import random
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
def _fake_server(port_out: mp.Queue, lifetime_s: float, delay_s: float = 0.0, spread: float = 0.0,
                 seed: int = 0) -> None:
    """HTTP/1.1 keep-alive server answering any request with REPLY after a delay (a provider's own
    latency, slept without holding anything); stops after ``lifetime_s``.

    ``spread`` = 0: every reply takes exactly ``delay_s``, so calls sent together come back together
    (in step). ``spread`` > 0: each reply's delay is drawn from a lognormal distribution with median
    ``delay_s`` and log-space standard deviation ``spread``, from a generator seeded with ``seed``
    (the same sequence of delays every run, handed out in the order requests arrive).
    """
    rng = random.Random(seed)

    def delay() -> float:
        return delay_s * math.exp(spread * rng.gauss(0.0, 1.0)) if spread else delay_s

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
                wait = delay()
                if wait:
                    await asyncio.sleep(wait)
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


# ---------------------------------------------------------------------------- 4. batching decisions
def bench_batching(router, prompts: list[str], n: int, sizes: list[int], repeats: int) -> dict[int, dict[str, float]]:
    """The same ``n`` prompts routed by ``decide`` one at a time (size 1) and by ``decide_batch`` in
    groups of each size, interleaved ``repeats`` times: CPU (all threads) and wall time per decision,
    and the share of prompts whose batch decision names the model ``decide`` chose."""
    texts = [prompts[i % len(prompts)] for i in range(n)]
    kw = {"candidates": CANDIDATES, "preferences": "balanced"}
    alone = [router.decide(t, **kw).model for t in texts]
    out: dict[int, dict[str, list[float]]] = {k: {"cpu": [], "wall": [], "same": []} for k in [1, *sizes]}
    for _ in range(repeats):
        for k in [1, *sizes]:
            c0, w0 = time.process_time(), time.perf_counter()
            if k == 1:
                models = [router.decide(t, **kw).model for t in texts]
            else:
                models = []
                for s in range(0, n, k):
                    batch = router.decide_batch(texts[s:s + k], **kw)
                    models += [batch[i].model for i in range(len(texts[s:s + k]))]
            out[k]["cpu"].append((time.process_time() - c0) * 1000 / n)
            out[k]["wall"].append((time.perf_counter() - w0) * 1000 / n)
            out[k]["same"].append(sum(a == b for a, b in zip(alone, models, strict=True)) / n)
    return {k: {m: statistics.median(v) for m, v in d.items()} for k, d in out.items()}


# ---------------------------------------------------------------------------- 2. ChatOptiRoute
async def _tick(done: asyncio.Event, gaps: list[float]) -> None:
    """Sleep 1 ms at a time until ``done``, appending each gap between ticks to ``gaps``."""
    last = time.perf_counter()
    while not done.is_set():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


async def tick_cpu(seconds: float = 1.0) -> float:
    """The loop thread's CPU time per tick of the ticker alone on an idle loop, subtracted from the
    loop CPU per call (a long call sees many ticks)."""
    gaps: list[float] = []
    done = asyncio.Event()
    cpu0 = time.thread_time()
    task = asyncio.create_task(_tick(done, gaps))
    await asyncio.sleep(seconds)
    done.set()
    await task
    return (time.thread_time() - cpu0) / max(1, len(gaps))


TICK_CPU_S = [0.0]  # set once per run by tick_cpu()


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

    async def ticking(kind: str) -> tuple[float, dict[str, float]]:
        """Run one measurement while a ticker task sleeps 1 ms at a time on the same loop; the
        longest gap between its ticks is how long the loop was blocked (minus the 1 ms). Also the
        loop thread's own CPU time per call (``time.thread_time`` on the loop thread: the
        framework's, the HTTP client's and the adapter's Python; the decisions run in other threads)."""
        gaps: list[float] = []
        done = asyncio.Event()
        task = asyncio.create_task(_tick(done, gaps))
        await asyncio.sleep(0.01)
        cpu0, proc0, n0, t0 = time.thread_time(), time.process_time(), len(own[kind]), len(gaps)
        try:
            wall = await run(kind)
        finally:
            cpu = time.thread_time() - cpu0 - (len(gaps) - t0) * TICK_CPU_S[0]
            proc = time.process_time() - proc0 - (len(gaps) - t0) * TICK_CPU_S[0]
            done.set()
            await task
        n = max(1, len(own[kind]) - n0)
        return wall, {"max": max(gaps) * 1000, "p99": _pct(gaps, 99) * 1000, "cpu": cpu * 1000 / n,
                      "proc": proc * 1000 / n, "cores": proc / wall, "ticks_per_call": (len(gaps) - t0) / n}

    wall_routed, loop_routed = await ticking("routed")
    wall_direct, loop_direct = await ticking("direct")
    return {"routed": _row(own["routed"], wall_routed), "overhead": _row(own["overhead"], wall_routed),
            "direct": _row(own["direct"], wall_direct),
            "stall": {"routed": loop_routed["max"], "direct": loop_direct["max"]},
            "loop": {"routed": loop_routed, "direct": loop_direct}}


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


def _latency_notes(rows: dict) -> list[str]:
    """What section 3 says, with this run's numbers: the in-step stall against the sum of the
    tasks' loop steps, whether the process had the CPU to route every call, and the shared lock."""
    if not rows:
        return []
    top = max(w for _, _, w in rows)
    burst = [(r["loop"]["direct"]["cpu"] * top, r["loop"]["direct"]["max"], r["loop"]["routed"]["max"])
             for (_, kind, w), r in rows.items() if kind == "in step" and w == top]
    notes = [
        f"Section 3, in step: when the {top} replies land together, the loop runs each task's step "
        "(reading the response, LangChain's callbacks, building the next request) back to back "
        "before the ticker gets a turn, so the longest stall is of the order of the tasks times the "
        "loop CPU per call, whether the calls are routed or not: "
        + "; ".join(f"{top} x direct loop CPU per call = {b:.0f} ms, longest stall {d:.0f} ms direct and "
                    f"{r:.0f} ms routed" for b, d, r in burst)
        + ". Arrivals out of step shorten it: routed calls send their requests as their decisions "
        "come out of the routing queue, so their replies land less in step than direct calls', which "
        "is why a routed stall can be the shorter one.",
        "",
    ]
    for w in sorted({w for _, kind, w in rows if kind == "spread" and w > 1}):
        runs = [(rows[rep, "spread", w], rows.get((rep, "spread", 1))) for rep, kind, ww in sorted(rows)
                if kind == "spread" and ww == w]
        ratios = [r["overhead"]["p50"] / one["overhead"]["p50"] for r, one in runs if one]
        notes += [
            f"Spread arrivals, {w} tasks: overhead p50 "
            + " and ".join(f"{x:.2f}" for x in ratios) + "x the single caller's; longest loop stall "
            + " and ".join(f"{r['loop']['routed']['max']:.0f}" for r, _ in runs) + " ms routed against "
            + " and ".join(f"{r['loop']['direct']['max']:.0f}" for r, _ in runs) + " ms direct"
            + (("; a routed call cost the process "
                + " and ".join(f"{r['loop']['routed']['proc']:.1f}" for r, _ in runs)
                + " ms of CPU against " + " and ".join(f"{r['loop']['direct']['proc']:.1f}" for r, _ in runs)
                + " ms direct (the difference is the decision), with the process on "
                + " and ".join(f"{r['loop']['routed']['cores']:.2f}" for r, _ in runs) + " cores")
               if all(max(r["loop"]["routed"]["ticks_per_call"], r["loop"]["direct"]["ticks_per_call"]) <= 120
                      for r, _ in runs) else "") + ".",
            "",
        ]
    short = [(kind, rep, w, r["routed"]["per_s"], r["direct"]["per_s"], r["loop"]["routed"]["cores"])
             for (rep, kind, w), r in sorted(rows.items()) if r["routed"]["per_s"] < 0.8 * r["direct"]["per_s"]]
    if short:
        notes += [
            "In this run the process could not route calls as fast as the provider answered them: "
            + "; ".join(f"{kind} run {rep}, {w} tasks: {rc:.1f} routed calls/s against {dc:.1f} direct, on "
                        f"{cores:.2f} cores" for kind, rep, w, rc, dc, cores in short)
            + ". Decisions then queue, up to one per task, and every figure of those rows (overhead, "
            "stalls, tick gaps) is that queue: the routing threads, never idle, compete with the loop "
            "for the process's CPU and the interpreter lock all the time, so the loop runs less often. "
            "The cores-used "
            "column shows what the other jobs on the machine left the process; a machine with its "
            "cores free measures the routing cost instead.",
            "",
        ]
    notes += [
        "Routing shares the interpreter lock with the loop: most of a decision is the encoder's "
        "ONNX run, which releases the lock, but its Python part holds it, and the loop waits for the "
        "lock (up to the interpreter's 5 ms switch interval at a time) whenever a routing thread runs "
        "Python; this shows as a higher tick gap p99 routed than direct. The longest stalls of both are "
        "also set by the machine: with other jobs on the same cores the operating system pauses the "
        "process (the direct column has no routing at all).",
        "",
    ]
    return notes


# ---------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", default="1:60,8:160,64:320",
                    help="concurrency:calls pairs (calls per level; the same for both measurements)")
    ap.add_argument("--max-seconds", type=float, default=40.0, help="time bound per level and measurement")
    ap.add_argument("--reply-ms", type=float, default=1000.0,
                    help="the provider's own latency in the third measurement (a short real completion)")
    ap.add_argument("--latency-calls", default="1:12,16:96,64:320",
                    help="concurrency:calls pairs for the measurement with provider latency")
    ap.add_argument("--spread", type=float, default=0.5,
                    help="log-space standard deviation of the spread provider's lognormal reply delay "
                         "(median --reply-ms); 0.5 puts p90 at 1.9x and p99 at 3.2x the median")
    ap.add_argument("--seed", type=int, default=0, help="seed of the spread provider's delays")
    ap.add_argument("--repeats", type=int, default=2,
                    help="runs of the provider-latency measurement (each runs both arrival patterns)")
    ap.add_argument("--batch-sizes", default="2,8,64",
                    help="decide_batch group sizes compared with one-at-a-time decide (section 4)")
    ap.add_argument("--skip-loopback", action="store_true",
                    help="run only the provider-latency measurement (sections 1 and 2 are left out)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "load.md")
    args = ap.parse_args()
    levels = [] if args.skip_loopback else [tuple(int(x) for x in pair.split(":")) for pair in args.calls.split(",")]
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
    spread_server = ctx.Process(target=_fake_server, args=(ports, 900.0, args.reply_ms / 1000, args.spread,
                                                             args.seed), daemon=True)
    spread_server.start()
    spread_url = f"http://127.0.0.1:{ports.get(timeout=60)}/v1"
    timed = _timed_chat_openai()

    def pair(url: str):
        cands = {m: timed(model=m, base_url=url, api_key="not-needed", max_retries=0, timeout=60)
                 for m in CANDIDATES}
        return ChatOptiRoute(models=cands, router=router, preferences="balanced"), cands["gpt-4o-mini"]

    routed, direct = pair(base_url)
    arrivals = {"in step": pair(slow_url), "spread": pair(spread_url)}

    decide_rows: dict = {}
    invoke_rows: dict = {}
    latency_rows: dict = {}  # (repeat, arrivals, tasks) -> row

    async def measure() -> None:
        # One event loop for the whole run: ChatOpenAI caches its async HTTP client per loop.
        top = max(w for w, _ in [*levels, *latency_levels])
        TICK_CPU_S[0] = await tick_cpu()
        # Warm the HTTP pools at the highest concurrency, so no level pays for opening connections.
        await bench_ainvoke(routed, direct, prompts, top, top, 30)
        for r, d in arrivals.values():
            await bench_ainvoke(r, d, prompts, top, top, 30)
        for workers, calls in levels:
            decide_rows[workers] = bench_decide(router, prompts, workers, calls, args.max_seconds)
            print(f"decide   x{workers:<3} {decide_rows[workers]}", flush=True)
            invoke_rows[workers] = await bench_ainvoke(routed, direct, prompts, workers, calls, args.max_seconds)
            print(f"ainvoke  x{workers:<3} {invoke_rows[workers]}", flush=True)
        for rep in range(1, args.repeats + 1):
            for kind, (r, d) in arrivals.items():
                for workers, calls in latency_levels:
                    row = await bench_ainvoke(r, d, prompts, workers, calls, args.max_seconds)
                    latency_rows[rep, kind, workers] = row
                    print(f"ainvoke, {args.reply_ms:g} ms provider, {kind}, run {rep}, x{workers:<3} {row}",
                          flush=True)

    batch_sizes = [int(x) for x in args.batch_sizes.split(",") if x.strip()]
    batching = bench_batching(router, prompts, 64, batch_sizes, 3) if batch_sizes else {}
    print(f"batching {batching}", flush=True)
    try:
        asyncio.run(measure())
    finally:
        for proc in (server, slow_server, spread_server):
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
    p90, p99 = (args.reply_ms * math.exp(args.spread * z) for z in (1.2816, 2.3263))
    lines += [
        "",
        f"## 3. An async server with provider latency: `ChatOptiRoute.ainvoke` when the model takes "
        f"about {args.reply_ms:g} ms",
        "",
        "The same two candidates against fake servers that answer after a delay (the wait holds no "
        "CPU), which is how an async server spends its time: calls overlap while they wait for their "
        "providers. Two arrival patterns:",
        "",
        f"- **in step** (the worst case): every reply takes exactly {args.reply_ms:g} ms, so the calls "
        "of all tasks, started together, come back together every round: their responses are all "
        "ready in the same turn of the event loop, which then runs every task's step back to back, "
        "and their next decisions all queue on the cores at once.",
        f"- **spread**: each reply's delay is drawn from a lognormal distribution with median "
        f"{args.reply_ms:g} ms and log-space standard deviation {args.spread:g} (p90 {p90:.0f} ms, "
        f"p99 {p99:.0f} ms; seeded, `--seed {args.seed}`), so calls drift out of step as with a real "
        "provider. The spread is an assumption, not a measurement of any provider: public latency "
        "dashboards for hosted chat models show per-request latency of a fixed short completion "
        "varying around its median with a long right tail, p90 roughly 1.5 to 2 times the median.",
        "",
        "*Calls/s* of a spread run are lower than tasks / median delay: a run ends with its slowest "
        "task, and the delays have a long tail. "
        "*Overhead p50 / single caller's* compares with the single task of the same run and arrival "
        "pattern. *Loop stall*: the longest gap of the 1 ms ticker, routed and direct (`ChatOpenAI."
        "ainvoke`, no routing) against the same server, and their difference (the stall routing adds "
        "at those arrivals; negative when the direct run happened to stall longer); *tick gap p99* is "
        "the 99th percentile of the ticker's gaps. *Loop CPU per call*: the event-loop thread's own "
        "CPU time over the run divided by the calls (`time.thread_time`, less the ticker's own CPU "
        "measured on an idle loop; the decisions run in the routing threads and are not in it). "
        "*Process CPU per call*: the same for all the process's threads (routing included); both are "
        "left out where a call spans more than 120 ticks (few tasks: a 1 s call of one task spans a "
        "thousand), whose CPU would swamp the call's. *Cores used*: "
        "the process's CPU time over the run's wall time, against the 2 cores of the "
        "machine (what the other jobs left it shows here).",
        "",
        "| arrivals | run | concurrent tasks | calls | calls/s routed / direct | "
        "overhead p50 ms | overhead p99 ms | "
        "overhead p50 / single caller's | longest loop stall ms routed | direct | routed - direct | "
        "tick gap p99 ms routed / direct | loop CPU per call ms routed / direct | "
        "process CPU per call ms routed / direct | cores used routed / direct |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (rep, kind, w), r in sorted(latency_rows.items(), key=lambda kv: (kv[0][1] != "in step", kv[0][0], kv[0][2])):
        ro, ov, lo = r["routed"], r["overhead"], r["loop"]
        single = latency_rows.get((rep, kind, 1))
        ratio = ov["p50"] / single["overhead"]["p50"] if single else float("nan")
        lr, ld = lo["routed"], lo["direct"]
        lines.append(f"| {kind} | {rep} | {w} | {ro['calls']} | {ro['per_s']:.1f} / {r['direct']['per_s']:.1f} | "
                     f"{ov['p50']:.1f} | "
                     f"{ov['p99']:.1f} | **{ratio:.2f}** | **{lr['max']:.1f}** | {ld['max']:.1f} | "
                     f"{lr['max'] - ld['max']:+.1f} | {lr['p99']:.1f} / {ld['p99']:.1f} | "
                     + (f"{lr['cpu']:.2f} / {ld['cpu']:.2f} | {lr['proc']:.1f} / {ld['proc']:.1f} | "
                        if max(lr["ticks_per_call"], ld["ticks_per_call"]) <= 120 else "n/a | n/a | ")
                     + f"{lr['cores']:.2f} / {ld['cores']:.2f} |")
    if batching:
        lines += [
            "",
            "## 4. Would batching concurrent decisions help?",
            "",
            "Micro-batching the decisions of concurrent calls into one `Router.decide_batch` would only pay "
            "if a batch routes a prompt for less than `decide` does. The same 64 prompts routed by "
            "`decide` one at a time and by `decide_batch` in groups, interleaved three times (medians): "
            "CPU time of all threads and wall time per decision, and the share of prompts whose batch "
            "decision names the same model as `decide` (batch mode reads the outcome store's exact "
            "neighbours, `decide` its Annoy index).",
            "",
            "| routed as | CPU ms per decision | wall ms per decision | same model as `decide` |",
            "|---|---|---|---|",
        ]
        for k, r in batching.items():
            name = "`decide`, one at a time" if k == 1 else f"`decide_batch`, groups of {k}"
            lines.append(f"| {name} | {r['cpu']:.2f} | {r['wall']:.2f} | {r['same']:.0%} |")
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
        *_latency_notes(latency_rows),
        f"Command: `python benchmarks/load.py --calls {args.calls} --max-seconds {args.max_seconds:g} "
        f"--reply-ms {args.reply_ms:g} --latency-calls {args.latency_calls} --spread {args.spread:g} "
        f"--seed {args.seed} --repeats {args.repeats} --batch-sizes {args.batch_sizes}`. "
        "Each level stops issuing calls after the time bound, so `calls` is what actually ran.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
