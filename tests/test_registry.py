import json
import warnings

import pytest

from optiroute import ModelNotFoundError, RegistryError, UnknownModelWarning
from optiroute.catalog.registry import METRICS, ModelCard, Registry, normalise_name


@pytest.fixture()
def reg():
    return Registry.default()


@pytest.mark.parametrize(
    "name, card",
    [
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o", "gpt-4o-2024-05-13"),
        ("openai/gpt-4o-2024-08-06", "gpt-4o-2024-05-13"),
        ("meta-llama/Llama-3.1-8B-Instruct", "Meta-Llama-3_1-8B-Instruct"),
        ("meta-llama/Meta-Llama-3.1-70B-Instruct", "Meta-Llama-3_1-70B-Instruct"),
        ("llama3.1:8b", "Meta-Llama-3_1-8B-Instruct"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("anthropic/claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("gemini-1.5-pro", "gemini-1.5-pro-002"),
        ("models/gemini-1.5-flash", "gemini-1.5-flash-002"),
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", "Mixtral-8x7B-Instruct-v0.1"),
        ("mixtral-8x7b-instruct", "Mixtral-8x7B-Instruct-v0.1"),
        ("smollm2", "SmolLM2-135M-Instruct"),
        ("GEMMA3-270M", "gemma-3-270m"),
    ],
)
def test_common_names_resolve(reg, name, card):
    assert reg.get(name).name == card
    assert name in reg


def test_unknown_model_gets_a_neutral_prior_and_one_warning(reg):
    with pytest.warns(UnknownModelWarning, match="my-finetune"):
        a = reg.resolve("my-finetune")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = reg.resolve("my-finetune")  # warns once per name
    assert a is b and a.prior and set(a.metrics) == set(METRICS)
    with pytest.raises(ModelNotFoundError, match="add one"):
        reg.get("my-finetune")


def test_every_bundled_card_is_complete_and_sourced(reg):
    assert len(reg) >= 50
    for card in reg:
        assert set(card.metrics) == set(METRICS)
        assert all(0 <= v <= 1 for v in card.metrics.values())
        for m in METRICS:  # every figure is sourced, derived (imputed) or marked unknown: none is made up
            assert m in card.imputed or m in card.sources or m in card.unknown, (card.name, m)
        assert "price" in card.sources or "price" in card.imputed, card.name
        assert card.kind in ("api", "chat", "base", "local")


def test_add_update_remove_and_collisions(reg):
    card = ModelCard(name="acme-1", aliases=["acme"], input_usd_per_mtok=1, output_usd_per_mtok=2)
    reg.add(card)
    assert reg.get("ACME").name == "acme-1"
    with pytest.raises(RegistryError, match="already belongs"):
        reg.add(ModelCard(name="other", aliases=["acme"], input_usd_per_mtok=1, output_usd_per_mtok=1))
    new = reg.update("acme", input_usd_per_mtok=3.0)
    assert reg.get("acme-1").input_usd_per_mtok == 3.0 and new.output_usd_per_mtok == 2
    reg.remove("acme")
    assert "acme-1" not in reg and "acme" not in reg
    with pytest.raises(ModelNotFoundError):
        reg.remove("acme-1")
    assert "acme-1" not in Registry.default()  # edits never leak into the shared default


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_file_round_trip(reg, tmp_path, suffix):
    path = tmp_path / f"models{suffix}"
    reg.to_file(path)
    back = Registry.from_file(path)
    assert back.names == reg.names
    assert back.get("gpt-4o-mini") == reg.get("gpt-4o-mini")


def test_malformed_files_and_cards(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RegistryError, match="bad.json"):
        Registry.from_file(bad)
    bad.write_text(json.dumps({"cards": [{"name": "x", "input_usd_per_mtok": -1, "output_usd_per_mtok": 1}]}))
    with pytest.raises(RegistryError, match="input_usd_per_mtok"):
        Registry.from_file(bad)
    with pytest.raises(RegistryError, match="does not exist"):
        Registry.from_file(tmp_path / "none.yaml")
    with pytest.raises(RegistryError, match="0..1"):
        ModelCard(name="x", input_usd_per_mtok=1, output_usd_per_mtok=1, metrics={"accuracy": 1.5})


def test_cost_and_latency_arithmetic():
    c = ModelCard(name="m", input_usd_per_mtok=2.0, output_usd_per_mtok=10.0, ttft_s=0.5, tokens_per_s=100)
    assert c.cost_usd(1000, 500) == pytest.approx(0.002 + 0.005)
    assert c.latency_s(200) == pytest.approx(2.5)
    assert c.unknown == list(METRICS) and c.imputed == []  # nothing given: marked unknown, not imputed


def test_normalise_name():
    assert normalise_name("OpenAI/GPT-4o_mini") == "gpt-4o-mini"
    assert normalise_name("llama3.1:8b") == "llama3-1-8b"
