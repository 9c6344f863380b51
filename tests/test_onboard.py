"""Onboarding a new model on K-Means representatives: outcomes land in the store and steer routing.

Synthetic store with a known answer: prompts come from two tight clusters (a deterministic fake
384-d embedder: the cluster letter is the text's second word), the two stored models are coin flips
everywhere, and the new model ``gamma`` is right on every cluster-A prompt and wrong on every
cluster-B one. After onboarding, routing must prefer ``gamma`` on A and avoid it on B. Nothing here
downloads a model or talks to the network, except the CLI test's own HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from optiroute import Router
from optiroute.catalog.registry import ModelCard, Registry
from optiroute.errors import InvalidInputError
from optiroute.onboard.onboarding import (
    choice_letter,
    onboard,
    parse_grade,
    reference_score,
    representatives,
)
from optiroute.quality.index import OutcomeIndex
from optiroute.routing.policy import PolicyConfig

DIM = 384
_rng = np.random.default_rng(11)
CENTRES = {"A": _rng.normal(size=DIM), "B": _rng.normal(size=DIM)}


def _vec(text: str) -> np.ndarray:
    seed = int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)
    v = CENTRES[text.split()[1]] + 0.3 * np.random.default_rng(seed).normal(size=DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


class FakeEmbedder:
    dim, name = DIM, "fake-clusters"

    def encode(self, texts, *, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        return np.stack([_vec(t) for t in texts])


def _card(name: str) -> ModelCard:
    return ModelCard(name=name, input_usd_per_mtok=1.0, output_usd_per_mtok=1.0, metrics={"accuracy": 0.5})


def _texts(prefix: str, n: int) -> list[str]:
    return [f"cluster {'A' if i % 2 == 0 else 'B'} {prefix} {i}" for i in range(n)]


def _router(n: int = 200) -> tuple[Router, dict[str, str]]:
    texts = _texts("stored", n)
    ids = [f"p{i}" for i in range(n)]
    scores = np.random.default_rng(0).integers(0, 2, size=(n, 2)).astype(np.float32)
    index = OutcomeIndex(FakeEmbedder().encode(texts), ids, [""] * n, ["alpha", "beta"], scores)
    reg = Registry([_card("alpha"), _card("beta")])
    router = Router(registry=reg, index=index, embedder=FakeEmbedder(), models=["alpha", "beta"],
                    policy=PolicyConfig(min_confidence=0.0))
    return router, dict(zip(ids, texts, strict=True))


def _gamma(text: str) -> str:
    """Right (B) on cluster A, wrong (C) on cluster B; every reference is B."""
    return "The answer is (B)." if text.split()[1] == "A" else "The answer is (C)."


def _routed(router: Router, texts: list[str]) -> list[str]:
    return list(router.decide_batch(texts, preferences="quality-first").model_names)


@pytest.mark.parametrize("propagate", [0.0, 0.5])
def test_onboarded_model_wins_where_it_is_right_and_loses_where_it_is_wrong(propagate: float) -> None:
    router, prompts = _router()
    refs = {pid: "B" for pid in prompts}
    assert "gamma" not in _routed(router, _texts("new", 20))
    result = onboard(router, "gamma", _gamma, prompts=prompts, references=refs, k=8, price=(1.0, 1.0),
                     propagate=propagate)

    assert result.k == 8 and result.card_added and "gamma" in router.models
    assert set(result.sources) == {"reference"}
    reps_a = [s for pid, s in zip(result.prompt_ids, result.scores, strict=True) if prompts[pid].split()[1] == "A"]
    assert reps_a and all(s == 1.0 for s in reps_a)  # both clusters are covered and scored by letter
    col = router.index.column("gamma")
    assert np.isfinite(router.index.scores[:, col]).sum() == (8 if propagate == 0 else 200)
    new = _texts("new", 40)
    chosen = _routed(router, new)
    on_a = [m for t, m in zip(new, chosen, strict=True) if t.split()[1] == "A"]
    on_b = [m for t, m in zip(new, chosen, strict=True) if t.split()[1] == "B"]
    assert all(m == "gamma" for m in on_a)
    assert not any(m == "gamma" for m in on_b)
    q = router.predict_quality(new)
    g = router.models.index("gamma")
    is_a = np.array([t.split()[1] == "A" for t in new])
    assert q[is_a, g].mean() > q[~is_a, g].mean() + 0.05


def test_judge_is_a_routed_candidate_and_its_grade_is_scaled() -> None:
    router, prompts = _router()
    calls: list[tuple[str, str]] = []

    def judge(model: str, prompt: str) -> str:
        calls.append((model, prompt))
        return "Grade: 9" if "(B)" in prompt else "Grade: 2"

    result = onboard(router, "gamma", _gamma, prompts=prompts, judge_fn=judge, k=6, price=(1.0, 1.0))
    assert len(calls) == 6
    assert {m for m, _ in calls} <= {"alpha", "beta"}  # never the model being onboarded
    assert all(src.startswith("judge:") and src[6:] in ("alpha", "beta") for src in result.sources)
    assert sorted(set(result.scores)) == [0.2, 0.9]
    col = router.index.column("gamma")
    assert sorted(set(np.round(router.index.scores[:, col][np.isfinite(router.index.scores[:, col])], 3))) == [0.2, 0.9]


def test_unscorable_answers_and_missing_store_are_errors() -> None:
    router, prompts = _router()
    with pytest.raises(InvalidInputError, match="no reference answer and no judge"):
        onboard(router, "gamma", _gamma, prompts=prompts, k=4)
    with pytest.raises(InvalidInputError, match="no evaluation store"):
        onboard(Router(registry=Registry([_card("alpha")]), embedder=FakeEmbedder(), models=["alpha"]),
                "gamma", _gamma, prompts=prompts, k=2)
    with pytest.raises(InvalidInputError, match="could be scored"):
        onboard(router, "gamma", _gamma, prompts=prompts, k=4, scorer=lambda pid, text, answer: None)


def test_representatives_are_nearest_members_of_every_cluster() -> None:
    texts = _texts("stored", 60)
    emb = FakeEmbedder().encode(texts)
    reps = representatives(emb, 2, seed=0)
    assert sorted(texts[r].split()[1] for r in reps.rows) == ["A", "B"]
    assert reps.rows == representatives(emb, 2, seed=0).rows  # seeded
    only_b = [i for i, t in enumerate(texts) if t.split()[1] == "B"]
    assert all(r in only_b for r in representatives(emb, 3, rows=only_b).rows)


def test_scoring_helpers() -> None:
    assert choice_letter("Let me think... The answer is (C).") == "C"
    assert choice_letter("Answer: D") == "D"
    assert choice_letter("no letter here") is None
    assert reference_score("so the answer is (H)", "H") == 1.0
    assert reference_score("so the answer is (G)", "H") == 0.0
    assert reference_score("Work...\n42", "42") == 1.0
    assert parse_grade("Grade: 7") == pytest.approx(0.7)
    assert parse_grade("8/10, good") == pytest.approx(0.8)
    assert parse_grade("Grade: 15") is None and parse_grade("great answer") is None


class _FakeOpenAI(BaseHTTPRequestHandler):
    """Minimal OpenAI-compatible chat endpoint: 'gamma' answers like :func:`_gamma`."""

    seen: list[dict] = []  # noqa: RUF012 - one test reads what the handler saw

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
        text = _gamma(body["messages"][-1]["content"])
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def test_cli_onboards_through_an_openai_compatible_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from optiroute.analysis import embedding
    from optiroute.cli.app import app

    router, prompts = _router()
    router.save(tmp_path / "r")
    monkeypatch.setattr(embedding, "get_default_embedder", lambda: FakeEmbedder())
    pd.DataFrame({"prompt_id": list(prompts), "split": "train", "task": "t", "text": list(prompts.values())}).to_csv(
        tmp_path / "prompts.csv", index=False)
    pd.DataFrame({"prompt_id": list(prompts), "reference": "B"}).to_csv(tmp_path / "refs.csv", index=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _FakeOpenAI.seen = []
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        res = CliRunner().invoke(app, [
            "onboard", "--router", str(tmp_path / "r"), "--model", "gamma", "--base-url", url,
            "--api-key", "sk-test", "--prompts", str(tmp_path / "prompts.csv"), "--references",
            str(tmp_path / "refs.csv"), "--k", "6", "--out", str(tmp_path / "r2"),
            "--price-in", "1", "--price-out", "1", "--no-impute",
        ])
        again = CliRunner().invoke(app, [  # a second run adds outcomes to the saved column
            "onboard", "--router", str(tmp_path / "r2"), "--model", "gamma", "--base-url", url,
            "--api-key", "sk-test", "--prompts", str(tmp_path / "prompts.csv"), "--references",
            str(tmp_path / "refs.csv"), "--k", "6", "--out", str(tmp_path / "r3"), "--no-impute",
        ])
    finally:
        server.shutdown()
        server.server_close()
    assert again.exit_code == 0, again.output
    assert "from 12 measured outcomes, 6 of them from earlier runs" in " ".join(again.output.split())
    r3 = Router.load(tmp_path / "r3", embedder=FakeEmbedder())
    assert np.isfinite(r3.index.scores[:, r3.index.column("gamma")]).sum() == 12
    assert res.exit_code == 0, res.output
    assert "Column: impute=False" in res.output and "Accuracy over the store: " in res.output
    assert ("(95 %, from 6 measured outcomes). Onboarding the model again adds outcomes on other prompts; "
            "about 18 more would halve the interval.") in " ".join(res.output.split())
    assert len(_FakeOpenAI.seen) == 12
    assert {s["path"] for s in _FakeOpenAI.seen} == {"/v1/chat/completions"}
    assert {s["model"] for s in _FakeOpenAI.seen} == {"gamma"}
    assert {s["auth"] for s in _FakeOpenAI.seen} == {"Bearer sk-test"}
    loaded = Router.load(tmp_path / "r2", embedder=FakeEmbedder(), policy=PolicyConfig(min_confidence=0.0))
    assert "gamma" in loaded.models and loaded.registry.get("gamma").input_usd_per_mtok == 1.0
    col = loaded.index.column("gamma")
    assert col is not None and np.isfinite(loaded.index.scores[:, col]).sum() == 6
    assert "gamma" not in Router.load(tmp_path / "r", embedder=FakeEmbedder()).models  # source untouched


def test_a_learned_predictor_is_refitted_with_a_head_for_the_new_model() -> None:
    from optiroute.quality.base import TrainData, predictor_class

    router, prompts = _router()
    ix = router.index
    mlp = predictor_class("mlp").fit(TrainData(ix.matrix, ix.scores, list(ix.models), ix, 0))
    router = Router(registry=router.registry, index=ix, embedder=FakeEmbedder(), models=["alpha", "beta"],
                    predictor=mlp, policy=PolicyConfig(min_confidence=0.0))
    result = onboard(router, "gamma", _gamma, prompts=prompts, references={p: "B" for p in prompts}, k=8,
                     price=(1.0, 1.0))
    assert result.predictor.startswith("mlp: refitted")
    refitted = router.predictor
    assert refitted is not mlp and "gamma" in refitted.models
    new = _texts("new", 20)
    q = router.predict_quality(new)
    g = router.models.index("gamma")
    is_a = np.array([t.split()[1] == "A" for t in new])
    assert q[is_a, g].mean() > q[~is_a, g].mean()


def test_a_shared_store_is_not_changed_by_onboarding_one_router() -> None:
    router, prompts = _router()
    shared = router.index
    other = Router(registry=Registry([_card("alpha"), _card("beta")]), index=shared, embedder=FakeEmbedder(),
                   models=["alpha", "beta"])
    onboard(router, "gamma", _gamma, prompts=prompts, references={p: "B" for p in prompts}, k=4, price=(1.0, 1.0))
    assert router.index is not shared and router.index.column("gamma") is not None
    assert shared.models == ["alpha", "beta"] and shared.scores.shape == (200, 2)
    assert other.models == ["alpha", "beta"] and "gamma" not in other.registry


def test_the_column_is_filled_from_a_stored_model_the_new_one_resembles() -> None:
    """alpha is right on cluster A and wrong on B (with some noise); gamma answers exactly like it.
    From 40 representatives, the rest of gamma's column is filled from alpha's outcomes."""
    router, prompts = _router()
    ix = router.index
    is_a = np.array([prompts[p].split()[1] == "A" for p in ix.prompt_ids])
    flip = np.random.default_rng(5).random(len(is_a)) < 0.1
    ix.scores[:, 0] = (is_a ^ flip).astype(np.float32)
    truth = dict(zip(ix.prompt_ids, ix.scores[:, 0].tolist(), strict=True))
    sparse, _ = _router()
    sparse.index.scores[:, 0] = ix.scores[:, 0]

    def scorer(pid: str, text: str, answer: str) -> float:
        return truth[pid]

    result = onboard(router, "gamma", lambda t: "", prompts=prompts, scorer=scorer, k=40, price=(1.0, 1.0))
    kept = onboard(sparse, "gamma", lambda t: "", prompts=prompts, scorer=scorer, k=40, price=(1.0, 1.0),
                   impute=False)
    assert result.imputed == 200 - 40 and result.imputation is not None
    assert next(iter(result.imputation.resembles)) == "alpha"
    col = router.index.scores[:, router.index.column("gamma")]
    assert np.isfinite(col).all()
    rows = [router.index.prompt_ids.index(p) for p in result.prompt_ids]
    np.testing.assert_array_equal(col[rows], [truth[p] for p in result.prompt_ids])
    assert np.abs(col - ix.scores[:, 0]).mean() < 0.2  # close to the twin's outcomes everywhere
    src = router.registry.get("gamma").sources["outcomes"]
    assert src.startswith("onboarding: 40 measured, 160 filled") and "alpha" in src
    assert kept.imputed == 0 and "impute=False" in kept.imputation.reason
    assert "outcomes" not in sparse.registry.get("gamma").sources
    assert np.isfinite(sparse.index.scores[:, sparse.index.column("gamma")]).sum() == 40


def test_onboarding_again_adds_outcomes_instead_of_replacing_them(tmp_path: Path) -> None:
    """A second run keeps the first run's measured cells, evaluates other prompts, drops the filled
    estimates, and narrows the accuracy estimate; the marks survive save/load."""
    router, prompts = _router()
    ix = router.index
    is_a = np.array([prompts[p].split()[1] == "A" for p in ix.prompt_ids])
    ix.scores[:, 0] = (is_a ^ (np.random.default_rng(5).random(len(is_a)) < 0.1)).astype(np.float32)
    truth = dict(zip(ix.prompt_ids, ix.scores[:, 0].tolist(), strict=True))

    def scorer(pid: str, text: str, answer: str) -> float:
        return truth[pid]

    first = onboard(router, "gamma", lambda t: "", prompts=prompts, scorer=scorer, k=20, price=(1.0, 1.0))
    j = router.index.column("gamma")
    assert first.measured_before == 0 and first.imputed == 180
    assert int(router.index.estimated[:, j].sum()) == 180
    router.save(tmp_path / "r")
    again = Router.load(tmp_path / "r", embedder=FakeEmbedder(), policy=PolicyConfig(min_confidence=0.0))
    j = again.index.column("gamma")
    np.testing.assert_array_equal(again.index.estimated[:, j], router.index.estimated[:, router.index.column("gamma")])

    second = onboard(again, "gamma", lambda t: "", prompts=prompts, scorer=scorer, k=40, price=(1.0, 1.0))
    assert second.measured_before == 20
    assert not set(first.prompt_ids) & set(second.prompt_ids)
    col, est = again.index.scores[:, j], again.index.estimated[:, j]
    assert int((~est).sum()) == 60 and second.imputed == 140
    for pid in first.prompt_ids + second.prompt_ids:
        assert col[again.index.prompt_ids.index(pid)] == truth[pid]
    assert second.accuracy_se < first.accuracy_se
    card = again.registry.get("gamma")  # built by the first run, recalibrated from all 60 outcomes
    assert card.sources["accuracy"].startswith("onboarding: 60 representative outcomes")
    assert "alpha" in second.imputation.resembles and "gamma" not in second.imputation.resembles
    assert again.registry.get("gamma").sources["outcomes"].startswith("onboarding: 60 measured, 140 filled")


@pytest.mark.parametrize("name", ["alpha", "alpha-latest"])
def test_onboarding_a_fully_measured_model_is_refused_and_changes_nothing(name: str) -> None:
    """Also under an alias: it names the stored model, so it must not become a second column."""
    router, prompts = _router()
    router.registry.add(_card("alpha").model_copy(update={"aliases": ["alpha-latest"]}), replace=True)
    store, before = router.index, router.index.scores.copy()
    with pytest.raises(InvalidInputError, match="'alpha' already has measured outcomes on every stored prompt"):
        onboard(router, name, _gamma, prompts=prompts, references={p: "B" for p in prompts}, k=4)
    np.testing.assert_array_equal(router.index.scores, before)
    assert router.index is store  # refused before the router got a private copy of its store
    assert router.index.models == ["alpha", "beta"]
