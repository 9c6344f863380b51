"""Tools and structured output reach each provider in its own format, fallbacks included.

The candidates are the real ChatOpenAI, ChatAnthropic and ChatGoogleGenerativeAI, built with fake keys;
each records the request payload its own builder makes from the kwargs ChatOptiRoute passes (the
first step of the provider's ``_generate``) and answers with a canned message instead of calling the
network.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_google_genai import ChatGoogleGenerativeAI
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from langchain_optiroute import ChatOptiRoute
from optiroute import Router
from tests.support.lc_fakes import EchoChat

QUESTION = "What is 1 + 2?"


class Answer(BaseModel):
    """Two integers."""

    a: int
    b: int


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def canned(kwargs: dict[str, Any], fail: Any) -> ChatResult:
    if fail is not None:
        raise fail
    forced = kwargs.get("optiroute_test_tool")
    if forced:
        msg = AIMessage(content="", tool_calls=[{"name": forced, "args": {"a": 1, "b": 2}, "id": "call_1"}])
    else:
        msg = AIMessage(content='{"a": 1, "b": 2}')
    return ChatResult(generations=[ChatGeneration(message=msg)])


class OpenAI(ChatOpenAI):
    payloads: list[dict[str, Any]] = Field(default_factory=list)
    fail: Any = None
    tool: str | None = None

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.payloads.append(self._get_request_payload(messages, stop=stop, **kwargs))
        return canned({"optiroute_test_tool": self.tool}, self.fail)


class Anthropic(ChatAnthropic):
    payloads: list[dict[str, Any]] = Field(default_factory=list)
    fail: Any = None
    tool: str | None = None

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.payloads.append(self._get_request_payload(messages, stop=stop, **kwargs))
        return canned({"optiroute_test_tool": self.tool}, self.fail)


class Gemini(ChatGoogleGenerativeAI):
    payloads: list[dict[str, Any]] = Field(default_factory=list)
    fail: Any = None
    tool: str | None = None

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.payloads.append(self._prepare_request(messages, stop=stop, **kwargs))
        return canned({"optiroute_test_tool": self.tool}, self.fail)


@pytest.fixture(scope="module")
def router():
    return Router.default()


def openai(**kw):
    return OpenAI(model="gpt-4o", api_key="sk-test-not-a-key", **kw)


def anthropic(**kw):
    return Anthropic(model="claude-3-5-sonnet-20240620", api_key="sk-ant-test-not-a-key", **kw)


def gemini(**kw):
    return Gemini(model="gemini-1.5-pro", google_api_key="test-not-a-key", **kw)


def routed(router, *models) -> ChatOptiRoute:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ChatOptiRoute(models=list(models), router=router)


def gemini_config(payload: dict[str, Any]) -> Any:
    return payload["config"]


# ---------------------------------------------------------------- tools
def test_forced_tool_reaches_each_provider_in_its_own_format(router):
    oa, an, ge = openai(tool="add"), anthropic(tool="add"), gemini(tool="add")
    for model in (oa, an, ge):
        msg = routed(router, model).bind_tools([add], tool_choice="add").invoke(QUESTION)
        assert msg.tool_calls[0]["name"] == "add"
    assert oa.payloads[-1]["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert oa.payloads[-1]["tools"][0]["function"]["name"] == "add"
    assert an.payloads[-1]["tool_choice"] == {"type": "tool", "name": "add"}
    assert an.payloads[-1]["tools"][0]["name"] == "add" and "input_schema" in an.payloads[-1]["tools"][0]
    fcc = gemini_config(ge.payloads[-1]).tool_config.function_calling_config
    assert str(fcc.mode).endswith("ANY") and fcc.allowed_function_names == ["add"]
    assert gemini_config(ge.payloads[-1]).tools[0].function_declarations[0].name == "add"


@pytest.mark.parametrize("choice", ["required", True, "any"])
def test_any_tool_means_the_same_to_every_provider(router, choice):
    oa, an, ge = openai(tool="add"), anthropic(tool="add"), gemini(tool="add")
    for model in (oa, an, ge):
        routed(router, model).bind_tools([add], tool_choice=choice).invoke(QUESTION)
    assert oa.payloads[-1]["tool_choice"] == "required"
    assert an.payloads[-1]["tool_choice"] == {"type": "any"}
    assert str(gemini_config(ge.payloads[-1]).tool_config.function_calling_config.mode).endswith("ANY")


def test_a_fallback_formats_the_tools_with_its_own_integration(router):
    probe = routed(router, anthropic(tool="add"), openai(tool="add")).bind_tools([add], tool_choice="add")
    first = probe.invoke(QUESTION).response_metadata["optiroute"]["model"]
    an = anthropic(tool="add", fail=TimeoutError("slow") if first.startswith("claude") else None)
    oa = openai(tool="add", fail=None if first.startswith("claude") else TimeoutError("slow"))
    msg = routed(router, an, oa).bind_tools([add], tool_choice="add").invoke(QUESTION)
    meta = msg.response_metadata["optiroute"]
    assert meta["model"] == first and meta["answered_by"] != first and meta["fell_back_from"] == {first: "TimeoutError"}
    assert an.payloads[-1]["tool_choice"] == {"type": "tool", "name": "add"}  # both were tried, each in its
    assert oa.payloads[-1]["tool_choice"] == {"type": "function", "function": {"name": "add"}}  # own format
    assert msg.tool_calls[0]["name"] == "add"


# ---------------------------------------------------------------- structured output
def test_json_schema_output_reaches_each_provider_in_its_own_format(router):
    oa, an, ge = openai(), anthropic(), gemini()
    for model in (oa, an, ge):
        assert routed(router, model).with_structured_output(Answer, method="json_schema").invoke(QUESTION) == \
            Answer(a=1, b=2)
    # OpenAI keeps the Pydantic class for its client's parse(), which sends it as a json_schema
    assert oa.payloads[-1]["response_format"] is Answer
    assert "response_format" not in an.payloads[-1]
    assert an.payloads[-1]["output_config"]["format"]["type"] == "json_schema"
    config = gemini_config(ge.payloads[-1])
    assert config.response_mime_type == "application/json" and config.response_json_schema["required"] == ["a", "b"]
    for model in (an, ge):  # no OpenAI-only keys leak to the others
        assert "ls_structured_output_format" not in str(model.payloads[-1])


def test_function_calling_output_forces_the_schema_tool_per_provider(router):
    oa, an, ge = openai(tool="Answer"), anthropic(tool="Answer"), gemini(tool="Answer")
    for model in (oa, an, ge):
        assert routed(router, model).with_structured_output(Answer).invoke(QUESTION) == Answer(a=1, b=2)
    assert oa.payloads[-1]["tool_choice"] == {"type": "function", "function": {"name": "Answer"}}
    assert an.payloads[-1]["tool_choice"] == {"type": "tool", "name": "Answer"}
    fcc = gemini_config(ge.payloads[-1]).tool_config.function_calling_config
    assert fcc.allowed_function_names == ["Answer"]


def test_json_mode_output_per_provider(router):
    oa, an = openai(), anthropic()
    for model in (oa, an):
        out = routed(router, model).with_structured_output(Answer, method="json_mode", include_raw=True).invoke(
            QUESTION)
        assert out["parsed"] == Answer(a=1, b=2) and out["parsing_error"] is None
    assert oa.payloads[-1]["response_format"] == {"type": "json_object"}
    assert "response_format" not in an.payloads[-1]


def test_json_mode_without_a_schema(router):
    oa = openai()
    assert routed(router, oa).with_structured_output(None, method="json_mode").invoke(QUESTION) == {"a": 1, "b": 2}
    assert oa.payloads[-1]["response_format"] == {"type": "json_object"}
    fake = ChatOptiRoute(models=[EchoChat(model_name="gpt-4o", reply='{"city": "Paris"}')], router=router)
    assert fake.with_structured_output(None, method="json_mode").invoke("x") == {"city": "Paris"}
    assert fake.models["gpt-4o"].calls[-1]["response_format"] == {"type": "json_object"}
    with pytest.raises(ValueError, match="schema"):
        fake.with_structured_output(None, method="json_schema")
