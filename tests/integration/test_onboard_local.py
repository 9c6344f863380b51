"""The real onboarding path once: ``optiroute onboard`` against SmolLM2 served by llama.cpp.

A router is fitted on the bundled MMLU-Pro slice (math and law, four models) and saved; the CLI then
asks the local SmolLM2-135M (served as ``smollm2`` by the ``llama_server`` fixture) the K-Means
representatives over real HTTP, scores its answers against the MMLU-Pro reference letters
(``tests/fixtures/mmlu_slice_answers.csv``, from TIGER-AI-Lab/MMLU-Pro, Apache-2.0) and saves the
router with the new outcome column. The reloaded router must have those outcomes and predict a
quality for SmolLM2 on unseen prompts. A second CLI run on the saved router adds 8 more outcomes on
other prompts and keeps the first 8. Bounded: 2 x 8 representatives, 32 answer tokens each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner, Result

from optiroute import Router
from optiroute.cli.app import app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SLICE = FIXTURES / "mmlu_slice"
K = 8


def _onboard(base_url: str, router: Path, out: Path) -> Result:
    """``optiroute onboard`` of smollm2 on K representatives of the saved router, saved to ``out``."""
    return CliRunner().invoke(app, [
        "onboard", "--router", str(router), "--model", "smollm2", "--base-url", base_url,
        "--prompts", str(SLICE / "prompts.csv.gz"), "--references", str(FIXTURES / "mmlu_slice_answers.csv"),
        "--k", str(K), "--max-tokens", "32", "--timeout", "240", "--out", str(out),
    ])


def test_onboard_smollm2_from_a_real_local_server(llama_server, tmp_path: Path) -> None:
    router = Router.fit(SLICE / "prompts.csv.gz", SLICE / "outcomes.csv.gz", SLICE / "prices.csv",
                        predictor="knn")
    router.save(tmp_path / "router")
    res = _onboard(llama_server.base_url, tmp_path / "router", tmp_path / "onboarded")
    assert res.exit_code == 0, res.output

    loaded = Router.load(tmp_path / "onboarded")
    col = loaded.index.column("smollm2")
    assert col is not None
    got = loaded.index.scores[:, col]
    assert np.isfinite(got).sum() == K  # one scored outcome per representative, NaN elsewhere
    assert set(np.unique(got[np.isfinite(got)])) <= {0.0, 1.0}  # letter vs reference: right or wrong
    assert "SmolLM2-135M-Instruct" in loaded.models
    card = loaded.registry.get("smollm2")
    assert card.sources["accuracy"].startswith("onboarding:")  # its imputed level was recalibrated

    test = pd.read_csv(SLICE / "prompts.csv.gz", dtype={"prompt_id": str})
    texts = test.loc[test["split"] == "test", "text"].tolist()[:5]
    q = loaded.predict_quality(texts)
    j = loaded.models.index("SmolLM2-135M-Instruct")
    assert q.shape == (5, len(loaded.models)) and np.isfinite(q[:, j]).all()
    support = loaded.decide_batch(texts, preferences="quality-first").parts[0].support[:, j]
    assert (support > 0).any()  # the new outcomes are evidence for similar prompts, not just the card

    again = _onboard(llama_server.base_url, tmp_path / "onboarded", tmp_path / "again")
    assert again.exit_code == 0, again.output
    assert f"from {2 * K} measured outcomes, {K} of them from earlier runs" in " ".join(again.output.split())
    more = Router.load(tmp_path / "again")
    got2 = more.index.scores[:, more.index.column("smollm2")]
    assert np.isfinite(got2).sum() == 2 * K
    np.testing.assert_array_equal(got2[np.isfinite(got)], got[np.isfinite(got)])  # the first run's outcomes kept
