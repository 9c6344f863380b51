"""The bundled analyzer heads: obvious prompts, shapes, file handling, no torch at import."""

import json
import subprocess
import sys

import numpy as np
import pytest

from optiroute import ArtifactNotFoundError, CorruptArtifactError
from optiroute.analysis.analyzer import BUNDLED, AnalyzerOutput, TaskAnalyzer
from optiroute.analysis.embedding import get_default_embedder, prune_text
from optiroute.errors import InvalidInputError
from optiroute.schema.decision import TaskProfile


@pytest.fixture(scope="module")
def analyzer():
    return TaskAnalyzer.default()


@pytest.fixture(scope="module")
def embed():
    return get_default_embedder().encode


@pytest.mark.parametrize(
    "text, task",
    [
        ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
         "How many clips did she sell altogether in April and May?", "math"),
        ("Write a python function that returns the n-th Fibonacci number.", "coding"),
        ("Write a poem about the ocean at night.", "writing"),
        ("Explain how photosynthesis works.", "knowledge"),
    ],
)
def test_clear_prompts_get_the_obvious_task(analyzer, embed, text, task):
    (profile,) = analyzer.analyze(embed([text]), [text])
    assert profile.task_type == task, profile.task_probs


def test_domain_of_clear_prompts(analyzer, embed):
    texts = ["What is the derivative of x^3 + 2x with respect to x?",
             "Under contract law, when is an offer considered accepted?"]
    out = analyzer.predict(embed(texts))
    assert [analyzer.domains[i] for i in out.domain_probs.argmax(axis=1)] == ["math", "law"]


def test_hard_prompts_are_more_complex_than_easy_ones(analyzer, embed):
    easy = "Tom has 3 apples and buys 2 more. How many apples does he have?"
    hard = ("Find the number of ordered pairs (a,b) of positive integers with a+b=1000 such that neither "
            "a nor b has a zero digit.")
    cx = analyzer.predict(embed([easy, hard])).complexity
    assert cx[1] > cx[0]


def test_shapes_and_ranges(analyzer, embed):
    emb = embed(["a", "b c", "Which article of the constitution covers treaties?"])
    out = analyzer.predict(emb)
    assert isinstance(out, AnalyzerOutput)
    assert out.task_probs.shape == (3, len(analyzer.task_types)) and len(analyzer.task_types) == 7
    assert out.domain_probs.shape == (3, len(analyzer.domains)) and len(analyzer.domains) == 14
    assert out.complexity.shape == (3,) and out.task_probs.dtype == np.float32
    np.testing.assert_allclose(out.task_probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out.domain_probs.sum(axis=1), 1.0, atol=1e-5)
    assert ((out.complexity >= 0) & (out.complexity <= 1)).all()
    assert (analyzer.output_tokens(out.task_probs) > 0).all()
    # one (dim,) row is accepted as a batch of one
    np.testing.assert_allclose(analyzer.predict(emb[0]).task_probs, out.task_probs[:1], atol=1e-6)


@pytest.mark.parametrize("bad", [np.zeros((2, 10)), np.zeros((2, 3, 384)), np.full((1, 384), np.nan)])
def test_bad_embeddings_are_rejected(analyzer, bad):
    with pytest.raises(InvalidInputError):
        analyzer.predict(bad)


def test_analyze_builds_full_profiles(analyzer, embed):
    long_text = "word " * 300 + "Summarise the text above."
    texts = ["Write a haiku about autumn.", long_text]
    pruned = [prune_text(t)[1] for t in texts]
    profiles = analyzer.analyze(embed(texts), texts, pruned=pruned)
    assert [p.pruned for p in profiles] == [False, True]
    p = profiles[1]
    assert isinstance(p, TaskProfile)
    assert p.est_input_tokens == len(long_text) // 4  # the whole text, not the pruned one
    assert set(p.task_probs) == set(analyzer.task_types)
    assert p.task_confidence == pytest.approx(max(p.task_probs.values()))
    assert p.task_type == max(p.task_probs, key=p.task_probs.get)
    # est_output_tokens is the task table weighted by the probabilities
    table = analyzer.meta["output_tokens"]
    assert p.est_output_tokens == round(sum(table[t] * q for t, q in p.task_probs.items()))
    # round-trips through pydantic validation unchanged
    assert TaskProfile.model_validate(p.model_dump()) == p
    with pytest.raises(InvalidInputError):
        analyzer.analyze(embed(texts), texts[:1])


def test_artifact_records_sources_and_stays_small():
    meta = json.loads(BUNDLED.with_suffix(".json").read_text())
    assert {"mmlu_pro", "llmrouter", "routellm", "arena_hard_v0_1"} <= set(meta["sources"])
    assert "labels/mt_bench.csv" in meta["never_trained_on"]
    assert set(meta["taxonomy"]) == set(meta["task_types"])
    assert BUNDLED.stat().st_size + BUNDLED.with_suffix(".json").stat().st_size < 2_000_000


def test_save_load_round_trip(analyzer, tmp_path):
    path = tmp_path / "heads.bin"  # any name: save must not append ".npz"
    analyzer.save(path)
    back = TaskAnalyzer.load(path)
    x = np.random.default_rng(0).normal(size=(4, analyzer.dim)).astype(np.float32)
    a, b = back.predict(x), analyzer.predict(x)
    np.testing.assert_allclose(a.task_probs, b.task_probs, atol=1e-6)
    np.testing.assert_allclose(a.complexity, b.complexity, atol=1e-6)
    assert back.task_types == analyzer.task_types and back.domains == analyzer.domains


def test_corrupt_or_missing_files_raise_errors_naming_the_file(analyzer, tmp_path):
    path = tmp_path / "a.npz"
    analyzer.save(path)
    path.write_bytes(b"garbage")
    with pytest.raises(CorruptArtifactError, match="a.npz"):
        TaskAnalyzer.load(path)

    analyzer.save(path)
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(CorruptArtifactError, match="a.json"):
        TaskAnalyzer.load(path)

    analyzer.save(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["task_types"] = meta["task_types"][:-1]  # names no longer match the weight columns
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(CorruptArtifactError, match="a.npz"):
        TaskAnalyzer.load(path)

    with pytest.raises(ArtifactNotFoundError, match="missing.npz"):
        TaskAnalyzer.load(tmp_path / "missing.npz")
    analyzer.save(path)
    path.with_suffix(".json").unlink()
    with pytest.raises(ArtifactNotFoundError, match="a.json"):
        TaskAnalyzer.load(path)


def test_default_reads_nothing_until_used(tmp_path):
    lazy = TaskAnalyzer(path=tmp_path / "not-there.npz")  # construction does no I/O
    with pytest.raises(ArtifactNotFoundError):
        _ = lazy.task_types
    assert TaskAnalyzer.default() is TaskAnalyzer.default()


@pytest.mark.parametrize("module", ["optiroute.analysis.analyzer", "optiroute.analysis.embedding"])
def test_import_does_not_pull_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
