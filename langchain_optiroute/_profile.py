"""``ChatOptiRoute.profile``: what every candidate can do, so LangChain sizes context and picks
features by the weakest candidate that may answer (``create_agent`` reads it)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.model_profile import ModelProfile

__all__ = ["combined_profile"]


def combined_profile(models: Iterable[BaseChatModel], tool_capable: Iterable[bool]) -> ModelProfile | None:
    """The candidates' profiles combined: the smallest of each limit (``max_input_tokens`` ...) that
    any reports, and a capability only when every candidate has it (one without a profile has
    ``tool_calling`` when it implements ``bind_tools``, and no other capability it cannot show).
    ``None`` when no candidate has a profile."""
    profiles: list[dict[str, Any]] = [dict(getattr(m, "profile", None) or {}) for m in models]
    tools = list(tool_capable)
    for profile, can in zip(profiles, tools, strict=True):
        profile.setdefault("tool_calling", can)
    if not any(len(p) > 1 for p in profiles):
        return None
    out: dict[str, Any] = {}
    for key in sorted(set().union(*profiles)):
        values = [p.get(key) for p in profiles]
        if all(isinstance(v, bool) for v in values):
            out[key] = all(values)
        elif any(isinstance(v, bool) for v in values):
            out[key] = False  # some candidates do not say: not every candidate can
        else:
            limits = [v for v in values if isinstance(v, int)]
            if limits:
                out[key] = min(limits)
    return cast(ModelProfile, out)
