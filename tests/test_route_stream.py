"""Streaming a prompt file through the router in bounded memory (``optiroute route-batch``).

The library path runs on a router fitted on the MMLU-Pro slice with a deterministic hash embedder
(fast, no model load); the CLI test loads a saved router, which routes with the real MiniLM.
"""

from __future__ import annotations

import csv
import gzip
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from optiroute import Router
from optiroute.cli.app import app
from optiroute.errors import DataFormatError
from optiroute.router.route_file import OUTPUT_COLUMNS, iter_prompt_chunks, route_file
from tests.support.fakes import HashEmbedder

SLICE = Path(__file__).parent / "fixtures" / "mmlu_slice"
runner = CliRunner()


@pytest.fixture(scope="module")
def router() -> Router:
    r = Router.fit(SLICE / "prompts.csv.gz", SLICE / "outcomes.csv.gz", SLICE / "prices.csv",
                   embedder=HashEmbedder())
    r.decide_batch(["warm up the analyzer and store"])
    return r


@pytest.fixture(scope="module")
def base_texts() -> list[str]:
    return pd.read_csv(SLICE / "prompts.csv.gz", dtype={"prompt_id": str})["text"].tolist()


def _write(path: Path, texts: list[str], *, ids: bool = True) -> None:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["prompt_id", "text"] if ids else ["text"])
        for i, t in enumerate(texts):
            w.writerow([f"p{i}", t] if ids else [t])


def test_streamed_output_equals_decide_batch_on_the_whole_file(router: Router, base_texts, tmp_path) -> None:
    texts = base_texts[:50]
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    _write(src, texts)
    stats = route_file(router, src, out, preferences="cost-effective", chunk=7)
    assert stats.rows == 50 and stats.chunks == 8 and stats.max_chunk_rows == 7
    got = pd.read_csv(out, dtype={"prompt_id": str})
    assert tuple(got.columns) == OUTPUT_COLUMNS
    whole = router.decide_batch(texts, preferences="cost-effective")
    assert got["prompt_id"].tolist() == [f"p{i}" for i in range(50)]
    assert got["model"].tolist() == whole.model_names
    assert np.allclose(got["predicted_quality"], whole.column("quality"), atol=1e-6)
    assert np.allclose(got["predicted_cost_usd"], whole.column("cost"), rtol=1e-5)
    assert stats.total_predicted_cost_usd == pytest.approx(float(whole.column("cost").sum()), rel=1e-5)
    assert sum(stats.models.values()) == 50
    assert not (tmp_path / "out.csv.part").exists()


def test_gzip_in_and_out_without_prompt_ids(router: Router, base_texts, tmp_path) -> None:
    texts = base_texts[100:130]
    src, out = tmp_path / "in.csv.gz", tmp_path / "out.csv.gz"
    _write(src, texts, ids=False)
    route_file(router, src, out, chunk=11, candidates=["gpt-4o", "Meta-Llama-3_1-8B-Instruct"])
    with gzip.open(out, "rt") as fh:
        got = pd.read_csv(fh, dtype={"prompt_id": str})
    assert got["prompt_id"].tolist() == [str(i) for i in range(30)]
    whole = router.decide_batch(texts, candidates=["gpt-4o", "Meta-Llama-3_1-8B-Instruct"])
    assert got["model"].tolist() == whole.model_names


def test_memory_is_bounded_by_the_chunk_not_the_file(router: Router, base_texts, tmp_path) -> None:
    short = [(t * 4)[:600] for t in base_texts]

    def peak(n: int) -> tuple[int, int]:
        src, out = tmp_path / f"in{n}.csv", tmp_path / f"out{n}.csv"
        _write(src, [f"{short[i % len(short)]} #{i}" for i in range(n)])
        sizes: list[int] = []
        real = router.decide_batch

        def spy(texts, **kw):
            sizes.append(len(texts))
            return real(texts, **kw)

        router.decide_batch = spy  # type: ignore[method-assign]
        try:
            tracemalloc.start()
            route_file(router, src, out, chunk=100)
            _, top = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        finally:
            del router.decide_batch
        assert max(sizes) <= 100 and sum(sizes) == n
        assert sum(1 for _ in open(out)) == n + 1
        return top, src.stat().st_size

    small, _ = peak(1_000)
    big, big_file = peak(12_000)
    # 12x the rows, about the same peak: nothing scales with the file. Reading the whole file would
    # hold at least its text in memory.
    assert big < 1.5 * small + 512 * 1024, (small, big)
    assert big < big_file / 2, (small, big, big_file)


