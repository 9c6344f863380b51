"""Tool loops on the local llama.cpp server: the chat formats and the request fix it needs.

llama-cpp-python 0.3.36's server cannot take a tool loop's second turn (the assistant's tool call,
then the tool's result) as OpenAI clients send it:

- its request schema types an assistant message's ``content`` as a string, so the ``"content": null``
  that OpenAI clients (langchain-openai, LlamaIndex's ``OpenAILike``) send beside ``tool_calls``, and
  content given as a list of text parts, are refused with a 500 (``Input should be a valid string``);
- its ``chatml-function-calling`` template has no branch for ``tool`` messages, so a tool's result
  never reaches the prompt (and an assistant message without ``content`` fails it with ``'dict
  object' has no attribute 'content'``); ``chatml`` and ``gemma`` drop tool messages as well.

So :func:`serve` registers two chat formats whose templates render tool calls and tool results,
``chatml-tools`` (SmolLM2) and ``gemma-tools`` (Gemma 3), and reads a null assistant ``content`` as
``""`` and a list of text parts as their text, before the server validates the request. Both
formats go through llama-cpp-python's own handler, so a ``tool_choice`` that names a tool still gets
a grammar-constrained call. Runs inside the server process only (:class:`optiroute.local.LlamaServer`
launches it).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["TOOL_FORMATS", "NullContentFix", "fix_null_content", "register_tool_formats", "serve"]

_CALLS = ("{% if m.tool_calls %}{% for c in m.tool_calls %}"
          "{{ '<tool_call>{\"name\": \"' + c.function.name + '\", \"arguments\": ' + c.function.arguments"
          " + '}</tool_call>' }}{% endfor %}{% endif %}")

#: ChatML with tool calls (``<tool_call>{...}</tool_call>``) and ``tool`` turns.
CHATML_TOOLS = ("{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' }}"
                "{% if m.content %}{{ m.content }}{% endif %}" + _CALLS + "{{ '<|im_end|>\\n' }}{% endfor %}"
                "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

#: Gemma turns (``user`` / ``model``); system text and tool results are user turns, as Gemma has no
#: other roles.
GEMMA_TOOLS = ("{{ bos_token }}{% for m in messages %}"
               "{% set role = 'model' if m.role == 'assistant' else 'user' %}"
               "{{ '<start_of_turn>' + role + '\\n' }}{% if m.role == 'tool' %}{{ 'Tool result: ' }}{% endif %}"
               "{% if m.content %}{{ m.content }}{% endif %}" + _CALLS + "{{ '<end_of_turn>\\n' }}{% endfor %}"
               "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}")

#: chat format name -> (template, end-of-turn token, begin-of-text token)
TOOL_FORMATS: dict[str, tuple[str, str, str]] = {
    "chatml-tools": (CHATML_TOOLS, "<|im_end|>", ""),
    "gemma-tools": (GEMMA_TOOLS, "<end_of_turn>", "<bos>"),
}


def register_tool_formats() -> None:
    """Register :data:`TOOL_FORMATS` with llama-cpp-python (idempotent)."""
    from llama_cpp import llama_chat_format as formats

    for name, (template, eos, bos) in TOOL_FORMATS.items():
        formatter = formats.Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        formats.register_chat_format(name)(formatter)


def fix_null_content(body: bytes) -> bytes:
    """A chat request with each assistant ``content`` made a string: ``null`` -> ``""``, a list of text
    parts -> their text joined (unchanged otherwise, and when any part is not text)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    messages = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(messages, list):
        return body
    fixed = False
    for m in messages:
        if not isinstance(m, dict) or m.get("role") != "assistant" or "content" not in m:
            continue
        content = m["content"]
        if content is None:
            m["content"], fixed = "", True
        elif isinstance(content, list) and all(
                isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
                for part in content):
            m["content"], fixed = "".join(part["text"] for part in content), True
    return json.dumps(data).encode() if fixed else body


ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[..., Awaitable[None]]],
                   Awaitable[None]]


class NullContentFix:
    """ASGI middleware: chat-completion requests pass through :func:`fix_null_content`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                       send: Callable[..., Awaitable[None]]) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST" or \
                not str(scope.get("path", "")).endswith("/chat/completions"):
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
        body = fix_null_content(body)
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
        scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def serve(config_file: str) -> None:
    """Run llama-cpp-python's server from its JSON config file, with :func:`register_tool_formats`
    and :class:`NullContentFix` (what ``python -m llama_cpp.server --config_file`` does otherwise)."""
    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ConfigFileSettings, ServerSettings

    register_tool_formats()
    with open(config_file, "rb") as f:
        config = ConfigFileSettings.model_validate_json(f.read())
    server = ServerSettings.model_validate(config)
    app = create_app(server_settings=server, model_settings=config.models)
    uvicorn.run(NullContentFix(app), host=server.host, port=server.port)
