"""Choosing the quality predictor by k-fold cross-validation over the whole train split.

Every kind the data supports (kNN, Routoo, MLP, task, per-model mean) is fitted k times, each time
on k-1 folds, and predicts the fold it did not see, with the cards and the analyzer's view of each
prompt exactly as routing will (:func:`optiroute.quality.stack.oof_predictions`). Every training
prompt thus gets one honest prediction per kind, whatever the size of the split: there is no
validation minimum below which one kind is kept by default. Each kind is scored by the AIQ of its
out-of-fold predictions (:func:`validation_aiq`; Brier score when the models'
costs do not differ), and so is the stacked blend, whose weights are themselves learned out of fold
(cross-fitted: the blend predicting fold f learned its weights on the other folds) and shrink
towards per-model means with few prompts (:mod:`optiroute.quality.stack`). The best one is refitted
on every training prompt.

Out-of-fold predictions are returned too: the never-worse-than-one-model check
(:mod:`optiroute.routing.guard`) measures routing on them. They are nested with the choice: the
prompts of fold ``f`` carry the predictions of the candidate the same criterion picks on the other
folds alone (``selection["chosen_per_fold"]``). Measuring the winner's gain on the very predictions
that made it the winner of six would overstate it, most with few prompts, where the six differ by
noise.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from optiroute.analysis.analyzer import TaskAnalyzer
from optiroute.metrics import baselines as bl
from optiroute.metrics.curves import aiq
from optiroute.quality.base import BASE_KINDS, Predictor, TrainData, predictor_class
from optiroute.quality.observed import OBSERVED_N0
from optiroute.quality.stack import (
    StackPredictor,
    blend,
    blend_weights,
    fold_ids,
    oof_predictions,
    shrink_weights,
)

__all__ = ["CrossValidated", "choose_predictor", "n_folds_for", "validation_aiq"]

log = logging.getLogger(__name__)

#: Options every fitted router gives a kind: the kNN kind levels its priors on observed outcomes.
FIT_OPTIONS: dict[str, dict[str, Any]] = {"knn": {"observed_n0": OBSERVED_N0}}


@dataclass
class CrossValidated:
    """What cross-validation left besides the predictor: the chosen predictor's out-of-fold quality
    (n, m), the fold of each row, and the rows' predicted cost as routing prices them (n, m)."""

    quality: np.ndarray
    folds: np.ndarray


