"""Quality predictors behind one interface: each kind learns, round-trips, and ``auto`` sees train only.

Synthetic data with a known answer: prompts come from two clusters; model ``alpha`` is right on
cluster A and wrong on B, model ``beta`` the opposite. Every predictor must rank them per cluster.
The embedder is a deterministic fake (text -> cluster centre + hashed noise, 384-d like MiniLM), so
the tests need no model download and can tell train rows from test rows.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optiroute import Router
from optiroute.catalog.cold_start import AbilityMap, card_features, predict_card_domains
from optiroute.catalog.registry import ModelCard, Registry
from optiroute.errors import InvalidInputError
from optiroute.quality.base import BASE_KINDS, KINDS, Evidence, TrainData, predictor_class

DIM = 384
_rng = np.random.default_rng(7)
CENTRES = {"A": _rng.normal(size=DIM), "B": _rng.normal(size=DIM)}


def _vec(text: str) -> np.ndarray:
    seed = int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)
    v = CENTRES[text.split()[1]] + 0.8 * np.random.default_rng(seed).normal(size=DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


class FakeEmbedder:
    """Deterministic 384-d 'MiniLM': the cluster letter is the text's second word."""

    dim, name = DIM, "fake-clusters"

    def encode(self, texts, *, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        return np.stack([_vec(t) for t in texts])


def _card(name: str, price: float) -> ModelCard:
    return ModelCard(name=name, input_usd_per_mtok=price, output_usd_per_mtok=price,
                     metrics={"accuracy": 0.5})


def _data(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    texts = [f"cluster {'A' if i % 2 == 0 else 'B'} question {seed}-{i}" for i in range(n)]
    is_a = np.array([t.split()[1] == "A" for t in texts])
    p_alpha = np.where(is_a, 0.9, 0.1)
    scores = np.stack([rng.random(n) < p_alpha, rng.random(n) < 1 - p_alpha], axis=1).astype(np.float32)
    return texts, scores


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "mean"])  # mean: the same for every prompt
def test_each_predictor_ranks_models_per_cluster(kind: str) -> None:
    texts, scores = _data(400)
    scores[5, 1] = np.nan  # a missing cell is unknown, not wrong
    emb = FakeEmbedder().encode(texts)
    labels = [t.split()[1] for t in texts]  # the data's task column (only the task kind uses it)
    pred = predictor_class(kind).fit(TrainData(emb, scores, ["alpha", "beta"], seed=0, labels=labels))
    assert pred.kind == kind
    new = [f"cluster {c} unseen {i}" for i in range(20) for c in "AB"]
    cards = [_card("alpha", 1.0), _card("beta", 1.0)]
    n = len(new)
    q, support = pred.predict_matrix(FakeEmbedder().encode(new), cards, ["other"] * n, ["reasoning"] * n,
                                     np.full(n, 0.5, dtype=np.float32))
    assert q.shape == support.shape == (n, 2)
    is_a = np.array([t.split()[1] == "A" for t in new])
    # Per cluster, the model that is right there is predicted better on every prompt.
    assert (q[is_a, 0] > q[is_a, 1]).all() and (q[~is_a, 1] > q[~is_a, 0]).all()
    assert (support > 0).all()


@pytest.mark.parametrize("kind", ["routoo", "mlp", "task"])
def test_unknown_models_fall_back_to_the_card_prior(kind: str) -> None:
    texts, scores = _data(200)
    pred = predictor_class(kind).fit(TrainData(FakeEmbedder().encode(texts), scores, ["alpha", "beta"],
                                               labels=[t.split()[1] for t in texts]))
    stranger = ModelCard(name="stranger", input_usd_per_mtok=1, output_usd_per_mtok=1,
                         metrics={"accuracy": 0.8}, accuracy_by_domain={"math": 0.3})
    cards = [_card("alpha", 1.0), stranger]
    assert pred.columns(cards) == [0, None]
    q, support = pred.predict_matrix(FakeEmbedder().encode(["cluster A x", "cluster B y"]), cards,
                                     ["math", "law"], ["reasoning"] * 2, np.full(2, 0.5, dtype=np.float32))
    # The stranger's quality is its card's domain accuracy (else overall), with no support.
    np.testing.assert_allclose(q[:, 1], [0.3, 0.8], atol=1e-3)
    assert (support[:, 1] == 0).all()


