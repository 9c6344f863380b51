"""Per-call plumbing of the LlamaIndex adapter: the route, the fallback walk with its accounting,
and reading token usage from LlamaIndex responses."""

from __future__ import annotations

from typing import Any, NamedTuple

from optiroute.router.fallback import acall_with_fallbacks, call_with_fallbacks

__all__ = ["arun_chain", "run_chain"]


class _Route(NamedTuple):
    """A decision, the candidate keys to try in order, and the caller key it is charged to."""

    decision: Any
    chain: list[str]
    user: str | None


def run_chain(account: Any, chain: list[str], run: Any) -> tuple[str, Any, dict[str, BaseException]]:
    """Call ``run`` down ``chain`` (shared fallback rules); every failed attempt leaves a row, and
    a call that ends without an answer releases its budget reservation."""
    errors: dict[str, BaseException] = {}

    def on_error(name: str, exc: BaseException) -> None:
        errors[name] = exc
        account.attempt_failed(name, exc)

    try:
        name, resp = call_with_fallbacks(chain, run, on_error=on_error)
    except BaseException as exc:
        account.failed(exc)
        raise
    return name, resp, errors


async def arun_chain(account: Any, chain: list[str], run: Any) -> tuple[str, Any, dict[str, BaseException]]:
    """Async twin of :func:`run_chain`."""
    errors: dict[str, BaseException] = {}

    def on_error(name: str, exc: BaseException) -> None:
        errors[name] = exc
        account.attempt_failed(name, exc)

    try:
        name, resp = await acall_with_fallbacks(chain, run, on_error=on_error)
    except BaseException as exc:
        account.failed(exc)
        raise
    return name, resp, errors


def _usage(response: Any) -> tuple[int | None, int | None]:
    """Input and output tokens a LlamaIndex response reports (OpenAI-style clients put them in
    ``additional_kwargs`` or ``raw.usage``); ``None`` when unknown (the router then estimates)."""
    if response is None:
        return None, None
    extra = getattr(response, "additional_kwargs", None) or {}
    pin, pout = extra.get("prompt_tokens"), extra.get("completion_tokens")
    if pin is None and pout is None:
        raw = getattr(response, "raw", None)
        usage = raw.get("usage") if isinstance(raw, dict) else getattr(raw, "usage", None)
        if usage is not None:
            pin = usage.get("prompt_tokens") if isinstance(usage, dict) else getattr(usage, "prompt_tokens", None)
            pout = usage.get("completion_tokens") if isinstance(usage, dict) else getattr(usage, "completion_tokens", None)
    return (pin if isinstance(pin, int) else None), (pout if isinstance(pout, int) else None)
