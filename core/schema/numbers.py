"""Numbers from outside: the one check every numeric input of OptiRoute passes.

Preferences, constraints, budgets, model cards, router settings, fit data, usage reports, saved
routers and the CLI all take numbers from callers, files and providers. Each goes through
:func:`real` or :func:`integer` here, so every one of them is finite, inside its documented range and
an integer where an integer is meant, and a value outside gets an :class:`~optiroute.errors.OptiRouteError`
subclass (chosen by the caller: ``InvalidPreferencesError``, ``InvalidConstraintsError``,
``RegistryError``, ``DataFormatError``, ``CorruptArtifactError``, ...) whose message names the field
and the allowed range. NumPy scalars are numbers like any other (``numpy.float32(0.5)`` is a weight);
booleans and strings are not (``True`` and ``"0.5"`` are refused, never coerced).

The ranges are generous bounds of what can be meant, chosen so that nothing downstream overflows:
token counts stay far inside int64 and float32, amounts of money inside float32's range, so a
``min_context=10**30`` or ``max_cost_usd=1e308`` is refused here instead of overflowing inside numpy.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from pydantic import ValidationError

from optiroute.errors import InvalidInputError, OptiRouteError

__all__ = [
    "MAX_COUNT",
    "MAX_METRIC_FACT",
    "MAX_PRICE_PER_MTOK",
    "MAX_SECONDS",
    "MAX_TOKENS",
    "MAX_USD",
    "describe",
    "integer",
    "is_number",
    "optiroute_error",
    "real",
]

#: Any amount of money in USD (a cost cap, a budget, a recorded cost): a billion dollars.
MAX_USD = 1e9
#: A list price per million tokens.
MAX_PRICE_PER_MTOK = 1e6
#: Any token count (context windows, usage reports, output caps): a billion tokens.
MAX_TOKENS = 10**9
#: Any duration in seconds (latency limits, timeouts, observed latencies): about eleven days.
MAX_SECONDS = 1e6
#: Counts of things (neighbours, rows per chunk, representatives, batch sizes).
MAX_COUNT = 10**7
#: Free-form model-level facts on their own scales (parameters in billions, Arena Elo, ...).
MAX_METRIC_FACT = 1e15


def is_number(value: Any) -> bool:
    """True for ints, floats and NumPy numeric scalars; False for booleans (also NumPy's), strings
    and everything else."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)  # NumPy's bool is not Real


def _fmt(x: float) -> str:
    if isinstance(x, int) or float(x).is_integer() and abs(x) < 1e16:
        return f"{int(x)}" if abs(x) < 1e6 else f"{float(x):g}"
    return f"{x:g}"


def describe(lo: float | None, hi: float | None, *, lo_open: bool = False, hi_open: bool = False,
             whole: bool = False) -> str:
    """The allowed range in words, e.g. ``"a finite number in 0..1"`` or ``"an integer in 1..1e+09"``."""
    kind = "an integer" if whole else "a finite number"
    if lo is not None and hi is not None and not lo_open and not hi_open:
        return f"{kind} in {_fmt(lo)}..{_fmt(hi)}"
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {_fmt(lo)}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {_fmt(hi)}")
    return f"{kind} {' and '.join(parts)}" if parts else kind


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def real(
    value: Any,
    field: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    error: type[OptiRouteError] = InvalidInputError,
    hint: str = "",
) -> float:
    """``value`` as a finite float inside the range, else ``error`` naming ``field`` and the range.

    Args:
        field: how the message names the value (e.g. ``"Constraint 'max_cost_usd'"``).
        lo, hi: the bounds (``None``: unbounded on that side); ``lo_open``/``hi_open`` exclude them.
        hint: a sentence appended to the message (how to fix the value).
    """
    rng = describe(lo, hi, lo_open=lo_open, hi_open=hi_open)
    tail = f" {hint}" if hint else ""
    if not is_number(value):
        raise error(f"{field} must be {rng}, got {_short(value)} ({type(value).__name__}).{tail}")
    try:
        x = float(value)
    except (OverflowError, ValueError):  # an int too large for a float
        raise error(f"{field} must be {rng}, got {_short(value)}.{tail}") from None
    if not math.isfinite(x):
        raise error(f"{field} must be {rng}, got {_short(value)}.{tail}")
    if lo is not None and (x < lo or (lo_open and x == lo)):
        raise error(f"{field} must be {rng}, got {_short(value)}.{tail}")
    if hi is not None and (x > hi or (hi_open and x == hi)):
        raise error(f"{field} must be {rng}, got {_short(value)}.{tail}")
    return x


def integer(
    value: Any,
    field: str,
    *,
    lo: int | None = None,
    hi: int | None = None,
    error: type[OptiRouteError] = InvalidInputError,
    hint: str = "",
) -> int:
    """``value`` as an int inside ``lo..hi``, else ``error`` naming ``field`` and the range.

    Ints and NumPy integers pass; a float passes only when it is a whole number (``8192.0`` from a
    CSV or JSON file), never ``8192.5``.
    """
    rng = describe(lo, hi, whole=True)
    tail = f" {hint}" if hint else ""
    if not is_number(value):
        raise error(f"{field} must be {rng}, got {_short(value)} ({type(value).__name__}).{tail}")
    if isinstance(value, numbers.Integral):
        n = int(value)
    else:
        x = float(value)
        if not math.isfinite(x) or not x.is_integer():
            raise error(f"{field} must be {rng}, got {_short(value)}.{tail}")
        n = int(x)
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        raise error(f"{field} must be {rng}, got {_short(value)}.{tail}")
    return n


def optiroute_error(exc: ValidationError) -> OptiRouteError | None:
    """The OptiRoute error a validator raised inside pydantic's wrapper, if one did."""
    for err in exc.errors():
        inner = (err.get("ctx") or {}).get("error")
        if isinstance(inner, OptiRouteError):
            return inner
    return None
