"""Capabilities from the host framework: what a LangChain chat model's ``profile`` or a LlamaIndex
LLM's ``metadata`` says of a candidate fills or overrides its card's context window and tool / JSON
support.

The framework integrations know their models' limits better than a bundled snapshot (LangChain's
``BaseChatModel.profile``: ``max_input_tokens``, ``max_output_tokens``, ``tool_calling``,
``structured_output``, ``image_inputs``; LlamaIndex's ``LLMMetadata``: ``context_window``,
``num_output``, ``is_function_calling_model``). Both are read duck-typed, by attribute: the core never
imports a framework. A value that is only the framework's default (LlamaIndex's 3900-token window,
``is_function_calling_model=False``) says nothing and is ignored.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optiroute.router.router import Router

__all__ = ["Capabilities", "apply_capabilities", "capabilities_of"]

#: LlamaIndex's ``DEFAULT_CONTEXT_WINDOW``: a placeholder, not a fact about the model.
LLAMA_INDEX_DEFAULT_WINDOW = 3900

Capabilities = dict[str, Any]

_APPLIED: dict[tuple[int, str, int], bool] = {}
_LOCK = threading.Lock()


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def capabilities_of(model: Any) -> tuple[Capabilities, str] | None:
    """Card fields a framework model object states (``context_window``, ``supports_tools``,
    ``supports_json``, ``supports_vision``) and where they came from; ``None`` when it states none."""
    profile = getattr(model, "profile", None)
    if isinstance(profile, Mapping) and profile:
        caps: Capabilities = {}
        window = _int(profile.get("max_input_tokens"))
        out = _int(profile.get("max_output_tokens"))
        if window is not None:
            caps["context_window"] = window + (out or 0)
        for key, field in (("tool_calling", "supports_tools"), ("structured_output", "supports_json"),
                           ("image_inputs", "supports_vision")):
            if isinstance(profile.get(key), bool):
                caps[field] = profile[key]
        if caps:
            return caps, f"LangChain model profile of {type(model).__name__}"
    meta = getattr(model, "metadata", None)
    if meta is not None and not isinstance(meta, Mapping) and hasattr(meta, "context_window"):
        caps = {}
        window = _int(getattr(meta, "context_window", None))
        if window is not None and window != LLAMA_INDEX_DEFAULT_WINDOW:
            caps["context_window"] = window
        if getattr(meta, "is_function_calling_model", None) is True:
            caps["supports_tools"] = True
        if caps:
            return caps, f"LlamaIndex LLMMetadata of {type(model).__name__}"
    return None


def apply_capabilities(router: Router, candidates: Mapping[str, str], objects: Mapping[str, Any]) -> int:
    """Put what each candidate object states onto the card its name resolves to (once per router,
    name and object). Returns how many cards changed.

    Args:
        candidates: candidate key -> model name (as :func:`optiroute.integration.plan_call` takes them).
        objects: candidate key -> the framework model object.
    """
    changed = 0
    for key, name in candidates.items():
        obj = objects.get(key)
        if obj is None:
            continue
        mark = (id(router), name, id(obj))
        with _LOCK:
            if mark in _APPLIED:
                continue
            _APPLIED[mark] = True
        found = capabilities_of(obj)
        if found is None:
            continue
        caps, source = found
        if router.registry.set_capabilities(name, source=source, **caps):
            changed += 1
    if changed:
        router.state.forget_candidates()
    return changed
