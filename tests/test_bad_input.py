"""Bad input never surfaces a traceback from inside numpy or annoy: each gets an OptiRouteError."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from optiroute import (
    ArtifactNotFoundError,
    CorruptArtifactError,
    DataFormatError,
    InvalidInputError,
    InvalidPreferencesError,
    NoEligibleModelError,
    Router,
    UnknownModelWarning,
    UnknownProfileError,
    UnsupportedFormatError,
)

CANDS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-haiku"]


@pytest.mark.parametrize("prompt", ["", "  \n ", None, b"bytes", 3.14, [], [{"role": "user", "content": ""}]])
def test_bad_prompts(default_router, prompt):
    with pytest.raises(InvalidInputError):
        default_router.decide(prompt, candidates=CANDS)


def test_huge_prompt_is_pruned_and_routed_by_context_window(default_router):
    log = "Explain this log line by line. " + "error at line 42 " * 20_000  # ~85k tokens
    d = default_router.decide(log, candidates=["gpt-4o-mini", "Mistral-7B-Instruct-v0.2", "claude-3-5-haiku"])
    assert d.profile.pruned and d.profile.est_input_tokens > 80_000
    assert d.score_of("Mistral-7B-Instruct-v0.2").excluded.startswith("context window")
    with pytest.raises(NoEligibleModelError, match="context window"):
        default_router.decide(log * 3, candidates=CANDS)  # ~255k tokens: beyond every window


@pytest.mark.parametrize("prefs", [{"accuracy": float("nan")}, {"cost": -1}, {"cost": 2}, {"speed": 1}, {"accuracy": 0}])
def test_bad_weights(default_router, prefs):
    with pytest.raises(InvalidPreferencesError):
        default_router.decide("hello", preferences=prefs, candidates=CANDS)


def test_unknown_profile(default_router):
    with pytest.raises(UnknownProfileError, match="cost-effective"):
        default_router.decide("hello", preferences="cheap", candidates=CANDS)


def test_all_candidates_excluded_lists_reasons(default_router):
    with pytest.raises(NoEligibleModelError) as err:
        default_router.decide("hello", candidates=["Mistral-7B-Instruct-v0.2", "Qwen1.5-7B-Chat"], constraints={"needs_tools": True})
    assert set(err.value.exclusions) == {"Mistral-7B-Instruct-v0.2", "Qwen1.5-7B-Chat"}
    assert "tool" in str(err.value)
    with pytest.raises(NoEligibleModelError, match="max_cost_usd"):
        default_router.decide("hello", candidates=CANDS, constraints={"max_cost_usd": 1e-12})


def test_bad_candidates(default_router):
    with pytest.raises(InvalidInputError):
        default_router.decide("hello", candidates=[])
    with pytest.raises(InvalidInputError):
        default_router.decide("hello", candidates="gpt-4o")  # type: ignore[arg-type]
    with pytest.warns(UnknownModelWarning):
        d = default_router.decide("hello", candidates=["gpt-4o", "totally-new-model-x"])
    assert d.model in ("gpt-4o-2024-05-13", "totally-new-model-x")


def test_malformed_fit_data(tmp_path):
    prompts = pd.DataFrame({"prompt_id": ["1"], "split": ["train"], "task": ["t"], "text": ["hi"]})
    with pytest.raises(DataFormatError, match="missing column"):
        Router.fit(prompts, pd.DataFrame({"prompt_id": ["1"], "model": ["m"]}))
    with pytest.raises(DataFormatError, match="No outcome row"):
        Router.fit(prompts, pd.DataFrame({"prompt_id": ["2"], "model": ["m"], "score": [1.0]}))
    with pytest.raises(DataFormatError):
        Router.fit(tmp_path / "nope.csv", tmp_path / "nope2.csv")


@pytest.fixture(scope="module")
def saved(slice_router, tmp_path_factory):
    d = tmp_path_factory.mktemp("saved") / "router"
    slice_router.save(d)
    return d


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


def test_missing_router_directory(tmp_path):
    with pytest.raises(ArtifactNotFoundError, match="does not exist"):
        Router.load(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactNotFoundError, match="manifest.json"):
        Router.load(tmp_path / "empty")


@pytest.mark.parametrize("victim", ["index.npz", "index.ann", "registry.json", "analyzer.npz"])
def test_corrupted_file_is_named(saved, tmp_path, victim):
    d = _copy(saved, tmp_path)
    data = (d / victim).read_bytes()
    (d / victim).write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptArtifactError, match=victim):
        Router.load(d)


def test_deleted_file_and_bad_manifest(saved, tmp_path):
    d = _copy(saved, tmp_path)
    (d / "registry.json").unlink()
    with pytest.raises(ArtifactNotFoundError, match="registry.json"):
        Router.load(d)
    d2 = tmp_path / "d2"
    shutil.copytree(saved, d2)
    (d2 / "manifest.json").write_text("{nope")
    with pytest.raises(CorruptArtifactError, match="manifest.json"):
        Router.load(d2)
    m = json.loads((saved / "manifest.json").read_text())
    m["version"] = 99
    (d2 / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(UnsupportedFormatError, match="version 99"):
        Router.load(d2)
    m["format"] = "pickle"
    (d2 / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(UnsupportedFormatError):
        Router.load(d2)
