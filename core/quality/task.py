"""The ``task`` quality predictor: the data's own task labels, predicted from the prompt, plus kNN.

On every data set we measured, the strongest single signal about which model answers a prompt well
is *what kind of prompt it is* in the data's own taxonomy (MMLU-Pro's 14 categories, LLMRouter's 14
source tasks): a per-task table of each model's mean outcome, *told* the label, beats every predictor
we built on MiniLM alone (see BENCHMARKS.md). The label is not known at routing time, but it can be
learned: this kind fits a multinomial logistic classifier from MiniLM to the training prompts' labels
and predicts, per prompt, the label-probability-weighted mix of the per-task table::

    p_task(prompt, m) = sum_t P(t | prompt) * table[t, m]
    p(prompt, m)      = p_task + w * coverage * (p_knn - p_task)

``p_knn`` is the similarity-weighted mean outcome of the prompt's nearest stored neighbours (it adds
what is finer than the label); ``coverage`` is the share of those neighbours that have an outcome
for the model, so a model evaluated on few prompts (an onboarded one) leans on the table. ``w`` is
chosen on a seeded holdout of the training rows (Brier score), never on test. Per-prompt residuals
within a task measured no better than noise, which is why the kNN part is a blend and not a
residual correction.

Needs labels: at least two distinct non-empty values of the ``task`` column among the training
prompts (:meth:`TaskPredictor.unavailable` says why not; ``auto`` then skips this kind). Weights are
numpy arrays saved in ``predictor.npz``; the classifier is fitted with scikit-learn, prediction is a
matrix product and a softmax.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from optiroute.errors import CorruptArtifactError, InvalidInputError
from optiroute.quality.base import (
    Evidence,
    LearnedPredictor,
    TrainData,
    holdout_mask,
    observed_counts,
)
from optiroute.schema.numbers import real

if TYPE_CHECKING:
    from optiroute.quality.index import OutcomeIndex

__all__ = ["TaskPredictor"]

#: Blend weights of the kNN part tried on the holdout.
KNN_WEIGHTS = (0.0, 0.15, 0.3, 0.45, 0.6)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def task_table(labels: np.ndarray, n_labels: int, scores: np.ndarray, n0: float) -> np.ndarray:
    """(n_labels, m) expected outcome per label and model, corrected for which prompts were answered.

    A model evaluated on only some prompts of a label (a freshly onboarded model answers only the
    K-Means representatives; some models skipped questions) would otherwise be credited with the
    difficulty of *those* prompts. So each cell is the label's mean prompt level (the mean over
    models of each prompt's outcomes, averaged over all the label's prompts) plus the model's mean
    advantage over that level on the prompts it did answer::

        table[t, m] = level[t] + (sum_{i in t, answered} (y[i, m] - level_i) + n0 * adv[m]) / (count + n0)

    ``adv[m]`` is the model's advantage over all its answered prompts, so a label with few answers
    shrinks towards "this label's difficulty plus the model's usual edge". For a model that answered
    every prompt of a label, with ``n0 = 0``, this is exactly its mean outcome there.
    """
    ok = ~np.isnan(scores)
    with np.errstate(invalid="ignore"):
        level_i = np.nan_to_num(np.nanmean(np.where(ok, scores, np.nan), axis=1), nan=0.5)
    resid = np.where(ok, scores - level_i[:, None], 0.0).astype(np.float64)
    onehot = np.zeros((len(labels), n_labels), dtype=np.float64)
    onehot[np.arange(len(labels)), labels] = 1.0
    rows = onehot.sum(axis=0)
    level = (onehot.T @ level_i) / np.maximum(rows, 1.0)
    counts = onehot.T @ ok.astype(np.float64)
    adv = resid.sum(axis=0) / np.maximum(ok.sum(axis=0), 1)
    table = level[:, None] + (onehot.T @ resid + n0 * adv[None, :]) / (counts + n0 + 1e-12)
    return np.clip(table, 0.0, 1.0).astype(np.float32)


def knn_mean(sims: np.ndarray, ids: np.ndarray, scores: np.ndarray, tau: float,
             fallback: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Similarity-weighted mean outcome of each query's neighbours, and how much of them it rests on.

    Weights are ``exp((sim - 1) / tau)``, the store's own weighting (:meth:`OutcomeIndex.knn_quality`).
    Returns ``(mean, coverage)``: ``coverage`` is the share of the neighbours' weight that has an
    outcome for the model (1 for a model evaluated everywhere, ~0.02 for one onboarded on 2 % of the
    prompts); the mean is ``fallback`` where no neighbour has one.
    """
    w = np.exp((sims - 1.0) / tau).astype(np.float32)[:, :, None]
    s = scores[ids]  # (n, k, m)
    has = ~np.isnan(s)
    num = (w * np.nan_to_num(s)).sum(axis=1)
    den = (w * has).sum(axis=1)
    total = np.maximum(w.sum(axis=1), 1e-12)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(den > 0, num / np.maximum(den, 1e-12), fallback).astype(np.float32)
    return mean, (den / total).astype(np.float32)


