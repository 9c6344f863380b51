"""``with_structured_output`` for a routed model: the three OpenAI-style methods, provider-neutral.

- ``function_calling``: the schema becomes a tool the chosen candidate is forced to call;
- ``json_mode``: ``response_format={"type": "json_object"}`` plus a JSON / Pydantic parser;
- ``json_schema``: ``response_format`` with the JSON schema (``strict`` passed through).

The routed model only forwards these settings to whichever candidate wins, so the candidate must
support the method (OpenAI-compatible chat models do).
"""

from __future__ import annotations

import json
from operator import itemgetter
from typing import Any

from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser, PydanticToolsParser
from langchain_core.runnables import Runnable, RunnableLambda, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

__all__ = ["structured_runnable"]


def _json_schema_format(schema: Any, strict: bool | None) -> dict[str, Any]:
    if isinstance(schema, dict) and "json_schema" in schema:
        return {"type": "json_schema", **{k: v for k, v in schema.items() if k != "type"}}
    js = convert_to_json_schema(schema)
    fmt: dict[str, Any] = {"name": js.get("title", "output"), "schema": js}
    if strict is not None:
        fmt["strict"] = strict
    return {"type": "json_schema", "json_schema": fmt}


def structured_runnable(
    llm: Any,
    schema: Any,
    *,
    include_raw: bool = False,
    method: str = "function_calling",
    strict: bool | None = None,
    **kwargs: Any,
) -> Runnable[Any, Any]:
    """Build ``llm | parser`` (or the include_raw map) for the requested method.

    Raises:
        ValueError: unknown method, or no schema for a method that needs one.
    """
    is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
    trace = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
    if method == "function_calling":
        if schema is None:
            raise ValueError("with_structured_output(method='function_calling') needs a schema.")
        tool_name = convert_to_openai_tool(schema)["function"]["name"]
        extra = {"strict": strict} if strict is not None else {}
        bound = llm.bind_tools([schema], tool_choice=tool_name, ls_structured_output_format=trace, **extra, **kwargs)
        parser: Runnable[Any, Any] = (
            PydanticToolsParser(tools=[schema], first_tool_only=True)
            if is_pydantic
            else JsonOutputKeyToolsParser(key_name=tool_name, first_tool_only=True)
        )
    elif method == "json_mode":
        bound = llm.bind(response_format={"type": "json_object"}, ls_structured_output_format=trace, **kwargs)
        parser = PydanticOutputParser(pydantic_object=schema) if is_pydantic else JsonOutputParser()
    elif method == "json_schema":
        if schema is None:
            raise ValueError("with_structured_output(method='json_schema') needs a schema.")
        bound = llm.bind(response_format=_json_schema_format(schema, strict), ls_structured_output_format=trace,
                         **kwargs)
        if is_pydantic:
            parser = RunnableLambda(lambda msg: schema.model_validate(json.loads(msg.content)))
        else:
            parser = JsonOutputParser()
    else:
        raise ValueError(
            f"Unknown structured output method {method!r}; use 'function_calling', 'json_mode' or 'json_schema'."
        )
    if not include_raw:
        return bound | parser
    with_parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
    fallback = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=bound) | with_parsed.with_fallbacks([fallback], exception_key="parsing_error")