@pytest.mark.parametrize("kind", ["routoo", "mlp", "task"])
def test_learned_weights_round_trip_exactly(kind: str, tmp_path: Path) -> None:
    texts, scores = _data(200)
    emb = FakeEmbedder().encode(texts)
    cls = predictor_class(kind)
    pred = cls.fit(TrainData(emb, scores, ["alpha", "beta"], labels=[t.split()[1] for t in texts]))
    files = pred.save(tmp_path)
    assert sorted(files) == ["predictor.json", "predictor.npz"]
    loaded = cls.load(tmp_path, None)
    np.testing.assert_array_equal(pred.proba(emb[:50]), loaded.proba(emb[:50]))
    with pytest.raises(InvalidInputError, match="predict_matrix"):
        loaded.predict(None, [_card("alpha", 1.0)], ["math"], ["reasoning"], np.zeros(1))


def test_predictions_are_one_vectorised_matrix_for_a_large_batch() -> None:
    texts, scores = _data(200)
    pred = predictor_class("routoo").fit(TrainData(FakeEmbedder().encode(texts), scores, ["alpha", "beta"]))
    big = np.repeat(FakeEmbedder().encode(["cluster A a", "cluster B b"]), 10_000, axis=0)
    p = pred.proba(big)
    assert p.shape == (20_000, 2)
    np.testing.assert_allclose(p[:10_000], p[0][None, :].repeat(10_000, 0), atol=1e-6)
    ev = pred.neighbours(big[:3], exact=True)
    assert isinstance(ev, Evidence) and ev.ids.shape == (3, 0)


