"""The ``task`` predictor: the data's task labels learned from the prompt, a per-task table, kNN.

Uses the synthetic two-cluster data of ``test_predictors`` (the cluster letter is the task label)
and hand-computed cases for the table and the neighbour mean.
"""

from __future__ import annotations

import numpy as np
import pytest

from optiroute import Router
from optiroute.errors import InvalidInputError
from optiroute.quality.base import TrainData
from optiroute.quality.index import OutcomeIndex
from optiroute.quality.task import KNN_WEIGHTS, TaskPredictor, knn_mean, task_table

from .test_predictors import FakeEmbedder, _card, _data, _frames


def test_task_table_credits_a_model_only_with_its_edge_on_the_prompts_it_answered() -> None:
    scores = np.array([[1, 0], [1, np.nan], [0, 1], [0, 1]], dtype=np.float32)
    labels = np.array([0, 0, 1, 1])
    t = task_table(labels, 2, scores, n0=1.0)
    # Prompt levels 0.5, 1, 0.5, 0.5 -> label levels 0.75 and 0.5. Model 0's edge: +0.5, 0, -0.5,
    # -0.5 (mean -0.125); model 1's: -0.5 on prompt 0 only in label 0 (it skipped the easy prompt 1),
    # +0.5, +0.5 in label 1 (mean 1/6).
    np.testing.assert_allclose(t, [[0.75 + 0.375 / 3, 0.75 + (-0.5 + 1 / 6) / 2],
                                   [0.5 - 1.125 / 3, 0.5 + (1 + 1 / 6) / 3]], atol=1e-6)
    # A model that answered everything gets its plain per-label mean when n0 = 0.
    full = np.array([[1, 0], [1, 1], [0, 1], [1, 1]], dtype=np.float32)
    np.testing.assert_allclose(task_table(labels, 2, full, n0=0.0), [[1.0, 0.5], [0.5, 1.0]], atol=1e-6)


def test_knn_mean_weights_by_similarity_and_skips_missing_cells() -> None:
    scores = np.array([[1.0, np.nan], [0.0, np.nan]], dtype=np.float32)
    sims = np.array([[1.0, 1.0 - 0.1 * np.log(3)]], dtype=np.float32)  # weights 1 and 1/3
    out, cover = knn_mean(sims, np.array([[0, 1]]), scores, tau=0.1,
                          fallback=np.array([[0.2, 0.7]], dtype=np.float32))
    np.testing.assert_allclose(out, [[0.75, 0.7]], atol=1e-5)  # (1*1 + 0*1/3) / (4/3); no outcome -> fallback
    np.testing.assert_allclose(cover, [[1.0, 0.0]], atol=1e-6)
    # One of two neighbours (the nearer, weight 1 of 4/3) knows the model: coverage 0.75.
    half = np.array([[1.0, np.nan], [np.nan, np.nan]], dtype=np.float32)
    out, cover = knn_mean(sims, np.array([[0, 1]]), half, tau=0.1, fallback=np.zeros((1, 2), np.float32))
    np.testing.assert_allclose(cover, [[0.75, 0.0]], atol=1e-5)


def test_labels_come_from_the_store_and_blend_weight_from_a_train_holdout() -> None:
    texts, scores = _data(400)
    emb = FakeEmbedder().encode(texts)
    index = OutcomeIndex(emb, [str(i) for i in range(len(texts))], [t.split()[1] for t in texts],
                         ["alpha", "beta"], scores)
    pred = TaskPredictor.fit(TrainData(emb, scores, ["alpha", "beta"], index, seed=0))
    assert pred.labels == ["A", "B"]
    fit = pred.config["fit"]
    assert pred.knn_weight in KNN_WEIGHTS and fit["holdout_rows"] == 60
    assert pred.knn_weight == min(KNN_WEIGHTS, key=lambda w: fit["holdout_brier"][str(w)])
    assert fit["label_accuracy_holdout"] > 0.95
    new = FakeEmbedder().encode(["cluster A fresh", "cluster B fresh"])
    np.testing.assert_allclose(pred.label_proba(new).argmax(1), [0, 1])
    q, support = pred.predict_matrix(new, [_card("alpha", 1.0), _card("beta", 1.0)], ["other"] * 2,
                                     ["reasoning"] * 2, np.full(2, 0.5, dtype=np.float32))
    assert min(q[0, 0], q[1, 1]) > 0.75 and max(q[0, 1], q[1, 0]) < 0.25
    assert (support > 0).all()


