"""The per-call timeout: a candidate call bounded by a deadline, as a retryable :class:`TimeoutError`.

A synchronous call cannot be interrupted, so it runs in a daemon thread (with the caller's context
variables) that is abandoned at the deadline; whatever it returns later is closed if it can be (a
stream). An async call is cancelled. Both raise the built-in :class:`TimeoutError`, which the
fallback rules (:mod:`optiroute.router.fallback`) treat as retryable.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from optiroute.errors import OptiRouteError
from optiroute.schema.numbers import MAX_SECONDS, real

log = logging.getLogger(__name__)

__all__ = ["acall_with_deadline", "call_with_deadline", "check_timeout", "own_error"]

R = TypeVar("R")


def check_timeout(value: Any, field: str = "timeout") -> float | None:
    """A per-call timeout: ``None`` (no timeout) or seconds in (0, 1e6].

    Raises:
        InvalidInputError: naming ``field`` and the range.
    """
    if value is None:
        return None
    return real(value, field, lo=0.0, lo_open=True, hi=MAX_SECONDS,
                hint="It is the seconds one candidate may take before the next one is tried.")


def own_error(exc: Exception) -> OptiRouteError | None:
    """The OptiRouteError a field validator (such as :func:`check_timeout`) raised inside a pydantic
    ``ValidationError``, so an adapter's constructor raises our error, whose message says how to fix
    the value, instead of pydantic's wrapper; ``None`` when the error is not ours."""
    errors = getattr(exc, "errors", None)
    for err in errors() if callable(errors) else ():
        inner = (err.get("ctx") or {}).get("error")
        if isinstance(inner, OptiRouteError):
            return inner
    return None


def _late(result: Any) -> None:
    """Close what a timed-out call produced after its deadline (e.g. a stream), if it can be closed."""
    for part in result if isinstance(result, tuple) else (result,):
        close = getattr(part, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # best effort: nobody waits for it any more
                log.debug("could not close a late result", exc_info=True)


def call_with_deadline(fn: Callable[[], R], timeout_s: float | None, what: str) -> R:
    """``fn()``, or :class:`TimeoutError` after ``timeout_s`` seconds (``None``: no deadline).

    ``fn`` runs in a daemon thread with the caller's context variables; at the deadline the thread
    is abandoned (Python cannot stop it) and whatever it returns later is closed if it can be.
    """
    if timeout_s is None:
        return fn()
    ctx = contextvars.copy_context()
    box: dict[str, Any] = {}
    done = threading.Event()
    lock = threading.Lock()

    def work() -> None:
        try:
            value = ctx.run(fn)
        except BaseException as exc:  # handed to the caller's thread
            with lock:
                box["error"] = exc
        else:
            with lock:
                box["value"] = value
                late = box.get("abandoned", False)
            if late:
                _late(value)
        finally:
            done.set()

    threading.Thread(target=work, name="optiroute-call", daemon=True).start()
    if not done.wait(timeout_s):
        with lock:
            if "value" not in box and "error" not in box:
                box["abandoned"] = True
                raise TimeoutError(f"{what} did not answer within the per-call timeout of {timeout_s:g} s.")
    if "error" in box:
        raise box["error"]
    value: R = box["value"]
    return value


async def acall_with_deadline(coro: Awaitable[R], timeout_s: float | None, what: str) -> R:
    """Await ``coro``, cancelling it with :class:`TimeoutError` after ``timeout_s`` seconds."""
    if timeout_s is None:
        return await coro
    try:
        return await asyncio.wait_for(coro, timeout_s)
    except asyncio.TimeoutError:  # a distinct class before Python 3.11
        raise TimeoutError(f"{what} did not answer within the per-call timeout of {timeout_s:g} s.") from None
