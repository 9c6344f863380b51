"""The task analyzer: task type, domain and complexity of a prompt from its MiniLM embedding.

Three small linear heads trained by ``scripts/build_analyzer.py`` on ../shared/data (train splits only)
and shipped as ``optiroute/data/analyzer.npz`` (float32 weights, no pickle) + ``analyzer.json`` (names,
output-token table, sources, training sizes). Inference is two matrix products and a dot product in
numpy, so the analyzer adds microseconds on top of the embedding.

- task type (softmax): ``math, coding, reasoning, knowledge, writing, extraction, chat``;
- domain (softmax): MMLU-Pro's 14 subject areas;
- complexity (linear, clipped to 0..1): predicted empirical difficulty, 1 - the mean accuracy of the
  31 MMLU-Pro models on prompts like this one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optiroute.errors import ArtifactNotFoundError, CorruptArtifactError, InvalidInputError
from optiroute.schema.arrays import load_npz
from optiroute.schema.decision import TaskProfile
from optiroute.schema.files import CAPS, load_json, read_capped
from optiroute.schema.numbers import is_number

__all__ = ["AnalyzerOutput", "TaskAnalyzer", "BUNDLED"]

BUNDLED = Path(__file__).resolve().parent.parent / "data" / "analyzer.npz"
_ARRAYS = ("task_w", "task_b", "domain_w", "domain_b", "complexity_w", "complexity_b")
#: The largest absolute weight a trained head may have (trained heads stay far below it).
MAX_WEIGHT = 1e6
#: The longest expected answer the analyzer's table may give a task type.
MAX_OUTPUT_TOKENS = 100_000
_REBUILD = "rebuild it with `python scripts/build_analyzer.py` or save the analyzer again"


@dataclass(frozen=True, slots=True)
class AnalyzerOutput:
    """Vectorised analyzer output for n prompts.

    Attributes:
        task_probs: (n, T) float32, rows sum to 1, columns in ``TaskAnalyzer.task_types`` order.
        domain_probs: (n, D) float32, columns in ``TaskAnalyzer.domains`` order.
        complexity: (n,) float32 in 0..1.
    """

    task_probs: np.ndarray
    domain_probs: np.ndarray
    complexity: np.ndarray


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


class _Heads:
    """Validated weights and metadata (built once; every check happens here, not per call)."""

    __slots__ = ("task_types", "domains", "meta", "dim", "tw", "tb", "dw", "db", "cw", "cb", "out_tokens")

    def __init__(self, weights: dict[str, np.ndarray], meta: dict[str, Any], source: str) -> None:
        def bad(why: str) -> CorruptArtifactError:
            return CorruptArtifactError(f"Analyzer artifact {source} is invalid: {why}; {_REBUILD}.")

        if not isinstance(meta, dict):
            raise bad("the metadata is not a JSON object")
        for key in ("task_types", "domains", "output_tokens"):
            if key not in meta:
                raise bad(f"the metadata lacks {key!r}")
        tasks, domains, out_tok = meta["task_types"], meta["domains"], meta["output_tokens"]
        for name, names in (("task_types", tasks), ("domains", domains)):
            if not (isinstance(names, list) and names and all(isinstance(x, str) for x in names)
                    and len(set(names)) == len(names)):
                raise bad(f"{name!r} must be a non-empty list of distinct strings")
        if not isinstance(out_tok, dict) or any(
            not is_number(out_tok.get(t)) or not 0 < out_tok[t] <= MAX_OUTPUT_TOKENS for t in tasks
        ):
            raise bad(f"'output_tokens' needs a number in 0..{MAX_OUTPUT_TOKENS} (exclusive of 0) for every task type")
        missing = [k for k in _ARRAYS if k not in weights]
        if missing:
            raise bad(f"arrays {missing} are missing")
        kinds = {k: np.asarray(weights[k]).dtype.kind for k in _ARRAYS}
        if any(kind not in "fiu" for kind in kinds.values()):
            raise bad(f"arrays must hold real numbers, got dtypes {kinds}")
        with np.errstate(over="ignore", invalid="ignore"):  # out-of-range values are refused below
            w = {k: np.asarray(weights[k], dtype=np.float32) for k in _ARRAYS}
        dim = w["task_w"].shape[0] if w["task_w"].ndim == 2 else -1
        expected = {"task_w": (dim, len(tasks)), "task_b": (len(tasks),), "domain_w": (dim, len(domains)),
                    "domain_b": (len(domains),), "complexity_w": (dim,), "complexity_b": ()}
        for k, shape in expected.items():
            if dim <= 0 or w[k].shape != shape:
                raise bad(f"array {k!r} has shape {w[k].shape}, expected {shape} for "
                          f"{len(tasks)} task types and {len(domains)} domains")
            if not np.isfinite(w[k]).all() or np.abs(w[k]).max(initial=0.0) > MAX_WEIGHT:
                raise bad(f"array {k!r} holds NaN, infinite or absurdly large values (beyond {MAX_WEIGHT:g})")
        self.task_types: list[str] = list(tasks)
        self.domains: list[str] = list(domains)
        self.meta = meta
        self.dim = int(dim)
        self.tw, self.tb, self.dw, self.db = w["task_w"], w["task_b"], w["domain_w"], w["domain_b"]
        self.cw, self.cb = w["complexity_w"], float(w["complexity_b"])
        self.out_tokens = np.array([float(out_tok[t]) for t in tasks], dtype=np.float32)


def _read(path: Path) -> _Heads:
    """Read an analyzer's ``.npz`` and its ``.json`` untrusted: regular files within their size caps,
    shallow JSON, arrays headers checked before their data (no objects, bounded size)."""
    meta_path = path.with_suffix(".json")
    for f in (path, meta_path):
        if not f.is_file():
            raise ArtifactNotFoundError(
                f"Analyzer file {str(f)!r} is missing; {_REBUILD} (weights .npz and .json belong together)."
            )
    meta = load_json(read_capped(meta_path, CAPS["analyzer.json"]),
                     label=f"Analyzer metadata {str(meta_path)!r} ({_REBUILD})")
    weights = load_npz(read_capped(path, CAPS["analyzer.npz"]), keys=_ARRAYS,
                       label=f"Analyzer weights {str(path)!r} ({_REBUILD})")
    return _Heads(weights, meta, repr(str(path)))


class TaskAnalyzer:
    """Task type, domain and complexity heads over sentence embeddings.

    Build one with :meth:`default` (the bundled heads, read on first use), :meth:`load` (a saved
    artifact, read and checked immediately) or from arrays (``weights`` named as in the artifact,
    ``meta`` with ``task_types``, ``domains`` and ``output_tokens`` per task type).
    """

    def __init__(self, weights: dict[str, np.ndarray] | None = None, meta: dict[str, Any] | None = None,
                 *, path: str | Path | None = None) -> None:
        self._path = Path(path) if path is not None else None
        self._heads: _Heads | None = None
        self._lock = threading.Lock()
        if weights is not None or meta is not None:
            self._heads = _Heads(weights or {}, meta or {}, "given in memory")
        elif self._path is None:
            raise InvalidInputError("TaskAnalyzer needs weights and meta, or a path to an analyzer .npz.")

    def _h(self) -> _Heads:
        h = self._heads
        if h is None:
            with self._lock:
                if self._heads is None:
                    assert self._path is not None
                    self._heads = _read(self._path)
                h = self._heads
        return h

    # ----------------------------------------------------------------- description
    @property
    def task_types(self) -> list[str]:
        """Task type names, in the column order of ``task_probs``."""
        return self._h().task_types

    @property
    def domains(self) -> list[str]:
        """Domain names, in the column order of ``domain_probs``."""
        return self._h().domains

    @property
    def dim(self) -> int:
        """The embedding dimension the heads expect (384 for MiniLM)."""
        return self._h().dim

    @property
    def meta(self) -> dict[str, Any]:
        """The artifact's metadata (names, sources, training sizes, output-token table)."""
        return self._h().meta

    # ----------------------------------------------------------------- inference
    def predict(self, embeddings: np.ndarray) -> AnalyzerOutput:
        """Task probabilities, domain probabilities and complexity for each embedding row.

        Args:
            embeddings: (n, dim) unit vectors from the routing embedder (one (dim,) row is accepted).

        Raises:
            InvalidInputError: wrong shape or non-finite values.
        """
        h = self._h()
        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != h.dim:
            raise InvalidInputError(
                f"Analyzer expects embeddings of shape (n, {h.dim}) from the routing embedder, got "
                f"{np.shape(embeddings)}."
            )
        if not np.isfinite(x).all():
            raise InvalidInputError("Embeddings contain NaN or infinite values; re-encode the prompts.")
        task = _softmax(x @ h.tw + h.tb)
        dom = _softmax(x @ h.dw + h.db)
        cx = np.clip(x @ h.cw + h.cb, 0.0, 1.0).astype(np.float32, copy=False)
        return AnalyzerOutput(task, dom, cx)

    def output_tokens(self, task_probs: np.ndarray) -> np.ndarray:
        """Expected answer length per prompt: the per-task table weighted by the task probabilities."""
        return (np.asarray(task_probs, dtype=np.float32) @ self._h().out_tokens).astype(np.float32)

    def analyze(
        self, embeddings: np.ndarray, texts: Sequence[str], *, pruned: Sequence[bool] | None = None
    ) -> list[TaskProfile]:
        """One :class:`TaskProfile` per prompt.

        Args:
            embeddings: (n, dim) embeddings of ``texts``.
            texts: the whole prompts (for the input-token estimate: characters / 4).
            pruned: whether each prompt was pruned before embedding (reported in the profile).
        """
        h = self._h()
        out = self.predict(embeddings)
        n = out.task_probs.shape[0]
        if len(texts) != n or (pruned is not None and len(pruned) != n):
            raise InvalidInputError(
                f"analyze() got {n} embeddings, {len(texts)} texts and "
                f"{'no' if pruned is None else len(pruned)} pruned flags; pass one of each per prompt."
            )
        tokens = (out.task_probs @ h.out_tokens).tolist()
        ti = out.task_probs.argmax(axis=1).tolist()
        di = out.domain_probs.argmax(axis=1).tolist()
        tprobs = out.task_probs.tolist()
        dprobs = out.domain_probs.tolist()
        cx = out.complexity.tolist()
        names = h.task_types
        # Shapes and types were checked above, so skip pydantic validation (model_construct).
        return [
            TaskProfile.model_construct(
                task_type=names[ti[i]],
                task_confidence=tprobs[i][ti[i]],
                task_probs=dict(zip(names, tprobs[i], strict=True)),
                domain=h.domains[di[i]],
                domain_confidence=dprobs[i][di[i]],
                complexity=cx[i],
                est_input_tokens=max(1, len(texts[i]) // 4),
                est_output_tokens=int(round(tokens[i])),
                pruned=bool(pruned[i]) if pruned is not None else False,
            )
            for i in range(n)
        ]

    # ----------------------------------------------------------------- files
    def save(self, path: str | Path) -> None:
        """Write ``path`` (npz weights) and the ``.json`` beside it (names and provenance)."""
        h = self._h()
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"task_w": h.tw, "task_b": h.tb, "domain_w": h.dw, "domain_b": h.db,
                  "complexity_w": h.cw, "complexity_b": np.float32(h.cb)}
        with open(p, "wb") as f:  # a file object keeps numpy from appending ".npz" to other names
            np.savez_compressed(f, **arrays)
        p.with_suffix(".json").write_text(json.dumps(h.meta, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> TaskAnalyzer:
        """Read and check weights and metadata written by :meth:`save`.

        Raises:
            ArtifactNotFoundError: the .npz or its .json is missing.
            CorruptArtifactError: a file is unreadable or inconsistent (the message names it).
        """
        analyzer = cls(path=path)
        analyzer._h()
        return analyzer

    @classmethod
    def default(cls) -> TaskAnalyzer:
        """The bundled analyzer, shared by the process; its files are read on first use."""
        global _DEFAULT
        if _DEFAULT is None:
            with _LOCK:
                if _DEFAULT is None:
                    _DEFAULT = cls(path=BUNDLED)
        return _DEFAULT


_DEFAULT: TaskAnalyzer | None = None
_LOCK = threading.Lock()
