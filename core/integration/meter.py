"""What a relayed stream produced: its characters and the usage its items reported, for the cost a
stream is charged when it completes, fails or is stopped (:meth:`optiroute.integration.CallPlan.relay`)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, Generic, TypeAlias, TypeVar

from optiroute.schema.numbers import MAX_TOKENS, is_number

log = logging.getLogger(__name__)

__all__ = ["CHARS_PER_TOKEN", "Meter", "Usage", "aclose_quietly", "close_quietly", "token_count"]

T = TypeVar("T")

#: Input and output tokens a provider reported (``None`` when unknown: the router then estimates).
Usage: TypeAlias = tuple[int | None, int | None]

#: Characters per token when a stream's length is estimated from its text (as for prompts).
CHARS_PER_TOKEN = 4


def token_count(value: Any) -> int | None:
    """A usage figure as a token count, or ``None`` when it is not a plausible one."""
    if value is None or not is_number(value):
        return None
    x = float(value)
    return int(x) if math.isfinite(x) and 0 <= x <= MAX_TOKENS and x.is_integer() else None


class Meter(Generic[T]):
    """What a stream produced so far: its characters and the usage its items reported."""

    def __init__(self, usage: Callable[[T], Usage] | None, size: Callable[[T], int] | None,
                 additive: bool) -> None:
        self._usage, self._size, self._additive = usage, size, additive
        self.chars = 0
        self.items = 0
        self.reported: tuple[int | None, int | None] = (None, None)

    def add(self, item: T) -> None:
        self.items += 1
        try:
            if self._size is not None:
                self.chars += max(int(self._size(item)), 0)
            if self._usage is not None:
                tin, tout = (token_count(v) for v in self._usage(item))
                if tin is not None or tout is not None:
                    if self._additive:
                        a, b = self.reported
                        tin = tin if a is None else a + (tin or 0)
                        tout = tout if b is None else b + (tout or 0)
                    self.reported = (tin, tout)
        except Exception:  # the answer streams on: a usage-parsing bug must not cost it
            log.debug("could not measure a streamed item", exc_info=True)

    def tokens(self) -> Usage:
        """Reported usage; output tokens not reported are the streamed characters / 4 (``None``
        when nothing measures them)."""
        tin, tout = self.reported
        if tout is None and self._size is not None and self.chars > 0:
            tout = -(-self.chars // CHARS_PER_TOKEN)
        return tin, tout


def close_quietly(rest: Any) -> None:
    close = getattr(rest, "close", None)
    if callable(close):
        try:
            close()
        except Exception:
            log.debug("could not close a provider stream", exc_info=True)


async def aclose_quietly(rest: Any) -> None:
    close = getattr(rest, "aclose", None)
    if callable(close):
        try:
            await close()
        except Exception:
            log.debug("could not close a provider stream", exc_info=True)
