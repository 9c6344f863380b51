"""Bad input never surfaces a traceback from inside numpy or annoy: each gets an OptiRouteError."""

import json
import math
import os
import pickle  # only to *write* a hostile file in a test; OptiRoute never reads pickles
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optiroute import (
    ArtifactNotFoundError,
    CorruptArtifactError,
    DataFormatError,
    FeedbackError,
    InvalidConstraintsError,
    InvalidInputError,
    InvalidPreferencesError,
    ModelNotFoundError,
    NoEligibleModelError,
    Router,
    StoreError,
    UnknownModelWarning,
    UnknownProfileError,
    UnsupportedFormatError,
)
from optiroute.router.artifacts import seal

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


@pytest.mark.parametrize(
    "prefs", [{"accuracy": float("nan")}, {"cost": -1}, {"cost": 2}, {"speed": 1}, {"accuracy": 0}]
)
def test_bad_weights(default_router, prefs):
    with pytest.raises(InvalidPreferencesError):
        default_router.decide("hello", preferences=prefs, candidates=CANDS)


def test_unknown_profile(default_router):
    with pytest.raises(UnknownProfileError, match="cost-effective"):
        default_router.decide("hello", preferences="cheap", candidates=CANDS)


def test_all_candidates_excluded_lists_reasons(default_router):
    with pytest.raises(NoEligibleModelError) as err:
        default_router.decide("hello", candidates=["Mistral-7B-Instruct-v0.2", "Qwen1.5-7B-Chat"],
                              constraints={"needs_tools": True})
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
    assert d.model in ("gpt-4o", "totally-new-model-x")


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


# ------------------------------------------------------------------------------------------------
# The README table "Bad inputs and the errors they get": one row per input, each checked here.
# A row's expectation is an OptiRoute error class (raised), an OSError (a standard error that names
# the path), or ROUTED (a decision comes back; the row's check says what it must look like).

ROUTED = "routed"
HUGE = "word " * 1_000_000  # 5 MB, ~1.25M tokens: beyond every window but gemini-1.5-pro's 2M


def _decide(router, prompt, **kw):
    kw.setdefault("candidates", CANDS)
    return router.decide(prompt, **kw)


PROMPT_ROWS = {
    "empty": ("", InvalidInputError),
    "whitespace": (" \n\t ", InvalidInputError),
    "only NUL bytes": ("\x00\x00", InvalidInputError),
    "None": (None, InvalidInputError),
    "a number": (42, InvalidInputError),
    "binary junk bytes": (os.urandom(256), InvalidInputError),
    "invalid UTF-8 bytes": (b"\xff\xfe\xfa caf\xe9", InvalidInputError),
    "bytearray": (bytearray(b"hello"), InvalidInputError),
    "str with undecodable bytes (surrogateescape)": (b"\xff\xfe hello".decode("utf-8", "surrogateescape"), ROUTED),
    "binary junk decoded as latin-1": (bytes(range(256)).decode("latin-1") * 4, ROUTED),
    "control characters": ("\x01\x02\x03 what is 2+2?", ROUTED),
    # messages of the wrong shape
    "one message dict, not a list": ({"role": "user", "content": "hi"}, InvalidInputError),
    "empty message list": ([], InvalidInputError),
    "list of numbers": ([1, 2], InvalidInputError),
    "3-tuple message": ([("user", "hi", "extra")], InvalidInputError),
    "[role, content] list instead of tuple": ([["user", "hi"]], InvalidInputError),
    "content is a dict": ([{"role": "user", "content": {"text": "hi"}}], InvalidInputError),
    "content is bytes": ([{"role": "user", "content": b"hi"}], InvalidInputError),
    "message without content": ([{"role": "user"}], InvalidInputError),
    "image-only content blocks": ([{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}],
                                  InvalidInputError),
    "lone surrogate in message content": ([{"role": "user", "content": "caf\udce9?"}], ROUTED),
}


