"""Provider-neutral retryable-error classification and the fallback chain both adapters share.

A routed call that fails with a *transient* provider error (timeout, rate limit, 5xx, connection
refused) moves down the decision's fallback chain; anything else (bad request, auth, content filter,
our own errors) surfaces unchanged, because trying another model would not fix it and would hide the
caller's bug. Classification looks at status codes and exception class names rather than importing
provider SDKs, so it works for OpenAI, Anthropic, Google, httpx and requests errors alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from optiroute.errors import FallbackExhaustedError, OptiRouteError

__all__ = ["RETRYABLE_STATUS", "is_retryable", "call_with_fallbacks", "acall_with_fallbacks", "FallbackExhaustedError"]

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
_RETRYABLE_NAMES = (
    "timeout", "timedout", "ratelimit", "apiconnectionerror", "connecterror", "connectionerror",
    "internalservererror", "serviceunavailable", "overloaded", "remoteprotocolerror",
    "readerror", "apitimeouterror", "deadlineexceeded", "resourceexhausted", "unavailable",
)


def _status(exc: BaseException) -> int | None:
    for attr in ("status_code", "status", "http_status", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value <= 599:
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def is_retryable(exc: BaseException) -> bool:
    """True for transient provider failures that another model may not share."""
    if isinstance(exc, OptiRouteError):
        return False
    if isinstance(exc, (TimeoutError, ConnectionError, asyncio.TimeoutError)):
        return True
    status = _status(exc)
    if status is not None:
        return status in RETRYABLE_STATUS
    names = {cls.__name__.lower() for cls in type(exc).__mro__}
    if any(marker in name for name in names for marker in _RETRYABLE_NAMES):
        return True
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and is_retryable(cause)


def call_with_fallbacks(
    chain: Iterable[str],
    call: Callable[[str], T],
    *,
    on_error: Callable[[str, BaseException], None] | None = None,
) -> tuple[str, T]:
    """Call ``call(model)`` down ``chain`` until one succeeds; returns ``(model, result)``.

    A non-retryable error is re-raised at once, untouched. If every model fails with a retryable
    error, the last one's exception is chained into :class:`FallbackExhaustedError`.
    """
    errors: dict[str, BaseException] = {}
    for model in chain:
        try:
            return model, call(model)
        except Exception as exc:
            if not is_retryable(exc):
                raise
            errors[model] = exc
            if on_error is not None:
                on_error(model, exc)
    if not errors:
        raise ValueError("call_with_fallbacks needs at least one model")
    raise FallbackExhaustedError(errors) from list(errors.values())[-1]


async def acall_with_fallbacks(
    chain: Iterable[str],
    call: Callable[[str], Awaitable[T]],
    *,
    on_error: Callable[[str, BaseException], None] | None = None,
) -> tuple[str, T]:
    """Async twin of :func:`call_with_fallbacks`."""
    errors: dict[str, BaseException] = {}
    for model in chain:
        try:
            return model, await call(model)
        except Exception as exc:
            if not is_retryable(exc):
                raise
            errors[model] = exc
            if on_error is not None:
                on_error(model, exc)
    if not errors:
        raise ValueError("acall_with_fallbacks needs at least one model")
    raise FallbackExhaustedError(errors) from list(errors.values())[-1]
