"""What a Python user sees: decisions that print as one readable line, progress logged on the first
decision's load (and ``warm_up`` to do it early), and latency estimates with a measured basis."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from optiroute import Router
from optiroute.catalog.registry import ModelCard
from optiroute.routing.estimates import answer_tokens, verbosity_reach

CANDIDATES = ["gpt-4o", "gpt-4o-mini", "claude-3-5-haiku", "llama-3.1-8b-instruct"]


@pytest.fixture(scope="module")
def router() -> Router:
    return Router.default()


def test_a_decision_prints_as_one_line_with_model_runner_up_and_reason(router: Router) -> None:
    d = router.decide("Write a limerick about a cat.", candidates=CANDIDATES)
    text = repr(d)
    assert "\n" not in text and text == str(d)
    assert text.startswith(f"RoutingDecision(model={d.model!r}, runner_up={d.runner_up!r}, task=")
    assert repr(d.reason) in text and "scores=" not in text and len(text) < 600


def test_a_batch_prints_its_size_and_what_was_chosen(router: Router) -> None:
    batch = router.decide_batch(["What is 17 * 23?", "Write a limerick about a cat.", "Fix: SELEC * FROM t"],
                                candidates=CANDIDATES)
    text = repr(batch)
    assert text.startswith("BatchDecisions(3 prompts; chosen {") and "object at 0x" not in text
    for name in set(batch.model_names):
        assert repr(name) in text
    assert sum(int(n) for n in __import__("re").findall(r": (\d+)", text)) == 3
    budgeted = router.decide_batch(["What is 17 * 23?", "Write a limerick about a cat."], budget_usd=1.0,
                                   candidates=CANDIDATES)
    assert repr(budgeted).startswith("BudgetedBatch(2 prompts; chosen {")


def test_the_first_decision_logs_its_load_and_warm_up_does_it_ahead(caplog: pytest.LogCaptureFixture) -> None:
    fresh = Router.default()
    with caplog.at_level(logging.INFO, logger="optiroute"):
        assert fresh.warm_up() is fresh
    said = [r.getMessage() for r in caplog.records if r.name.startswith("optiroute")]
    assert any("first decision loads" in m and "warm_up" in m for m in said)
    assert any(m.startswith("OptiRoute: router ready (first decision took ") for m in said)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="optiroute"):
        fresh.decide("Write a haiku about autumn", candidates=CANDIDATES)
        fresh.warm_up()
    assert not [r for r in caplog.records if r.name.startswith("optiroute.router")]  # loaded once, said once
    assert fresh.store_status() is not None and len(fresh.decide_batch(["hi"])) == 1


def test_a_haiku_is_not_priced_at_gpt_4o_s_mmlu_pro_chain_of_thought_length(router: Router) -> None:
    d = router.decide("Write a haiku about autumn", candidates=CANDIDATES)
    gpt4o = next(s for s in d.scores if s.model == "gpt-4o")
    card = router.registry.resolve("gpt-4o")
    assert card.verbosity > 3.5  # measured on MMLU-Pro's chain-of-thought answers
    p = d.profile.task_probs
    reach = p.get("math", 0) + p.get("knowledge", 0)
    expected = card.ttft_s + d.profile.est_output_tokens * card.verbosity ** reach / card.tokens_per_s
    assert gpt4o.predicted_latency_s == pytest.approx(expected, rel=0.02)
    assert gpt4o.predicted_latency_s < 10.0  # was 31.6 s with the full MMLU-Pro verbosity
    # An MMLU-Pro style question keeps (nearly) the whole measured verbosity.
    q = router.decide("Which of the following is a characteristic of a ring? (A) commutative multiplication "
                      "(B) additive identity (C) multiplicative inverses (D) none of these", candidates=CANDIDATES)
    share = q.profile.task_probs.get("math", 0) + q.profile.task_probs.get("knowledge", 0)
    assert share > 0.5
    g = next(s for s in q.scores if s.model == "gpt-4o")
    assert g.predicted_latency_s == pytest.approx(
        card.ttft_s + q.profile.est_output_tokens * card.verbosity ** share / card.tokens_per_s, rel=0.02)


def test_verbosity_measured_on_the_callers_own_data_applies_to_every_task() -> None:
    base = {"input_usd_per_mtok": 1.0, "output_usd_per_mtok": 2.0, "verbosity": 4.0}
    bundled = ModelCard(name="a", **base, sources={"verbosity": "MMLU-Pro train split (...)"})
    fitted = ModelCard(name="b", **base, sources={"verbosity": "Router.fit: answer lengths in the fit data"})
    tasks = ["math", "coding", "reasoning", "knowledge", "writing", "extraction", "chat"]
    probs = np.array([[0, 0, 0, 0, 1, 0, 0], [0.5, 0, 0, 0.5, 0, 0, 0], [0.25, 0, 0.75, 0, 0, 0, 0]], dtype=np.float32)
    reach = verbosity_reach([bundled, fitted], probs, tasks)
    assert reach[:, 0].tolist() == pytest.approx([0.0, 1.0, 0.25]) and reach[:, 1].tolist() == [1.0, 1.0, 1.0]
    tokens = answer_tokens(np.array([500.0, 80.0, 250.0]), [bundled, fitted], probs, tasks)
    assert tokens[:, 0].tolist() == pytest.approx([500.0, 320.0, 250.0 * 4 ** 0.25])
    assert tokens[:, 1].tolist() == pytest.approx([2000.0, 320.0, 1000.0])