def test_binary_labels_use_the_one_vector_classifier() -> None:
    texts, scores = _data(120)
    emb = FakeEmbedder().encode(texts)
    pred = TaskPredictor.fit(TrainData(emb, scores, ["alpha", "beta"], labels=[t.split()[1] for t in texts]))
    p = pred.label_proba(FakeEmbedder().encode(["cluster A x", "cluster B y"]))
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-6)
    assert p[0, 0] > 0.9 and p[1, 1] > 0.9


@pytest.mark.parametrize("labels", [None, ["same"] * 100, [""] * 100])
def test_without_two_labels_it_cannot_be_fitted_and_says_how_to_fix_it(labels) -> None:
    texts, scores = _data(100)
    data = TrainData(FakeEmbedder().encode(texts), scores, ["alpha", "beta"], labels=labels)
    assert TaskPredictor.unavailable(data) is not None
    with pytest.raises(InvalidInputError, match="task column"):
        TaskPredictor.fit(data)


def test_auto_skips_the_task_kind_when_the_data_has_no_labels() -> None:
    prompts, outcomes, prices = _frames(420, 0)
    prompts["task"] = ""
    router = Router.fit(prompts, outcomes, prices, embedder=FakeEmbedder(), predictor="auto")
    sel = router.predictor.selection
    assert "task" not in sel["validation_aiq"] and "distinct task label" in sel["skipped"]["task"]
    assert sel["chosen"] in {"knn", "routoo", "mlp"}


def test_a_fitted_task_router_round_trips(tmp_path) -> None:
    prompts, outcomes, prices = _frames(200, 0)
    router = Router.fit(prompts, outcomes, prices, embedder=FakeEmbedder(), predictor="task")
    texts = ["cluster A new", "cluster B new"]
    q = router.predict_quality(texts)
    router.save(tmp_path / "r")
    again = Router.load(tmp_path / "r", embedder=FakeEmbedder())
    assert again.predictor.kind == "task"
    np.testing.assert_allclose(again.predict_quality(texts), q, atol=1e-6)
    assert router.decide_batch(texts, preferences="quality-first").model_names == ["alpha", "beta"]


def test_a_model_known_on_few_prompts_leans_on_its_table_not_on_one_neighbour() -> None:
    texts, scores = _data(400)
    gamma = np.full((400, 1), np.nan, dtype=np.float32)
    gamma[:8:2, 0] = 1.0  # "onboarded" on four cluster-A prompts, all right
    gamma[1:8:2, 0] = 0.0  # and four cluster-B prompts, all wrong
    scores = np.hstack([scores, gamma])
    emb = FakeEmbedder().encode(texts)
    labels = [t.split()[1] for t in texts]
    pred = TaskPredictor.fit(TrainData(emb, scores, ["alpha", "beta", "gamma"], labels=labels))
    index = OutcomeIndex(emb, [str(i) for i in range(400)], labels, ["alpha", "beta", "gamma"], scores)
    pred.index = index
    new = FakeEmbedder().encode(["cluster A again"])
    ev = pred.neighbours(new, exact=True)
    table = pred.label_proba(new) @ pred.weights["table"]
    q = pred.learned_proba(ev, [0, 1, 2])
    # gamma: 4 of ~200 cluster-A neighbours know it, so the blend moves it by at most w * 4 %.
    assert abs(q[0, 2] - table[0, 2]) <= pred.knn_weight * 0.05 + 1e-6
