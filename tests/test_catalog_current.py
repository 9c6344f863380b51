"""Today's models: sourced figures, cold-start accuracy, and routing that tells flagships from small models."""

import json
import re
import warnings

import pytest

from optiroute.catalog.cold_start import gpqa_level_map
from optiroute.catalog.current import CURRENT, current_cards, elo_shift, with_older_facts
from optiroute.catalog.registry import Registry

SEVEN = ["gpt-5", "gpt-5-mini", "gpt-4.1-mini", "claude-sonnet-4-5", "claude-haiku-4-5", "gemini-2.5-pro",
         "gemini-2.5-flash"]
FLAGSHIPS = {"gpt-5", "claude-sonnet-4-5", "gemini-2.5-pro"}
PROMPTS = {
    "coding": "Write a Python function that merges two sorted linked lists.",
    "math": "Prove that the sum of the first n odd numbers equals n squared, then compute the sum for n=37.",
    "legal": "Under US contract law, is a promise to make a gift enforceable if the promisee relied on it to "
             "their detriment? Explain promissory estoppel.",
    "creative": "Write a short poem about autumn rain on a city street.",
}


@pytest.mark.parametrize("kind", sorted(PROMPTS))
def test_quality_first_picks_a_flagship_and_cost_effective_a_strictly_cheaper_model(default_router, kind):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of the seven is unknown
        best = default_router.decide(PROMPTS[kind], preferences="quality-first", candidates=SEVEN)
        thrifty = default_router.decide(PROMPTS[kind], preferences="cost-effective", candidates=SEVEN)
    assert best.model in FLAGSHIPS, (kind, best.model)
    assert thrifty.chosen.predicted_cost_usd < best.chosen.predicted_cost_usd, (kind, thrifty.model)


def test_every_figure_has_a_pinned_source():
    data = json.loads(CURRENT.read_text())
    pinned = re.compile(r"[\w.-]+/[\w.-]+@[0-9a-f]{8}:\S+")
    for row in data["cards"] + data["older_card_facts"]:
        for key in ("arena_elo_raw", "gpqa", "mmlu_pro", "aider_polyglot"):
            if row.get(key) is not None:
                src = row[f"{key.removesuffix('_raw')}_src"]
                assert pinned.search(src), (row["name"], key, src)


def test_a_model_with_no_published_figure_has_unknown_accuracy_not_a_made_up_one():
    card = Registry.default().get("gemini-3-pro-preview")
    assert "accuracy" in card.unknown and not card.accuracy_by_domain


def test_cards_record_where_their_accuracy_came_from():
    reg = Registry.default()
    gpt5 = reg.get("gpt-5")
    assert "GPQA" in gpt5.sources["accuracy"] and gpt5.facts["gpqa"] == pytest.approx(0.857)
    assert "accuracy" in gpt5.imputed and {"helpfulness", "creativity"} <= set(gpt5.unknown)
    ds = reg.get("deepseek-r1")
    assert "MMLU-Pro" in ds.sources["accuracy"]  # its own published MMLU-Pro sets its level
    assert ds.metrics["accuracy"] == pytest.approx(ds.facts["mmlu_pro"], abs=0.01)


def test_the_gpqa_level_map_is_fitted_on_published_pairs_and_increasing():
    reg = with_older_facts(Registry.default())
    a, b, n = gpqa_level_map(list(reg))
    assert n >= 6 and b > 0


def test_arena_scores_are_re_anchored_on_models_present_in_both_leaderboards():
    reg = with_older_facts(Registry.default())
    shift, anchors = elo_shift(reg)
    assert len(anchors) >= 5 and 0 < shift < 60
    cards = {c.name: c for c in current_cards(reg, today="2025-01-01")}
    assert cards["gemini-2.5-pro"].facts["arena_elo"] == pytest.approx(1470 - shift)
    assert cards["gpt-5"].facts_date == "2025-01-01"
