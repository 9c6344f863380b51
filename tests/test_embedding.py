"""Long-prompt pruning and the MiniLM embedder (real model, each backend loaded once per module)."""

import subprocess
import sys

import numpy as np
import pytest

from optiroute.analysis.embedding import Embedder, MiniLMEmbedder, get_default_embedder, prune_text
from optiroute.analysis.reading import DEFAULT_WINDOW, ReadingWindow
from optiroute.errors import DependencyError, InvalidInputError


def _words(n: int) -> list[str]:
    return [f"w{i}" for i in range(n)]


def test_short_text_is_returned_unchanged():
    text = "what is 2+2?\n  keep   my spacing"
    assert prune_text(text) == (text, False)
    exactly = " ".join(_words(256))
    assert prune_text(exactly) == (exactly, False)


def test_long_text_keeps_its_head_and_tail_words():
    words = _words(1000)
    out, pruned = prune_text(" ".join(words))
    kept = out.split()
    assert pruned and kept == words[:64] + words[-192:]


def test_pruning_is_deterministic_and_a_middle_sample_depends_on_the_text():
    text = " ".join(_words(500))
    assert prune_text(text) == prune_text(text)
    # With a middle sample, it is seeded by the text's hash: same head and tail, other middle words.
    other = text.replace("w300", "x300")
    assert prune_text(other, middle=32)[0] != prune_text(text, middle=32)[0]
    # Deterministic across processes too (no PYTHONHASHSEED dependence).
    code = ("from optiroute.analysis.embedding import prune_text; import sys; "
            "print(prune_text(sys.argv[1], middle=32)[0])")
    run = subprocess.run([sys.executable, "-c", code, text], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == prune_text(text, middle=32)[0]


def test_pruning_parameters():
    words = _words(50)
    out, pruned = prune_text(" ".join(words), max_words=20, head=5, tail=5, middle=3)
    assert pruned and out.split()[:5] == words[:5] and out.split()[-5:] == words[-5:] and len(out.split()) == 13
    middle = [int(w[1:]) for w in out.split()[5:-5]]
    assert middle == sorted(middle) and len(set(middle)) == 3 and all(5 <= i < 45 for i in middle)
    # head + middle + tail covering the whole text: nothing to prune.
    assert prune_text(" ".join(words), max_words=10, head=20, tail=20, middle=10)[1] is False


def test_reading_window_reads_short_texts_whole_and_long_ones_by_head_and_tail():
    w = ReadingWindow(max_tokens=10, long_tokens=8, head=2)
    short = [101, *range(1, 9), 102]  # 10 pieces with [CLS]/[SEP]
    assert w.select(short) == short and not w.is_cut(10)
    long = [101, *range(1, 20), 102]
    assert w.is_cut(len(long))
    assert w.select(long) == [101, 1, 2, 16, 17, 18, 19, 102]  # [CLS], head 2, tail 4, [SEP]: 8 pieces
    cut_end = ReadingWindow(max_tokens=6, long_tokens=None)
    assert cut_end.select(long) == [101, 1, 2, 3, 4, 102]
    assert DEFAULT_WINDOW.tag == "256>128h32" and cut_end.tag == "6"
    for bad in ({"max_tokens": 3}, {"long_tokens": 300}, {"long_tokens": 16, "head": 14}, {"head": -1}):
        with pytest.raises(InvalidInputError):
            ReadingWindow(**bad)


def test_window_and_max_tokens_exclude_each_other():
    with pytest.raises(InvalidInputError, match="not both"):
        MiniLMEmbedder(max_tokens=128, window=ReadingWindow())
    with pytest.raises(InvalidInputError, match="ReadingWindow"):
        MiniLMEmbedder(window=(256, 128))  # type: ignore[arg-type]
    assert MiniLMEmbedder(max_tokens=128).window == ReadingWindow(128, None)
    assert MiniLMEmbedder(backend="torch", max_tokens=256).name == "all-MiniLM-L6-v2"
    assert MiniLMEmbedder(backend="torch").name == "all-MiniLM-L6-v2@256>128h32"


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


def test_a_long_prompt_is_read_by_its_head_and_tail(embedder):
    # More than 32 word pieces of head and 94 of tail, identical in both prompts; only the middle differs.
    head = "Please answer carefully and show your reasoning step by step. " * 5
    tail = ("Here is my question after all that context, in full detail. " * 8
            + "Which sorting algorithm is stable: quicksort, heapsort or merge sort?")
    a = head + "filler text about nothing in particular. " * 120 + tail
    b = head + "completely different middle part with other words. " * 110 + tail
    ea, eb = embedder.encode([a, b])
    np.testing.assert_allclose(ea, eb, atol=1e-5)  # the middle is not read
    other = embedder.encode([head + "filler text about nothing in particular. " * 120 + tail[:-70]
                             + "What is the capital city of Peru, and when was it founded?"])
    assert float(ea @ other[0]) < 0.995  # the end (the question) is read


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
