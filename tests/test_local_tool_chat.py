"""The local server's tool-loop formats render a replayed tool call and its result, and a null
assistant content (what OpenAI clients send beside tool calls) reaches the server as "".

Hermetic: llama-cpp-python's own Jinja formatter and an in-process ASGI app; the real server runs in
tests/integration (the cookbook's LangGraph tool loop).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from optiroute.local.tool_chat import TOOL_FORMATS, NullContentFix, fix_null_content

HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "What is 6 times 7?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "multiply", "arguments": '{"a": 6, "b": 7}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "42"},
]


@pytest.mark.parametrize("name", sorted(TOOL_FORMATS))
def test_formats_render_the_tool_call_and_its_result(name):
    formats = pytest.importorskip("llama_cpp.llama_chat_format")
    template, eos, bos = TOOL_FORMATS[name]
    out = formats.Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)(messages=HISTORY)
    prompt = out.prompt
    assert '<tool_call>{"name": "multiply", "arguments": {"a": 6, "b": 7}}</tool_call>' in prompt
    assert "42" in prompt and prompt.index("multiply") < prompt.index("42")  # the result, after the call
    assert prompt.count(eos) == 3  # one end-of-turn per message
    no_content = [HISTORY[0], {k: v for k, v in HISTORY[1].items() if k != "content"}, HISTORY[2]]
    assert formats.Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)(
        messages=no_content).prompt == prompt


def test_null_assistant_content_becomes_empty_text():
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": None},
                                                  {**HISTORY[1], "content": None}]}).encode()
    fixed = json.loads(fix_null_content(body))
    assert fixed["messages"][1]["content"] == "" and fixed["messages"][0]["content"] is None  # assistant only
    parts = [{"type": "text", "text": "some "}, {"type": "text", "text": "text"}]
    listed = json.dumps({"messages": [{**HISTORY[1], "content": parts}]}).encode()
    assert json.loads(fix_null_content(listed))["messages"][0]["content"] == "some text"
    image = json.dumps({"messages": [{"role": "assistant", "content": [{"type": "image_url"}]}]}).encode()
    assert fix_null_content(image) is image  # not text: left for the server to judge
    assert fix_null_content(b"not json") == b"not json"
    plain = json.dumps({"messages": HISTORY}).encode()
    assert fix_null_content(plain) is plain


def test_middleware_hands_the_app_the_fixed_body_in_one_piece():
    seen: list[tuple[dict[str, Any], bytes]] = []

    async def app(scope, receive, send):
        message = await receive()
        seen.append((scope, message["body"]))

    body = json.dumps({"messages": [{**HISTORY[1], "content": None}]}).encode()
    parts = [{"type": "http.request", "body": body[:10], "more_body": True},
             {"type": "http.request", "body": body[10:], "more_body": False}]

    async def receive():
        return parts.pop(0)

    async def send(message):
        return None

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions",
             "headers": [(b"content-length", str(len(body)).encode())]}
    asyncio.run(NullContentFix(app)(scope, receive, send))
    (got_scope, got_body), = seen
    assert json.loads(got_body)["messages"][0]["content"] == ""
    assert dict(got_scope["headers"])[b"content-length"] == str(len(got_body)).encode()
    parts[:] = [{"type": "http.request", "body": b"{}", "more_body": False}]
    asyncio.run(NullContentFix(app)({**scope, "path": "/v1/models", "method": "GET"}, receive, send))
    assert seen[-1][1] == b"{}"  # other routes pass through untouched
