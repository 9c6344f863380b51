"""Pool design by greedy submodular coverage (``optiroute.fit.pool`` and ``optiroute select-models``)."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from optiroute.cli.app import app
from optiroute.errors import InvalidInputError
from optiroute.fit.pool import coverage, select_models, select_models_from_data

SLICE = Path(__file__).parent / "fixtures" / "mmlu_slice"
runner = CliRunner()

# A is the best single model and B the second best, but B is right only where A is; C is weak alone
# and right exactly where A is wrong. Hand-computed: f({A}) = 3/4, f({A, B}) = 3/4, f({A, C}) = 1.
SCORES = np.array([[1, 1, 0], [1, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=float)
MODELS = ["A", "B", "C"]


def test_complementary_model_beats_the_second_best_single_model() -> None:
    sel = select_models(SCORES, MODELS, 2)
    assert sel.models == ["A", "C"]
    assert sel.gains == pytest.approx([0.75, 0.25])
    assert sel.coverage == pytest.approx([0.75, 1.0])
    assert sel.best_single_models == ["A", "B"] and sel.best_single_coverage == pytest.approx(0.75)
    assert sel.mean_score == pytest.approx([0.75, 0.25])


def test_missing_cells_count_as_the_models_mean_and_cost_breaks_ties() -> None:
    s = np.array([[1.0, np.nan], [0.0, 1.0], [1.0, 0.0]])
    # B's missing cell is B's mean (0.5): f({A, B}) = (1 + 1 + 1) / 3.
    assert coverage(s, [0, 1]) == pytest.approx(1.0)
    assert coverage(s, [1]) == pytest.approx(0.5)
    same = np.array([[1.0, 1.0], [0.0, 0.0]])
    costs = np.array([[2.0, 1.0], [2.0, 1.0]])
    assert select_models(same, ["dear", "cheap"], 1, costs=costs).models == ["cheap"]
    # Cost-aware: a slightly better but 10x dearer model loses at w = 0.5.
    s2 = np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # dear 0.75, cheap 0.75 ...
    s2[2, 0] = 0.2                                                      # ... dear 0.8
    c2 = np.array([[10.0, 1.0]] * 4)
    assert select_models(s2, ["dear", "cheap"], 1, costs=c2).models == ["dear"]
    assert select_models(s2, ["dear", "cheap"], 1, costs=c2, cost_weight=0.5).models == ["cheap"]


def test_greedy_is_monotone_submodular_and_near_optimal() -> None:
    rng = np.random.default_rng(0)
    for _ in range(30):
        s = (rng.random((40, 7)) < rng.random(7)).astype(float)
        names = [f"m{j}" for j in range(7)]
        sel = select_models(s, names, 4)
        assert all(g >= -1e-12 for g in sel.gains)
        assert all(a >= b - 1e-12 for a, b in zip(sel.gains[1:], sel.gains[2:], strict=False))  # diminishing returns
        cols = [names.index(m) for m in sel.models]
        assert sel.coverage[-1] == pytest.approx(coverage(s, cols))
        best = max(coverage(s, list(c)) for c in itertools.combinations(range(7), 4))
        assert sel.coverage[-1] >= (1 - 1 / np.e) * best


def test_bad_arguments() -> None:
    with pytest.raises(InvalidInputError, match="k must be"):
        select_models(SCORES, MODELS, 4)
    with pytest.raises(InvalidInputError, match="k must be"):
        select_models(SCORES, MODELS, 0)
    with pytest.raises(InvalidInputError):
        select_models(SCORES, ["A", "B"], 1)
    with pytest.raises(InvalidInputError, match="cost matrix"):
        select_models(SCORES, MODELS, 1, cost_weight=0.3)


def test_select_models_from_data_uses_train_split_only() -> None:
    import pandas as pd

    sel = select_models_from_data(SLICE, 2)
    p = pd.read_csv(SLICE / "prompts.csv.gz", dtype={"prompt_id": str})
    o = pd.read_csv(SLICE / "outcomes.csv.gz", dtype={"prompt_id": str})
    train = o[o["prompt_id"].isin(set(p.loc[p["split"] == "train", "prompt_id"]))]
    assert sel.n_prompts == train["prompt_id"].nunique()
    first = train.groupby("model")["score"].mean().idxmax()
    assert sel.models[0] == first
    assert sel.gains[0] == pytest.approx(train.groupby("model")["score"].mean().max(), abs=1e-6)


def test_cli_select_models_prints_gains_and_writes_csv_and_json(tmp_path: Path) -> None:
    out = tmp_path / "pool.csv"
    res = runner.invoke(app, ["select-models", "--data", str(SLICE), "--k", "3", "--out", str(out)],
                        env={"COLUMNS": "200"}, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open()))
    assert [r["rank"] for r in rows] == ["1", "2", "3"]
    sel = select_models_from_data(SLICE, 3)
    assert [r["model"] for r in rows] == sel.models
    assert float(rows[1]["marginal_gain"]) == pytest.approx(sel.gains[1], abs=1e-5)
    assert "--pool " + ",".join(sel.models) in res.output.replace("\n", "")
    js = tmp_path / "pool.json"
    res = runner.invoke(app, ["select-models", "--data", str(SLICE), "--k", "2", "--out", str(js),
                              "--cost-weight", "0.2"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    data = json.loads(js.read_text())
    assert len(data["models"]) == 2 and data["cost_weight"] == 0.2


def test_cli_select_models_errors_exit_2(tmp_path: Path) -> None:
    res = runner.invoke(app, ["select-models", "--data", str(SLICE), "--k", "9"])
    assert res.exit_code == 2 and "k must be" in res.output
    res = runner.invoke(app, ["select-models", "--data", str(tmp_path), "--k", "2"])
    assert res.exit_code == 2 and "prompts" in res.output
