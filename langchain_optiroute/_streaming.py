"""The streaming half of ``ChatOptiRoute``: walk the fallback chain until a candidate yields its
first chunk, then stream it through, with the decision on the first chunk only.

A candidate that fails *before* its first chunk is a fallback case (nothing reached the caller yet);
one that fails mid-stream surfaces as is, because the caller has already seen part of an answer.
The call is settled (cost, latency, tokens) when the stream ends, also when the consumer stops early.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from optiroute.errors import FallbackExhaustedError
from optiroute.router.fallback import is_retryable

from ._routing import Plan, stamp_message

__all__ = ["astream_chain", "stream_chain"]


def stream_chain(llm: Any, plan: Plan, messages: list[BaseMessage], stop: list[str] | None,
                  run_manager: Any, kwargs: dict[str, Any]) -> Iterator[ChatGenerationChunk]:
    errors = plan.errors
    for name, model in plan.chain:
        if model.rate_limiter is not None:
            model.rate_limiter.acquire(blocking=True)
        start = time.perf_counter()
        call_kwargs = llm._call_kwargs(model, kwargs)
        try:
            if type(model)._stream is BaseChatModel._stream:  # no native streaming: one chunk
                res = model._generate(messages, stop=stop or llm.stop, run_manager=run_manager, **call_kwargs)
                chunks: Iterator[ChatGenerationChunk] = iter([_as_chunk(res)])
            else:
                chunks = model._stream(messages, stop=stop or llm.stop, run_manager=run_manager, **call_kwargs)
            first = next(chunks, None)
        except Exception as exc:  # failed before the first token: fall back
            if not is_retryable(exc):
                raise
            plan.attempt_failed(name, exc)
            continue
        if first is None:
            first = ChatGenerationChunk(message=_empty_chunk())
        stamp_message(first.message, plan.summary(name, errors))  # metadata on one chunk only
        last = first
        try:
            yield first
            for chunk in chunks:
                last = chunk
                yield chunk
        finally:  # also when the consumer stops early: the tokens streamed so far were paid for
            if not plan.closed:
                plan.observe(name, time.perf_counter() - start, last.message)
        return
    raise FallbackExhaustedError(errors) from list(errors.values())[-1]


async def astream_chain(llm: Any, plan: Plan, messages: list[BaseMessage], stop: list[str] | None,
                         run_manager: Any, kwargs: dict[str, Any]) -> AsyncIterator[ChatGenerationChunk]:
    errors = plan.errors
    for name, model in plan.chain:
        if model.rate_limiter is not None:
            await model.rate_limiter.aacquire(blocking=True)
        start = time.perf_counter()
        call_kwargs = llm._call_kwargs(model, kwargs)
        try:
            if type(model)._astream is BaseChatModel._astream and type(model)._stream is BaseChatModel._stream:
                res = await model._agenerate(messages, stop=stop or llm.stop, run_manager=run_manager, **call_kwargs)
                agen: AsyncIterator[ChatGenerationChunk] = _aiter_one(_as_chunk(res))
            else:
                agen = model._astream(messages, stop=stop or llm.stop, run_manager=run_manager, **call_kwargs)
            first = await anext(agen, None)
        except Exception as exc:
            if not is_retryable(exc):
                raise
            plan.attempt_failed(name, exc)
            continue
        if first is None:
            first = ChatGenerationChunk(message=_empty_chunk())
        stamp_message(first.message, plan.summary(name, errors))
        last = first
        try:
            yield first
            async for chunk in agen:
                last = chunk
                yield chunk
        finally:
            if not plan.closed:
                plan.observe(name, time.perf_counter() - start, last.message)
        return
    raise FallbackExhaustedError(errors) from list(errors.values())[-1]


def _empty_chunk() -> Any:
    from langchain_core.messages import AIMessageChunk

    return AIMessageChunk(content="")


def _as_chunk(result: ChatResult) -> ChatGenerationChunk:
    from langchain_core.messages import AIMessageChunk

    msg = result.generations[0].message
    chunk = AIMessageChunk(
        content=msg.content, additional_kwargs=msg.additional_kwargs, response_metadata=msg.response_metadata,
        tool_calls=getattr(msg, "tool_calls", []), usage_metadata=getattr(msg, "usage_metadata", None), id=msg.id,
    )
    return ChatGenerationChunk(message=chunk, generation_info=result.generations[0].generation_info)


async def _aiter_one(chunk: ChatGenerationChunk) -> AsyncIterator[ChatGenerationChunk]:
    yield chunk