@pytest.mark.parametrize("name", list(PROMPT_ROWS))
def test_prompt_rows(default_router, name):
    prompt, expected = PROMPT_ROWS[name]
    if expected is ROUTED:
        d = _decide(default_router, prompt)
        assert d.model in {s.model for s in d.scores}
    else:
        with pytest.raises(expected):
            _decide(default_router, prompt)


def test_5mb_prompt_is_pruned_and_routed_to_the_one_window_that_fits(default_router):
    with pytest.raises(NoEligibleModelError, match="context window") as err:
        _decide(default_router, HUGE)
    assert set(err.value.exclusions) == {default_router.registry.resolve(c).name for c in CANDS}
    d = _decide(default_router, HUGE, candidates=[*CANDS, "gemini-1.5-pro"])
    assert d.model.startswith("gemini-1.5-pro") and d.profile.pruned
    assert d.profile.est_input_tokens == len(HUGE) // 4


PREFERENCE_ROWS = {
    "NaN weight": ({"accuracy": float("nan")}, InvalidPreferencesError),
    "negative weight": ({"cost": -1}, InvalidPreferencesError),
    "weight > 1": ({"cost": 2}, InvalidPreferencesError),
    "infinite weight": ({"cost": float("inf")}, InvalidPreferencesError),
    "string weight": ({"cost": "high"}, InvalidPreferencesError),
    "numeric string weight": ({"cost": "0.5"}, InvalidPreferencesError),
    "None weight": ({"cost": None}, InvalidPreferencesError),
    "bool weight": ({"cost": True}, InvalidPreferencesError),
    "all weights 0": ({"accuracy": 0}, InvalidPreferencesError),
    "unknown dimension": ({"speed": 1}, InvalidPreferencesError),
    "not a mapping": (5, InvalidPreferencesError),
    "unknown profile": ("cheap", UnknownProfileError),
    "unknown profile in a mapping": ({"profile": "cheap", "cost": 0.5}, UnknownProfileError),
}


@pytest.mark.parametrize("name", list(PREFERENCE_ROWS))
def test_preference_rows(default_router, name):
    prefs, expected = PREFERENCE_ROWS[name]
    with pytest.raises(expected):
        _decide(default_router, "hello", preferences=prefs)


CANDIDATE_ROWS = {
    "empty list": ([], InvalidInputError),
    "one string, not a list": ("gpt-4o", InvalidInputError),
    "None as a name": ([None], InvalidInputError),
    "empty name": ([""], InvalidInputError),
    "number as a name": ([3], InvalidInputError),
}


@pytest.mark.parametrize("name", list(CANDIDATE_ROWS))
def test_candidate_rows(default_router, name):
    cands, expected = CANDIDATE_ROWS[name]
    with pytest.raises(expected):
        _decide(default_router, "hello", candidates=cands)


def test_empty_candidates_after_a_default_pool_decision(default_router):
    # [] once hit the cached default pool (cache key ()) and silently routed among every model.
    default_router.decide("hello")
    with pytest.raises(InvalidInputError, match="empty"):
        default_router.decide("hello", candidates=[])


def test_unknown_model_names(default_router):
    with pytest.warns(UnknownModelWarning, match="never-heard-of-it"):
        d = default_router.decide("hello", candidates=["gpt-4o", "never-heard-of-it"])
    assert d.score_of("never-heard-of-it").predicted_quality > 0  # routed with a neutral prior
    with pytest.raises(ModelNotFoundError, match="registry.add"):
        default_router.registry.get("never-heard-of-it")
    with pytest.raises(ModelNotFoundError):
        default_router.registry.copy().remove("never-heard-of-it")


CONSTRAINT_ROWS = {
    "negative max cost": ({"max_cost_usd": -1}, InvalidConstraintsError),
    "NaN max cost": ({"max_cost_usd": float("nan")}, InvalidConstraintsError),
    "string max cost": ({"max_cost_usd": "cheap"}, InvalidConstraintsError),
    "zero max latency": ({"max_latency_s": 0}, InvalidConstraintsError),
    "negative min context": ({"min_context": -5}, InvalidConstraintsError),
    "unknown constraint": ({"max_tokens": 5}, InvalidConstraintsError),
    "allowed_models as one string": ({"allowed_models": "gpt-4o"}, InvalidConstraintsError),
    "not a mapping": ("cheap", InvalidConstraintsError),
    "max cost nothing meets": ({"max_cost_usd": 1e-12}, NoEligibleModelError),
    "allowed_models none of the candidates": ({"allowed_models": ["nope"]}, NoEligibleModelError),
}


