"""Filling an onboarded model's column from the stored models it resembles (hermetic, synthetic data)."""

from __future__ import annotations

import numpy as np
import pytest

from optiroute.onboard.impute import MIN_OUTCOMES, impute_column


def _store(n: int = 600, seed: int = 0) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Six incumbents whose outcomes share a per-prompt difficulty and have per-category strengths."""
    rng = np.random.default_rng(seed)
    cats = np.array(["math", "law", "bio"])[rng.integers(0, 3, n)]
    hard = rng.normal(size=n)
    strength = rng.normal(scale=0.8, size=(3, 6))
    ci = np.searchsorted(["bio", "law", "math"], cats)
    logits = strength[ci] - 2.5 * hard[:, None] + rng.normal(scale=0.3, size=(n, 6))
    scores = (rng.random((n, 6)) < 1 / (1 + np.exp(-logits))).astype(np.float32)
    return scores, cats.tolist(), hard


def test_a_model_like_a_stored_one_gets_that_ones_outcomes() -> None:
    scores, tasks, _ = _store()
    truth = scores[:, 2].copy()
    col = np.full(len(truth), np.nan)
    rows = np.random.default_rng(1).choice(len(truth), 60, replace=False)
    col[rows] = truth[rows]
    out, res = impute_column(scores[:, [0, 1, 3, 4, 5]], tasks, col, list("abdef"))
    ref, _ = impute_column(scores, tasks, col, list("abcdef"))  # the twin itself is stored

    assert res.filled == len(truth) - 60 and np.isfinite(out).all()
    np.testing.assert_array_equal(out[rows], truth[rows])  # measured cells are kept
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert next(iter(impute_column(scores, tasks, col, list("abcdef"))[1].resembles)) == "c"
    miss = np.isnan(col)
    # better than the representatives' mean at every unmeasured prompt, and best with the twin stored
    assert ((out[miss] - truth[miss]) ** 2).mean() < ((truth[rows].mean() - truth[miss]) ** 2).mean()
    assert ((ref[miss] - truth[miss]) ** 2).mean() < ((out[miss] - truth[miss]) ** 2).mean()
    assert res.cv_gain is not None and res.cv_gain > 0


def test_a_model_no_stored_one_resembles_is_left_as_measured() -> None:
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 2, size=(400, 4)).astype(np.float32)  # coin flips
    own = rng.integers(0, 2, size=400).astype(np.float64)  # unrelated to them
    col = np.full(400, np.nan)
    col[:80] = own[:80]
    out, res = impute_column(scores, [""] * 400, col, list("abcd"))
    assert res.filled == 0 and "do not predict" in res.reason
    np.testing.assert_array_equal(np.isnan(out), np.isnan(col))


@pytest.mark.parametrize("measured", [0, MIN_OUTCOMES - 1])
def test_too_few_outcomes_fill_nothing(measured: int) -> None:
    scores, tasks, _ = _store(200)
    col = np.full(200, np.nan)
    col[:measured] = 1.0
    out, res = impute_column(scores, tasks, col, list("abcdef"))
    assert res.filled == 0 and f"needs at least {MIN_OUTCOMES}" in res.reason
    assert np.isnan(out).sum() == 200 - measured


def test_missing_incumbent_outcomes_and_no_incumbents() -> None:
    scores, tasks, _ = _store(300)
    scores[::7, 1] = np.nan  # a model that skipped some prompts
    col = np.where(np.arange(300) % 5 == 0, scores[:, 0], np.nan)
    out, _ = impute_column(scores, tasks, col, list("abcdef"))
    assert np.isfinite(out).all()
    out2, res2 = impute_column(np.zeros((300, 0)), tasks, col, [])
    assert res2.filled == 0 and "no other model" in res2.reason
    np.testing.assert_array_equal(np.isnan(out2), np.isnan(col))
