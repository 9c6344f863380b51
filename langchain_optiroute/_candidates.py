"""Candidates as users build them: a chat model, or a chat-model Runnable (``.bind(...)``,
``.with_retry(...)``, ``.with_config(...)``, ``.with_listeners(...)`` ...).

A candidate made of ``.bind`` layers only is unwrapped: its chat model runs under the routed call's
own run manager (one LLM run per call) with the bound kwargs. Any other wrapper (a retry, a config,
listeners) keeps its behaviour: it is invoked as a Runnable, as a child run of the routed call, with
the same kwargs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import AsyncCallbackManager, AsyncCallbackManagerForLLMRun, CallbackManager
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig

from optiroute import InvalidInputError

__all__ = ["Candidate", "candidate_of", "chat_model_of"]


@dataclass(frozen=True)
class Candidate:
    """A candidate's chat model, the kwargs bound around it, and the wrapper to invoke (if any)."""

    model: BaseChatModel
    kwargs: dict[str, Any]
    wrapper: Runnable[Any, Any] | None

    @staticmethod
    def _config(run_manager: Any) -> RunnableConfig:
        """A config whose callbacks make the wrapped candidate's run a child of the routed call's."""
        if run_manager is None:
            return RunnableConfig()
        cls = AsyncCallbackManager if isinstance(run_manager, AsyncCallbackManagerForLLMRun) else CallbackManager
        child = cls(handlers=run_manager.inheritable_handlers, inheritable_handlers=run_manager.inheritable_handlers,
                    parent_run_id=run_manager.run_id, tags=run_manager.inheritable_tags,
                    inheritable_tags=run_manager.inheritable_tags, metadata=run_manager.inheritable_metadata,
                    inheritable_metadata=run_manager.inheritable_metadata)
        return RunnableConfig(callbacks=child)

    def generate(self, messages: list[BaseMessage], stop: list[str] | None, run_manager: Any,
                 kwargs: dict[str, Any]) -> ChatResult:
        if self.wrapper is None:
            return self.model._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
        msg = self.wrapper.invoke(messages, config=self._config(run_manager), stop=stop, **kwargs)
        return ChatResult(generations=[ChatGeneration(message=msg)])

    async def agenerate(self, messages: list[BaseMessage], stop: list[str] | None, run_manager: Any,
                        kwargs: dict[str, Any]) -> ChatResult:
        if self.wrapper is None:
            return await self.model._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs)
        msg = await self.wrapper.ainvoke(messages, config=self._config(run_manager), stop=stop, **kwargs)
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def stream(self, messages: list[BaseMessage], stop: list[str] | None, run_manager: Any,
               kwargs: dict[str, Any]) -> Iterator[ChatGenerationChunk]:
        assert self.wrapper is not None
        for chunk in self.wrapper.stream(messages, config=self._config(run_manager), stop=stop, **kwargs):
            yield ChatGenerationChunk(message=chunk if isinstance(chunk, AIMessageChunk)
                                      else AIMessageChunk(content=getattr(chunk, "content", "")))

    async def astream(self, messages: list[BaseMessage], stop: list[str] | None, run_manager: Any,
                      kwargs: dict[str, Any]) -> AsyncIterator[ChatGenerationChunk]:
        assert self.wrapper is not None
        async for chunk in self.wrapper.astream(messages, config=self._config(run_manager), stop=stop, **kwargs):
            yield ChatGenerationChunk(message=chunk if isinstance(chunk, AIMessageChunk)
                                      else AIMessageChunk(content=getattr(chunk, "content", "")))


def candidate_of(value: Any) -> Candidate:
    """Unwrap a candidate (see the module docstring).

    Raises:
        InvalidInputError: it is not a chat model nor a Runnable wrapping one.
    """
    node, plain = value, True
    kwargs: dict[str, Any] = {}
    while not isinstance(node, BaseChatModel):
        bound = getattr(node, "bound", None)
        if not isinstance(node, Runnable) or bound is None:
            raise InvalidInputError(
                f"A candidate must be a LangChain chat model or a Runnable wrapping one (.bind, .with_retry ...), "
                f"got {type(value).__name__}."
            )
        if isinstance(node, RunnableBinding) and not node.config and not node.config_factories:
            kwargs = {**dict(node.kwargs), **kwargs}  # a .bind(...) layer: kwargs only
        else:
            plain = False
        node = bound
    return Candidate(node, kwargs if plain else {}, None if plain else value)


def chat_model_of(value: Any) -> BaseChatModel:
    """The chat model inside a candidate."""
    return candidate_of(value).model
