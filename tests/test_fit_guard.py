"""Never worse than not routing, observed outcomes over cards, and the stacked blend.

Synthetic data with known answers and a deterministic fake 384-d embedder (the cluster letter is
the text's second word), so nothing is downloaded and every expectation follows from the data.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optiroute import Router
from optiroute.catalog.registry import ModelCard, Registry
from optiroute.errors import CorruptArtifactError
from optiroute.quality.base import TrainData
from optiroute.quality.observed import observed_level, toward_observed
from optiroute.quality.stack import StackPredictor, blend_weights, fold_ids, shrink_weights
from optiroute.routing.guard import measure_guard

DIM = 384
_rng = np.random.default_rng(11)
CENTRES = {c: _rng.normal(size=DIM) for c in "AB"}


def _vec(text: str) -> np.ndarray:
    seed = int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)
    v = CENTRES[text.split()[1]] + 0.8 * np.random.default_rng(seed).normal(size=DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


class FakeEmbedder:
    dim, name = DIM, "fake-clusters"

    def encode(self, texts, *, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        return np.stack([_vec(t) for t in texts])


def _frames(n: int, p_right: dict[str, tuple[float, float]], costs: dict[str, float], seed: int = 0):
    """Prompts of two clusters; ``p_right[model] = (P(correct) on A, on B)``."""
    rng = np.random.default_rng(seed)
    texts = [f"cluster {'A' if i % 2 == 0 else 'B'} question {seed}-{i}" for i in range(n)]
    ids = [f"p{i}" for i in range(n)]
    prompts = pd.DataFrame({"prompt_id": ids, "split": "train", "task": [t.split()[1] for t in texts],
                            "text": texts})
    rows = []
    for i, t in enumerate(texts):
        for m, (pa, pb) in p_right.items():
            rows.append((ids[i], m, float(rng.random() < (pa if t.split()[1] == "A" else pb)), costs[m]))
    outcomes = pd.DataFrame(rows, columns=["prompt_id", "model", "score", "cost_usd"])
    outcomes["output_tokens"] = 10
    prices = pd.DataFrame({"model": list(costs), "input_usd_per_mtok": [c * 1000 for c in costs.values()],
                           "output_usd_per_mtok": [c * 1000 for c in costs.values()], "source": "test"})
    return prompts, outcomes, prices


def _registry(**accuracy: float) -> Registry:
    return Registry([ModelCard(name=m, input_usd_per_mtok=1.0, output_usd_per_mtok=1.0, metrics={"accuracy": a})
                     for m, a in accuracy.items()])


# ------------------------------------------------------------------------------------ the guard
def test_measure_guard_routes_only_where_routing_beats_the_best_single_model() -> None:
    rng = np.random.default_rng(0)
    n = 400
    is_a = np.arange(n) % 2 == 0
    # alpha is right on A, beta on B, both cost the same: routing on a perfect predictor wins big.
    scores = np.stack([is_a, ~is_a], axis=1).astype(np.float32)
    costs = np.full((n, 2), 0.01, dtype=np.float32)
    perfect = scores * 0.8 + 0.1
    g = measure_guard(perfect, scores, costs, costs, ["alpha", "beta"], n_folds=5)
    assert g.points and not any(p.use_single for p in g.points)
    assert all(p.gain > 0.4 for p in g.points)
    # The same data with a predictor that knows nothing: routing is a coin flip, never better than
    # either model alone, so every point goes to one model, and the reason says why.
    noise = rng.random((n, 2)).astype(np.float32)
    g = measure_guard(noise, scores, costs, costs, ["alpha", "beta"], n_folds=5)
    assert all(p.use_single for p in g.points)
    point = g.point_for({"accuracy": 0.7, "cost": 0.3})
    assert point is not None and point.single in ("alpha", "beta")
    assert "does not route here" in g.reason(point) and "5-fold" in g.reason(point)
    assert g.point_for({"cost": 1.0}) is None  # quality is not what cost-only callers ask for


def test_the_frontier_keeps_a_single_model_that_routing_jumps_over() -> None:
    """cheap (0.5, $1), mid (0.8, $2), dear (0.9, $10). Routing sends 90 % to dear and beats mid (the
    best single model that costs no more) at every weight, yet never spends mid's cost: its curve runs
    from cheap straight to $9.1 and passes under mid. The frontier check sends one point to mid."""
    n = 400
    i = np.arange(n)
    scores = np.stack([i % 2 == 0, i % 5 != 0, i % 10 != 0], axis=1).astype(np.float32)
    costs = np.tile(np.array([0.001, 0.002, 0.01], dtype=np.float32), (n, 1))
    quality = np.zeros((n, 3), dtype=np.float32)
    quality[:, 2] = 0.9
    quality[i % 10 == 0, 0] = 1.0
    quality[:, 0] += 0.05
    g = measure_guard(quality, scores, costs, costs, ["cheap", "mid", "dear"], n_folds=5,
                      cost_weights=(0.0, 0.3, 0.6, 0.95))
    assert all(p.gain > 3 * p.stderr for p in g.points)  # each point alone beats its single model
    sent = [p for p in g.points if p.use_single]
    assert [(p.cost_weight, p.single, p.frontier) for p in sent] == [(0.95, "mid", "mid")]
    assert "not better than mid at its cost" in g.reason(sent[0])
    assert [p.use_single for p in g.points[:3]] == [False, False, False]  # the rest still route


def test_a_gain_resting_on_three_prompts_does_not_replace_the_best_model() -> None:
    """Quality-first routing differs from the best model on 3 prompts of 100 and wins all 3: +0.03 at
    1.75 normal standard errors, which passed the per-point test (LLMRouter, 100 prompts: it lost on
    test). As the router's top point it stands in for the best model's vertex, whose small-sample test
    (t with 2 degrees of freedom) it does not pass: the point goes to the best model."""
    n = 100
    i = np.arange(n)
    best = (i % 3 != 0).astype(np.float32)  # 0.67 at $3
    other = (i % 3 == 0).astype(np.float32)  # right exactly where best is wrong, at $1
    scores = np.stack([best, other], axis=1)
    costs = np.tile(np.array([0.003, 0.001], dtype=np.float32), (n, 1))
    quality = np.zeros((n, 2), dtype=np.float32)
    quality[:, 0] = 0.9
    quality[[0, 3, 6], 1] = 1.0  # the predictor picks other on three prompts where best is wrong
    g = measure_guard(quality, scores, costs, costs, ["best", "other"], n_folds=5, cost_weights=(0.0,))
    p = g.points[0]
    assert p.gain == pytest.approx(0.03, abs=1e-6) and p.gain > 1.5 * p.stderr  # the per-point test passes
    assert p.use_single and p.single == "best" and p.frontier == "best"
    more = quality.copy()
    more[[9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42], 1] = 1.0  # 15 of 15 won: enough evidence
    again = measure_guard(more, scores, costs, costs, ["best", "other"], n_folds=5, cost_weights=(0.0,))
    assert not again.points[0].use_single


def test_a_guard_saved_before_the_frontier_check_loads_unchanged() -> None:
    from optiroute.routing.guard import RoutingGuard

    old = {"points": [{"cost_weight": 0.1, "routed_quality": 0.7, "routed_cost_usd": 0.01, "single": "alpha",
                       "single_quality": 0.72, "single_cost_usd": 0.008, "gain": -0.02, "stderr": 0.01,
                       "use_single": True}], "n_prompts": 100, "n_folds": 5, "z": 1.5}
    g = RoutingGuard.model_validate(old)
    assert g.points[0].frontier is None and "not better than alpha alone" in g.reason(g.points[0])


def test_the_guard_measures_on_predictions_nested_with_the_choice_of_predictor() -> None:
    """The guard's out-of-fold predictions on fold f come from the candidate chosen without fold f."""
    from optiroute.fit.selection import choose_predictor
    from optiroute.fit.training import outcome_matrices
    from optiroute.quality.index import OutcomeIndex

    prompts, outcomes, prices = _frames(120, {"alpha": (0.9, 0.2), "beta": (0.3, 0.8)}, {"alpha": 0.002, "beta": 0.01})
    texts = prompts["text"].tolist()
    emb = FakeEmbedder().encode(texts)
    models = ["alpha", "beta"]
    scores, costs = outcome_matrices(prompts["prompt_id"].tolist(), models, outcomes)
    index = OutcomeIndex(emb, prompts["prompt_id"].tolist(), prompts["task"].tolist(), models, scores, costs)
    cards = [ModelCard(name=m, input_usd_per_mtok=1, output_usd_per_mtok=1) for m in models]
    pred, cv = choose_predictor("auto", emb, scores, costs, models, index, cards, seed=0)
    per_fold = pred.selection["chosen_per_fold"]
    assert cv is not None and len(per_fold) == pred.selection["n_folds"] == int(cv.folds.max()) + 1
    assert set(per_fold) <= set(pred.selection["validation_aiq"])


