"""Routing off the event loop: a decision (embedding, analysis, its store write) and the call's
admission run in a small pool of worker threads, so an async server keeps serving while it routes.

The pool is bounded (``OPTIROUTE_ROUTING_THREADS``, default: the CPU count, at most 8): routing is
CPU-bound, so more threads than cores would only queue inside the encoder; callers beyond the bound
wait on the loop without blocking it. The caller's context variables (an ``optiroute.preferences``
scope) travel with the call.

A call's accounting at its end (the observation row and the spend settlement) is a store write: on a
database store it takes a round trip (measured with SQLite and a budget: 1.5 ms median, up to 6 ms,
per call), which would pause the event loop. It runs in one thread of its own
(:func:`run_store_write`), not in the routing pool, so an answer never waits behind queued decisions
to be accounted; one thread is enough because a store serialises its writes anyway.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["routing_threads", "run_in_worker", "run_store_write"]

P = ParamSpec("P")
R = TypeVar("R")

_POOLS: dict[str, ThreadPoolExecutor] = {}
_POOL_LOCK = threading.Lock()


def routing_threads() -> int:
    """How many decisions may run at once off the event loop (``OPTIROUTE_ROUTING_THREADS``)."""
    raw = os.environ.get("OPTIROUTE_ROUTING_THREADS", "")
    if raw.strip().isdigit() and int(raw) > 0:
        return min(int(raw), 64)
    return max(1, min(os.cpu_count() or 1, 8))


def _pool(name: str, workers: Callable[[], int]) -> ThreadPoolExecutor:
    """The process's pool ``name``, created on first use (``workers()`` threads)."""
    pool = _POOLS.get(name)
    if pool is None:
        with _POOL_LOCK:
            pool = _POOLS.get(name)
            if pool is None:
                pool = _POOLS[name] = ThreadPoolExecutor(max_workers=workers(), thread_name_prefix=f"optiroute-{name}")
    return pool


async def run_in_worker(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn(*args, **kwargs)`` in the routing pool, awaited without blocking the loop.

    A cancelled caller stops waiting; the routing itself finishes in its thread (a decision is
    recorded whole or not at all).
    """
    ctx = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool("route", routing_threads), functools.partial(ctx.run, fn, *args, **kwargs))


async def run_store_write(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn(*args, **kwargs)`` in the store-write thread, awaited without blocking the loop.

    As with :func:`run_in_worker`, a cancelled caller stops waiting and the write finishes whole.
    """
    ctx = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool("store", lambda: 1), functools.partial(ctx.run, fn, *args, **kwargs))
