"""Model names as users write them, and the caller's own names back from every entry point."""

import warnings

import pandas as pd
import pytest

from optiroute import Router, UnknownModelWarning
from optiroute.catalog.names import spellings
from optiroute.catalog.registry import Registry
from optiroute.errors import ModelNameWarning

SLICE = __import__("pathlib").Path(__file__).parent / "fixtures" / "mmlu_slice"
TODAY = ["gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3", "o4-mini",
         "claude-opus-4-1", "claude-opus-4", "claude-sonnet-4", "claude-sonnet-4-5", "claude-haiku-4-5",
         "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-3-pro-preview", "grok-4",
         "grok-3", "grok-3-mini", "deepseek-v3.1", "deepseek-r1", "qwen3-235b-a22b-instruct-2507", "qwen3-32b",
         "llama-3.3-70b-instruct", "llama-4-maverick", "llama-4-scout", "mistral-medium-3", "mistral-small-3.2"]


@pytest.fixture(scope="module")
def reg():
    return Registry.default()


@pytest.mark.parametrize("name, card", [
    ("gpt-5-2025-08-07", "gpt-5"),
    ("openai/gpt-5", "gpt-5"),
    ("openrouter/openai/gpt-5-mini", "gpt-5-mini"),
    ("azure/gpt-4.1-mini", "gpt-4.1-mini"),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("anthropic/claude-sonnet-4.5", "claude-sonnet-4-5"),
    ("anthropic/claude-sonnet-4.5:thinking", "claude-sonnet-4-5"),
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
    ("anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"),
    ("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-opus-4-1-20250805-v1:0", "claude-opus-4-1"),
    ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
    ("models/gemini-2.5-pro", "gemini-2.5-pro"),
    ("publishers/google/models/gemini-2.5-flash", "gemini-2.5-flash"),
    ("gemini/gemini-2.5-flash", "gemini-2.5-flash"),
    ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
    ("x-ai/grok-4", "grok-4"),
    ("grok-4-0709", "grok-4"),
    ("deepseek-reasoner", "deepseek-r1"),
    ("meta-llama/Llama-3.3-70B-Instruct", "Llama-3.3-70B-Instruct"),
    ("llama3.3:70b", "Llama-3.3-70B-Instruct"),
    ("qwen/qwen3-32b", "qwen3-32b"),
])
def test_names_as_users_write_them_resolve_exactly(reg, name, card):
    found = reg.match(name)
    assert found is not None and found.card.name == card and found.how == "exact" and found.note is None