def test_a_dominant_model_is_used_everywhere_and_the_decision_says_why(tmp_path: Path) -> None:
    """alpha is right 90 % of the time on both clusters and costs less than beta, which is right 50 %:
    routing can only lose to alpha alone, so the fitted guard sends every prompt to alpha."""
    prompts, outcomes, prices = _frames(160, {"alpha": (0.9, 0.9), "beta": (0.5, 0.5)},
                                        {"alpha": 0.001, "beta": 0.01})
    router = Router.fit(prompts, outcomes, prices, embedder=FakeEmbedder(), registry=_registry(alpha=0.5, beta=0.5))
    assert router.guard is not None and router.guard.n_prompts == 160
    assert all(p.single == "alpha" and p.use_single for p in router.guard.points)
    d = router.decide("cluster B something new", preferences="quality-first")
    assert d.model == "alpha" and "Sent to alpha" in d.reason and "cross-validation" in d.reason
    batch = router.decide_batch(["cluster A x", "cluster B y"], preferences={"accuracy": 0.6, "cost": 0.4})
    assert batch.model_names == ["alpha", "alpha"]
    # Saved with the router and read back (validated), it guards the same way.
    router.save(tmp_path / "r")
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["guard"]["n_prompts"] == 160
    again = Router.load(tmp_path / "r", embedder=FakeEmbedder())
    assert again.guard == router.guard
    assert again.decide("cluster A z", preferences="quality-first").model == "alpha"


