"""The streaming half of ``ChatOptiRoute``: LangChain's side of :meth:`CallPlan.open_stream` /
:meth:`CallPlan.relay`, with the decision on the first chunk only.

The plan walks the fallback chain until a candidate yields its first chunk (one that fails *before*
it is a fallback case; one that fails mid-stream surfaces as is, because the caller has already seen
part of an answer) and accounts for the call at its real end: settled when the stream completes,
``ok=False`` and charged for what streamed when the provider fails mid-way or the consumer stops.
This module only starts a candidate's LangChain stream and shapes the chunks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from optiroute.integration import CallPlan, Usage

from ._routing import answer_identity, name_answer, stamp_message, unname_later_chunk

__all__ = ["acquire", "aacquire", "astream_chain", "chunk_chars", "message_usage", "stream_chain"]


def message_usage(message: BaseMessage | None) -> Usage:
    """Input and output tokens a LangChain message reports (``None`` when it reports none)."""
    usage = (getattr(message, "usage_metadata", None) or {}) if message is not None else {}
    return usage.get("input_tokens"), usage.get("output_tokens")


def acquire(model: BaseChatModel) -> None:
    """Honour the candidate's own rate limiter (its wait is not counted as model latency)."""
    if model.rate_limiter is not None:
        model.rate_limiter.acquire(blocking=True)


async def aacquire(model: BaseChatModel) -> None:
    """Async twin of :func:`acquire`."""
    if model.rate_limiter is not None:
        await model.rate_limiter.aacquire(blocking=True)


def _streams(model: BaseChatModel, kwargs: dict[str, Any], *, async_api: bool) -> bool:
    """Whether a candidate streams this attempt: it implements streaming, and its own
    ``disable_streaming`` (``True``, or ``"tool_calling"`` when tools are bound) does not turn it off;
    otherwise its answer is generated whole and relayed as one chunk."""
    flag = getattr(model, "disable_streaming", False)
    if flag is True or (flag == "tool_calling" and kwargs.get("tools")):
        return False
    sync = type(model)._stream is not BaseChatModel._stream
    return sync or (async_api and type(model)._astream is not BaseChatModel._astream)


def _chunk_usage(chunk: ChatGenerationChunk) -> Usage:
    return message_usage(chunk.message)


def chunk_chars(chunk: ChatGenerationChunk) -> int:
    """Characters of output a chunk carries (text and tool-call pieces), for the cost of what streamed
    when the provider reports no usage."""
    msg = chunk.message
    content = msg.content
    if isinstance(content, str):
        n = len(content)
    else:
        n = sum(len(b) if isinstance(b, str) else len(str(b.get("text") or "")) if isinstance(b, dict) else 0
                for b in content)
    for piece in getattr(msg, "tool_call_chunks", None) or []:
        n += len(piece.get("name") or "") + len(piece.get("args") or "")
    return n


def _first_chunk(plan: CallPlan, opened: Any, identities: dict[str, dict[str, str]]) -> ChatGenerationChunk:
    """The stream's first chunk, with the decision and the answering model's name (one chunk only:
    merging chunks concatenates repeated strings)."""
    first = opened.first if opened.first is not None else ChatGenerationChunk(message=AIMessageChunk(content=""))
    stamp_message(first.message, plan.summary(opened.key))
    name_answer(first, identities[opened.key])
    return first


def _later(first: ChatGenerationChunk, identity: dict[str, str]) -> Any:
    def each(chunk: ChatGenerationChunk) -> ChatGenerationChunk:
        return chunk if chunk is first else unname_later_chunk(chunk, identity)
    return each


def stream_chain(llm: Any, plan: CallPlan, messages: list[BaseMessage], stop: list[str] | None,
                 run_manager: Any, kwargs: dict[str, Any]) -> Iterator[ChatGenerationChunk]:
    identities: dict[str, dict[str, str]] = {}

    def start(key: str) -> Iterator[ChatGenerationChunk]:
        cand = llm._candidate(key)
        model: BaseChatModel = cand.model
        call_kwargs = llm._call_kwargs(cand, kwargs)
        identities[key] = answer_identity(model, key, plan.decision.decision_id, stop or llm.stop, call_kwargs)
        if cand.wrapper is not None:
            return cand.stream(messages, stop or llm.stop, run_manager, call_kwargs)
        if not _streams(model, call_kwargs, async_api=False):  # one chunk
            res = model._generate(messages, stop=stop or llm.stop, run_manager=run_manager, **call_kwargs)
            return iter([_as_chunk(res)])
        return model._stream(messages, stop=stop or llm.stop, run_manager=run_manager, **call_kwargs)

    opened = plan.open_stream(start, before=lambda key: acquire(llm._candidate(key).model), timeout_s=llm.timeout)
    first = _first_chunk(plan, opened, identities)
    yield from plan.relay(replace(opened, first=first), usage=_chunk_usage, size=chunk_chars, additive_usage=True,
                          each=_later(first, identities[opened.key]))


async def astream_chain(llm: Any, plan: CallPlan, messages: list[BaseMessage], stop: list[str] | None,
                        run_manager: Any, kwargs: dict[str, Any]) -> AsyncIterator[ChatGenerationChunk]:
    identities: dict[str, dict[str, str]] = {}

    async def start(key: str) -> AsyncIterator[ChatGenerationChunk]:
        cand = llm._candidate(key)
        model: BaseChatModel = cand.model
        call_kwargs = llm._call_kwargs(cand, kwargs)
        identities[key] = answer_identity(model, key, plan.decision.decision_id, stop or llm.stop, call_kwargs)
        if cand.wrapper is not None:
            return cand.astream(messages, stop or llm.stop, run_manager, call_kwargs)
        if not _streams(model, call_kwargs, async_api=True):
            res = await model._agenerate(messages, stop=stop or llm.stop, run_manager=run_manager, **call_kwargs)
            return _aiter_one(_as_chunk(res))
        return model._astream(messages, stop=stop or llm.stop, run_manager=run_manager, **call_kwargs)

    async def before(key: str) -> None:
        await aacquire(llm._candidate(key).model)

    opened = await plan.aopen_stream(start, before=before, timeout_s=llm.timeout)
    first = _first_chunk(plan, opened, identities)
    async for chunk in plan.arelay(replace(opened, first=first), usage=_chunk_usage, size=chunk_chars,
                                   additive_usage=True, each=_later(first, identities[opened.key])):
        yield chunk


def _as_chunk(result: ChatResult) -> ChatGenerationChunk:
    msg = result.generations[0].message
    chunk = AIMessageChunk(
        content=msg.content, additional_kwargs=msg.additional_kwargs, response_metadata=msg.response_metadata,
        tool_calls=getattr(msg, "tool_calls", []), usage_metadata=getattr(msg, "usage_metadata", None), id=msg.id,
    )
    return ChatGenerationChunk(message=chunk, generation_info=result.generations[0].generation_info)


async def _aiter_one(chunk: ChatGenerationChunk) -> AsyncIterator[ChatGenerationChunk]:
    yield chunk
