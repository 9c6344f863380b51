"""Tools and structured output for a routed model, in each candidate's own provider format.

``ChatOptiRoute`` cannot know in advance which candidate will answer (nor which fallback), so
``bind_tools`` and ``with_structured_output`` only record the request in a provider-neutral form;
each attempt then asks *its* candidate to translate it (the candidate's own ``bind_tools`` /
``with_structured_output``), so Anthropic gets ``{"type": "tool", "name": ...}``, OpenAI
``{"type": "function", ...}`` and Gemini its ``tool_config``, and a JSON-schema request becomes
``response_format``, ``output_config`` or ``response_json_schema`` as each integration expects.

The answer is parsed provider-neutrally: LangChain standardises tool calls (``message.tool_calls``)
and text, so the parser does not depend on the candidate that answered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser, PydanticToolsParser
from langchain_core.runnables import Runnable, RunnableBinding, RunnableLambda, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

__all__ = ["STRUCTURED_KWARG", "StructuredRequest", "candidate_kwargs", "neutral_tool_choice", "structured_runnable"]

#: The bound kwarg that carries a structured-output request to the routed call.
STRUCTURED_KWARG = "optiroute_structured"
METHODS = ("function_calling", "json_mode", "json_schema")
#: Bound kwargs that trace the call, never sent to a provider.
_TRACE_ONLY = ("ls_structured_output_format", "structured_output_format")


@dataclass(frozen=True)
class StructuredRequest:
    """A ``with_structured_output`` request, kept as given until a candidate is tried."""

    schema: Any
    method: str
    strict: bool | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def needs_tools(self) -> bool:
        """Function calling can only be answered by a tool-capable candidate."""
        return self.method == "function_calling"

    def __repr__(self) -> str:  # shows in traces and LangChain's cache key: stable, no object ids
        title = self.schema.__name__ if isinstance(self.schema, type) else json.dumps(self.schema, sort_keys=True,
                                                                                     default=str)
        return f"StructuredRequest({title}, method={self.method!r}, strict={self.strict!r})"


def neutral_tool_choice(tool_choice: Any) -> Any:
    """A ``tool_choice`` every integration's ``bind_tools`` reads the same way.

    ``True`` and ``"required"`` become ``"any"`` (OpenAI maps it back to ``"required"``; Anthropic would
    read ``"required"`` as a tool's name); OpenAI's ``{"type": "function", "function": {"name": n}}``
    becomes the name ``n``; ``"auto"``, ``"none"``, ``"any"`` and tool names pass as they are.
    """
    if tool_choice is True or tool_choice == "required":
        return "any"
    if isinstance(tool_choice, Mapping):
        fn = tool_choice.get("function")
        if tool_choice.get("type") == "function" and isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            return fn["name"]
    return tool_choice


def _binding_kwargs(runnable: Any) -> dict[str, Any] | None:
    """The kwargs a candidate's structured-output runnable binds to its model (its first step)."""
    step = getattr(runnable, "first", runnable)
    while isinstance(step, RunnableMap):  # include_raw=True maps raw=model
        step = next(iter(step.steps__.values()))
    if isinstance(step, RunnableBinding):
        return dict(step.kwargs)
    return None


def candidate_kwargs(model: BaseChatModel, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call kwargs in ``model``'s own format: tools through its ``bind_tools``, a structured-output
    request through its ``with_structured_output``; trace-only kwargs are dropped."""
    out = dict(kwargs)
    request: StructuredRequest | None = out.pop(STRUCTURED_KWARG, None)
    tools = out.pop("tools", None)
    tool_kwargs = {k: out.pop(k) for k in ("tool_choice", "strict", "parallel_tool_calls") if out.get(k) is not None}
    for k in ("tool_choice", "strict", "parallel_tool_calls", *_TRACE_ONLY):
        out.pop(k, None)
    if tools:
        if "tool_choice" in tool_kwargs:
            tool_kwargs["tool_choice"] = neutral_tool_choice(tool_kwargs["tool_choice"])
        out.update(getattr(model.bind_tools(tools, **tool_kwargs), "kwargs", {}))
    if request is not None:
        out.update(_structured_kwargs(model, request))
    return out


def _json_schema_format(schema: Any, strict: bool | None) -> dict[str, Any]:
    if isinstance(schema, Mapping) and "json_schema" in schema:
        return {"type": "json_schema", **{k: v for k, v in schema.items() if k != "type"}}
    js = convert_to_json_schema(schema)
    fmt: dict[str, Any] = {"name": js.get("title", "output"), "schema": js}
    if strict is not None:
        fmt["strict"] = strict
    return {"type": "json_schema", "json_schema": fmt}


def _structured_kwargs(model: BaseChatModel, request: StructuredRequest) -> dict[str, Any]:
    """A structured-output request in ``model``'s own format.

    A candidate without its own ``with_structured_output`` (LangChain's default only calls tools)
    gets the OpenAI-compatible ``response_format`` for the JSON methods, which OpenAI-compatible
    servers (vLLM, llama.cpp, Ollama) read.
    """
    own = type(model).with_structured_output is not BaseChatModel.with_structured_output
    if request.method != "function_calling" and not own:
        if request.method == "json_mode":
            return {"response_format": {"type": "json_object"}}
        return {"response_format": _json_schema_format(request.schema, request.strict)}
    extra = dict(request.kwargs)
    if request.strict is not None:
        extra["strict"] = request.strict
    bound = _binding_kwargs(model.with_structured_output(request.schema, method=request.method, **extra))
    if bound is None:
        raise ValueError(
            f"{type(model).__name__}.with_structured_output did not bind its request to the model, so a routed "
            "call cannot forward it; use method='json_mode' or a candidate from a LangChain integration."
        )
    for k in _TRACE_ONLY:
        bound.pop(k, None)
    return bound


def structured_runnable(
    llm: Any,
    schema: Any,
    *,
    include_raw: bool = False,
    method: str = "function_calling",
    strict: bool | None = None,
    **kwargs: Any,
) -> Runnable[Any, Any]:
    """``llm`` bound to the request, piped into a provider-neutral parser (or the include_raw map).

    Raises:
        ValueError: unknown method, or no schema for a method that needs one (``json_mode`` does not).
    """
    if method not in METHODS:
        raise ValueError(
            f"Unknown structured output method {method!r}; use 'function_calling', 'json_mode' or 'json_schema'."
        )
    if schema is None and method != "json_mode":
        raise ValueError(f"with_structured_output(method={method!r}) needs a schema.")
    is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
    trace = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
    request = StructuredRequest(schema, method, strict, dict(kwargs))
    bound = llm.bind(**{STRUCTURED_KWARG: request}, ls_structured_output_format=trace)
    parser: Runnable[Any, Any]
    if method == "function_calling":
        tool_name = convert_to_openai_tool(schema)["function"]["name"]
        parser = (PydanticToolsParser(tools=[schema], first_tool_only=True) if is_pydantic
                  else JsonOutputKeyToolsParser(key_name=tool_name, first_tool_only=True))
    elif is_pydantic:
        parser = (PydanticOutputParser(pydantic_object=schema) if method == "json_mode"
                  else RunnableLambda(lambda msg: schema.model_validate(json.loads(msg.text))))
    else:
        parser = JsonOutputParser()
    if not include_raw:
        return bound | parser
    with_parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
    fallback = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=bound) | with_parsed.with_fallbacks([fallback], exception_key="parsing_error")


def format_tools(tools: Sequence[Any]) -> list[dict[str, Any]]:
    """Tools in OpenAI's schema format, which every LangChain integration's ``bind_tools`` accepts."""
    return [convert_to_openai_tool(t) for t in tools]