def test_where_routing_wins_the_guard_lets_it_route() -> None:
    prompts, outcomes, prices = _frames(240, {"alpha": (0.95, 0.05), "beta": (0.05, 0.95)},
                                        {"alpha": 0.01, "beta": 0.01})
    router = Router.fit(prompts, outcomes, prices, embedder=FakeEmbedder(), registry=_registry(alpha=0.5, beta=0.5))
    assert router.guard is not None and not router.guard.points[0].use_single
    assert router.decide_batch(["cluster A new", "cluster B new"], preferences="quality-first").model_names == [
        "alpha", "beta"]


def test_a_tampered_guard_is_refused(tmp_path: Path) -> None:
    from optiroute.router.artifacts import seal

    prompts, outcomes, prices = _frames(60, {"alpha": (0.9, 0.9), "beta": (0.5, 0.5)}, {"alpha": 0.001, "beta": 0.01})
    router = Router.fit(prompts, outcomes, prices, embedder=FakeEmbedder(), registry=_registry(alpha=0.5, beta=0.5))
    router.save(tmp_path / "r")
    path = tmp_path / "r" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["guard"]["points"][0]["routed_quality"] = "high"
    path.write_text(json.dumps(seal(manifest)))
    with pytest.raises(CorruptArtifactError, match="guard"):
        Router.load(tmp_path / "r", embedder=FakeEmbedder())


# ------------------------------------------------------------------------ observed beats priors
def test_observed_outcomes_outweigh_a_card_with_tens_of_outcomes() -> None:
    """The cards say alpha 0.9, beta 0.3; 40 outcomes each say the opposite. The fitted router
    (kNN kind, which levels its prior on observed means) ranks by what it observed."""
    prompts, outcomes, prices = _frames(40, {"alpha": (0.3, 0.3), "beta": (0.85, 0.85)},
                                        {"alpha": 0.01, "beta": 0.01})
    router = Router.fit(prompts, outcomes, prices, embedder=FakeEmbedder(), registry=_registry(alpha=0.9, beta=0.3),
                        predictor="knn", guard=False)
    q = router.predict_quality(["cluster A new", "cluster B new"])
    cols = {m: j for j, m in enumerate(router.models)}
    assert (q[:, cols["beta"]] > q[:, cols["alpha"]] + 0.2).all()
    # Without the observed level (the bundled default's kNN), the card's ranking would win.
    from optiroute.quality.knn import QualityPredictor

    plain = Router(registry=router.registry, index=router.index, embedder=FakeEmbedder(),
                   predictor=QualityPredictor(router.index))
    q0 = plain.predict_quality(["cluster A new", "cluster B new"])
    assert (q0[:, cols["alpha"]] > q0[:, cols["beta"]]).all()


