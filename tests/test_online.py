"""Online learning from feedback (optiroute.learning.feedback_memory): the memory's math, locality, bounds and opt-in.

Router tests use card priors only (no evaluation store) and a table embedder that maps chosen texts
to hand-made vectors, so similarity is controlled exactly and nothing loads a model.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from optiroute import Router
from optiroute.learning.feedback_memory import FeedbackMemory

MODELS = ["gpt-4o", "gpt-4o-mini"]
# Repeated thumbs-down can make the only candidate "not competent": the generalist fallback warns.
pytestmark = pytest.mark.filterwarnings("ignore::optiroute.errors.RoutingFallbackWarning")


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


class TableEmbedder:
    """Known texts get their given vector; any other text a deterministic hash vector."""

    dim = 384
    name = "table-test"

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    def encode(self, texts, *, batch_size=64, show_progress=False):
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            if t in self.table:
                out[i] = self.table[t]
            else:
                seed = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
                out[i] = _unit(np.random.default_rng(seed).standard_normal(self.dim))
        return out


@pytest.fixture(scope="module")
def vectors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal(384), rng.standard_normal(384)
    v -= v @ u / (u @ u) * u  # v orthogonal to u: the dissimilar direction
    u, v = _unit(u), _unit(v)

    def near() -> np.ndarray:  # cosine ~0.99 to u
        return _unit(u + 0.15 * _unit(rng.standard_normal(384)))

    table = {f"rated {i}": near() for i in range(12)}
    table["query near"], table["query far"] = near(), v
    return table


def _router(vectors, **kw) -> Router:
    return Router(index=None, embedder=TableEmbedder(vectors), models=MODELS, **kw)


# ------------------------------------------------------------------------------ memory math
def _exact_ridge(mem: FeedbackMemory) -> np.ndarray:
    n, nf = mem.events, len(mem._fid)
    x = np.zeros((n, nf))
    x[np.arange(n)[:, None], mem._ev_feat[:n]] = 1.0
    prior = np.zeros(nf)
    for b in range(mem._ev_feat.shape[1]):
        prior[np.unique(mem._ev_feat[:n, b])] = mem.block_priors[b]
    return np.linalg.solve(x.T @ x + np.diag(prior), x.T @ mem._ev_resid[:n].astype(float))


@pytest.mark.parametrize("prior", [20.0, None])
def test_group_estimate_is_the_ridge_solution(prior):
    rng = np.random.default_rng(0)
    mem = FeedbackMemory(group_prior=prior)
    for _ in range(2000):
        mem.learn(None, float(rng.random() < 0.6), model=f"m{min(int(rng.exponential(1.5)), 5)}",
                  task="abc"[rng.integers(3)], domain=f"d{rng.integers(8)}", base_quality=0.5)
    np.testing.assert_allclose(mem._solve(), _exact_ridge(mem), atol=1e-4)
    if prior is None:  # outcomes are pure noise around a 0.1 offset: per-model blocks are shrunk hard
        assert (mem.block_priors[2:] > 100).all()


@pytest.mark.parametrize("observed", [2, 4])
def test_common_miscalibration_is_shared(observed):
    """K observed models with the same offset: 3K/(3K+2) of it reaches models never observed (equal
    ridge priors on the three shared and two per-model blocks), so they are not left behind."""
    mem = FeedbackMemory(group_prior=20.0)
    for i in range(100 * observed):  # every observed model does 0.1 better than predicted
        mem.learn(None, 0.6, model=f"m{i % observed}", task="math", domain="math", base_quality=0.5)
    c = mem.corrections(["m0", "m1", "new"], ["math"], ["math"], None, {})[0]
    assert c[0] == pytest.approx(0.1, abs=0.01) and c[1] == pytest.approx(c[0], abs=1e-6)
    assert c[2] == pytest.approx(c[0] * 3 * observed / (3 * observed + 2), abs=0.005)


def test_a_lone_model_is_not_fully_shared():
    lone = FeedbackMemory(group_prior=20.0)
    for _ in range(200):  # only a is observed, and it disappoints: K = 1
        lone.learn(None, 0.0, model="a", task="math", domain="math", base_quality=0.5)
    c = lone.corrections(["a", "c"], ["math", "math"], ["math", "law"], None, {})
    assert c[0, 0] == pytest.approx(-0.5, abs=0.02)
    assert c[0, 1] == pytest.approx(-0.3, abs=0.02)  # 3/5 of a lone model's residual is shared
    assert c[1, 1] == pytest.approx(-0.2, abs=0.02)  # other domain: shared task and complexity


def test_local_correction_matches_hand_computation():
    mem = FeedbackMemory(keep_embeddings=True, k=2, tau=0.1, local_prior=1.0, group_prior=20.0)
    rows = [([1, 0, 0], "a", 0.0, 0.5), ([0.8, 0.6, 0], "a", 1.0, 0.5), ([0, 1, 0], "a", 1.0, 0.2),
            ([1, 0, 0], "b", 1.0, 0.4)]
    for i, (v, m, score, base) in enumerate(rows):
        mem.remember(f"d{i}", _unit(v), None)
        assert mem.learn(f"d{i}", score, model=m, task="t", domain="x", base_quality=base)
    beta = _exact_ridge(mem)
    keys = (("t", "t"), ("d", "x"), ("c", "?"))
    group = {m: sum(beta[mem._fid[k]] for k in (*keys, ("mt", m, "t"), ("md", m, "x"))) for m in "ab"}
    q = _unit([1, 0, 0])[None, :]
    corr = mem.corrections(["a", "b", "c"], ["t"], ["x"], q, {})
    # model a: its 2 nearest rated prompts are at cos 1.0 (resid -0.5) and cos 0.8 (resid +0.5)
    w1, w2 = 1.0, np.exp((0.8 - 1.0) / 0.1)
    local_a = (w1 * (-0.5 - group["a"]) + w2 * (0.5 - group["a"])) / (w1 + w2 + 1.0)
    assert corr[0, 0] == pytest.approx(group["a"] + local_a, abs=2e-2)
    assert corr[0, 1] == pytest.approx(group["b"] + (0.6 - group["b"]) / 2.0, abs=2e-2)
    shared = sum(beta[mem._fid[k]] for k in keys)
    assert corr[0, 2] == pytest.approx(shared, abs=1e-5)  # no feedback for c: the shared part only


def test_no_feedback_means_no_correction():
    mem = FeedbackMemory(keep_embeddings=True)
    assert mem.corrections(["a"], ["math"], ["math"], np.ones((1, 3), np.float32) / 3**0.5, {}) is None
    assert FeedbackMemory(groups="store").corrections(["a"], ["math"], ["math"], None, {}) is None
    old = FeedbackMemory(groups="store").corrections(["a", "b"], ["math"], ["law"], None,
                                                     {("a", "math"): -0.2})
    np.testing.assert_allclose(old, [[-0.2, 0.0]])


# ------------------------------------------------------------------------------ bounds
def test_memory_is_a_bounded_ring():
    mem = FeedbackMemory(keep_embeddings=True, capacity=5, k=5, max_pending=3, max_events=7)
    rng = np.random.default_rng(1)
    vecs = np.array([_unit(rng.standard_normal(8)) for _ in range(12)])
    mem.remember("first", vecs[0], None)
    mem.learn("first", 0.0, model="a", task="t", domain="x", base_quality=1.0)
    size = mem.nbytes
    for i in range(1, 12):
        mem.remember(f"r{i}", vecs[i], None)
        mem.learn(f"r{i}", 1.0, model="a", task="t", domain="x", base_quality=0.0)
    assert len(mem) == 5 and mem.events == 7 and mem.nbytes == size
    # the first rated prompt (residual -1) was overwritten: only +1 residuals remain anywhere
    assert (mem._resid[: len(mem)] == 1.0).all() and (mem._ev_resid == 1.0).all()
    for i in range(10):
        mem.remember(f"p{i}", vecs[i], 0.5)
    assert mem.pending == 3
    assert mem.learn("p0", 1.0, model="a", task="t", domain="x", base_quality=0.5) is False  # evicted
    assert mem.learn("p9", 1.0, model="a", task="t", domain="x", base_quality=0.5) is True


def test_a_late_batch_row_keeps_its_feedback_correction(vectors):
    """A batch carries the corrections it applied: ``batch[i]`` materialised after many later batches
    still records the quality predicted *before* feedback (its residual baseline)."""
    router = _router(vectors, keep_prompts=True)
    _thumbs_down(router, 5)
    early = router.decide_batch(["query near", "query far"], preferences="quality-first", candidates=["gpt-4o"])
    assert early.parts[0].corrections is not None and early.parts[0].embeddings is not None
    for _ in range(40):  # many later batches: nothing held elsewhere can evict the early one's rows
        router.decide_batch(["query near"] * 64, preferences="quality-first", candidates=["gpt-4o"])
    d = early[1]
    part = early.parts[0]
    expected = float(part.quality[1, 0]) - float(part.corrections[1, 0])
    assert part.corrections[1, 0] != 0.0
    assert router.store.get_decision(d.decision_id).predicted_quality == pytest.approx(expected, abs=1e-5)


# ------------------------------------------------------------------------------ router
def _thumbs_down(router: Router, n: int = 10) -> None:
    for i in range(n):
        d = router.decide(f"rated {i}", preferences="quality-first", candidates=["gpt-4o"])
        router.record_feedback(d.decision_id, 0.0)


def test_thumbs_down_lowers_quality_for_similar_prompts_only(vectors):
    texts = ["query near", "query far"]
    local, groups = _router(vectors, keep_prompts=True), _router(vectors)
    for r in (local, groups):  # a fixed prior: ten identical votes would teach the groups everything
        r.feedback_memory.group_prior = 20.0
        r.feedback_memory.block_priors[:] = 20.0
    before = local.predict_quality(texts)
    _thumbs_down(local)
    _thumbs_down(groups)
    after_local, after_groups = local.predict_quality(texts), groups.predict_quality(texts)
    j = local.models.index("gpt-4o")
    assert len(local.feedback_memory) == 10
    # near the rated prompts, the kNN memory lowers gpt-4o beyond the group-level correction ...
    assert after_local[0, j] < after_groups[0, j] - 0.05
    assert after_local[0, j] < before[0, j] - 0.1
    # ... far from them it adds nothing: only the (model, task/domain) residuals act there
    assert after_local[1, j] == pytest.approx(after_groups[1, j], abs=1e-3)
    # the other model got no feedback: it moves only by the shared part, so gpt-4o loses ground
    k = local.models.index(local.registry.resolve("gpt-4o-mini").name)
    drop_4o, drop_mini = before[1, j] - after_groups[1, j], before[1, k] - after_groups[1, k]
    assert 0 < drop_mini < drop_4o


def test_corrections_converge_to_the_observed_gap(vectors):
    """Residuals against the pre-feedback prediction: the estimate reaches the real gap (a residual
    against the corrected prediction would stop near half of it)."""
    router = _router(vectors)
    text = "rated 0"
    j = router.models.index("gpt-4o")
    base = float(router.predict_quality([text])[0, j])
    for _ in range(200):
        d = router.decide(text, preferences="quality-first", candidates=["gpt-4o"])
        assert router.store.get_decision(d.decision_id).predicted_quality == pytest.approx(base, abs=1e-5)
        router.record_feedback(d.decision_id, 0.0)
    after = float(router.predict_quality([text])[0, j])
    assert base > 0.3 and after < 0.1 * base


def test_nothing_about_prompts_is_kept_without_opt_in(vectors):
    router = _router(vectors)
    _thumbs_down(router, 3)
    batch = router.decide_batch(["query near", "query far"], preferences="balanced")
    batch[0]
    assert batch.parts[0].embeddings is None  # the arrays keep no embedding either
    mem = router.feedback_memory
    assert not mem.keep_embeddings and len(mem) == 0 and mem._emb is None
    assert mem.pending == 1 and all(e is None for e, _ in mem._pending.values())  # complexity only
    assert mem.events == 3  # the groups still learn (model, task and domain names and numbers only)
    assert all(router.store.get_decision(f.decision_id).prompt is None for f in router.store.feedback())


def test_a_new_router_on_the_same_store_learns_its_history(vectors):
    first = _router(vectors)
    _thumbs_down(first, 5)
    second = Router(index=None, embedder=TableEmbedder(vectors), models=MODELS, store=first.store)
    j = first.models.index("gpt-4o")
    fresh = _router(vectors).predict_quality(["query far"])[0, j]
    assert second.predict_quality(["query far"])[0, j] == pytest.approx(
        first.predict_quality(["query far"])[0, j], abs=1e-5)
    assert second.feedback_memory.events == 5 and second.predict_quality(["query far"])[0, j] < fresh


def test_batch_decisions_feed_the_memory(vectors):
    router = _router(vectors, keep_prompts=True)
    batch = router.decide_batch([f"rated {i}" for i in range(4)], preferences="quality-first",
                                candidates=["gpt-4o"])
    for i in range(4):
        router.record_feedback(batch[i].decision_id, 1.0)
    assert len(router.feedback_memory) == 4 and router.feedback_memory.pending == 0


def test_bad_settings_say_what_to_fix():
    from optiroute.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="pooled"):
        FeedbackMemory(groups="median")
    with pytest.raises(InvalidInputError, match="capacity"):
        FeedbackMemory(capacity=0)
