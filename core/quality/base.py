"""The quality-predictor interface, the registry of predictor kinds, and the learned-predictor base.

A *quality predictor* maps a batch of prompts (their MiniLM embeddings and the analyzer's domain,
task and complexity) and a list of candidate cards to two (n_prompts, n_models) matrices: predicted
quality in 0..1 and *support*, the evidence behind each prediction (the policy turns support into
confidence and falls back to the generalist when it is low). Every kind is vectorised: one matrix
for a whole batch, no Python loop per prompt.

The router calls it in two steps, so the kNN kind can search Annoy for one prompt and the exact
matrix product for batches: :meth:`Predictor.neighbours` gathers the evidence of a batch (a
:class:`~optiroute.quality.index.KNNResult`, which also feeds the decision's explanation), then
:meth:`Predictor.predict` turns it into the matrices. :meth:`Predictor.predict_matrix` does both.

Kinds (``Router.fit(predictor=...)``):

- ``knn``: :class:`optiroute.quality.knn.QualityPredictor` (kNN residuals blended with card priors);
- ``routoo``: :class:`optiroute.quality.routoo.RoutooPredictor` (score = f(h_query - h_model));
- ``mlp``: :class:`optiroute.quality.mlp.MLPPredictor` (per-model logistic heads on shared layers);
- ``task``: :class:`optiroute.quality.task.TaskPredictor` (the data's task labels predicted from
  the prompt, times a per-task outcome table, blended with kNN; needs a ``task`` column).

Learned kinds subclass :class:`LearnedPredictor`: they predict P(correct) for the models they were
trained on and fall back to the card prior (:func:`optiroute.quality.priors.card_prior`) for the
others, smoothly: ``prior + w * (learned - prior)`` with ``w = n / (n + n0)`` for a model with
``n`` training outcomes. Their weights are saved as ``predictor.npz`` (+ ``predictor.json``),
never pickled.
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from optiroute.catalog.registry import normalise_name
from optiroute.errors import CorruptArtifactError, InvalidInputError
from optiroute.quality.index import KNNResult
from optiroute.quality.priors import card_prior
from optiroute.schema.arrays import bind_shapes, check_values, load_npz
from optiroute.schema.files import load_json, read_capped

if TYPE_CHECKING:
    from optiroute.catalog.registry import ModelCard
    from optiroute.quality.index import OutcomeIndex

__all__ = [
    "BASE_KINDS",
    "KINDS",
    "Evidence",
    "LearnedPredictor",
    "Predictor",
    "TrainData",
    "match_columns",
    "predictor_class",
    "search_evidence",
]

#: Predictor kinds -> "module:Class", imported on demand (keeps ``import optiroute`` light).
KINDS: dict[str, str] = {
    "knn": "optiroute.quality.knn:QualityPredictor",
    "routoo": "optiroute.quality.routoo:RoutooPredictor",
    "mlp": "optiroute.quality.mlp:MLPPredictor",
    "task": "optiroute.quality.task:TaskPredictor",
    "mean": "optiroute.quality.mean:MeanPredictor",
    "stack": "optiroute.quality.stack:StackPredictor",
}
#: The kinds a stacked blend combines (everything but the blend itself).
BASE_KINDS: tuple[str, ...] = ("knn", "routoo", "mlp", "task", "mean")
NPZ, JSON = "predictor.npz", "predictor.json"
#: The largest absolute learned weight accepted on load.
MAX_WEIGHT = 1e6


def predictor_class(kind: str) -> type[Predictor]:
    """The class implementing ``kind``.

    Raises:
        InvalidInputError: unknown kind (the message lists the known ones).
    """
    target = KINDS.get(str(kind))
    if target is None:
        raise InvalidInputError(
            f"Unknown quality predictor {kind!r}; choose one of: auto, {', '.join(KINDS)}."
        )
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


@dataclass
class TrainData:
    """What a predictor is fitted on: the training prompts of one router.

    Attributes:
        embeddings: (n, dim) unit MiniLM vectors.
        scores: (n, m) outcomes in 0..1, NaN where a model was not evaluated.
        models: the m model names (columns of ``scores``).
        index: the kNN store built from the same rows (learned kinds use it for explanations and
            support).
        seed: seed of every random choice (initialisation, shuffling, early-stopping holdout).
        labels: the rows' task labels from the data ("" when unknown); ``None`` takes the kNN
            store's task column when the store holds exactly these rows.
    """

    embeddings: np.ndarray
    scores: np.ndarray
    models: list[str]
    index: OutcomeIndex | None = None
    seed: int = 0
    labels: list[str] | None = None


class Evidence(KNNResult):
    """A batch's kNN neighbours (for explanations and support) plus the embeddings themselves."""

    __slots__ = ("emb",)

    def __init__(self, ids: np.ndarray, sims: np.ndarray, emb: np.ndarray) -> None:
        super().__init__(ids, sims)
        self.emb = emb