def _frames(n_train: int, n_test: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    texts, scores = _data(n_train + n_test, seed=3)
    ids = [f"p{i}" for i in range(len(texts))]
    prompts = pd.DataFrame({"prompt_id": ids, "split": ["train"] * n_train + ["test"] * n_test,
                            "task": [t.split()[1] for t in texts], "text": texts})
    rows = [(pid, m, float(scores[i, j]), cost)
            for i, pid in enumerate(ids) for j, (m, cost) in enumerate([("alpha", 0.01), ("beta", 0.001)])]
    outcomes = pd.DataFrame(rows, columns=["prompt_id", "model", "score", "cost_usd"])
    outcomes["output_tokens"] = 10
    prices = pd.DataFrame({"model": ["alpha", "beta"], "input_usd_per_mtok": [10.0, 1.0],
                           "output_usd_per_mtok": [10.0, 1.0], "source": ["test", "test"]})
    return prompts, outcomes, prices


def test_auto_selects_by_k_fold_cross_validation_on_train_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    prompts, outcomes, prices = _frames(420, 80)
    test_vecs = FakeEmbedder().encode(prompts.loc[prompts["split"] == "test", "text"].tolist())
    seen: list[np.ndarray] = []
    for kind in KINDS:
        cls = predictor_class(kind)
        original = cls.fit.__func__

        def spy(c, data, _orig=original, **kw):
            seen.append(np.asarray(data.embeddings))
            return _orig(c, data, **kw)

        monkeypatch.setattr(cls, "fit", classmethod(spy))
    router = Router.fit(prompts, outcomes, prices, embedder=FakeEmbedder(), predictor="auto")
    pred = router.predictor
    sel = pred.selection
    assert sel["requested"] == "auto" and sel["chosen"] in KINDS and pred.kind == sel["chosen"]
    # Every train prompt is predicted out of fold (5 folds), by each kind and by the stacked blend.
    assert sel["n_validation"] == 420 and sel["n_folds"] == 5
    assert set(sel["validation_aiq"]) == set(BASE_KINDS) | {"stack"}
    assert all(0 < v <= 1 for v in sel["validation_aiq"].values())
    assert sel["validation_aiq"][sel["chosen"]] == max(sel["validation_aiq"].values())
    assert abs(sum(sel["stack_weights"].values()) - 1) < 1e-3  # rounded to 4 places
    # One fit per base kind and fold on the other 336 rows, then the winner (for a stack: each of its
    # components) on all 420 train rows; no test row is ever passed to a fit.
    sizes = sorted(len(e) for e in seen)
    assert sizes[: 5 * len(BASE_KINDS)] == [336] * (5 * len(BASE_KINDS))
    assert sizes[5 * len(BASE_KINDS):] and set(sizes[5 * len(BASE_KINDS):]) == {420}
    stacked = np.concatenate(seen)
    assert not (np.abs(stacked @ test_vecs.T - 1.0) < 1e-6).any()
    # Saved and loaded, the router predicts the same and remembers how its predictor was chosen.
    texts = prompts["text"].tolist()[-10:]
    q = router.predict_quality(texts)
    router.save(tmp_path / "r")
    again = Router.load(tmp_path / "r", embedder=FakeEmbedder())
    np.testing.assert_allclose(again.predict_quality(texts), q, atol=1e-6)
    assert again.predictor.selection == sel
    # The learned router routes each cluster to the model that is right there.
    d = router.decide_batch(["cluster A new", "cluster B new"], preferences="quality-first")
    assert d.model_names == ["alpha", "beta"]


def test_named_kind_and_unknown_kind(tmp_path: Path) -> None:
    prompts, outcomes, prices = _frames(120, 0)
    router = Router.fit(prompts, outcomes, prices, embedder=FakeEmbedder(), predictor="mlp")
    assert router.predictor.kind == "mlp"
    router.save(tmp_path / "m")
    assert "predictor.npz" in (tmp_path / "m" / "manifest.json").read_text()
    with pytest.raises(InvalidInputError, match="auto, knn, routoo, mlp, task"):
        Router.fit(prompts, outcomes, prices, embedder=FakeEmbedder(), predictor="svm")


def test_small_train_sets_are_cross_validated_too() -> None:
    """No minimum silently keeps one kind: 60 prompts are still scored out of fold, kind by kind."""
    prompts, outcomes, prices = _frames(60, 0)
    router = Router.fit(prompts, outcomes, prices, embedder=FakeEmbedder())
    sel = router.predictor.selection
    assert sel["n_validation"] == 60 and sel["n_folds"] == 5 and "note" not in sel
    assert sel["validation_aiq"][sel["chosen"]] == max(sel["validation_aiq"].values())
    # The two clusters are easy: a per-prompt kind (or a blend with one) beats per-model means.
    assert sel["chosen"] != "mean"


def test_ability_map_recovers_a_linear_card_to_domain_relation() -> None:
    rng = np.random.default_rng(0)
    elo = rng.uniform(1000, 1300, size=25)
    slope = np.array([1.0, 0.2, -0.5])  # domain 3 gets *worse* with Elo: the map must learn signs
    z = (elo[:, None] - 1150) / 100 * slope[None, :]
    acc = 1 / (1 + np.exp(-z))
    feats = [{"arena_elo": float(e), "noise": float(rng.normal())} for e in elo]
    amap = AbilityMap.fit(feats[:20], acc[:20], ["d1", "d2", "d3"])
    pred = amap.predict(feats[20:])
    assert np.abs(pred - acc[20:]).max() < 0.08
    # A missing feature falls back to the training mean instead of failing.
    assert amap.predict([{"noise": 0.0}]).shape == (1, 3)


def test_a_new_card_gets_domain_accuracies_from_its_metrics() -> None:
    reg = Registry.default()
    strong = reg.get("gpt-4o").model_copy(update={"name": "new-strong", "aliases": [], "accuracy_by_domain": {}})
    weak = reg.get("Llama-2-7b-hf").model_copy(update={"name": "new-weak", "aliases": [], "accuracy_by_domain": {}})
    s = predict_card_domains(strong, reg, {"params_b": None, "arena_elo": 1280})
    w = predict_card_domains(weak, reg, {"params_b": 6.7})
    assert set(s.accuracy_by_domain) == set(reg.get("gpt-4o").accuracy_by_domain)
    assert s.metrics["accuracy"] > w.metrics["accuracy"]
    assert "accuracy_by_domain" in s.imputed and "cold start" in s.sources["accuracy_by_domain"]
    assert card_features(strong)["kind_api"] == 1.0


def test_cold_start_reads_the_cards_facts_and_rejects_non_finite_ones() -> None:
    """The bundled cards carry Arena Elo / size as facts, so cold start uses them for training and
    for the new card alike; ``raw`` overrides a fact."""
    from optiroute.errors import RegistryError

    reg = Registry.default()
    assert reg.get("gpt-4o").facts["arena_elo"] > 1200
    base = reg.get("gpt-4o").model_copy(update={"name": "new", "aliases": [], "accuracy_by_domain": {}})
    hi = predict_card_domains(base.model_copy(update={"facts": {"arena_elo": 1300.0}}), reg)
    lo = predict_card_domains(base.model_copy(update={"facts": {"arena_elo": 1050.0}}), reg)
    assert hi.metrics["accuracy"] > lo.metrics["accuracy"]
    over = predict_card_domains(base.model_copy(update={"facts": {"arena_elo": 1050.0}}), reg, {"arena_elo": 1300})
    assert over.metrics["accuracy"] == hi.metrics["accuracy"]
    with pytest.raises(RegistryError, match="finite"):
        ModelCard(name="x", input_usd_per_mtok=1, output_usd_per_mtok=1, facts={"arena_elo": float("nan")})