@pytest.mark.parametrize("name", list(CONSTRAINT_ROWS))
def test_constraint_rows(default_router, name):
    cons, expected = CONSTRAINT_ROWS[name]
    with pytest.raises(expected):
        _decide(default_router, "hello", constraints=cons)


@pytest.mark.parametrize("texts", ["one string", [], ["fine", ""]])
def test_bad_batches(default_router, texts):
    with pytest.raises(InvalidInputError):
        default_router.decide_batch(texts, candidates=CANDS)


@pytest.mark.parametrize("score", [1.5, -0.1, float("nan"), float("inf"), "good", None])
def test_feedback_score_out_of_range(default_router, score):
    d = _decide(default_router, "hello")
    with pytest.raises(FeedbackError, match="0..1"):
        default_router.record_feedback(d.decision_id, score)


@pytest.mark.parametrize("decision_id", ["no-such-decision", None])
def test_feedback_on_unknown_decision(default_router, decision_id):
    with pytest.raises(FeedbackError):
        default_router.record_feedback(decision_id, 1.0)


_P = pd.DataFrame({"prompt_id": ["1", "2"], "split": ["train"] * 2, "task": ["t"] * 2, "text": ["hi", "yo"]})
_O = pd.DataFrame({"prompt_id": ["1", "2"], "model": ["gpt-4o"] * 2, "score": [1.0, 0.0]})
FIT_ROWS = {
    "prompts without text column": (lambda: (_P.drop(columns="text"), _O), "missing column"),
    "prompts with text renamed to prompt": (lambda: (_P.rename(columns={"text": "prompt"}), _O), "missing column"),
    "outcomes without score": (lambda: (_P, _O.drop(columns="score")), "missing column"),
    "outcomes without model": (lambda: (_P, _O.drop(columns="model")), "missing column"),
    "prompts and outcomes swapped": (lambda: (_O, _P), "missing column"),
    "score 5 (judge scale)": (lambda: (_P, _O.assign(score=[5.0, 0.0])), "0..1"),
    "negative score": (lambda: (_P, _O.assign(score=[-1.0, 0.0])), "0..1"),
    "NaN score": (lambda: (_P, _O.assign(score=[float("nan"), 0.0])), "empty"),
    "string score": (lambda: (_P, _O.assign(score=["good", 0.0])), "numeric"),
    "empty text": (lambda: (_P.assign(text=[None, "yo"]), _O), "empty text"),
    "a dict instead of a table": (lambda: ({"text": ["hi"]}, _O), "DataFrame"),
    "ids that match nothing": (lambda: (_P, _O.assign(prompt_id=["8", "9"])), "No outcome row"),
}


@pytest.mark.parametrize("name", list(FIT_ROWS))
def test_fit_rows(name):
    make, message = FIT_ROWS[name]
    prompts, outcomes = make()
    with pytest.raises(DataFormatError, match=message):
        Router.fit(prompts, outcomes)


def test_fit_on_unreadable_files(tmp_path):
    with pytest.raises(DataFormatError, match="does not exist"):
        Router.fit(tmp_path / "prompts.csv", tmp_path / "outcomes.csv")
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(128, 256)) * 8)
    with pytest.raises(DataFormatError, match="junk.csv"):
        Router.fit(junk, _O)