class Predictor(ABC):
    """Predicted quality and support for (prompts x candidate models); see the module docstring."""

    kind: ClassVar[str] = ""
    #: How the predictor was chosen (``Router.fit(predictor="auto")`` fills it); saved in the manifest.
    selection: dict[str, Any] | None = None

    @staticmethod
    def unavailable(data: TrainData) -> str | None:
        """Why this kind cannot be fitted on ``data`` (``None``: it can); ``auto`` skips such kinds."""
        return None

    @abstractmethod
    def columns(self, cards: Sequence[ModelCard]) -> list[int | None]:
        """Per card, the predictor's column for it (``None``: no outcomes, card prior only)."""

    @abstractmethod
    def neighbours(self, embeddings: np.ndarray, *, exact: bool) -> KNNResult | None:
        """The evidence :meth:`predict` needs for a batch of (n, dim) unit embeddings."""

    @abstractmethod
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
        """``(quality, support)``, both (n_prompts, n_models), from :meth:`neighbours`' evidence."""

    def predict_matrix(
        self,
        embeddings: np.ndarray,
        cards: Sequence[ModelCard],
        domains: Sequence[str],
        tasks: Sequence[str],
        complexity: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Both steps at once for a batch (exact neighbours)."""
        return self.predict(self.neighbours(embeddings, exact=True), cards, domains, tasks, complexity)

    @classmethod
    @abstractmethod
    def fit(cls, data: TrainData, **kwargs: Any) -> Predictor:
        """A predictor of this kind fitted on ``data`` (train rows only)."""

    def save(self, directory: Path) -> list[str]:
        """Write learned weights into ``directory``; returns the file names (none for kNN)."""
        return []

    @classmethod
    def load(cls, directory: Path, index: OutcomeIndex | None, *, dim: int | None = None) -> Predictor:
        """Read what :meth:`save` wrote (kNN kinds are rebuilt from the store instead); ``dim`` is the
        embedder's dimension the weights must fit."""
        raise NotImplementedError(f"{cls.__name__} has no saved weights to load.")


class LearnedPredictor(Predictor):
    """Base of the learned kinds: P(correct) per (prompt, trained model), blended with card priors.

    Subclasses implement :meth:`logits` (numpy only, so a loaded router never needs torch), and
    ``fit``; this class does columns, the card-prior fallback, kNN support and persistence.

    Args:
        models: names of the trained models (output columns of :meth:`logits`).
        n_obs: training outcomes per model (sets the prior weight ``n0 / (n + n0)``).
        weights: the learned arrays (saved to ``predictor.npz``).
        config: hyper-parameters and fit notes (saved to ``predictor.json``).
        index: the kNN store (explanation neighbours and support); may be ``None``.
    """

    #: Pseudo-outcomes of the card prior: a model with 20 outcomes is half learned, half card.
    n0: float = 20.0
    k: int = 50
    tau: float = 0.1

    def __init__(
        self,
        models: Sequence[str],
        n_obs: np.ndarray,
        weights: dict[str, np.ndarray],
        config: dict[str, Any],
        index: OutcomeIndex | None = None,
    ) -> None:
        self.models = [str(m) for m in models]
        self.n_obs = np.asarray(n_obs, dtype=np.float32)
        self.weights = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        self.config = dict(config)
        self.index = index

    @abstractmethod
    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, len(models)) log-odds of a correct answer, vectorised over the batch."""

    def proba(self, embeddings: np.ndarray, *, chunk: int = 8192) -> np.ndarray:
        """(n, len(models)) P(correct), computed in chunks to bound memory on huge batches."""
        out = np.empty((len(embeddings), len(self.models)), dtype=np.float32)
        for s in range(0, len(embeddings), chunk):
            z = self.logits(np.asarray(embeddings[s : s + chunk], dtype=np.float32))
            out[s : s + chunk] = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        return out

    def learned(self, knn: Evidence, mine: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """For the trained models ``mine``: ``(P(correct), weight)``, both (n, len(mine)).

        ``weight`` is the trust in the learned prediction against the card prior, ``n / (n + n0)``
        for a model with ``n`` training outcomes; a kind may make either depend on the prompt (and
        on the neighbours in ``knn``), computing what both share once.
        """
        n = self.n_obs[list(mine)]
        w = np.broadcast_to((n / (n + self.n0))[None, :], (len(knn.emb), len(mine)))
        return self.proba(knn.emb)[:, list(mine)], w

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
            raise InvalidInputError(
                f"{type(self).__name__}.predict needs the Evidence from its own neighbours(); "
                "call predict_matrix(embeddings, ...) instead."
            )
        quality = card_prior(cards, domains, tasks, complexity)
        support = np.zeros_like(quality)
        cols = list(columns) if columns is not None else self.columns(cards)
        known = [(j, c) for j, c in enumerate(cols) if c is not None]
        if known:
            idx = [j for j, _ in known]
            mine = [c for _, c in known]
            p, w = self.learned(knn, mine)
            quality[:, idx] = quality[:, idx] + w * (p - quality[:, idx])
            support[:, idx] = self._support(knn, [cards[j] for j in idx], w)
        if corrections is not None:
            quality = quality + corrections
        return np.clip(quality, 0.0, 1.0).astype(np.float32), support

    def _support(self, knn: Evidence, cards: Sequence[ModelCard], w: np.ndarray) -> np.ndarray:
        """kNN similarity mass behind each known model (as the kNN kind reports it), so the
        policy's confidence means the same whichever predictor is used; without a store, the
        learned weight times the mass of ``k`` exact neighbours."""
        if self.index is None or knn.ids.shape[1] == 0:
            return np.broadcast_to(w * self.k, (len(knn.emb), len(cards))).astype(np.float32)
        _, support = self.index.knn_quality(knn, match_columns(cards, self.index.models), tau=self.tau)
        return support

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> list[str]:
        directory.mkdir(parents=True, exist_ok=True)
        # numpy's stub cannot tell that no "w_..." key is its `allow_pickle` keyword
        np.savez_compressed(directory / NPZ, n_obs=self.n_obs,
                            **{f"w_{k}": v for k, v in self.weights.items()})  # type: ignore[arg-type]
        meta = {"kind": self.kind, "models": self.models, "config": self.config}
        (directory / JSON).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return [NPZ, JSON]

    #: Shapes of the learned arrays (symbolic sizes: ``dim`` the embedding dimension, ``models`` the
    #: trained models, others internal), checked on load; each kind declares its own.
    SHAPES: ClassVar[dict[str, tuple[str | int, ...]]] = {}

    @classmethod
    def load(cls, directory: Path, index: OutcomeIndex | None, *, dim: int | None = None) -> LearnedPredictor:
        """Read ``predictor.json`` and ``predictor.npz`` untrusted: regular files within their caps,
        shallow JSON naming this kind and distinct model names, finite weights whose shapes agree with
        each other, with the models and with ``dim`` (the embedder's dimension) when given.

        Raises:
            ArtifactNotFoundError: a file is missing.
            CorruptArtifactError: anything else, naming the file and the field or array.
        """
        meta_path, npz_path = directory / JSON, directory / NPZ
        label_json, label_npz = repr(str(meta_path)), repr(str(npz_path))
        meta = load_json(read_capped(meta_path), label=label_json)
        arrays = load_npz(read_capped(npz_path), label=label_npz)
        return cls.from_saved(meta, arrays, index, dim=dim, label_json=label_json, label_npz=label_npz)

    @classmethod
    def from_saved(cls, meta: Any, arrays: dict[str, np.ndarray], index: OutcomeIndex | None, *,
                   dim: int | None, label_json: str, label_npz: str) -> LearnedPredictor:
        """Build from what :meth:`save` wrote, already read (untrusted; see :meth:`load`). The stacked
        kind reads its components' entries through this, from its own files."""
        if not isinstance(meta, dict):
            raise CorruptArtifactError(f"{label_json} must hold a JSON object; save the router again.")
        if meta.get("kind") != cls.kind:
            raise CorruptArtifactError(f"{label_json} holds a {meta.get('kind')!r} predictor, not {cls.kind!r}.")
        models = meta.get("models")
        if not (isinstance(models, list) and models and all(isinstance(m, str) and m for m in models)
                and len(set(models)) == len(models)):
            raise CorruptArtifactError(f"{label_json}: field 'models' must list distinct model names.")
        config = meta.get("config", {})
        if not isinstance(config, dict):
            raise CorruptArtifactError(f"{label_json}: field 'config' must be a JSON object.")
        weights = {k[2:]: v for k, v in arrays.items() if k.startswith("w_")}
        sizes = {"models": len(models)} | ({} if dim is None else {"dim": int(dim)})
        spec = {"n_obs": ("models",)} | {f"w_{k}": v for k, v in cls.SHAPES.items()}
        bound = bind_shapes(arrays, spec, label=label_npz, sizes=sizes, kinds={k: "fiu" for k in spec})
        for key in spec:  # learned weights stay far below MAX_WEIGHT; larger ones would overflow float32
            lo, hi = (0.0, 1e12) if key == "n_obs" else (-MAX_WEIGHT, MAX_WEIGHT)
            check_values(arrays[key], key, label=label_npz, lo=lo, hi=hi)
        cls._check_config(config, bound, label_json)
        return cls(models, arrays["n_obs"], weights, config, index)

    @classmethod
    def _check_config(cls, config: dict[str, Any], sizes: dict[str, int], label: str) -> None:
        """Kinds whose ``predictor.json`` config the prediction reads check it here (against the
        array ``sizes``); raise CorruptArtifactError naming ``label`` and the field."""


def search_evidence(index: OutcomeIndex | None, embeddings: np.ndarray, k: int, *, exact: bool) -> Evidence:
    """The ``k`` stored neighbours of each prompt in ``index`` (none without a store), with the
    prompts' embeddings: what every learned kind (and their blend) predicts from. One prompt uses
    the approximate search, a batch the exact one, unless ``exact``."""
    emb = np.asarray(embeddings, dtype=np.float32)
    if index is None or len(index) == 0:
        empty = np.zeros((len(emb), 0))
        return Evidence(empty.astype(np.int64), empty.astype(np.float32), emb)
    knn = index.search_batch(emb, k) if exact or len(emb) > 1 else index.search(emb[0], k)
    return Evidence(knn.ids, knn.sims, emb)


def match_columns(cards: Sequence[ModelCard], names: Sequence[str]) -> list[int | None]:
    """Per card, the position in ``names`` (outcome columns) holding its outcomes, or ``None``.

    Matches the card's name, then its aliases, exactly; then both normalised the way the registry
    resolves names (``mistralai/Mixtral-8x7B-Instruct-v0.1`` is the card
    ``Mixtral-8x7B-Instruct-v0.1``), so a data set's own spelling of a model still finds its card.
    """
    exact = {n: j for j, n in enumerate(names)}
    loose: dict[str, int] = {}
    for j, n in enumerate(names):
        loose.setdefault(normalise_name(n), j)
    out: list[int | None] = []
    for card in cards:
        keys = [card.name, *card.aliases]
        col = next((exact[k] for k in keys if k in exact), None)
        if col is None:
            col = next((loose[normalise_name(k)] for k in keys if normalise_name(k) in loose), None)
        out.append(col)
    return out


def observed_counts(scores: np.ndarray) -> np.ndarray:
    """Training outcomes per model (non-NaN cells per column)."""
    return (~np.isnan(scores)).sum(axis=0).astype(np.float32)


def holdout_mask(n: int, frac: float, seed: int) -> np.ndarray:
    """A seeded boolean mask selecting ``frac`` of ``n`` rows (early stopping / validation)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(n, dtype=bool)
    mask[rng.permutation(n)[: max(1, int(round(frac * n)))]] = True
    return mask
