"""The quality-predictor interface, the registry of predictor kinds, and the learned-predictor base.

A *quality predictor* maps a batch of prompts (their MiniLM embeddings and the analyzer's domain,
task and complexity) and a list of candidate cards to two (n_prompts, n_models) matrices: predicted
quality in 0..1 and *support*, the evidence behind each prediction (the policy turns support into
confidence and falls back to the generalist when it is low). Every kind is vectorised: one matrix
for a whole batch, no Python loop per prompt.

The router calls it in two steps, so the kNN kind can search Annoy for one prompt and the exact
matrix product for batches: :meth:`Predictor.neighbours` gathers the evidence of a batch (a
:class:`~optiroute.index.KNNResult`, which also feeds the decision's explanation), then
:meth:`Predictor.predict` turns it into the matrices. :meth:`Predictor.predict_matrix` does both.

Kinds (``Router.fit(predictor=...)``):

- ``knn``: :class:`optiroute.predictors.QualityPredictor` (kNN residuals blended with card priors);
- ``routoo``: :class:`optiroute.predictor_routoo.RoutooPredictor` (score = f(h_query - h_model));
- ``mlp``: :class:`optiroute.predictor_mlp.MLPPredictor` (per-model logistic heads on shared layers).

Learned kinds subclass :class:`LearnedPredictor`: they predict P(correct) for the models they were
trained on and fall back to the card prior (:func:`optiroute.predictors.card_prior`) for the
others, smoothly: ``prior + w * (learned - prior)`` with ``w = n / (n + n0)`` for a model with
``n`` training outcomes. Their weights are saved as ``predictor.npz`` (+ ``predictor.json``),
never pickled.
"""

from __future__ import annotations

import importlib
import json
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .errors import CorruptArtifactError, InvalidInputError
from .index import KNNResult

if TYPE_CHECKING:
    from .index import OutcomeIndex
    from .registry import ModelCard

__all__ = [
    "KINDS",
    "Evidence",
    "LearnedPredictor",
    "Predictor",
    "TrainData",
    "fit_masked_bce",
    "match_columns",
    "predictor_class",
]

