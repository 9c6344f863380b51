import numpy as np
import pytest

from optiroute.embedding import Embedder, get_default_embedder, prune_text


def test_short_text_is_untouched():
    assert prune_text("what is 2+2?") == ("what is 2+2?", False)


def test_long_text_keeps_head_tail_and_a_deterministic_middle_sample():
    words = [f"w{i}" for i in range(1000)]
    text = " ".join(words)
    out, pruned = prune_text(text)
    kept = out.split()
    assert pruned and len(kept) == 64 + 32 + 64
    assert kept[:64] == words[:64] and kept[-64:] == words[-64:]
    middle = [int(w[1:]) for w in kept[64:-64]]
    assert middle == sorted(middle) and all(64 <= i < 936 for i in middle)
    assert prune_text(text) == (out, True)
    assert prune_text(text + " extra")[0] != out  # the sample depends on the text


@pytest.fixture(scope="module")
def embedder():
    return get_default_embedder()


def test_embeddings_are_unit_vectors(embedder):
    assert isinstance(embedder, Embedder)
    e = embedder.encode(["hello world", "solve x^2 = 4", "word " * 2000])
    assert e.shape == (3, 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-4)
    assert embedder.encode([]).shape == (0, 384)


def test_similar_prompts_are_closer(embedder):
    a, b, c = embedder.encode(["How do I sort a list in Python?", "Sorting a Python list", "The French revolution began in 1789."])
    assert a @ b > a @ c + 0.2


def test_shared_instance():
    assert get_default_embedder() is get_default_embedder()
