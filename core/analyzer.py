"""The task analyzer: task type, domain and complexity of a prompt from its MiniLM embedding.

Three small heads trained by ``scripts/build_analyzer.py`` on ../shared/data (train splits only) and
shipped as ``optiroute/data/analyzer.npz`` (weights) + ``analyzer.json`` (names, output-token table,
sources, validation figures). Inference is two matrix products and a dot product in numpy, so the
analyzer adds microseconds on top of the embedding.

- task type (softmax): ``math, coding, reasoning, knowledge, writing, extraction, chat``;
- domain (softmax): MMLU-Pro's 14 subject areas;
- complexity (linear, clipped to 0..1): predicted empirical difficulty, 1 - fraction of models that
  solve prompts like this one.
"""

from __future__ import annotations

import json
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ArtifactNotFoundError, CorruptArtifactError
from .types import TaskProfile

__all__ = ["AnalyzerOutput", "TaskAnalyzer"]

BUNDLED = Path(__file__).resolve().parent / "data" / "analyzer.npz"
_ARRAYS = ("task_w", "task_b", "domain_w", "domain_b", "complexity_w", "complexity_b")


class AnalyzerOutput:
    """Vectorised analyzer output for n prompts: ``task_probs`` (n, T), ``domain_probs`` (n, D),
    ``complexity`` (n,)."""

    __slots__ = ("task_probs", "domain_probs", "complexity")

    def __init__(self, task_probs: np.ndarray, domain_probs: np.ndarray, complexity: np.ndarray) -> None:
        self.task_probs = task_probs
        self.domain_probs = domain_probs
        self.complexity = complexity


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class TaskAnalyzer:
    """Linear heads over sentence embeddings.

    Args:
        weights: the arrays named in ``_ARRAYS``.
        meta: ``task_types``, ``domains``, ``output_tokens`` (per task type) and provenance.
    """

    def __init__(self, weights: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.task_types: list[str] = list(meta["task_types"])
        self.domains: list[str] = list(meta["domains"])
        self.meta = meta
        tw, dw = weights["task_w"], weights["domain_w"]
        dim = tw.shape[0]
        if (
            tw.shape != (dim, len(self.task_types))
            or weights["task_b"].shape != (len(self.task_types),)
            or dw.shape != (dim, len(self.domains))
            or weights["domain_b"].shape != (len(self.domains),)
            or weights["complexity_w"].shape != (dim,)
        ):
            raise CorruptArtifactError(
                "Analyzer weights do not match the task types / domains in analyzer.json; rebuild "
                "them with `python scripts/build_analyzer.py`."
            )
        self.dim = dim
        self._w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        self._out_tokens = np.array(
            [float(meta["output_tokens"][t]) for t in self.task_types], dtype=np.float32
        )

    # ----------------------------------------------------------------- inference
    def predict(self, embeddings: np.ndarray) -> AnalyzerOutput:
        """Task probabilities, domain probabilities and complexity for each embedding row."""
        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected embeddings of shape (n, {self.dim}), got {x.shape}")
        w = self._w
        task = _softmax(x @ w["task_w"] + w["task_b"])
        dom = _softmax(x @ w["domain_w"] + w["domain_b"])
        cx = np.clip(x @ w["complexity_w"] + w["complexity_b"], 0.0, 1.0)
        return AnalyzerOutput(task, dom, cx.astype(np.float32))

    def output_tokens(self, task_probs: np.ndarray) -> np.ndarray:
        """Expected answer length per prompt: the task-type table weighted by the probabilities."""
        return (task_probs @ self._out_tokens).astype(np.float32)

    def analyze(self, embeddings: np.ndarray, texts: list[str], *, pruned: list[bool] | None = None) -> list[TaskProfile]:
        """Full :class:`TaskProfile` per prompt (for callers outside the router's vectorised path)."""
        out = self.predict(embeddings)
        tokens = self.output_tokens(out.task_probs)
        profiles = []
        for i, text in enumerate(texts):
            tp, dp = out.task_probs[i], out.domain_probs[i]
            profiles.append(
                TaskProfile.model_construct(
                    task_type=self.task_types[int(tp.argmax())],
                    task_confidence=float(tp.max()),
                    task_probs={t: round(float(p), 4) for t, p in zip(self.task_types, tp)},
                    domain=self.domains[int(dp.argmax())],
                    domain_confidence=float(dp.max()),
                    complexity=float(out.complexity[i]),
                    est_input_tokens=max(1, len(text) // 4),
                    est_output_tokens=int(tokens[i]),
                    pruned=bool(pruned[i]) if pruned else False,
                )
            )
        return profiles

    # ----------------------------------------------------------------- files
    def save(self, path: str | Path) -> None:
        """Write ``<path>`` (npz weights) and ``<path>.json`` beside it (names and provenance)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(p, **{k: self._w[k] for k in _ARRAYS})
        p.with_suffix(".json").write_text(json.dumps(self.meta, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> TaskAnalyzer:
        """Read weights and metadata written by :meth:`save`.

        Raises:
            ArtifactNotFoundError: a file is missing. CorruptArtifactError: unreadable or inconsistent.
        """
        p = Path(path)
        meta_path = p.with_suffix(".json")
        for f in (p, meta_path):
            if not f.exists():
                raise ArtifactNotFoundError(f"Analyzer file {str(f)!r} is missing.")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            with np.load(p, allow_pickle=False) as z:
                weights = {k: z[k] for k in _ARRAYS}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise CorruptArtifactError(
                f"Analyzer file {str(p)!r} or {str(meta_path)!r} is corrupted ({type(exc).__name__}: "
                f"{exc}); rebuild with `python scripts/build_analyzer.py` or re-save the router."
            ) from None
        if not isinstance(meta, dict) or not {"task_types", "domains", "output_tokens"} <= set(meta):
            raise CorruptArtifactError(f"{str(meta_path)!r} lacks task_types/domains/output_tokens.")
        return cls(weights, meta)

    @classmethod
    def default(cls) -> TaskAnalyzer:
        """The bundled analyzer (read once per process)."""
        global _DEFAULT
        with _LOCK:
            if _DEFAULT is None:
                _DEFAULT = cls.load(BUNDLED)
        return _DEFAULT


_DEFAULT: TaskAnalyzer | None = None
_LOCK = threading.Lock()