#: Predictor kinds -> "module:Class", imported on demand (keeps ``import optiroute`` light).
KINDS: dict[str, str] = {
    "knn": "optiroute.predictors:QualityPredictor",
    "routoo": "optiroute.predictor_routoo:RoutooPredictor",
    "mlp": "optiroute.predictor_mlp:MLPPredictor",
}
NPZ, JSON = "predictor.npz", "predictor.json"


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
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


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
    """

    embeddings: np.ndarray
    scores: np.ndarray
    models: list[str]
    index: OutcomeIndex | None = None
    seed: int = 0


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
    def load(cls, directory: Path, index: OutcomeIndex | None) -> Predictor:
        """Read what :meth:`save` wrote (kNN kinds are rebuilt from the store instead)."""
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

    def columns(self, cards: Sequence[ModelCard]) -> list[int | None]:
        return match_columns(cards, self.models)

    def neighbours(self, embeddings: np.ndarray, *, exact: bool) -> Evidence:
        emb = np.asarray(embeddings, dtype=np.float32)
        if self.index is None or len(self.index) == 0:
            empty = np.zeros((len(emb), 0))
            return Evidence(empty.astype(np.int64), empty.astype(np.float32), emb)
        if exact or len(emb) > 1:
            knn = self.index.search_batch(emb, self.k)
        else:
            knn = self.index.search(emb[0], self.k)
        return Evidence(knn.ids, knn.sims, emb)

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
        from .predictors import card_prior

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
            p = self.proba(knn.emb)[:, mine]
            w = self.n_obs[mine] / (self.n_obs[mine] + self.n0)
            quality[:, idx] = quality[:, idx] + w[None, :] * (p - quality[:, idx])
            support[:, idx] = self._support(knn, [cards[j] for j in idx], w)
        if corrections is not None:
            quality = quality + corrections
        return np.clip(quality, 0.0, 1.0).astype(np.float32), support

    def _support(self, knn: Evidence, cards: Sequence[ModelCard], w: np.ndarray) -> np.ndarray:
        """kNN similarity mass behind each known model (as the kNN kind reports it), so the
        policy's confidence means the same whichever predictor is used; without a store, the
        learned weight times the mass of ``k`` exact neighbours."""
        if self.index is None or knn.ids.shape[1] == 0:
            return np.broadcast_to(w[None, :] * self.k, (len(knn.emb), len(cards))).astype(np.float32)
        _, support = self.index.knn_quality(knn, match_columns(cards, self.index.models), tau=self.tau)
        return support

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> list[str]:
        directory.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(directory / NPZ, n_obs=self.n_obs, **{f"w_{k}": v for k, v in self.weights.items()})
        meta = {"kind": self.kind, "models": self.models, "config": self.config}
        (directory / JSON).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return [NPZ, JSON]

    @classmethod
    def load(cls, directory: Path, index: OutcomeIndex | None) -> LearnedPredictor:
        try:
            meta = json.loads((directory / JSON).read_text(encoding="utf-8"))
            with np.load(directory / NPZ, allow_pickle=False) as z:
                weights = {k[2:]: z[k] for k in z.files if k.startswith("w_")}
                n_obs = z["n_obs"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
            raise CorruptArtifactError(
                f"The predictor weights in {str(directory)!r} cannot be read ({type(exc).__name__}: "
                f"{exc}); save the router again."
            ) from None
        if meta.get("kind") != cls.kind:
            raise CorruptArtifactError(
                f"{str(directory / JSON)!r} holds a {meta.get('kind')!r} predictor, not {cls.kind!r}."
            )
        return cls(meta["models"], n_obs, weights, meta.get("config", {}), index)


def match_columns(cards: Sequence[ModelCard], names: Sequence[str]) -> list[int | None]:
    """Per card, the position in ``names`` (outcome columns) holding its outcomes, or ``None``.

    Matches the card's name, then its aliases, exactly; then both normalised the way the registry
    resolves names (``mistralai/Mixtral-8x7B-Instruct-v0.1`` is the card
    ``Mixtral-8x7B-Instruct-v0.1``), so a data set's own spelling of a model still finds its card.
    """
    from .registry import normalise_name

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


def fit_masked_bce(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 256,
    max_epochs: int = 60,
    patience: int = 5,
    holdout: float = 0.1,
) -> dict[str, Any]:
    """Train a torch module ``x -> (n, m) logits`` with BCE on the observed cells of ``y``.

    Missing cells (NaN) carry no loss; soft scores (a judge's 0.7) are soft targets. A seeded
    ``holdout`` of the rows stops training when its loss has not improved for ``patience`` epochs
    and the best epoch's weights are kept (the caller's data is train only: this holdout is carved
    from it). Runs single-threaded: the machine is shared and the models are small.

    Returns:
        Notes on the fit (epochs run, best epoch, holdout log-loss) for ``predictor.json``.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        hold = holdout_mask(len(x), holdout, seed) if len(x) >= 40 else np.zeros(len(x), dtype=bool)
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        mask = torch.from_numpy(~np.isnan(y))
        yt = torch.from_numpy(np.nan_to_num(y, nan=0.0).astype(np.float32))
        tr = np.flatnonzero(~hold)
        va = torch.from_numpy(np.flatnonzero(hold))
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        bce = torch.nn.BCEWithLogitsLoss(reduction="none")
        rng = np.random.default_rng(seed)

        def loss_on(rows: torch.Tensor) -> torch.Tensor:
            m = mask[rows]
            return (bce(model(xt[rows]), yt[rows]) * m).sum() / m.sum().clamp(min=1)

        best, best_state, best_epoch, bad, epoch = float("inf"), None, 0, 0, 0
        for epoch in range(1, max_epochs + 1):
            model.train()
            perm = tr[rng.permutation(len(tr))]
            for s in range(0, len(perm), batch_size):
                opt.zero_grad()
                loss = loss_on(torch.from_numpy(perm[s : s + batch_size]))
                loss.backward()
                opt.step()
            if len(va) == 0:
                continue
            model.eval()
            with torch.no_grad():
                v = float(loss_on(va))
            if v < best - 1e-4:
                best, best_epoch, bad = v, epoch, 0
                best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
            else:
                bad += 1
                if bad >= patience:
                    break
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        return {"epochs_run": epoch, "best_epoch": best_epoch or epoch,
                "holdout_logloss": None if best == float("inf") else round(best, 5)}
    finally:
        torch.set_num_threads(threads)