def test_store_and_router_paths_that_cannot_exist(tmp_path, default_router):
    from optiroute import SQLiteFeedbackStore

    a_file = tmp_path / "file.txt"
    a_file.write_text("not a directory")
    with pytest.raises(StoreError, match="file.txt"):  # raised when the store is first used
        SQLiteFeedbackStore(a_file / "feedback.db").corrections()
    with pytest.raises(ArtifactNotFoundError, match="does not exist"):
        Router.load(tmp_path / "no" / "such" / "dir")
    with pytest.raises(ArtifactNotFoundError, match="file.txt"):
        Router.load(a_file)
    with pytest.raises(ArtifactNotFoundError):
        Router.load(a_file / "sub")
    with pytest.raises(OSError, match="file.txt"):  # NotADirectoryError from mkdir, naming the path
        default_router.save(a_file / "router")


# ------------------------------------------------------------------------------------------------
# Corrupted saved routers name the file; no pickle is ever read.


def test_edited_json_is_named(saved, tmp_path):
    d = _copy(saved, tmp_path)
    reg = json.loads((d / "registry.json").read_text())
    reg["cards"][0]["input_usd_per_mtok"] = 0.0  # valid JSON, wrong content
    (d / "registry.json").write_text(json.dumps(reg))
    with pytest.raises(CorruptArtifactError, match="registry.json"):
        Router.load(d)


class _Hostile:
    """Unpickling this creates a directory: proof that a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.mark.parametrize("victim", ["index.npz", "analyzer.npz"])
@pytest.mark.parametrize("fix_checksum", [False, True])
def test_pickle_in_place_of_an_npz_is_refused(saved, tmp_path, victim, fix_checksum):
    import hashlib

    d = _copy(saved, tmp_path)
    marker = tmp_path / "pickle-was-executed"
    (d / victim).write_bytes(pickle.dumps({"embeddings": _Hostile(marker)}))
    if fix_checksum:  # a hand-"repaired" manifest: the loader itself must still refuse the file
        m = json.loads((d / "manifest.json").read_text())
        m["files"][victim] = hashlib.sha256((d / victim).read_bytes()).hexdigest()
        (d / "manifest.json").write_text(json.dumps(seal(m)))  # its own checksum repaired too
    with pytest.raises(CorruptArtifactError, match=victim):
        Router.load(d)
    assert not marker.exists()


def test_unknown_manifest_version_is_refused(saved, tmp_path):
    d = _copy(saved, tmp_path)
    m = json.loads((d / "manifest.json").read_text())
    m["version"] = m["version"] + 1
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(UnsupportedFormatError, match="manifest.json"):
        Router.load(d)


def test_onboarding_a_model_already_measured_on_every_given_prompt(default_router):
    """Onboarding a bundled model again on stored prompts it already has outcomes for: refused, and
    the store's outcomes are unchanged."""
    from optiroute.onboard.onboarding import onboard

    ix = default_router.index
    j = ix.column(ix.models[0])
    rows = [i for i in range(len(ix)) if math.isfinite(ix.scores[i, j])][:5]  # measured (not NaN)
    before = ix.scores.copy()
    with pytest.raises(InvalidInputError, match="already has measured outcomes"):
        onboard(default_router, ix.models[0], lambda text: "A", prompts={ix.prompt_ids[i]: "x" for i in rows})
    np.testing.assert_array_equal(default_router.index.scores, before)  # NaN == NaN here


_PICKLE_USE = re.compile(
    r"^\s*(import|from)\s+(pickle|cPickle|_pickle|dill|cloudpickle|joblib|shelve|marshal)\b"
    r"|allow_pickle\s*=\s*True|\bpickle\.loads?\(|\btorch\.load\(|\bread_pickle\(",
    re.MULTILINE,
)


def test_no_code_path_reads_pickles():
    core = Path(__file__).resolve().parents[1] / "core"
    sources = sorted(core.rglob("*.py"))
    assert len(sources) > 20  # the package really is there
    offenders = [f"{p.relative_to(core)}: {m.group(0).strip()}" for p in sources
                 for m in _PICKLE_USE.finditer(p.read_text(encoding="utf-8"))]
    assert offenders == []
    assert _PICKLE_USE.search("import pickle") and _PICKLE_USE.search("np.load(f, allow_pickle=True)")
