"""Card prices come from the price library (genai-prices) wherever it knows the model."""

import pytest

from optiroute.catalog.current import price_of_card
from optiroute.catalog.prices import library_price, library_price_ref
from optiroute.catalog.registry import ModelCard, Registry


def test_every_card_the_library_knows_is_priced_within_two_percent():
    reg = Registry.default()
    compared = 0
    for card in reg:
        lib = price_of_card(card)
        if lib is None:  # the library lacks it: a hand-written price, with its source
            assert card.sources.get("price") or "price" in card.imputed, card.name
            continue
        compared += 1
        assert card.input_usd_per_mtok == pytest.approx(lib.input_usd_per_mtok, rel=0.02), card.name
        assert card.output_usd_per_mtok == pytest.approx(lib.output_usd_per_mtok, rel=0.02), card.name
        assert "genai-prices" in card.sources["price"], card.name
    assert compared >= 35


@pytest.mark.parametrize("name", ["gpt-5", "gpt-5-mini", "gpt-4.1-mini", "claude-sonnet-4-5", "claude-haiku-4-5",
                                  "gemini-2.5-pro", "gemini-2.5-flash", "o3", "grok-4", "deepseek-r1"])
def test_todays_models_have_library_prices_and_a_facts_date(name):
    card = Registry.default().get(name)
    lib = library_price(name, card.provider)
    assert lib is not None
    assert (card.input_usd_per_mtok, card.output_usd_per_mtok) == (lib.input_usd_per_mtok, lib.output_usd_per_mtok)
    assert card.facts_date is not None


def test_long_context_tier_is_selected_by_the_calls_size():
    card = Registry.default().get("gemini-2.5-pro")
    assert card.price_tiers, "the library lists a >200k-token tier for gemini-2.5-pro"
    tier = card.price_tiers[0]
    small = card.cost_usd(1_000, 1_000)
    big = card.cost_usd(tier.min_input_tokens + 1, 1_000)
    assert small == pytest.approx((1_000 * card.input_usd_per_mtok + 1_000 * card.output_usd_per_mtok) / 1e6)
    assert big == pytest.approx(((tier.min_input_tokens + 1) * tier.input_usd_per_mtok
                                 + 1_000 * tier.output_usd_per_mtok) / 1e6)
    assert card.prices_at(10) == (card.input_usd_per_mtok, card.output_usd_per_mtok)


def test_library_lookups_are_provider_scoped():
    assert library_price("gpt-5-2025-08-07", "openai").model_id == "gpt-5"
    assert library_price("Mixtral-8x7B-Instruct-v0.1", "open-weights") is None  # a hosting estimate
    assert library_price("no-such-model-xyz") is None
    assert library_price_ref("openrouter", "meta-llama/llama-4-scout") is not None


def test_tiers_are_validated():
    from optiroute import RegistryError

    with pytest.raises(RegistryError):
        ModelCard(name="x", input_usd_per_mtok=1, output_usd_per_mtok=1,
                  price_tiers=[{"min_input_tokens": 10, "input_usd_per_mtok": -1, "output_usd_per_mtok": 1}])


def test_routing_prices_a_long_prompt_at_its_tier(default_router):
    card = default_router.registry.get("gemini-2.5-pro")
    tier = card.price_tiers[0]
    long_prompt = "word " * int(tier.min_input_tokens * 4 / 5 + 4000)  # ~4 characters a token, past the tier
    short = default_router.decide("Summarise this: " + "word " * 50, candidates=["gemini-2.5-pro", "gpt-5"])
    long = default_router.decide(long_prompt, candidates=["gemini-2.5-pro", "gpt-5"])
    s, lg = short.score_of("gemini-2.5-pro"), long.score_of("gemini-2.5-pro")
    tokens_in = long.profile.est_input_tokens
    assert tokens_in > tier.min_input_tokens
    # The long call is billed at the tier's rates: more than its input at the base rate could cost.
    assert lg.predicted_cost_usd >= tokens_in * tier.input_usd_per_mtok / 1e6
    assert s.predicted_cost_usd < tokens_in * card.input_usd_per_mtok / 1e6