@pytest.mark.parametrize("name", TODAY)
def test_todays_models_resolve_without_a_warning(reg, name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        card = reg.resolve(name)
    assert not card.prior


@pytest.mark.parametrize("name, family", [
    ("gpt-4o-2024-11-20", "gpt-4o-2024-05-13"),
    ("gemini-2.5-pro-preview-06-05", "gemini-2.5-pro"),
    ("chatgpt-4o-latest", "gpt-4o-2024-05-13"),
])
def test_a_snapshot_without_its_own_card_takes_its_family_card_with_a_note(name, family):
    reg = Registry.default()
    found = reg.match(name)
    assert found is not None and found.card.name == family and found.how == "family"
    assert name in found.note and family in found.note
    with pytest.warns(ModelNameWarning, match=family):
        assert reg.resolve(name).name == family
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg.resolve(name)  # once per name


def test_an_ambiguous_name_warns_and_says_which_card_it_took():
    reg = Registry.default()
    with pytest.warns(ModelNameWarning, match="ambiguous.*took 'claude-sonnet-4-5'"):
        assert reg.resolve("claude-sonnet").name == "claude-sonnet-4-5"


def test_spellings_mark_dropped_dates_as_family():
    keys = spellings("gpt-5-2025-08-07")
    assert keys[0].key == "gpt-5-2025-08-07" and keys[0].how == "exact"
    assert keys[-1].key == "gpt-5" and keys[-1].how == "family" and keys[-1].dropped == "-2025-08-07"
    assert [s.how for s in spellings("claude-3-5-haiku-latest")][-1] == "exact"  # an alias, not a snapshot


def test_unknown_model_prior_comes_from_its_family_and_price_and_says_how_to_do_better():
    reg = Registry.default()
    with pytest.warns(UnknownModelWarning, match="optiroute models add.*optiroute onboard"):
        card = reg.resolve("gpt-9-turbo-ultra")
    assert card.prior and card.provider == "openai" and card.quality_sd is not None and card.quality_sd >= 0.1
    peers = [c for c in reg if c.provider == "openai" and c.kind == "api" and not c.prior]
    accs = [c.metrics["accuracy"] for c in peers]
    assert min(accs) <= card.metrics["accuracy"] <= max(accs)  # inside the known range, never above it
    assert set(card.unknown) >= {"helpfulness", "honesty", "creativity"}  # no made-up dimension
    # A name the price library knows takes its list price.
    with pytest.warns(UnknownModelWarning):
        priced = reg.resolve("gpt-5-pro")
    assert (priced.input_usd_per_mtok, priced.output_usd_per_mtok) == (15.0, 120.0)
    assert "genai-prices" in priced.sources["price"]


# ------------------------------------------------------------------------------------ round trip
NAMES = ["gpt-5-2025-08-07", "anthropic/claude-sonnet-4.5", "models/gemini-2.5-flash", "gpt-4o-2024-11-20"]


def test_decide_gives_back_the_names_it_was_given(default_router):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = default_router.decide("Write a Python function that merges two sorted linked lists.",
                                  preferences="quality-first", candidates=NAMES)
    assert d.model in NAMES and set(d.fallbacks) <= set(NAMES)
    assert {s.model for s in d.scores} == set(NAMES)
    assert {s.card for s in d.scores} == {"gpt-5", "claude-sonnet-4-5", "gemini-2.5-flash", "gpt-4o-2024-05-13"}
    assert d.card == d.chosen.card and d.summary()["model"] == d.model and d.summary()["card"] == d.card
    # The snapshot without its own card is routed on its family card, and the decision says so.
    assert any("gpt-4o-2024-11-20" in w for w in d.warnings)


def test_two_spellings_of_one_card_route_as_one_under_the_first_name(default_router):
    d = default_router.decide("hello there", candidates=["gpt-4o", "gpt-4o-2024-05-13", "gpt-5"])
    assert {s.model for s in d.scores} == {"gpt-4o", "gpt-5"}


def test_decide_batch_gives_back_the_names_it_was_given(default_router):
    names = ["openai/gpt-5-mini", "claude-haiku-4-5-20251001"]
    res = default_router.decide_batch(["What is 2+2?", "Summarise the causes of World War I."],
                                      preferences="cost-effective", candidates=names)
    assert set(res.model_names) <= set(names)
    assert all(d.model in names and {s.model for s in d.scores} == set(names) for d in res)


@pytest.fixture(scope="module")
def renamed(tmp_path_factory):
    """The slice with its models named as a user's data would name them (aliases and a snapshot)."""
    d = tmp_path_factory.mktemp("renamed")
    rename = {"gpt-4o-2024-05-13": "gpt-4o", "Meta-Llama-3_1-8B-Instruct": "llama-3.1-8b-instruct",
              "DeepSeek-Coder-V2": "deepseek-coder", "jamba-1.5-large": "ai21/jamba-1-5-large"}
    p = pd.read_csv(SLICE / "prompts.csv.gz", dtype={"prompt_id": str})
    p = pd.concat([p[p["split"] == "train"].groupby("task").head(40), p[p["split"] == "test"].head(20)])
    o = pd.read_csv(SLICE / "outcomes.csv.gz", dtype={"prompt_id": str})
    o = o[o["prompt_id"].isin(set(p["prompt_id"]))].replace({"model": rename})
    pr = pd.read_csv(SLICE / "prices.csv").replace({"model": rename})
    p.to_csv(d / "prompts.csv.gz", index=False)
    o.to_csv(d / "outcomes.csv.gz", index=False)
    pr.to_csv(d / "prices.csv", index=False)
    return d, list(rename.values())


def test_fit_keeps_the_datas_names(renamed):
    d, names = renamed
    router = Router.fit(d / "prompts.csv.gz", d / "outcomes.csv.gz", d / "prices.csv")
    assert sorted(router.models) == sorted(names)
    dec = router.decide("Solve for x: 3x + 5 = 20.")
    assert dec.model in names and {s.model for s in dec.scores} == set(names)
    assert router.registry.get("gpt-4o").name == "gpt-4o-2024-05-13"  # the card, reachable by the data's name


def test_fit_gives_a_snapshot_the_registry_lacks_its_own_card(renamed, tmp_path):
    d, _ = renamed
    o = pd.read_csv(d / "outcomes.csv.gz", dtype={"prompt_id": str}).replace({"model": {"gpt-4o": "gpt-4o-2024-11-20"}})
    o.to_csv(tmp_path / "outcomes.csv.gz", index=False)
    pr = pd.read_csv(d / "prices.csv").replace({"model": {"gpt-4o": "gpt-4o-2024-11-20"}})
    pr.to_csv(tmp_path / "prices.csv", index=False)
    router = Router.fit(d / "prompts.csv.gz", tmp_path / "outcomes.csv.gz", tmp_path / "prices.csv")
    assert "gpt-4o-2024-11-20" in router.models
    assert router.registry.match("gpt-4o-2024-11-20").how == "exact"  # its own card, from its outcomes


def test_bench_reports_the_datas_names(renamed, tmp_path):
    from optiroute.bench.evaluate import run_bench

    d, names = renamed
    result, decisions, _ = run_bench(d, cache_dir=tmp_path, overhead_n=0, compare=())
    assert sorted(result.models) == sorted(names)


def test_an_unknown_candidate_is_ranked_inside_the_known_range_and_the_decision_shows_its_uncertainty(
        default_router):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = default_router.decide("Prove that there are infinitely many primes.", preferences="quality-first",
                                  candidates=["gpt-5", "gpt-5-nano", "gpt-99-experimental"])
    note = next(w for w in d.warnings if "gpt-99-experimental" in w)
    assert "±" in note and "optiroute models add" in note and "optiroute onboard" in note
    q = {s.model: s.predicted_quality for s in d.scores}
    assert q["gpt-99-experimental"] < q["gpt-5"]  # a prior never outranks the best known peer