def test_toward_observed_weighs_observed_means_by_count() -> None:
    cards = [ModelCard(name="m", input_usd_per_mtok=1, output_usd_per_mtok=1, metrics={"accuracy": 0.8})]
    prior = np.full((1, 1), 0.8, dtype=np.float32)
    few = toward_observed(prior, cards, [0], np.array([0.2]), np.array([2.0]))[0, 0]
    many = toward_observed(prior, cards, [0], np.array([0.2]), np.array([200.0]))[0, 0]
    assert 0.6 < few < 0.8 and abs(many - 0.2) < 0.03
    assert toward_observed(prior, cards, [None], np.array([0.2]), np.array([200.0]))[0, 0] == pytest.approx(0.8)
    means, counts = observed_level(np.array([[1.0, np.nan], [0.0, 1.0]]), np.array([[False, False], [True, False]]))
    assert means.tolist() == [1.0, 1.0] and counts.tolist() == [1.0, 1.0]  # estimates do not count


# -------------------------------------------------------------------------------- the stack
def test_blend_weights_find_the_informative_kind_and_shrink_with_few_prompts() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random((500, 3)) < 0.5).astype(np.float32)
    oof = {"good": np.clip(y * 0.7 + 0.15, 0, 1), "noise": rng.random((500, 3)).astype(np.float32),
           "mean": np.full((500, 3), 0.5, dtype=np.float32)}
    w = blend_weights(oof, y)
    assert w["good"] > 0.9 and abs(sum(w.values()) - 1) < 1e-6 and min(w.values()) >= 0
    assert shrink_weights(w, 10_000)["good"] > 0.85
    small = shrink_weights(w, 20)
    assert small["mean"] > 0.6 and abs(sum(small.values()) - 1) < 1e-9
    folds = fold_ids(103, 5, 0)
    assert sorted(np.bincount(folds).tolist()) == [20, 20, 21, 21, 21]


def test_a_stacked_predictor_round_trips(tmp_path: Path) -> None:
    texts = [f"cluster {'A' if i % 2 else 'B'} q{i}" for i in range(120)]
    emb = FakeEmbedder().encode(texts)
    is_a = np.array([t.split()[1] == "A" for t in texts])
    scores = np.stack([is_a, ~is_a], axis=1).astype(np.float32)
    data = TrainData(emb, scores, ["alpha", "beta"], labels=[t.split()[1] for t in texts])
    pred = StackPredictor.fit(data, weights={"knn": 0.4, "mlp": 0.3, "mean": 0.3}, observed_n0=10.0)
    cards = [ModelCard(name=m, input_usd_per_mtok=1, output_usd_per_mtok=1) for m in ("alpha", "beta")]
    new = FakeEmbedder().encode(["cluster A new", "cluster B new"])
    args = (cards, ["other"] * 2, ["other"] * 2, np.full(2, 0.5, dtype=np.float32))
    q, _ = pred.predict_matrix(new, *args)
    assert q[0, 0] > q[0, 1] and q[1, 1] > q[1, 0]
    assert pred.save(tmp_path) == ["predictor.npz", "predictor.json"]
    again = StackPredictor.load(tmp_path, pred.index, dim=DIM)
    np.testing.assert_allclose(again.predict_matrix(new, *args)[0], q, atol=1e-6)
    meta = json.loads((tmp_path / "predictor.json").read_text())
    meta["components"][0]["weight"] = 7
    (tmp_path / "predictor.json").write_text(json.dumps(meta))
    with pytest.raises(CorruptArtifactError, match="weight"):
        StackPredictor.load(tmp_path, pred.index, dim=DIM)


# ------------------------------------------------------------------- the bench's check on test
def test_bench_guard_check_compares_each_point_with_the_best_single_model_at_no_higher_cost() -> None:
    from types import SimpleNamespace

    from optiroute.bench.evaluate import OperatingPoint, guard_check

    single = {"big": (0.8, 1.0), "small": (0.6, 0.1)}
    pts = [OperatingPoint(point=0, cost_weight=0.0, mean_cost_usd=0.9, mean_score=0.82, left_out=0),
           OperatingPoint(point=1, cost_weight=0.5, mean_cost_usd=0.5, mean_score=0.7, left_out=0),
           OperatingPoint(point=2, cost_weight=0.9, mean_cost_usd=0.1, mean_score=0.6, left_out=0)]
    check = guard_check(SimpleNamespace(guard=None), pts, single, 0.1, 1.0)
    # Quality-first is compared with the best model at any cost; the others with what costs no more.
    assert [(r.single, round(r.gain, 3)) for r in check.rows] == [("big", 0.02), ("small", 0.1), ("small", 0.0)]
    assert check.router_aiq > check.single_hull_aiq and check.never_worse
    worse = [OperatingPoint(point=0, cost_weight=0.0, mean_cost_usd=1.0, mean_score=0.65, left_out=0)]
    assert not guard_check(SimpleNamespace(guard=None), worse, single, 0.1, 1.0).never_worse