class TaskPredictor(LearnedPredictor):
    """Predicted task label x per-task outcome table, blended with kNN (see the module docstring)."""

    kind: ClassVar[str] = "task"
    k: int = 100
    SHAPES: ClassVar[dict[str, tuple[str | int, ...]]] = {
        "W": ("dim", "labels"), "b": ("labels",), "table": ("labels", "models"), "counts": ("labels", "models"),
    }

    @classmethod
    def _check_config(cls, config: dict[str, Any], sizes: dict[str, int], label: str) -> None:
        labels = config.get("labels")
        if not (isinstance(labels, list) and len(labels) == sizes["labels"]
                and all(isinstance(t, str) for t in labels)):
            raise CorruptArtifactError(f"{label}: field 'config.labels' must list the {sizes['labels']} task labels "
                                       "the classifier's weights have.")
        weight = config.get("knn_weight", 0.0)
        real(weight, f"{label}: field 'config.knn_weight'", lo=0.0, hi=1.0, error=CorruptArtifactError)

    @property
    def labels(self) -> list[str]:
        """The task labels the classifier predicts (rows of the table)."""
        return [str(t) for t in self.config.get("labels", [])]

    @property
    def knn_weight(self) -> float:
        return float(self.config.get("knn_weight", 0.0))

    def label_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, n_labels) P(label | prompt) from the classifier."""
        w = self.weights
        return _softmax(np.asarray(embeddings, dtype=np.float32) @ w["W"] + w["b"])

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        """Log-odds of the table part alone (what a prompt gets without neighbours)."""
        p = np.clip(self.label_proba(embeddings) @ self.weights["table"], 1e-4, 1 - 1e-4)
        return np.log(p / (1 - p))

    def learned(self, knn: Evidence, mine: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The blended prediction, and the trust in it against the card prior by the outcomes behind
        *this prompt's* labels: ``n_eff / (n_eff + n0)`` with ``n_eff = sum_t P(t | prompt) *
        count[t, m]``. A model onboarded on 2 % of the prompts has ~10 outcomes per label, so its
        card still counts for about two thirds; a model evaluated everywhere has hundreds and its
        table decides. The label probabilities are computed once for both."""
        lp = self.label_proba(knn.emb)
        n_eff = lp @ self.weights["counts"][:, list(mine)]
        return self._blend(lp, knn, mine), (n_eff / (n_eff + self.n0)).astype(np.float32)

    def learned_proba(self, knn: Evidence, mine: Sequence[int]) -> np.ndarray:
        """(n, len(mine)) the table blended with the neighbours, before the card prior."""
        return self._blend(self.label_proba(knn.emb), knn, mine)

    def _blend(self, label_p: np.ndarray, knn: Evidence, mine: Sequence[int]) -> np.ndarray:
        table = (label_p @ self.weights["table"])[:, list(mine)]
        w = self.knn_weight
        if w <= 0 or self.index is None or knn.ids.shape[1] == 0:
            return table
        cols = [self.index.column(self.models[c]) for c in mine]
        have = [i for i, c in enumerate(cols) if c is not None]
        if not have:
            return table
        stored = [c for c in cols if c is not None]  # the store's columns of the models in `have`
        near, coverage = knn_mean(knn.sims, knn.ids, self.index.scores[:, stored], self.tau, table[:, have])
        out = table.copy()
        # The neighbours speak in proportion to how many of them know the model: one onboarded
        # representative among 100 neighbours must not replace the table with a single 0 or 1.
        out[:, have] = table[:, have] + w * coverage * (near - table[:, have])
        return out

    @staticmethod
    def unavailable(data: TrainData) -> str | None:
        labels = _labels(data)
        if labels is None:
            return "the training prompts carry no task labels (no kNN store with a task column)"
        distinct = {t for t in labels if t}
        if len(distinct) < 2:
            return f"the training prompts have {len(distinct)} distinct task label(s); it needs two or more"
        return None

    @classmethod
    def fit(
        cls,
        data: TrainData,
        *,
        C: float = 10.0,
        n0: float = 5.0,
        holdout: float = 0.15,
        **_: Any,
    ) -> TaskPredictor:
        """Fit the label classifier and table on ``data`` (train rows only), the kNN weight on a holdout.

        Args:
            data: training rows; labels come from ``data.labels`` or the kNN store's task column.
            C: inverse L2 strength of the logistic classifier (10 measured best of 1-100 on the
                MMLU-Pro and LLMRouter validation protocol; differences were small).
            n0: pseudo-count shrinking a label's table row towards each model's mean.
            holdout: share of rows used to choose the kNN blend weight.

        Raises:
            InvalidInputError: fewer than two distinct task labels (the message says how to add them).
        """
        why = cls.unavailable(data)
        if why is not None:
            raise InvalidInputError(
                f"The 'task' predictor cannot be fitted: {why}. Fill the prompts' task column "
                "(e.g. the source benchmark or category of each prompt), or choose predictor='knn'."
            )
        raw = [str(t) for t in _labels(data) or []]
        names = sorted({t for t in raw if t})
        pos = {t: i for i, t in enumerate(names)}
        x = np.asarray(data.embeddings, dtype=np.float32)
        y = np.asarray(data.scores, dtype=np.float32)
        lab = np.array([pos.get(t, -1) for t in raw])
        known = lab >= 0
        hold = holdout_mask(len(x), holdout, data.seed) & known if len(x) >= 100 else np.zeros(len(x), bool)
        fit_rows = known & ~hold
        notes: dict[str, Any] = {}
        w_knn = 0.0
        if hold.any() and len(set(lab[fit_rows])) == len(names):
            W, b = _classifier(x[fit_rows], lab[fit_rows], len(names), C, data.seed)
            table = task_table(lab[fit_rows], len(names), y[fit_rows], n0)
            p_tab = _softmax(x[hold] @ W + b) @ table
            base = np.flatnonzero(~hold)
            sims = x[hold] @ x[base].T
            k = min(cls.k, len(base))
            part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            near, cover = knn_mean(np.take_along_axis(sims, part, 1), part, y[base], cls.tau, p_tab)
            ok = ~np.isnan(y[hold])
            briers = {w: float(((p_tab + w * cover * (near - p_tab) - np.nan_to_num(y[hold])) ** 2)[ok].mean())
                      for w in KNN_WEIGHTS}
            w_knn = min(briers, key=briers.__getitem__)
            notes = {"holdout_rows": int(hold.sum()),
                     "holdout_brier": {str(k_): round(v, 5) for k_, v in briers.items()},
                     "label_accuracy_holdout": round(float(((x[hold] @ W + b).argmax(1) == lab[hold]).mean()), 4)}
        W, b = _classifier(x[known], lab[known], len(names), C, data.seed)
        table = task_table(lab[known], len(names), y[known], n0)
        onehot = np.zeros((int(known.sum()), len(names)), dtype=np.float32)
        onehot[np.arange(int(known.sum())), lab[known]] = 1.0
        counts = onehot.T @ (~np.isnan(y[known])).astype(np.float32)
        config = {"labels": names, "C": C, "n0": n0, "knn_weight": w_knn, "k": cls.k, "tau": cls.tau,
                  "seed": data.seed, "fit": notes}
        weights = {"W": W, "b": b, "table": table, "counts": counts}
        return cls(data.models, observed_counts(y), weights, config, data.index)


def _labels(data: TrainData) -> list[str] | None:
    if data.labels is not None:
        return [str(t) for t in data.labels]
    index: OutcomeIndex | None = data.index
    if index is not None and len(index) == len(data.embeddings):
        return list(index.tasks)
    return None


def _classifier(x: np.ndarray, y: np.ndarray, n_labels: int, C: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression weights ``(W (dim, n_labels), b (n_labels,))``."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=C, max_iter=3000, random_state=seed).fit(x, y)
    W = np.zeros((x.shape[1], n_labels), dtype=np.float32)
    b = np.full(n_labels, -30.0, dtype=np.float32)  # a label absent from x never wins
    cls_ = clf.classes_.astype(int)
    if len(cls_) == 2:  # sklearn's binary form: one weight vector for class 1
        W[:, cls_[1]] = clf.coef_[0]
        b[cls_[1]] = clf.intercept_[0]
        b[cls_[0]] = 0.0
    else:
        W[:, cls_] = clf.coef_.T
        b[cls_] = clf.intercept_
    return W, b
