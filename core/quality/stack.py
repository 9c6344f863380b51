"""The ``stack`` quality predictor: a blend of the other kinds with weights learned out of fold.

Every kind is fitted k times on k-1 folds of the training prompts and predicts the fold it did not
see (:func:`oof_predictions`), so each training prompt gets one honest prediction per kind. The
blend weights are the non-negative, sum-to-one least-squares combination of those predictions
against the observed outcomes (:func:`blend_weights`, a Brier-score stack). With few prompts
those weights are themselves noisy, so they shrink towards the per-model mean (the ``mean`` kind,
what not routing knows): ``w = (n * w_learned + n_shrink * e_mean) / (n + n_shrink)`` for ``n``
training prompts (:func:`shrink_weights`).

At routing time the components share one neighbour search (the largest ``k`` any of them uses;
each reads its own first ``k``) and their quality matrices are averaged with the weights; support
is the largest any component reports. Saved as one ``predictor.npz`` (each learned component's
arrays under ``c<i>_``) and ``predictor.json`` (the components, their weights and configs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from optiroute.errors import CorruptArtifactError, InvalidInputError
from optiroute.quality.base import (
    BASE_KINDS,
    JSON,
    NPZ,
    Evidence,
    LearnedPredictor,
    Predictor,
    TrainData,
    match_columns,
    predictor_class,
    search_evidence,
)
from optiroute.quality.index import KNNResult, OutcomeIndex
from optiroute.schema.arrays import load_npz
from optiroute.schema.files import load_json, read_capped
from optiroute.schema.numbers import real

if TYPE_CHECKING:
    from optiroute.catalog.registry import ModelCard

__all__ = ["N_SHRINK", "StackPredictor", "blend_weights", "fold_ids", "oof_predictions", "shrink_weights"]

#: Training prompts at which the learned blend and the per-model mean weigh the same.
N_SHRINK = 50.0
#: Components whose blend weight is below this are dropped (and the rest renormalised).
MIN_WEIGHT = 0.02

#: ``predict(fitted predictor, rows of the training data) -> (len(rows), m) quality``.
PredictFn = Callable[[Predictor, np.ndarray], np.ndarray]


def fold_ids(n: int, n_folds: int, seed: int) -> np.ndarray:
    """A seeded fold number in ``0..n_folds-1`` for each of ``n`` rows (sizes differ by at most one)."""
    perm = np.random.default_rng(seed + 1).permutation(n)
    folds = np.empty(n, dtype=np.int64)
    folds[perm] = np.arange(n) % n_folds
    return folds


def row_labels(data: TrainData) -> list[str]:
    """The rows' task labels: ``data.labels``, else the store's task column when it holds these rows."""
    if data.labels is not None:
        return [str(t) for t in data.labels]
    if data.index is not None and len(data.index) == len(data.embeddings):
        return list(data.index.tasks)
    return [""] * len(data.embeddings)


def subset(data: TrainData, rows: np.ndarray, costs: np.ndarray | None = None) -> TrainData:
    """The training data restricted to ``rows``, with its own kNN store."""
    labels = row_labels(data)
    ids = (data.index.prompt_ids if data.index is not None and len(data.index) == len(data.embeddings)
           else [str(i) for i in range(len(data.embeddings))])
    sub_labels = [labels[i] for i in rows]
    index = OutcomeIndex(data.embeddings[rows], [ids[i] for i in rows], sub_labels, data.models,
                         data.scores[rows], None if costs is None else costs[rows])
    return TrainData(data.embeddings[rows], data.scores[rows], data.models, index, data.seed, sub_labels)


def oof_predictions(data: TrainData, kinds: Sequence[str], folds: np.ndarray, predict: PredictFn,
                    costs: np.ndarray | None = None,
                    options: dict[str, dict[str, Any]] | None = None) -> dict[str, np.ndarray]:
    """Out-of-fold quality of each kind: row ``i`` predicted by the kind fitted without ``i``'s fold
    (``options``: keyword arguments of each kind's ``fit``)."""
    options = options or {}
    n, m = data.scores.shape
    out = {k: np.full((n, m), np.nan, dtype=np.float32) for k in kinds}
    for f in np.unique(folds):
        val = np.flatnonzero(folds == f)
        sub = subset(data, np.flatnonzero(folds != f), costs)
        for k in kinds:
            cls = predictor_class(k)
            if cls.unavailable(sub) is not None:  # e.g. a fold whose labels are all one task
                out[k][val] = predict(predictor_class("mean").fit(sub), val)
                continue
            out[k][val] = predict(cls.fit(sub, **options.get(k, {})), val)
    return out


def blend_weights(oof: dict[str, np.ndarray], scores: np.ndarray, rows: np.ndarray | None = None) -> dict[str, float]:
    """Non-negative weights summing to one that minimise the squared error of the blend on the
    observed cells of ``rows`` (default: all)."""
    from scipy.optimize import nnls

    kinds = list(oof)
    rows = np.arange(len(scores)) if rows is None else rows
    y = scores[rows]
    ok = ~np.isnan(y)
    x = np.stack([np.asarray(oof[k])[rows][ok] for k in kinds], axis=1).astype(np.float64)
    t = y[ok].astype(np.float64)
    if len(t) == 0:
        return {k: 1.0 / len(kinds) for k in kinds}
    big = 1e3 * np.sqrt(len(t))  # the sum-to-one row, weighted to hold almost exactly
    a = np.vstack([x, np.full((1, len(kinds)), big)])
    b = np.concatenate([t, [big]])
    w, _ = nnls(a, b, maxiter=50 * len(kinds))
    w = np.maximum(w, 0.0)
    w = w / w.sum() if w.sum() > 0 else np.full(len(kinds), 1.0 / len(kinds))
    return {k: float(v) for k, v in zip(kinds, w, strict=True)}


def shrink_weights(weights: dict[str, float], n: int, n_shrink: float = N_SHRINK) -> dict[str, float]:
    """Move ``weights`` towards the per-model mean by ``n_shrink / (n + n_shrink)``; drop tiny ones."""
    a = n / (n + n_shrink)
    out = {k: a * v for k, v in weights.items()}
    out["mean"] = out.get("mean", 0.0) + (1 - a)
    out = {k: v for k, v in out.items() if v >= MIN_WEIGHT}
    total = sum(out.values())
    return {k: v / total for k, v in out.items()}


def blend(oof: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """The weighted sum of the kinds' predictions."""
    return sum((w * np.asarray(oof[k], dtype=np.float32) for k, w in weights.items()),
               start=np.zeros_like(next(iter(oof.values())), dtype=np.float32))


class StackPredictor(Predictor):
    """A weighted blend of fitted predictors of other kinds (see the module docstring)."""

    kind: ClassVar[str] = "stack"

    def __init__(self, components: Sequence[Predictor], weights: Sequence[float], models: Sequence[str],
                 config: dict[str, Any] | None = None) -> None:
        if len(components) != len(weights) or not components:
            raise InvalidInputError("A stacked predictor needs one weight per component, and a component.")
        self.components = list(components)
        self.weights = [float(w) for w in weights]
        self.models = [str(m) for m in models]
        self.config = dict(config or {})
        self.k = max(int(getattr(c, "k", 50)) for c in self.components)

    @property
    def index(self) -> OutcomeIndex | None:
        """The kNN store the components read (the first component's)."""
        return next((getattr(c, "index", None) for c in self.components), None)

    @index.setter
    def index(self, index: OutcomeIndex | None) -> None:  # onboarding swaps the store for all of them
        for c in self.components:
            c.index = index  # type: ignore[attr-defined]

    @classmethod
    def fit(cls, data: TrainData, *, weights: dict[str, float] | None = None, n_folds: int = 5,
            **kwargs: Any) -> StackPredictor:
        """Fit each kind of ``weights`` on all of ``data``. Without weights, learn them out of fold
        with a card-free prediction (every model's card neutral) and shrink them by the data's size."""
        if weights is None:
            kinds = [k for k in BASE_KINDS if predictor_class(k).unavailable(data) is None]
            folds = fold_ids(len(data.embeddings), max(2, min(n_folds, len(data.embeddings) // 10)), data.seed)
            oof = oof_predictions(data, kinds, folds, _neutral_predict(data))
            weights = shrink_weights(blend_weights(oof, data.scores), len(data.embeddings))
        comps = [predictor_class(k).fit(data, **({"observed_n0": kwargs["observed_n0"]}
                                                   if k == "knn" and "observed_n0" in kwargs else {}))
                 for k in weights]
        return cls(comps, list(weights.values()), data.models,
                   {"weights": {k: round(v, 5) for k, v in weights.items()}})

    def columns(self, cards: Sequence[ModelCard]) -> list[int | None]:
        return match_columns(cards, self.models)

    def neighbours(self, embeddings: np.ndarray, *, exact: bool) -> Evidence:
        return search_evidence(self.index, embeddings, self.k, exact=exact)

    def predict(
        self,
        knn: KNNResult | None,
        cards: Sequence[ModelCard],
        domains: Sequence[str],
        tasks: Sequence[str],
        complexity: np.ndarray,
        *,
        columns: Sequence[int | None] | None = None,
        corrections: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(knn, Evidence):
            raise InvalidInputError("StackPredictor.predict needs the Evidence from its own neighbours(); "
                                    "call predict_matrix(embeddings, ...) instead.")
        quality = np.zeros((len(knn.emb), len(cards)), dtype=np.float32)
        support = np.zeros_like(quality)
        for comp, w in zip(self.components, self.weights, strict=True):
            k = int(getattr(comp, "k", self.k))
            ev = Evidence(knn.ids[:, :k], knn.sims[:, :k], knn.emb)
            own: KNNResult | None = ev if (comp.kind != "knn" or ev.ids.shape[1] > 0) else None
            q, s = comp.predict(own, cards, domains, tasks, complexity, columns=comp.columns(cards))
            quality += np.float32(w) * q
            support = np.maximum(support, s)
        if corrections is not None:
            quality = quality + corrections
        return np.clip(quality, 0.0, 1.0).astype(np.float32), support

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> list[str]:
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        entries: list[dict[str, Any]] = []
        for i, (comp, w) in enumerate(zip(self.components, self.weights, strict=True)):
            entry: dict[str, Any] = {"kind": comp.kind, "weight": w}
            if isinstance(comp, LearnedPredictor):
                entry |= {"models": comp.models, "config": comp.config}
                arrays[f"c{i}_n_obs"] = comp.n_obs
                arrays |= {f"c{i}_w_{k}": v for k, v in comp.weights.items()}
            else:
                entry |= {key: getattr(comp, key) for key in ("lam", "k", "tau", "mean_complexity", "observed_n0")}
            entries.append(entry)
        np.savez_compressed(directory / NPZ, **arrays)  # type: ignore[arg-type]
        meta = {"kind": self.kind, "models": self.models, "config": self.config, "components": entries}
        import json

        (directory / JSON).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return [NPZ, JSON]

    @classmethod
    def load(cls, directory: Path, index: OutcomeIndex | None, *, dim: int | None = None) -> StackPredictor:
        """Read what :meth:`save` wrote, untrusted: every component is checked as its own kind's
        files would be (shapes, values, config), the weights are numbers in 0..1.

        Raises:
            ArtifactNotFoundError: a file is missing.
            CorruptArtifactError: anything else, naming the file and the field.
        """
        from optiroute.quality.knn import QualityPredictor

        label_json, label_npz = repr(str(directory / JSON)), repr(str(directory / NPZ))
        meta = load_json(read_capped(directory / JSON), label=label_json)
        arrays = load_npz(read_capped(directory / NPZ), label=label_npz)
        if not isinstance(meta, dict) or meta.get("kind") != cls.kind:
            raise CorruptArtifactError(f"{label_json} does not hold a stacked predictor; save the router again.")
        models, entries = meta.get("models"), meta.get("components")
        if not (isinstance(models, list) and models and all(isinstance(m, str) and m for m in models)):
            raise CorruptArtifactError(f"{label_json}: field 'models' must list model names.")
        if not (isinstance(entries, list) and 0 < len(entries) <= 16 and all(isinstance(e, dict) for e in entries)):
            raise CorruptArtifactError(f"{label_json}: field 'components' must list 1 to 16 components.")
        comps: list[Predictor] = []
        weights: list[float] = []
        for i, e in enumerate(entries):
            where = f"{label_json}: field 'components[{i}]"
            weights.append(real(e.get("weight"), f"{where}.weight'", lo=0.0, hi=1.0, error=CorruptArtifactError))
            kind = e.get("kind")
            if kind == "knn":
                opts = {"lam": real(e.get("lam", 3.0), f"{where}.lam'", lo=0.0, lo_open=True, hi=1e6,
                                    error=CorruptArtifactError),
                        "k": int(real(e.get("k", 50), f"{where}.k'", lo=1, hi=10_000, error=CorruptArtifactError)),
                        "tau": real(e.get("tau", 0.1), f"{where}.tau'", lo=0.0, lo_open=True, hi=10.0,
                                    error=CorruptArtifactError),
                        "mean_complexity": real(e.get("mean_complexity", 0.5), f"{where}.mean_complexity'",
                                                lo=0.0, hi=1.0, error=CorruptArtifactError)}
                n0 = e.get("observed_n0")
                if n0 is not None:
                    opts["observed_n0"] = real(n0, f"{where}.observed_n0'", lo=0.0, hi=1e6, error=CorruptArtifactError)
                comps.append(QualityPredictor(index, **opts))  # type: ignore[arg-type]
                continue
            if kind not in ("routoo", "mlp", "task", "mean"):
                raise CorruptArtifactError(f"{where}.kind' is {str(kind)[:40]!r}, not a kind a stack combines.")
            sub = {k[len(f"c{i}_"):]: v for k, v in arrays.items() if k.startswith(f"c{i}_")}
            learned = predictor_class(kind)
            assert issubclass(learned, LearnedPredictor)
            comps.append(learned.from_saved({"kind": kind, "models": e.get("models"), "config": e.get("config", {})},
                                            sub, index, dim=dim, label_json=f"{where}'", label_npz=label_npz))
        config = meta.get("config", {})
        return cls(comps, weights, models, config if isinstance(config, dict) else {})


def _neutral_predict(data: TrainData) -> PredictFn:
    """Prediction with neutral cards and mid complexity (what :meth:`StackPredictor.fit` uses alone)."""
    from optiroute.catalog.registry import ModelCard

    cards = [ModelCard(name=m, input_usd_per_mtok=1.0, output_usd_per_mtok=1.0, metrics={"accuracy": 0.5})
             for m in data.models]

    def predict(pred: Predictor, rows: np.ndarray) -> np.ndarray:
        n = len(rows)
        q, _ = pred.predict_matrix(data.embeddings[rows], cards, ["other"] * n, ["other"] * n,
                                   np.full(n, 0.5, dtype=np.float32))
        return q

    return predict