def test_bad_files_raise_data_format_errors(router: Router, tmp_path) -> None:
    (tmp_path / "notext.csv").write_text("prompt_id,prompt\n1,hello\n")
    with pytest.raises(DataFormatError, match="no 'text' column"):
        route_file(router, tmp_path / "notext.csv", tmp_path / "o.csv")
    (tmp_path / "blank.csv").write_text("prompt_id,text\na,hello there\nb,  \n")
    with pytest.raises(DataFormatError, match=r"Row 2 .*'b'.* empty text"):
        route_file(router, tmp_path / "blank.csv", tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "o.csv.part").exists()
    with pytest.raises(DataFormatError, match="does not exist"):
        list(iter_prompt_chunks(tmp_path / "missing.csv", 10))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataFormatError, match="empty"):
        route_file(router, tmp_path / "empty.csv", tmp_path / "o.csv")


def test_cli_route_batch_with_a_saved_router(router: Router, base_texts, tmp_path) -> None:
    saved = router.save(tmp_path / "router")
    texts = base_texts[200:224]
    src, out = tmp_path / "prompts.csv", tmp_path / "decisions.csv"
    _write(src, texts)
    res = runner.invoke(app, ["route-batch", "--input", str(src), "--out", str(out), "-p", "quality-first",
                              "--router", str(saved), "--chunk", "10"], env={"COLUMNS": "200"},
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "routed 24 prompts in 3 chunk(s)" in res.output
    got = pd.read_csv(out, dtype={"prompt_id": str})
    loaded = Router.load(saved)  # routes with the real MiniLM, as the CLI did
    whole = loaded.decide_batch(texts, preferences="quality-first")
    assert got["model"].tolist() == whole.model_names
    assert np.allclose(got["predicted_quality"], whole.column("quality"), atol=1e-4)


def test_cli_route_batch_errors_exit_2(tmp_path) -> None:
    (tmp_path / "bad.csv").write_text("id,prompt\n1,x\n")
    res = runner.invoke(app, ["route-batch", "--input", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "o.csv")],
                        env={"COLUMNS": "300"})
    assert res.exit_code == 2 and "text" in res.output
    res = runner.invoke(app, ["route-batch", "--input", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o.csv")],
                        env={"COLUMNS": "300"})
    assert res.exit_code == 2 and "does not exist" in res.output


def test_a_budget_caps_the_whole_file_and_carries_savings_over(router: Router, base_texts, tmp_path) -> None:
    texts = base_texts[:60]
    src = tmp_path / "in.csv"
    _write(src, texts)
    free = route_file(router, src, tmp_path / "free.csv", preferences="quality-first", chunk=16)
    cheapest = router.decide_batch(texts, preferences={"cost": 1.0})
    floor = float(cheapest.column("cost").sum())
    budget = floor + 0.3 * (free.total_predicted_cost_usd - floor)
    stats = route_file(router, src, tmp_path / "b.csv", chunk=16, budget_usd=budget)
    got = pd.read_csv(tmp_path / "b.csv", dtype={"prompt_id": str})
    assert stats.rows == 60 and stats.budget_usd == budget and len(got) == 60
    spent = float(got["predicted_cost_usd"].sum())
    assert spent <= budget * (1 + 1e-6) and spent == pytest.approx(stats.total_predicted_cost_usd, rel=1e-4)
    # Within the budget it buys more predicted quality than the cheapest model everywhere.
    assert got["predicted_quality"].mean() > float(cheapest.column("quality").mean())
    # The same budget over the same prompts as one batch: streaming loses little of the optimum.
    whole = router.decide_batch(texts, budget_usd=budget)
    assert got["predicted_quality"].mean() >= float(whole.column("quality").mean()) - 0.02


def test_a_budget_below_the_cheapest_routing_fails_and_writes_nothing(router: Router, base_texts, tmp_path) -> None:
    from optiroute.errors import BudgetExceededError, InvalidInputError

    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    _write(src, base_texts[:20])
    with pytest.raises(BudgetExceededError, match="Raise budget_usd"):
        route_file(router, src, out, chunk=8, budget_usd=1e-9)
    assert not out.exists() and not (tmp_path / "out.csv.part").exists()
    with pytest.raises(InvalidInputError, match="positive"):
        route_file(router, src, out, budget_usd=-1.0)


def test_cli_route_batch_budget(router: Router, base_texts, tmp_path) -> None:
    saved = router.save(tmp_path / "router")
    src, out = tmp_path / "prompts.csv", tmp_path / "decisions.csv"
    _write(src, base_texts[:12])
    res = runner.invoke(app, ["route-batch", "--input", str(src), "--out", str(out), "--router", str(saved),
                              "--budget", "0.05"], env={"COLUMNS": "200"}, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "of a $0.05 budget" in res.output
    assert pd.read_csv(out)["predicted_cost_usd"].sum() <= 0.05
    res = runner.invoke(app, ["route-batch", "--input", str(src), "--out", str(out), "--router", str(saved),
                              "--budget", "0.0000000001"], env={"COLUMNS": "300"})
    assert res.exit_code == 2 and "budget" in res.output
