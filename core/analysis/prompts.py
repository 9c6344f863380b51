"""Turning whatever the caller routes (a string or a chat history) into the text we analyse.

The router looks at the *last user turn* (what the model must answer now; system prompts are mostly
generic and would blur the task signal), while the token estimate used for the context-window
constraint counts the whole conversation. Messages may be plain dicts
(``{"role": ..., "content": ...}``), ``(role, content)`` pairs or any object with ``type``/``role`` and
``content`` attributes, so the framework adapters can pass their own message objects through after a
thin translation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from optiroute.errors import InvalidInputError

__all__ = ["RoutableText", "to_routable", "content_text"]

_USER_ROLES = {"user", "human"}


class RoutableText:
    """The text to analyse and the size of the whole input (characters)."""

    __slots__ = ("text", "total_chars")

    def __init__(self, text: str, total_chars: int) -> None:
        self.text = text
        self.total_chars = total_chars


def content_text(content: Any) -> str:
    """Plain text of a message content: a string, or a list of content blocks (text parts only)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence) and not isinstance(content, (bytes, bytearray)):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping) and isinstance(block.get("text"), str):
                parts.append(block["text"])
        return "\n".join(parts)
    raise InvalidInputError(
        f"Message content must be a string or a list of content blocks, got {type(content).__name__}."
    )


def _role_and_content(message: Any) -> tuple[str, str]:
    if isinstance(message, Mapping):
        role, content = message.get("role", message.get("type", "user")), message.get("content")
    elif isinstance(message, tuple) and len(message) == 2:
        role, content = message
    elif isinstance(message, str):
        role, content = "user", message
    elif hasattr(message, "content"):
        role = getattr(message, "role", None) or getattr(message, "type", "user")
        content = message.content
    else:
        raise InvalidInputError(
            f"Cannot route a message of type {type(message).__name__}; pass a string, "
            "{'role': ..., 'content': ...} dicts or (role, content) pairs."
        )
    return str(getattr(role, "value", role)).lower(), content_text(content)


def _check_text(value: str) -> str:
    if "\x00" in value:
        value = value.replace("\x00", " ")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (bytes decoded with errors="surrogateescape", broken JSON escapes) are
        # not text the tokenizer accepts; route on the rest, with U+FFFD where they were.
        value = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value


def to_routable(prompt: Any) -> RoutableText:
    """Validate a prompt or message list and extract what routing needs.

    Raises:
        InvalidInputError: ``None``, bytes, an empty or whitespace-only prompt, a message list with
            no text, or an unsupported type. The message says what to pass instead.
    """
    if prompt is None:
        raise InvalidInputError("Cannot route None; pass the prompt text or a list of messages.")
    if isinstance(prompt, (bytes, bytearray, memoryview)):
        raise InvalidInputError(
            "Cannot route bytes; decode them first, e.g. prompt.decode('utf-8', errors='replace')."
        )
    if isinstance(prompt, str):
        text = _check_text(prompt)
        if not text.strip():
            raise InvalidInputError("Cannot route an empty or whitespace-only prompt.")
        return RoutableText(text, len(text))
    if isinstance(prompt, Sequence) or hasattr(prompt, "__iter__") and not isinstance(prompt, Mapping):
        messages = [_role_and_content(m) for m in prompt]
        if not messages:
            raise InvalidInputError("Cannot route an empty message list.")
        total = sum(len(c) for _, c in messages)
        last_user = next((c for r, c in reversed(messages) if r in _USER_ROLES and c.strip()), "")
        if not last_user:
            last_user = next((c for _, c in reversed(messages) if c.strip()), "")
        if not last_user.strip():
            raise InvalidInputError("Cannot route messages that contain no text.")
        return RoutableText(_check_text(last_user), total)
    raise InvalidInputError(
        f"Cannot route a {type(prompt).__name__}; pass a string or a list of messages."
    )
