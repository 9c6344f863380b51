"""End to end on a real slice of MMLU-Pro outcomes (tests/fixtures/mmlu_slice): fit, route, save, load."""

import numpy as np

from optiroute import Router

MATH_MODEL, LAW_MODEL = "DeepSeek-Coder-V2", "jamba-1.5-large"


def test_fit_uses_only_the_train_split(slice_router, slice_test_prompts):
    assert len(slice_router.index) == 300
    assert not set(slice_test_prompts["prompt_id"]) & set(slice_router.index.prompt_ids)
    expected = [MATH_MODEL, LAW_MODEL, "gpt-4o-2024-05-13", "Meta-Llama-3_1-8B-Instruct"]
    assert sorted(slice_router.models) == sorted(expected)


def test_math_and_law_go_to_different_models_when_the_data_says_so(slice_router, slice_test_prompts):
    # In this slice's training data DeepSeek-Coder-V2 is far better at math (0.6 vs 0.3) and
    # jamba-1.5-large better at law; between just these two, quality-first must follow the category.
    picks = {}
    for task in ("math", "law"):
        texts = slice_test_prompts.loc[slice_test_prompts["task"] == task, "text"].tolist()
        batch = slice_router.decide_batch(texts, preferences="quality-first", candidates=[MATH_MODEL, LAW_MODEL])
        names = batch.model_names
        picks[task] = max(set(names), key=names.count)
        assert names.count(picks[task]) >= 0.7 * len(names), names
    assert picks == {"math": MATH_MODEL, "law": LAW_MODEL}


def test_cost_effective_picks_a_cheaper_model_than_quality_first(slice_router, slice_test_prompts):
    text = slice_test_prompts["text"].iloc[0]
    q = slice_router.decide(text, preferences="quality-first")
    c = slice_router.decide(text, preferences="cost-effective")
    assert c.model != q.model
    assert c.chosen.predicted_cost_usd < q.chosen.predicted_cost_usd
    assert q.chosen.predicted_quality >= c.chosen.predicted_quality


def test_predict_quality_matrix(slice_router, slice_test_prompts):
    texts = slice_test_prompts["text"].tolist()
    q = slice_router.predict_quality(texts)
    assert q.shape == (len(texts), len(slice_router.models))
    assert ((q >= 0) & (q <= 1)).all()
    math_rows = (slice_test_prompts["task"] == "math").to_numpy()
    col = slice_router.models.index(MATH_MODEL)
    law = slice_router.models.index(LAW_MODEL)
    assert (q[math_rows, col] - q[math_rows, law]).mean() > 0.1


def test_save_load_round_trips_to_identical_decisions(slice_router, slice_test_prompts, tmp_path):
    texts = slice_test_prompts["text"].tolist()
    slice_router.save(tmp_path / "r")
    back = Router.load(tmp_path / "r")
    for prefs in ("quality-first", "balanced", "cost-effective"):
        a = slice_router.decide_batch(texts, preferences=prefs)
        b = back.decide_batch(texts, preferences=prefs)
        assert a.model_names == b.model_names
        np.testing.assert_allclose(a.parts[0].total, b.parts[0].total, atol=1e-3)
    one_a, one_b = slice_router.decide(texts[0]), back.decide(texts[0])
    assert (one_a.model, one_a.fallbacks) == (one_b.model, one_b.fallbacks)
    assert one_a.reason == one_b.reason


def test_decision_explains_itself(slice_router, slice_test_prompts):
    d = slice_router.decide(slice_test_prompts["text"].iloc[0], preferences="balanced")
    assert d.model == d.scores[0].model and d.runner_up == d.fallbacks[0]
    assert d.neighbours and all(n.prompt_id in slice_router.index.prompt_ids for n in d.neighbours)
    assert d.model in d.reason and d.runner_up in d.reason
    assert set(d.chosen.sub_scores) >= {"accuracy", "cost"}
    assert 0 <= d.confidence <= 1 and len(d.decision_id) == 32
    assert d.summary()["model"] == d.model


def test_feedback_changes_later_routing(slice_router, slice_test_prompts):
    router = Router(registry=slice_router.registry, index=slice_router.index, embedder=slice_router.embedder,
                    models=slice_router.models)
    text = slice_test_prompts.loc[slice_test_prompts["task"] == "math", "text"].iloc[0]
    first = router.decide(text, preferences="quality-first")
    for _ in range(40):
        d = router.decide(text, preferences="quality-first")
        if d.model != first.model:
            break
        router.record_feedback(d.decision_id, 0.0)  # thumbs down, again and again
    assert d.model != first.model
    assert d.score_of(first.model).predicted_quality < first.chosen.predicted_quality


def test_observed_latency_changes_latency_first_routing():
    router = Router.default()
    cands = ["gpt-4o-mini", "claude-3-5-haiku"]
    text = "Summarise the plot of Hamlet in two sentences."
    first = router.decide(text, preferences="latency-first", candidates=cands).model
    for _ in range(10):  # the winner turns out 20x slower than its card says
        est = router.registry.get(first).latency_s(256)
        router.record_observation(None, model=first, latency_s=20 * est, output_tokens=256)
    assert router.latency_ratio(first) > 5
    assert router.decide(text, preferences="latency-first", candidates=cands).model != first
