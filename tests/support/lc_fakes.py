"""A small, deterministic LangChain chat model to stand in for real providers in unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field


class EchoChat(BaseChatModel):
    """Answers ``"<model_name>: <last message>"``; can fail, stream and call tools on request."""

    model_config = ConfigDict(protected_namespaces=())
    model_name: str = "echo"
    fail_with: Any = None          # exception raised by every call
    fail_stream_first: Any = None  # exception raised before the first streamed chunk
    reply: str | None = None       # fixed reply text (e.g. JSON)
    calls: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "echo"

    def _text(self, messages: list[BaseMessage]) -> str:
        return self.reply if self.reply is not None else f"{self.model_name}: {messages[-1].content}"

    def _tool_args(self, tool: dict[str, Any]) -> dict[str, Any]:
        props = (tool.get("function", {}).get("parameters") or {}).get("properties") or {}
        return {name: 1 if spec.get("type") == "integer" else "x" for name, spec in props.items()} or {"a": 1, "b": 2}

    def _usage(self, text: str) -> UsageMetadata:
        return UsageMetadata(input_tokens=5, output_tokens=len(text.split()), total_tokens=5 + len(text.split()))

    def _message(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> AIMessage:
        self.calls.append(kwargs)
        if self.fail_with is not None:
            raise self.fail_with
        tools = kwargs.get("tools")
        if tools and messages[-1].type != "tool":  # after a tool result it answers in text
            name = tools[0]["function"]["name"]
            args = {"a": 1, "b": 2} if "a" in self._tool_args(tools[0]) else self._tool_args(tools[0])
            return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"call_{len(self.calls)}"}],
                             usage_metadata=self._usage("x"), response_metadata={"model_name": self.model_name})
        text = self._text(messages)
        return AIMessage(content=text, usage_metadata=self._usage(text),
                         response_metadata={"model_name": self.model_name})

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        return ChatResult(generations=[ChatGeneration(message=self._message(messages, kwargs))])

    def _stream(self, messages, stop=None, run_manager=None, **kwargs) -> Iterator[ChatGenerationChunk]:
        if self.fail_stream_first is not None:
            raise self.fail_stream_first
        msg = self._message(messages, kwargs)
        words = str(msg.content).split(" ")
        for i, w in enumerate(words):
            chunk = AIMessageChunk(content=w if i == 0 else " " + w,
                                   usage_metadata=msg.usage_metadata if i == 0 else None,
                                   response_metadata={"model_name": self.model_name} if i == 0 else {})
            if run_manager:
                run_manager.on_llm_new_token(chunk.content, chunk=ChatGenerationChunk(message=chunk))
            yield ChatGenerationChunk(message=chunk)

    async def _astream(self, messages, stop=None, run_manager=None, **kwargs) -> AsyncIterator[ChatGenerationChunk]:
        if self.fail_stream_first is not None:
            raise self.fail_stream_first
        for chunk in self._stream(messages, stop=stop, run_manager=None, **kwargs):
            if run_manager:
                await run_manager.on_llm_new_token(chunk.message.content, chunk=chunk)
            yield chunk

    def bind_tools(self, tools, *, tool_choice=None, **kwargs):
        formatted = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=formatted, **({"tool_choice": tool_choice} if tool_choice else {}), **kwargs)


class NoToolsChat(EchoChat):
    """The same, but without tool calling (uses BaseChatModel.bind_tools, which raises)."""

    bind_tools = BaseChatModel.bind_tools  # type: ignore[assignment]
