"""Long-prompt pruning and the MiniLM embedder (real model, each backend loaded once per module)."""

import subprocess
import sys

import numpy as np
import pytest

from optiroute.analysis.embedding import Embedder, MiniLMEmbedder, get_default_embedder, prune_text
from optiroute.errors import DependencyError, InvalidInputError


def _words(n: int) -> list[str]:
    return [f"w{i}" for i in range(n)]


def test_short_text_is_returned_unchanged():
    text = "what is 2+2?\n  keep   my spacing"
    assert prune_text(text) == (text, False)
    exactly = " ".join(_words(160))
    assert prune_text(exactly) == (exactly, False)


def test_long_text_keeps_head_tail_and_an_ordered_middle_sample():
    words = _words(1000)
    out, pruned = prune_text(" ".join(words))
    kept = out.split()
    assert pruned and len(kept) == 64 + 32 + 64
    assert kept[:64] == words[:64] and kept[-64:] == words[-64:]
    middle = [int(w[1:]) for w in kept[64:-64]]
    assert middle == sorted(middle) and len(set(middle)) == 32 and all(64 <= i < 936 for i in middle)


def test_pruning_is_deterministic_and_depends_on_the_text():
    text = " ".join(_words(500))
    assert prune_text(text) == prune_text(text)
    # Same head and tail, different middle words: the middle sample is seeded by the text's hash.
    other = text.replace("w300", "x300")
    assert prune_text(other)[0] != prune_text(text)[0]
    # Deterministic across processes too (no PYTHONHASHSEED dependence).
    code = "from optiroute.analysis.embedding import prune_text; import sys; print(prune_text(sys.argv[1])[0])"
    run = subprocess.run([sys.executable, "-c", code, text], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == prune_text(text)[0]


def test_pruning_parameters():
    words = _words(50)
    out, pruned = prune_text(" ".join(words), max_words=20, head=5, tail=5, middle=3)
    assert pruned and out.split()[:5] == words[:5] and out.split()[-5:] == words[-5:] and len(out.split()) == 13
    # head + middle + tail covering the whole text: nothing to prune.
    assert prune_text(" ".join(words), max_words=10, head=20, tail=20, middle=10)[1] is False


def test_bad_thread_count_is_rejected():
    with pytest.raises(InvalidInputError):
        MiniLMEmbedder(threads=0)


def test_missing_model_is_a_dependency_error(tmp_path):
    emb = MiniLMEmbedder(model_path=str(tmp_path / "no-model-here"))
    with pytest.raises(DependencyError, match="no-model-here"):
        emb.encode(["hello"])


@pytest.fixture(scope="module", params=["default", "onnx", "torch"])
def embedder(request):
    return get_default_embedder() if request.param == "default" else MiniLMEmbedder(backend=request.param)


def test_embeddings_are_float32_unit_vectors(embedder):
    assert isinstance(embedder, Embedder)
    e = embedder.encode(["hello world", "solve x^2 = 4", "word " * 2000])
    assert e.shape == (3, 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-4)
    assert embedder.encode([]).shape == (0, 384)


def test_encode_prunes_long_prompts(embedder):
    long_text = " ".join(["filler"] * 400 + ["How do I reverse a linked list in Python?"])
    a, b = embedder.encode([long_text, prune_text(long_text)[0]])
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_a_single_string_is_rejected(embedder):
    with pytest.raises(InvalidInputError):
        embedder.encode("not a list")


def test_similar_prompts_are_closer(embedder):
    a, b, c = embedder.encode(
        ["How do I sort a list in Python?", "Sorting a Python list", "The French revolution began in 1789."]
    )
    assert a @ b > a @ c + 0.2


def test_shared_instance():
    assert get_default_embedder() is get_default_embedder()
