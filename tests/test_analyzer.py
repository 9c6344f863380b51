import numpy as np
import pytest

from optiroute import ArtifactNotFoundError, CorruptArtifactError
from optiroute.analyzer import TaskAnalyzer
from optiroute.embedding import get_default_embedder


@pytest.fixture(scope="module")
def analyzer():
    return TaskAnalyzer.default()


@pytest.mark.parametrize(
    "text, task",
    [
        ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did she sell altogether?", "math"),
        ("Write a python function that returns the n-th Fibonacci number.", "coding"),
        ("Explain how photosynthesis works.", "knowledge"),
        ("Write a short poem about the ocean at night.", "writing"),
    ],
)
def test_clear_prompts_get_the_obvious_task(analyzer, text, task):
    emb = get_default_embedder().encode([text])
    (profile,) = analyzer.analyze(emb, [text])
    assert profile.task_type == task, profile.task_probs


def test_shapes_and_ranges(analyzer):
    emb = get_default_embedder().encode(["a", "b c", "Which article of the constitution covers treaties?"])
    out = analyzer.predict(emb)
    assert out.task_probs.shape == (3, len(analyzer.task_types))
    assert out.domain_probs.shape == (3, len(analyzer.domains)) and len(analyzer.domains) == 14
    np.testing.assert_allclose(out.task_probs.sum(axis=1), 1.0, atol=1e-5)
    assert ((out.complexity >= 0) & (out.complexity <= 1)).all()
    assert (analyzer.output_tokens(out.task_probs) > 0).all()
    with pytest.raises(ValueError):
        analyzer.predict(np.zeros((2, 10)))


def test_save_load_and_corruption(analyzer, tmp_path):
    path = tmp_path / "a.npz"
    analyzer.save(path)
    back = TaskAnalyzer.load(path)
    x = np.random.default_rng(0).normal(size=(4, analyzer.dim)).astype(np.float32)
    np.testing.assert_allclose(back.predict(x).task_probs, analyzer.predict(x).task_probs, atol=1e-6)
    path.write_bytes(b"garbage")
    with pytest.raises(CorruptArtifactError, match="a.npz"):
        TaskAnalyzer.load(path)
    with pytest.raises(ArtifactNotFoundError):
        TaskAnalyzer.load(tmp_path / "missing.npz")
