"""``optiroute bench`` end to end on a tiny cut of the MMLU-Pro slice (real MiniLM, ~100 prompts).

The bench run is done once per module (embeddings cached in a temporary directory, which the CLI
tests reuse through ``--cache-dir``), then its outputs, its numbers and every CLI path are checked.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from optiroute.bench.embed_cache import LookupEmbedder, cached_encode
from optiroute.bench.evaluate import run_bench
from optiroute.bench.report import markdown, plot_title, write_outputs
from optiroute.bench.verdict import bootstrap_verdict, prompts_needed, verdict_lines
from optiroute.cli.app import app
from optiroute.errors import DataFormatError, InvalidInputError
from optiroute.metrics import baselines as bl
from optiroute.quality.base import KINDS

SLICE = Path(__file__).parent / "fixtures" / "mmlu_slice"
runner = CliRunner()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """80 train (40 math, 40 law: two task labels) + 20 test prompts of the slice, with outcomes and prices."""
    d = tmp_path_factory.mktemp("tiny")
    p = pd.read_csv(SLICE / "prompts.csv.gz", dtype={"prompt_id": str})
    p = pd.concat([p[p["split"] == "train"].groupby("task").head(40), p[p["split"] == "test"]])
    o = pd.read_csv(SLICE / "outcomes.csv.gz", dtype={"prompt_id": str})
    o = o[o["prompt_id"].isin(set(p["prompt_id"]))]
    # One missing cell on a test prompt, to exercise "missing = unknown".
    test_id = p.loc[p["split"] == "test", "prompt_id"].iloc[0]
    o = o[~((o["prompt_id"] == test_id) & (o["model"] == o["model"].iloc[0]))]
    p.to_csv(d / "prompts.csv.gz", index=False)
    o.to_csv(d / "outcomes.csv.gz", index=False)
    (d / "prices.csv").write_text((SLICE / "prices.csv").read_text())
    return d


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embcache")


@pytest.fixture(scope="module")
def run(tiny: Path, cache: Path):
    return run_bench(tiny, cache_dir=cache, overhead_n=8)


def test_bench_result_numbers_are_consistent_with_the_data(run, tiny: Path) -> None:
    result, decisions, ids = run
    assert result.n_train == 80 and result.n_test == 20 and len(ids) == 20
    assert decisions.shape == (len(result.router), 20)
    assert result.missing_cells == 1
    # Best single and cheapest follow from the singles table.
    assert result.best_single == max(result.singles, key=lambda m: result.singles[m][0])
    assert result.c_lo == min(c for _, c in result.singles.values())
    # Each operating point's mean is recomputable from its decisions and the raw outcomes.
    o = pd.read_csv(tiny / "outcomes.csv.gz", dtype={"prompt_id": str}).set_index(["prompt_id", "model"])
    for pt, row in zip(result.router, decisions, strict=True):
        s = [o["score"].get((pid, result.models[j]), np.nan) for pid, j in zip(ids, row, strict=True)]
        s = np.array(s, dtype=float)
        assert pt.left_out == int(np.isnan(s).sum())
        assert pt.mean_score == pytest.approx(float(np.nanmean(s)), abs=1e-6)
    names = [s.method for s in result.summaries]
    assert names[0] == "router" and any(n.startswith("per-task best") for n in names)
    assert any(n.startswith("plain kNN") for n in names) and any(n.startswith("random mix") for n in names)
    router = result.summaries[0]
    assert 0.0 <= router.aiq <= 1.0
    # The oracle is at least as good as any single model.
    assert result.oracle[0] >= max(q for q, _ in result.singles.values()) - 1e-9
    assert result.pair is not None
    assert {r.method for r in result.pair.rows} == {
        "router", "plain kNN (MiniLM, k=100, no cards)", "random mix",
        *(f"predictor {k}" for k in KINDS if k != "stack")}
    random_row = next(r for r in result.pair.rows if r.method == "random mix")
    assert random_row.apgr == pytest.approx(0.5)
    assert result.overhead is not None and result.overhead.decisions_per_s > 0
    # Even 80 train prompts are cross-validated (no minimum that keeps one kind).
    assert result.predictor.startswith("auto -> ") and "CV AIQ over 80 train prompts" in result.predictor


def test_every_predictor_kind_is_a_method_of_the_same_run(run) -> None:
    result = run[0]
    assert set(result.predictors) == set(KINDS) - {"stack"}
    by_name = {s.method: s for s in result.summaries}
    for k in set(KINDS) - {"stack"}:
        assert 0.0 <= by_name[f"predictor {k}"].aiq <= 1.0
        assert 0.0 <= by_name[f"predictor {k}: quality matrix, linear cost sweep (no scorer/policy)"].aiq <= 1.0
    # The router is guarded; each kind's row is that kind alone (its own unguarded fit).
    assert result.guard is not None and "predictor mlp" in markdown(result)


def test_bench_with_a_named_predictor_and_no_comparison(tiny: Path, cache: Path) -> None:
    result, _, _ = run_bench(tiny, cache_dir=cache, overhead_n=0, predictor="mlp", compare=["routoo"])
    assert result.predictor == "mlp"
    assert set(result.predictors) == {"routoo"}
    assert [s.method for s in result.summaries][:2] == ["router", "predictor routoo"]


def test_outputs_are_written_in_the_documented_format(run, tmp_path: Path) -> None:
    result, decisions, ids = run
    paths = write_outputs(result, decisions, ids, tmp_path / "out")
    names = {p.name for p in paths}
    assert {"report.md", "curve.csv", "decisions.csv.gz"} <= names
    with (tmp_path / "out" / "curve.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["point", "cost_weight", "mean_cost_usd", "mean_score"]
    assert len(rows) == len(result.router)
    with gzip.open(tmp_path / "out" / "decisions.csv.gz", "rt") as f:
        d = list(csv.DictReader(f))
    assert list(d[0]) == ["prompt_id", "point", "model"]
    assert len(d) == len(result.router) * len(ids)
    assert {r["model"] for r in d} <= set(result.models)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "AIQ" in report and "APGR" in report and "decisions/s" in report
    if "cost_quality.png" in names:
        assert (tmp_path / "out" / "cost_quality.png").read_bytes()[:4] == b"\x89PNG"
    assert markdown(result).count("| router") >= 1


def test_cli_bench_writes_outputs(tiny: Path, cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    res = runner.invoke(app, ["bench", "--data", str(tiny), "--out", str(out), "--cache-dir", str(cache),
                              "--overhead-n", "0"], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert "router AIQ" in res.output
    assert (out / "report.md").exists() and (out / "curve.csv").exists() and (out / "decisions.csv.gz").exists()
    assert all(len(line) <= 80 for line in res.stdout.splitlines())
    # It ends with the bottom line, and 20 test prompts are too few to conclude anything.
    words = " ".join(res.stdout.split())
    tail = words[words.index("wrote "):]
    assert any(h in tail for h in ("Routing beats", "Routing does worse", "Not conclusive"))
    assert "Warning: 20 test prompts are too few" in tail
    res = runner.invoke(app, ["bench", "--data", str(tiny), "--out", str(out), "--cache-dir", str(cache),
                              "--overhead-n", "0", "--json"])
    data = json.loads(res.stdout)
    assert data["verdict"]["n_test"] == 20 and data["verdict"]["text"][0] in words
    assert data["best_single"] in data["verdict"]["text"][1]


def test_the_verdict_matches_a_recomputation_and_its_interval_holds_the_point(run) -> None:
    result, decisions, _ = run
    v = result.verdict
    assert v is not None and v.n_test == result.n_test and v.best_single == result.best_single
    by_name = {s.method: s for s in result.summaries}
    assert v.router_aiq == pytest.approx(by_name["router"].aiq, abs=1e-6)
    assert v.single_aiq == pytest.approx(by_name["single models"].aiq, abs=1e-6)
    assert v.best_quality == pytest.approx(result.singles[result.best_single][0])
    assert v.router_aiq_ci[0] <= v.router_aiq <= v.router_aiq_ci[1]
    assert v.gain_ci[0] <= v.gain + 1e-9 and v.gain - 1e-9 <= v.gain_ci[1]
    half = (v.gain_ci[1] - v.gain_ci[0]) / 2
    assert half > 0.01  # 20 prompts cannot pin the gain to 0.01
    lines = verdict_lines(v)
    assert lines[-1].startswith("Warning: 20 test prompts are too few")
    assert prompts_needed(v) > 20
    report = markdown(result)
    assert report.startswith("## Bottom line\n\n" + lines[0])


def test_a_verdict_on_a_clear_win_is_conclusive_and_plain() -> None:
    n = 2000
    easy = np.arange(n) % 2 == 0  # the cheap model is right on the easy half, the dear one everywhere
    scores = np.stack([np.ones(n), easy.astype(float)], axis=1)
    costs = np.tile([0.01, 0.0001], (n, 1))
    # Operating points: all dear, route the easy half to the cheap model, all cheap.
    decisions = np.stack([np.zeros(n, int), np.where(easy, 1, 0), np.ones(n, int)])
    v = bootstrap_verdict(decisions, scores, costs, ["dear", "cheap"], "dear", 0.0001, 0.01, n_boot=200)
    assert v.gain_ci[0] > 0 and v.match_cost_fraction == pytest.approx((0.5 * 0.01 + 0.5 * 0.0001) / 0.01)
    lines = verdict_lines(v)
    assert lines[0].startswith("Routing beats always using one model here")
    assert any(line.startswith("It matches dear's quality at 50 % of its cost (saves") for line in lines)
    assert not any(line.startswith("Warning") for line in lines)


def test_the_plot_is_titled_from_the_data(run, tmp_path: Path) -> None:
    result = run[0]
    assert plot_title(result) == f"{Path(result.data).name}: 20 test prompts, {len(result.models)} models"
    generic = result.model_copy(update={"data": str(tmp_path / "mmlu_pro" / "data")})
    assert plot_title(generic).startswith("mmlu_pro: 20 test prompts")


def test_cli_bench_named_predictor_without_comparison(tiny: Path, cache: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["bench", "--data", str(tiny), "--out", str(tmp_path / "r"), "--cache-dir",
                              str(cache), "--overhead-n", "0", "--predictor", "routoo", "--compare", "none"])
    assert res.exit_code == 0, res.output
    assert "predictor: routoo" in res.output
    assert "| predictor " not in (tmp_path / "r" / "report.md").read_text()


def test_cli_bench_pool_and_pair(tiny: Path, cache: Path, tmp_path: Path, run) -> None:
    result = run[0]
    strong, weak = result.best_single, result.cheapest
    other = next(m for m in result.models if m not in (strong, weak))
    out = tmp_path / "pool"
    res = runner.invoke(app, ["bench", "--data", str(tiny), "--out", str(out), "--cache-dir", str(cache),
                              "--overhead-n", "0", "--pool", f"{strong},{weak},{other}",
                              "--pair", f"{other},{weak}"])
    assert res.exit_code == 0, res.output
    with gzip.open(out / "decisions.csv.gz", "rt") as f:
        assert {r["model"] for r in csv.DictReader(f)} <= {strong, weak, other}
    report = (out / "report.md").read_text()
    assert f"strong {other}" in report and "3 models" in report


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--pool", "no-such-model,other"], "no outcomes"),
        (["--pair", "only-one"], "exactly two"),
        (["--predictor", "no-such-predictor"], "predictor"),
    ],
)
def test_cli_bench_errors_exit_2_with_a_message(tiny: Path, cache: Path, tmp_path: Path, args, needle) -> None:
    res = runner.invoke(app, ["bench", "--data", str(tiny), "--out", str(tmp_path), "--cache-dir", str(cache),
                              "--overhead-n", "0", *args])
    assert res.exit_code == 2
    assert needle in res.output


def test_bench_needs_train_and_test_splits(tmp_path: Path, tiny: Path) -> None:
    p = pd.read_csv(tiny / "prompts.csv.gz", dtype={"prompt_id": str})
    p["split"] = "train"
    p.to_csv(tmp_path / "prompts.csv.gz", index=False)
    (tmp_path / "outcomes.csv.gz").write_bytes((tiny / "outcomes.csv.gz").read_bytes())
    with pytest.raises(DataFormatError, match="split 'train' and 'test'"):
        run_bench(tmp_path)


def test_bench_needs_a_cost_for_every_model(tmp_path: Path, tiny: Path) -> None:
    (tmp_path / "prompts.csv.gz").write_bytes((tiny / "prompts.csv.gz").read_bytes())
    o = pd.read_csv(tiny / "outcomes.csv.gz", dtype={"prompt_id": str})
    o["cost_usd"] = np.nan
    o.to_csv(tmp_path / "outcomes.csv.gz", index=False)  # and no prices.csv
    with pytest.raises(DataFormatError, match="prices.csv"):
        run_bench(tmp_path)


def test_bench_pool_of_one_is_refused(tiny: Path, run) -> None:
    with pytest.raises(InvalidInputError, match="two models"):
        run_bench(tiny, pool=[run[0].models[0]])


class _Counting:
    """A deterministic embedder that counts what it is asked to encode."""

    dim, name = 4, "counting"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts, *, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        self.seen += list(texts)
        v = np.array([[len(t), t.count("a"), t.count("e"), 1.0] for t in texts], dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_cached_encode_reuses_rows_across_calls(tmp_path: Path) -> None:
    e = _Counting()
    a = cached_encode(e, ["alpha", "beta"], tmp_path)
    b = cached_encode(e, ["beta", "gamma", "alpha"], tmp_path)
    assert e.seen == ["alpha", "beta", "gamma"]  # beta and alpha came from the cache file
    np.testing.assert_allclose(b[[2, 0]], a, atol=1e-3)  # float16 storage
    assert cached_encode(e, ["gamma"], None).shape == (1, 4)


def test_lookup_embedder_serves_known_texts_and_encodes_the_rest() -> None:
    e = _Counting()
    vecs = np.eye(4, dtype=np.float32)[:2]
    lk = LookupEmbedder(e, ["known one", "known two"], vecs)
    out = lk.encode(["known two", "fresh"])
    np.testing.assert_array_equal(out[0], vecs[1])
    assert e.seen == ["fresh"]
    lk.clear()
    lk.encode(["known one"])
    assert e.seen == ["fresh", "known one"]


def test_baselines_on_a_hand_made_matrix() -> None:
    scores = np.array([[1, 0], [0, 1], [1, np.nan]], dtype=np.float32)
    costs = np.array([[2, 1], [2, 1], [2, 1]], dtype=np.float32)
    # Prompt 3 to model 1 is a missing cell: left out of the mean (1 + 1) / 2.
    assert bl.realise(np.array([0, 1, 1]), scores, costs) == (pytest.approx(1.0), pytest.approx(1.5), 1)
    # Oracle: prompt 1 -> model 0, prompt 2 -> model 1 (cheaper and right), prompt 3 -> model 0.
    assert bl.oracle_choice(scores, costs).tolist() == [0, 1, 0]
    assert bl.single_models(scores, costs)[1] == (pytest.approx(0.5), pytest.approx(1.0))
    mix = bl.random_mix(1.0, 2.0, 0.0, 1.0, [0.0, 0.5, 1.0])
    assert mix == [(1.0, 0.0), (1.5, 0.5), (2.0, 1.0)]
    table = bl.per_task_table(["a", "a", "b"], scores, ["b", "c"])
    np.testing.assert_allclose(table[0], [1.0, 0.5])  # task b has no model-1 outcome: overall mean
    np.testing.assert_allclose(table[1], [2 / 3, 0.5])  # unseen task: overall means
    curve = bl.threshold_pair_curve(np.array([0.9, -0.5, 0.1]), scores, 0, 1, [0.0, 1 / 3, 1.0])
    assert curve[0] == (0.0, pytest.approx(0.5))  # all weak: (0 + 1) / 2, the missing cell left out
    assert curve[1] == (pytest.approx(1 / 3), pytest.approx(1.0))  # prompt 1 (largest gap) to strong: 1, 1, (nan)
    assert curve[2][1] == pytest.approx(2 / 3)
    choices = bl.sweep_choices(np.array([[0.9, 0.8]]), np.array([10.0, 1.0]), [0.0, 1.0])
    assert [c.tolist() for _, c in choices] == [[0], [1]]
    assert math.isnan(bl.realise(np.array([1]), np.array([[1, np.nan]]), np.array([[1, 1]]))[0])


def test_default_compare_skips_kinds_the_data_cannot_fit(tiny: Path, cache: Path, tmp_path: Path) -> None:
    for name in ("outcomes.csv.gz", "prices.csv"):
        (tmp_path / name).write_bytes((tiny / name).read_bytes())
    p = pd.read_csv(tiny / "prompts.csv.gz", dtype={"prompt_id": str})
    p["task"] = ""  # no task labels: the task kind has nothing to learn
    p.to_csv(tmp_path / "prompts.csv.gz", index=False)
    result = run_bench(tmp_path, cache_dir=cache, overhead_n=0)[0]
    assert set(result.predictors) == set(KINDS) - {"task", "stack"}


def test_a_pasted_system_prompt_is_learned_on_train_and_stripped_from_train_and_test(
        tiny: Path, cache: Path, tmp_path: Path) -> None:
    system = "\n".join(f"Policy {i}: you are a careful exam tutor; answer with the letter of the best option."
                       for i in range(30))
    pre = tmp_path / "prefixed"
    pre.mkdir()
    p = pd.read_csv(tiny / "prompts.csv.gz", dtype={"prompt_id": str})
    p.assign(text=system + "\n\n" + p["text"]).to_csv(pre / "prompts.csv.gz", index=False)
    for name in ("outcomes.csv.gz", "prices.csv"):
        (pre / name).write_bytes((tiny / name).read_bytes())
    kw = {"cache_dir": cache, "overhead_n": 0, "predictor": "knn", "compare": ()}
    plain = run_bench(tiny, **kw)[0]
    on = run_bench(pre, **kw)[0]
    off = run_bench(pre, strip_shared=False, **kw)[0]
    assert any("30 shared lines" in n and "80 of 80 training prompts" in n for n in on.notes)
    assert not any("shared" in n for n in plain.notes + off.notes)
    # The router's strong/weak curve reads only its predicted quality (vectors, outcomes, cards): with
    # the system prompt stripped from train and test it is the plain set's; embedded as given, it is not.
    assert on.pair is not None and plain.pair is not None and off.pair is not None
    np.testing.assert_allclose(on.pair.curves["router"], plain.pair.curves["router"], atol=1e-6)
    assert not np.allclose(off.pair.curves["router"], plain.pair.curves["router"], atol=1e-6)
    res = runner.invoke(app, ["bench", "--data", str(pre), "--out", str(tmp_path / "r"), "--cache-dir", str(cache),
                              "--overhead-n", "0", "--predictor", "knn", "--compare", "none", "--keep-shared"])
    assert res.exit_code == 0, res.output
    assert "shared lines" not in (tmp_path / "r" / "report.md").read_text()
