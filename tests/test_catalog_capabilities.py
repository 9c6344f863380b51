"""Capabilities from the host framework: a LangChain model's profile and a LlamaIndex LLM's metadata
fill the candidate's card (context window, tool calling, structured output)."""

import warnings

import pytest
from llama_index.core.base.llms.types import LLMMetadata

from langchain_optiroute import ChatOptiRoute
from optiroute import Router
from optiroute.integration.capabilities import capabilities_of
from tests.support.lc_fakes import EchoChat


class _LI:
    """Duck-types a LlamaIndex LLM: only ``metadata`` is read."""

    def __init__(self, **meta):
        self.metadata = LLMMetadata(**meta)


def test_a_langchain_profile_states_window_tools_and_json():
    chat = EchoChat(model_name="gpt-4o-mini", profile={"max_input_tokens": 100_000, "max_output_tokens": 16_000,
                                                       "tool_calling": False, "structured_output": True,
                                                       "image_inputs": True})
    caps, source = capabilities_of(chat)
    assert caps == {"context_window": 116_000, "supports_tools": False, "supports_json": True,
                    "supports_vision": True}
    assert "LangChain model profile" in source


def test_llama_index_metadata_counts_only_what_is_not_a_default():
    assert capabilities_of(_LI()) is None  # 3900 tokens and no function calling are LlamaIndex's defaults
    caps, source = capabilities_of(_LI(context_window=32_000, is_function_calling_model=True))
    assert caps == {"context_window": 32_000, "supports_tools": True} and "LlamaIndex" in source
    assert capabilities_of(object()) is None


def test_the_adapter_puts_a_candidates_profile_on_its_card():
    router = Router.default()
    before = router.registry.get("gpt-4o-mini")
    assert before.supports_tools
    chat = ChatOptiRoute(models=[EchoChat(model_name="gpt-4o-mini", profile={"max_input_tokens": 50_000,
                                                                            "tool_calling": False}),
                                 EchoChat(model_name="gpt-5")], router=router)
    chat.invoke("Say hello.")
    card = router.registry.get("gpt-4o-mini")
    assert card.context_window == 50_000 and card.supports_tools is False
    assert "LangChain model profile" in card.sources["context_window"]
    assert "gpt-4o-mini" not in {s.model for s in router.decide(
        "hi", candidates=["gpt-4o-mini", "gpt-5"], constraints={"needs_tools": True}).scores if s.excluded is None}


def test_an_unknown_models_prior_card_takes_its_profile_too():
    router = Router.default()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        router.registry.resolve("my-private-model")
        assert router.registry.set_capabilities("my-private-model", source="test profile", context_window=9_000)
        card = router.registry.resolve("my-private-model")
    assert card.prior and card.context_window == 9_000 and card.sources["context_window"] == "test profile"


def test_set_capabilities_takes_only_capability_fields():
    from optiroute import RegistryError

    with pytest.raises(RegistryError, match="set_capabilities takes"):
        Router.default().registry.set_capabilities("gpt-5", source="x", input_usd_per_mtok=0.0)
