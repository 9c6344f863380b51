"""LangChain's official standard unit suite for ChatOptiRoute (fake candidates; no network)."""

from typing import Any

from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_optiroute import ChatOptiRoute
from tests.support.lc_fakes import EchoChat


class TestChatOptiRouteStandardUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatOptiRoute]:
        return ChatOptiRoute

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"models": [EchoChat(model_name="gpt-4o"), EchoChat(model_name="gpt-4o-mini")]}

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True
