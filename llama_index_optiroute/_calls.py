"""Reading token usage from LlamaIndex responses, for the cost a routed call is settled at.

The call itself (plan, fallback walk, accounting) is :mod:`optiroute.integration`'s, shared with the
LangChain adapter.
"""

from __future__ import annotations

from typing import Any

__all__ = ["delta_chars", "usage_of"]


def delta_chars(response: Any) -> int:
    """Characters of output one streamed response adds (its ``delta``), for the cost of what streamed
    when the provider reports no usage."""
    delta = getattr(response, "delta", None)
    return len(delta) if isinstance(delta, str) else 0


def usage_of(response: Any) -> tuple[int | None, int | None]:
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
            read = usage.get if isinstance(usage, dict) else lambda name: getattr(usage, name, None)
            pin, pout = read("prompt_tokens"), read("completion_tokens")
    return (pin if isinstance(pin, int) else None), (pout if isinstance(pout, int) else None)