def n_folds_for(n: int) -> int:
    """Folds for ``n`` training prompts: 5, fewer for tiny sets (each fold keeps >= 5 prompts), 3 for
    large ones (where one fold already holds thousands of prompts and fitting is what costs)."""
    if n >= 6000:
        return 3
    return int(max(2, min(5, n // 5)))


def validation_aiq(pred: np.ndarray, scores: np.ndarray, costs: np.ndarray, cost_est: np.ndarray) -> float:
    """RouterBench AIQ of ``argmax(pred - lambda * cost)`` swept over lambda, realised on outcomes.

    The same sweep the bench's baselines use (:func:`optiroute.metrics.baselines.sweep_choices`): the
    cost estimate per model is its mean cost on the fitting rows, realised quality and cost come from
    the validation outcomes (missing cells left out), and cost is normalised between the cheapest
    and dearest single model on the validation rows. Returns NaN when costs do not differ.
    """
    singles = bl.single_models(scores, costs)
    cs = [c for _, c in singles if np.isfinite(c)]
    if len(cs) < 2 or not max(cs) > min(cs) or not np.isfinite(cost_est).all():
        return float("nan")
    return aiq(bl.sweep_curve(pred, cost_est, scores, costs), min(cs), max(cs))


def _brier(pred: np.ndarray, scores: np.ndarray) -> float:
    ok = ~np.isnan(scores)
    return float(((pred - np.nan_to_num(scores)) ** 2)[ok].mean()) if ok.any() else float("nan")


def _choose(candidates: dict[str, np.ndarray], scores: np.ndarray, costs: np.ndarray, cost_est: np.ndarray,
            rows: np.ndarray, by_aiq: bool) -> str:
    """The candidate cross-validation picks on ``rows`` alone (AIQ, else Brier score, as the choice)."""
    if by_aiq:
        aiqs = {c: float(validation_aiq(q[rows], scores[rows], costs[rows], cost_est)) for c, q in candidates.items()}
        if all(np.isfinite(v) for v in aiqs.values()):
            return max(aiqs, key=aiqs.__getitem__)
    return min(candidates, key=lambda c: _brier(candidates[c][rows], scores[rows]))


def choose_predictor(
    kind: str,
    emb: np.ndarray,
    scores: np.ndarray,
    costs: np.ndarray,
    models: list[str],
    index: Any,
    cards: list[Any],
    analyzer: Any = None,
    *,
    seed: int = 0,
    n_folds: int | None = None,
    cross_validate: bool = True,
) -> tuple[Predictor, CrossValidated | None]:
    """Fit ``kind`` (or with ``"auto"`` choose it by k-fold CV) and return its out-of-fold predictions.

    A named kind is cross-validated too when ``cross_validate`` (the guard needs its out-of-fold
    predictions); ``auto`` always is. The choice and every candidate's numbers are kept on the
    predictor as ``selection`` (saved in the manifest, shown by ``optiroute bench``).
    """
    n = len(emb)
    everything = TrainData(emb, scores, models, index, seed)
    if kind not in ("auto", "stack"):
        pred = predictor_class(kind).fit(everything, **FIT_OPTIONS.get(kind, {}))
        pred.selection = {"requested": kind, "chosen": kind}
        if not cross_validate or n < 4:
            return pred, None
    k = n_folds or n_folds_for(n)
    if n < 4:  # nothing to cross-validate: what not routing knows
        pred = predictor_class("mean").fit(everything)
        pred.selection = {"requested": kind, "chosen": "mean", "note": f"{n} training prompts: per-model means"}
        return pred, None
    folds = fold_ids(n, k, seed)
    analyzer = analyzer or TaskAnalyzer.default()
    out = analyzer.predict(emb)
    domains = np.array([analyzer.domains[i] for i in out.domain_probs.argmax(axis=1)])
    tasks = np.array([analyzer.task_types[i] for i in out.task_probs.argmax(axis=1)])

    def predict(p: Predictor, rows: np.ndarray) -> np.ndarray:
        q, _ = p.predict_matrix(emb[rows], cards, domains[rows].tolist(), tasks[rows].tolist(), out.complexity[rows])
        return q

    if kind not in ("auto", "stack"):
        oof = oof_predictions(everything, [kind], folds, predict, costs, FIT_OPTIONS)
        return pred, CrossValidated(oof[kind], folds)
    kinds = [k_ for k_ in BASE_KINDS if predictor_class(k_).unavailable(everything) is None]
    skipped = {k_: predictor_class(k_).unavailable(everything) for k_ in BASE_KINDS if k_ not in kinds}
    oof = oof_predictions(everything, kinds, folds, predict, costs, FIT_OPTIONS)
    stacked = np.zeros_like(oof[kinds[0]])
    fold_weights = []
    for f in range(k):
        rows = folds == f
        w = shrink_weights(blend_weights(oof, scores, np.flatnonzero(~rows)), int((~rows).sum()))
        fold_weights.append(w)
        stacked[rows] = blend({kk: v[rows] for kk, v in oof.items()}, w)
    candidates = {**oof, "stack": stacked}
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cost_est = np.nanmean(costs, axis=0)
    aiqs = {c: round(float(validation_aiq(q, scores, costs, cost_est)), 5) for c, q in candidates.items()}
    briers = {c: round(_brier(q, scores), 5) for c, q in candidates.items()}
    by_aiq = all(np.isfinite(v) for v in aiqs.values())
    if kind == "stack":
        chosen = "stack"
    elif by_aiq:
        chosen = max(aiqs, key=aiqs.__getitem__)
    else:
        chosen = min(briers, key=briers.__getitem__)
    weights = shrink_weights(blend_weights(oof, scores), n)
    if chosen == "stack":
        pred = StackPredictor.fit(everything, weights=weights, observed_n0=OBSERVED_N0)
    else:
        pred = predictor_class(chosen).fit(everything, **FIT_OPTIONS.get(chosen, {}))
    pred.selection = {
        "requested": kind, "chosen": chosen,
        "criterion": f"{k}-fold CV AIQ" if by_aiq else f"{k}-fold CV Brier score",
        "n_validation": n, "n_folds": k, "validation_aiq": aiqs, "validation_brier": briers,
        "stack_weights": {kk: round(v, 4) for kk, v in weights.items()},
    }
    if skipped:
        pred.selection["skipped"] = skipped
    log.info("predictor choice by %d-fold CV: %s (AIQ %s)", k, chosen, aiqs)
    # The guard's predictions: fold f carries the candidate chosen without fold f (nested), so the
    # predictions that chose the winner do not also measure its gain.
    per_fold = [chosen] * k if kind == "stack" else [_choose(candidates, scores, costs, cost_est, folds != f, by_aiq)
                                                     for f in range(k)]
    honest = np.empty_like(candidates[chosen])
    for f, c_f in enumerate(per_fold):
        honest[folds == f] = candidates[c_f][folds == f]
    pred.selection["chosen_per_fold"] = per_fold
    return pred, CrossValidated(honest, folds)
