"""The evaluation store: embedded prompts with known per-model outcomes, searched by kNN.

A new prompt's quality for a model is predicted from the outcomes of the most similar stored prompts
(the seed design's kNN router). Single prompts are searched with an Annoy index (angular metric), built
lazily on first use and saved beside the store so that ``Router.load`` memory-maps it. Batches are
searched exactly with one matrix product per chunk: at the store sizes we ship (~10^4 prompts) that
is both exact and faster than 10^4 Annoy calls from Python.

Embeddings are stored as int8 (unit vectors scaled by 127): a quarter of float32 and no measurable loss
for cosine neighbours. Outcomes are a dense ``(n_prompts, n_models)`` matrix with NaN for "not
evaluated", so stores from different sources (different model sets) can be stacked.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from optiroute.errors import ArtifactNotFoundError, CorruptArtifactError, DependencyError, InvalidInputError
from optiroute.schema.arrays import bind_shapes, check_values, load_npz
from optiroute.schema.files import load_json, member, read_capped
from optiroute.schema.numbers import integer

__all__ = ["OutcomeIndex", "KNNResult"]

_NPZ = "index.npz"
_ANN = "index.ann"
_FORMAT = 1


class KNNResult:
    """Neighbour ids and cosine similarities for a batch of queries: arrays of shape (n, k)."""

    __slots__ = ("ids", "sims")

    def __init__(self, ids: np.ndarray, sims: np.ndarray) -> None:
        self.ids = ids
        self.sims = sims


def quantize(emb: np.ndarray) -> np.ndarray:
    """Unit vectors -> int8 (x127)."""
    return np.clip(np.rint(emb * 127.0), -127, 127).astype(np.int8)


class OutcomeIndex:
    """Stored prompts (embeddings, ids, task labels) and their per-model outcomes.

    Args:
        embeddings: (n, dim) unit vectors (float) or int8 quantised.
        prompt_ids: n ids.
        tasks: n task labels from the data ("" when unknown).
        models: m model names (columns of ``scores``).
        scores: (n, m) outcome in 0..1, NaN where the model was not evaluated.
        costs: (n, m) observed cost in USD, NaN where unknown.
        n_trees: Annoy trees (more = better recall, slower build).
        estimated: (n, m) True where a score is an estimate, not a measurement (onboarding fills the
            rest of a new model's column; a second onboarding run keeps only the measured cells).
    """

    def __init__(
        self,
        embeddings: np.ndarray,
        prompt_ids: Sequence[str],
        tasks: Sequence[str],
        models: Sequence[str],
        scores: np.ndarray,
        costs: np.ndarray | None = None,
        *,
        n_trees: int = 16,
        estimated: np.ndarray | None = None,
    ) -> None:
        n = len(prompt_ids)
        if embeddings.ndim != 2 or embeddings.shape[0] != n:
            raise CorruptArtifactError(
                f"index embeddings have shape {embeddings.shape}, expected ({n}, dim)."
            )
        if scores.shape != (n, len(models)):
            raise CorruptArtifactError(
                f"index scores have shape {scores.shape}, expected ({n}, {len(models)})."
            )
        self._q = embeddings if embeddings.dtype == np.int8 else quantize(embeddings)
        self.dim = int(self._q.shape[1])
        self.prompt_ids = [str(p) for p in prompt_ids]
        self.tasks = [str(t) for t in tasks]
        self.models = [str(m) for m in models]
        self.scores = scores.astype(np.float32)
        self.costs = (
            costs.astype(np.float32) if costs is not None else np.full_like(self.scores, np.nan)
        )
        self.estimated = (np.zeros(self.scores.shape, dtype=bool) if estimated is None
                          else np.asarray(estimated, dtype=bool).reshape(self.scores.shape))
        self.n_trees = n_trees
        self._col = {m: i for i, m in enumerate(self.models)}
        self._mat: np.ndarray | None = None
        self._ann: Any = None
        self._ann_path: Path | None = None
        self._lock = threading.Lock()
        # Per-model means are the fallback prediction when no neighbour has the model's outcome.
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows/columns are fine here
            self.model_means = np.nan_to_num(np.nanmean(self.scores, axis=0), nan=0.5)
            # Each stored prompt's mean outcome over the models evaluated on it: the reference that
            # makes outcomes from differently scored sets comparable (see knn_quality(relative=True)).
            self.row_means = np.nan_to_num(np.nanmean(self.scores, axis=1), nan=0.5).astype(np.float32)

    def __len__(self) -> int:
        return len(self.prompt_ids)

    def column(self, model: str) -> int | None:
        """Column of ``model`` in :attr:`scores`, or ``None`` if the store has no outcomes for it."""
        return self._col.get(model)

    @property
    def matrix(self) -> np.ndarray:
        """Float32 unit vectors (dequantised once, lazily)."""
        if self._mat is None:
            mat = self._q.astype(np.float32) / 127.0
            mat /= np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)
            self._mat = mat
        return self._mat

    def copy_outcomes(self) -> OutcomeIndex:
        """A copy whose outcome matrices are its own, sharing the (unchanging) embeddings and Annoy
        index: what a router needs before adding a column to a store other routers may share."""
        new = OutcomeIndex(self._q, self.prompt_ids, self.tasks, list(self.models), self.scores.copy(),
                           self.costs.copy(), n_trees=self.n_trees, estimated=self.estimated.copy())
        new._mat, new._ann, new._ann_path = self._mat, self._ann, self._ann_path
        return new

    def add_model(self, model: str, scores: np.ndarray, costs: np.ndarray | None = None, *,
                  estimated: np.ndarray | None = None) -> int:
        """Add (or replace) ``model``'s outcome column in place; returns its column.

        Onboarding (:mod:`optiroute.onboard.onboarding`) evaluates a new model on a few stored prompts and adds
        them here, NaN or estimates (``estimated``: True) elsewhere. Only the outcome matrices change:
        the Annoy index depends on the embeddings alone and stays valid. ``scores``/``costs`` have one
        value per stored prompt.
        """
        s = np.asarray(scores, dtype=np.float32).reshape(-1)
        c = np.full_like(s, np.nan) if costs is None else np.asarray(costs, dtype=np.float32).reshape(-1)
        if s.shape != (len(self),) or c.shape != (len(self),):
            raise InvalidInputError(f"add_model needs {len(self)} scores and costs (one per stored prompt), "
                                    f"got {s.shape[0]} and {c.shape[0]}; use NaN for prompts not evaluated.")
        e = np.zeros(s.shape, dtype=bool) if estimated is None else np.asarray(estimated, dtype=bool).reshape(-1)
        j = self._col.get(str(model))
        if j is None:
            self.models.append(str(model))
            j = self._col[str(model)] = len(self.models) - 1
            self.scores = np.concatenate([self.scores, s[:, None]], axis=1)
            self.costs = np.concatenate([self.costs, c[:, None]], axis=1)
            self.estimated = np.concatenate([self.estimated, e[:, None]], axis=1)
        else:
            self.scores[:, j], self.costs[:, j], self.estimated[:, j] = s, c, e
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.model_means = np.nan_to_num(np.nanmean(self.scores, axis=0), nan=0.5)
            self.row_means = np.nan_to_num(np.nanmean(self.scores, axis=1), nan=0.5).astype(np.float32)
        return j

    # ------------------------------------------------------------------ search
    def _annoy(self) -> Any:
        if self._ann is not None:
            return self._ann
        with self._lock:
            if self._ann is not None:
                return self._ann
            try:
                from annoy import AnnoyIndex
            except ImportError as exc:  # pragma: no cover - annoy is a core dependency
                raise DependencyError("annoy is not installed; run `pip install annoy`.") from exc
            ann = AnnoyIndex(self.dim, "angular")
            if self._ann_path is not None and self._ann_path.exists():
                try:
                    ann.load(str(self._ann_path))
                except OSError as exc:
                    raise CorruptArtifactError(
                        f"Annoy index {str(self._ann_path)!r} cannot be loaded ({exc}); delete it "
                        "and it will be rebuilt from index.npz."
                    ) from None
                if ann.get_n_items() != len(self):
                    raise CorruptArtifactError(
                        f"Annoy index {str(self._ann_path)!r} has {ann.get_n_items()} items but "
                        f"index.npz has {len(self)}; delete index.ann to rebuild it."
                    )
            else:
                mat = self.matrix
                for i in range(len(self)):
                    ann.add_item(i, mat[i])
                ann.set_seed(42)
                ann.build(self.n_trees, n_jobs=1)
            self._ann = ann
            return ann

    def search(self, query: np.ndarray, k: int) -> KNNResult:
        """Approximate kNN of one unit vector through Annoy: arrays of shape (1, k)."""
        k = min(k, len(self))
        ids, dist = self._annoy().get_nns_by_vector(query, k, include_distances=True)
        d = np.asarray(dist, dtype=np.float32)
        return KNNResult(np.asarray(ids, dtype=np.int64)[None, :], (1.0 - d * d / 2.0)[None, :])

    def search_batch(self, queries: np.ndarray, k: int, *, chunk: int = 2048) -> KNNResult:
        """Exact kNN of many unit vectors by chunked matrix products: arrays of shape (n, k)."""
        k = min(k, len(self))
        mat = self.matrix
        ids = np.empty((len(queries), k), dtype=np.int64)
        sims = np.empty((len(queries), k), dtype=np.float32)
        for start in range(0, len(queries), chunk):
            q = queries[start : start + chunk].astype(np.float32, copy=False)
            s = q @ mat.T
            part = np.argpartition(-s, k - 1, axis=1)[:, :k]
            ps = np.take_along_axis(s, part, axis=1)
            order = np.argsort(-ps, axis=1)
            ids[start : start + chunk] = np.take_along_axis(part, order, axis=1)
            sims[start : start + chunk] = np.take_along_axis(ps, order, axis=1)
        return KNNResult(ids, sims)

    # ------------------------------------------------------------- prediction
    def knn_quality(
        self,
        knn: KNNResult,
        columns: Sequence[int | None],
        *,
        tau: float = 0.1,
        values: np.ndarray | None = None,
        relative: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Similarity-weighted mean outcome of the neighbours, per query and requested column.

        Weights are ``exp((sim - 1) / tau)``: a neighbour at cosine 0.9 counts ~20x one at 0.6, and
        the absolute scale means a prompt unlike anything stored gathers little evidence. Returns
        ``(quality, support)`` of shape (n, len(columns)): ``support`` is the total weight of the
        neighbours that have an outcome for that model (0 for models the store does not know, whose
        quality is then NaN); the predictor shrinks towards the card prior when it is small.
        ``values`` averages another (n_prompts, n_models) matrix instead of the scores, e.g.
        :attr:`costs`. With ``relative``, each neighbour's outcome is taken relative to that prompt's
        mean over the models evaluated on it: "how much better than the other models on prompts like
        this", which stays comparable across data sets whose scores mean different things (0/1
        multiple-choice accuracy vs a generation metric).
        """
        matrix = self.scores if values is None else values
        n = knn.ids.shape[0]
        quality = np.full((n, len(columns)), np.nan, dtype=np.float32)
        support = np.zeros((n, len(columns)), dtype=np.float32)
        known = [(j, c) for j, c in enumerate(columns) if c is not None]
        if not known:
            return quality, support
        w = np.exp((knn.sims - 1.0) / tau).astype(np.float32)  # (n, k)
        cols = np.array([c for _, c in known])
        s = matrix[knn.ids][:, :, cols]  # (n, k, mk)
        if relative:
            s = s - self.row_means[knn.ids][:, :, None]
        has = ~np.isnan(s)
        wk = w[:, :, None] * has
        num = np.einsum("nkm,nkm->nm", wk, np.where(has, s, 0))
        den = wk.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            q = np.where(den > 0, num / np.maximum(den, 1e-12), np.nan)
        idx = [j for j, _ in known]
        quality[:, idx] = q
        support[:, idx] = den
        return quality, support

    # ------------------------------------------------------------ persistence
    def save(self, directory: str | Path, *, with_ann: bool = True) -> None:
        """Write ``index.npz`` and, with ``with_ann``, the Annoy index ``index.ann``.

        The bundled default leaves the Annoy file out (it is float32 and 4x the npz) and builds it on
        first use; a user's saved router keeps it so that loading is a memory map.
        """
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        meta = {"format": _FORMAT, "models": self.models, "n_trees": self.n_trees}
        np.savez_compressed(
            d / _NPZ,
            meta=np.array(json.dumps(meta)),
            embeddings=self._q,
            prompt_ids=np.array(self.prompt_ids),
            tasks=np.array(self.tasks),
            scores=self.scores.astype(np.float16),
            costs=self.costs,
            estimated=np.packbits(self.estimated, axis=None),
        )
        if with_ann:
            self._annoy().save(str(d / _ANN))

    @classmethod
    def load(cls, directory: str | Path, *, require_ann: bool = False, dim: int | None = None) -> OutcomeIndex:
        """Read an index written by :meth:`save`; a missing ``index.ann`` is rebuilt lazily.

        The files are untrusted: ``index.npz`` must be a regular file within its size cap whose arrays
        agree with each other (``embeddings`` int8 (n, dim), ``prompt_ids`` and ``tasks`` n strings,
        ``scores`` (n, models) in 0..1 or NaN, ``costs`` (n, models) >= 0 or NaN, ``estimated`` n x
        models bits) and with ``dim`` when given (the embedder's dimension); ``index.ann`` must have
        the size an Annoy index of n such vectors has.

        Raises:
            ArtifactNotFoundError: ``index.npz`` (or, with ``require_ann``, ``index.ann``) is missing.
            CorruptArtifactError: anything else, naming the file and the array or field.
        """
        d = Path(directory)
        path = d / _NPZ
        label = repr(str(path))
        if not path.exists():
            raise ArtifactNotFoundError(f"Missing {label}; save the router again.")
        z = load_npz(read_capped(path), label=label,
                     keys=("meta", "embeddings", "prompt_ids", "tasks", "scores", "costs", "estimated"))
        if "meta" not in z or z["meta"].dtype.kind != "U" or z["meta"].ndim != 0:
            raise CorruptArtifactError(f"{label} is not an OptiRoute index: it lacks its 'meta' record. "
                                       "Rebuild it with Router.fit(...).save(...).")
        meta = load_json(str(z["meta"]), label=f"{label} (array 'meta')")
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else None
            raise CorruptArtifactError(f"{label} has index format {found!r}; this version reads {_FORMAT}.")
        models = meta.get("models")
        if not (isinstance(models, list) and all(isinstance(m, str) and m for m in models)
                and len(set(models)) == len(models)):
            raise CorruptArtifactError(f"{label}: field 'models' of its meta record must list distinct model names.")
        n_trees = integer(meta.get("n_trees", 16), f"{label}: field 'n_trees'", lo=1, hi=1000,
                          error=CorruptArtifactError)
        sizes = {"models": len(models)} | ({} if dim is None else {"dim": int(dim)})
        bound = bind_shapes(
            z, {"embeddings": ("n", "dim"), "prompt_ids": ("n",), "tasks": ("n",), "scores": ("n", "models"),
                "costs": ("n", "models")},
            label=label, sizes=sizes,
            kinds={"embeddings": "i", "prompt_ids": "U", "tasks": "U", "scores": "f", "costs": "f"},
        )
        if z["embeddings"].dtype != np.int8 or not 1 <= bound["dim"] <= MAX_DIM:
            raise CorruptArtifactError(f"{label}: array 'embeddings' must be int8 of shape (n, dim) with dim in "
                                       f"1..{MAX_DIM}, got {z['embeddings'].dtype} {z['embeddings'].shape}.")
        check_values(z["scores"], "scores", label=label, lo=0.0, hi=1.0, allow_nan=True)
        check_values(z["costs"], "costs", label=label, lo=0.0, allow_nan=True)
        packed = z.get("estimated")  # saved before onboarding kept it: absent
        n, m = bound["n"], bound["models"]
        if packed is not None and (packed.dtype != np.uint8 or packed.shape != (-(-n * m // 8),)):
            raise CorruptArtifactError(f"{label}: array 'estimated' must be {-(-n * m // 8)} packed bytes (uint8), "
                                       f"got {packed.dtype} {packed.shape}.")
        index = cls(
            z["embeddings"],
            z["prompt_ids"].tolist(),
            z["tasks"].tolist(),
            models,
            z["scores"].astype(np.float32),
            z["costs"].astype(np.float32),
            n_trees=n_trees,
            estimated=None if packed is None else np.unpackbits(packed, count=n * m).astype(bool),
        )
        ann = d / _ANN
        if ann.exists():
            _check_ann(ann, n, bound["dim"])
            index._ann_path = ann
        elif require_ann:
            raise ArtifactNotFoundError(f"Missing {str(ann)!r}.")
        return index


#: The largest embedding dimension an index may have.
MAX_DIM = 8192


def _check_ann(path: Path, n: int, dim: int) -> None:
    """``index.ann`` must be a regular file (within its cap) of whole Annoy nodes for vectors of
    ``dim`` floats, at least one per stored prompt: anything else would be misread by Annoy."""
    size = member(path.parent, path.name, where=repr(str(path.parent / "manifest.json"))).stat().st_size
    node = 12 + 4 * dim  # Annoy's angular node: n_descendants, two children, dim float32
    if size % node != 0 or size // node < n:
        raise CorruptArtifactError(
            f"Annoy index {str(path)!r} has {size} bytes, which is not an Annoy index of {n} vectors of "
            f"dimension {dim} (nodes of {node} bytes); delete index.ann to rebuild it from index.npz."
        )
