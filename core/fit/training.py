"""Fitting a router's evaluation store and quality predictor from per-prompt outcomes (``Router.fit``).

Fitting embeds the training prompts, stacks their outcomes into a (prompts x models) matrix, builds
the kNN store and fits the quality predictor (:mod:`optiroute.quality.base`): a named kind, or with
``predictor="auto"`` the kind (or stacked blend of kinds) with the best k-fold cross-validated AIQ
(:mod:`optiroute.fit.selection`). Models the
registry knows keep their cards (with prices from the given price table); models it does not know
get a card derived from the data: accuracy = mean training score, price from the price table or the
observed costs, the other metrics neutral and marked imputed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from optiroute.analysis.analyzer import TaskAnalyzer
from optiroute.analysis.embedding import get_default_embedder
from optiroute.analysis.shared_text import SharedText
from optiroute.catalog.registry import ModelCard, Registry
from optiroute.errors import DataFormatError, InvalidInputError
from optiroute.fit.datasets import fill_costs, input_tokens, load_outcomes, load_prices, load_prompts
from optiroute.fit.selection import CrossValidated, choose_predictor, validation_aiq
from optiroute.quality.base import predictor_class
from optiroute.quality.index import OutcomeIndex
from optiroute.schema.numbers import MAX_PRICE_PER_MTOK, integer, real

__all__ = ["FitCheck", "card_from_data", "fit_parts", "implied_output_tokens", "measure_verbosity",
           "outcome_matrices", "predicted_cost", "validation_aiq"]

log = logging.getLogger(__name__)

#: Used for models with no card and no price: typical of a mid-size hosted open model.
NEUTRAL_LATENCY = {"ttft_s": 0.6, "tokens_per_s": 60.0}


@dataclass
class FitCheck:
    """What the never-worse-than-one-model check needs from fitting: the chosen predictor's
    out-of-fold quality and folds, the training outcomes and costs, and each (prompt, model)'s cost
    as routing predicts it (card prices x the analyzer's length estimate x the card's verbosity)."""

    cv: CrossValidated
    scores: np.ndarray
    costs: np.ndarray
    models: list[str]
    predicted_cost: np.ndarray


def predicted_cost(cards: list[Any], in_tok: np.ndarray, out_tok: np.ndarray) -> np.ndarray:
    """(n, m) USD per prompt and model, priced as the routing pipeline prices a call."""
    pin = np.array([c.input_usd_per_mtok for c in cards], dtype=np.float64)
    pout = np.array([c.output_usd_per_mtok for c in cards], dtype=np.float64)
    verb = np.array([c.verbosity for c in cards], dtype=np.float64)
    return (np.asarray(in_tok, dtype=np.float64)[:, None] * pin
            + np.asarray(out_tok, dtype=np.float64)[:, None] * verb * pout) / 1e6


def outcome_matrices(
    prompt_ids: list[str], models: list[str], outcomes: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Pivot long outcomes into (n_prompts, n_models) score and cost matrices (NaN = unknown)."""
    row = {p: i for i, p in enumerate(prompt_ids)}
    col = {m: j for j, m in enumerate(models)}
    scores = np.full((len(prompt_ids), len(models)), np.nan, dtype=np.float32)
    costs = np.full_like(scores, np.nan)
    r = outcomes["prompt_id"].map(row).to_numpy()
    c = outcomes["model"].map(col).to_numpy()
    ok = ~(np.isnan(r.astype(float)) | np.isnan(c.astype(float)))
    r, c = r[ok].astype(np.int64), c[ok].astype(np.int64)
    scores[r, c] = outcomes["score"].to_numpy(dtype=np.float32)[ok]
    costs[r, c] = outcomes["cost_usd"].to_numpy(dtype=np.float32)[ok]
    return scores, costs


def measure_verbosity(prompt_ids: list[str], models: list[str], outcomes: Any,
                      estimate: np.ndarray, *, min_rows: int = 20) -> dict[str, float]:
    """Per model, its answers' length relative to the analyzer's estimate for the same prompts.

    ``sum(observed output_tokens) / sum(estimate)`` over the prompts where the model has a recorded
    length (ratio of sums, so a few very long answers count by their tokens, as they are billed).
    Models with fewer than ``min_rows`` recorded lengths are left out (their cards keep 1.0); the
    ratio is clipped to 0.05..20.
    """
    row = {p: i for i, p in enumerate(prompt_ids)}
    o = outcomes[outcomes["output_tokens"].notna()]
    out: dict[str, float] = {}
    for m, g in o.groupby("model"):
        if m not in models:
            continue
        at = g["prompt_id"].map(row)
        known = at.notna().to_numpy()
        if known.sum() < min_rows:
            continue
        r = at[known].astype(np.int64).to_numpy()
        tok = g["output_tokens"].to_numpy(dtype=np.float64)[known]
        den = float(np.asarray(estimate, dtype=np.float64)[r].sum())
        if den > 0:
            out[str(m)] = float(np.clip(tok.sum() / den, 0.05, 20.0))
    return out


def implied_output_tokens(outcomes: Any, prompts: Any, cards: Mapping[str, Any]) -> Any:
    """``outcomes`` with each empty ``output_tokens`` cell implied by its ``cost_usd``, where it can be.

    ``(cost_usd x 1e6 - input tokens x input price) / output price``, input tokens counted as
    characters / 4 and prices from each model's card. Why: verbosity must agree with the data's own
    costs. Data that records costs but not lengths still says how long each model answers; and where
    the costs were themselves filled from prices at one length for every model
    (:func:`~optiroute.fit.datasets.fill_costs`), a verbosity measured elsewhere would price answers
    differently from the costs the router is judged by. Cells without cost or output price stay empty.
    """
    out = outcomes.copy()
    todo = out["output_tokens"].isna() & out["cost_usd"].notna()
    if not todo.any():
        return out
    rows = out[todo]
    in_tok = input_tokens(rows, prompts)
    pin = rows["model"].map({m: c.input_usd_per_mtok for m, c in cards.items()}).to_numpy(dtype=np.float64)
    pout = rows["model"].map({m: c.output_usd_per_mtok for m, c in cards.items()}).to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a tiny price: inf, dropped below
        tok = (rows["cost_usd"].to_numpy(dtype=np.float64) * 1e6 - in_tok * pin) / pout
    tok = np.where(np.isfinite(tok) & (pout > 0), np.maximum(tok, 0.0), np.nan)
    out.loc[todo, "output_tokens"] = tok
    return out


def card_from_data(
    model: str, scores: np.ndarray, costs: np.ndarray, in_tok: np.ndarray, price: Any | None
) -> Any:
    """A card for a model the registry does not know, built from its training outcomes."""
    acc = float(np.nanmean(scores)) if np.isfinite(scores).any() else 0.5
    if price is not None:
        pin, pout, src = float(price["input_usd_per_mtok"]), float(price["output_usd_per_mtok"]), str(price["source"])
    else:
        mean_cost = float(np.nanmean(costs)) if np.isfinite(costs).any() else math.nan
        # Without a price table, express the observed mean cost per prompt as one blended price.
        tokens = float(np.mean(in_tok)) + 256.0
        blended = mean_cost / tokens * 1e6 if math.isfinite(mean_cost) else 1.0
        blended = min(blended, MAX_PRICE_PER_MTOK)  # a card's price range; absurd costs stay absurd, not invalid
        pin = pout = blended
        src = "derived from observed cost_usd in the fit data" if math.isfinite(mean_cost) else "unknown (neutral)"
    metrics = {d: 0.5 for d in ("helpfulness", "honesty", "harmlessness", "steerability", "creativity")}
    metrics["accuracy"] = acc
    return ModelCard(
        name=model,
        provider="unknown",
        kind="chat",
        input_usd_per_mtok=pin,
        output_usd_per_mtok=pout,
        context_window=32768,
        supports_tools=True,
        supports_json=True,
        metrics=metrics,
        sources={"accuracy": "mean score in the fit data", "price": src},
        imputed=[d for d in metrics if d != "accuracy"] + ["context_window", "latency"],
        **NEUTRAL_LATENCY,
    )


def fit_parts(
    prompts: Any,
    outcomes: Any,
    prices: Any = None,
    *,
    registry: Any = None,
    embedder: Any = None,
    analyzer: Any = None,
    split: str | None = "train",
    show_progress: bool = False,
    n_trees: int = 16,
    predictor: str = "auto",
    val_frac: float | None = None,
    seed: int = 0,
    guard: bool = True,
    n_folds: int | None = None,
    strip_shared: bool = True,
    shared_text: SharedText | None = None,
) -> dict[str, Any]:
    """Build the parts of a fitted router (see :meth:`Router.fit`).

    Args:
        prompts, outcomes, prices: paths or DataFrames in the documented format.
        registry: cards to start from (default: the bundled registry).
        embedder, analyzer: defaults are the bundled MiniLM and heads.
        split: keep only prompts of this split when the data has splits (``None``: all).
        show_progress: show a progress bar while embedding.
        predictor: quality predictor kind (``knn``, ``routoo``, ``mlp``, ``task``, ``mean``, ``stack``)
            or ``auto``: every kind, and their stacked blend, is scored by k-fold cross-validation
            over all training prompts and the best is refitted on all of them
            (:mod:`optiroute.fit.selection`).
        val_frac: ignored (kept for callers of the earlier validation-split selection).
        seed: the seed of every random choice (folds, initialisation).
        guard: also measure, on the out-of-fold predictions, where routing beats the best single
            model (returned as ``parts["cv"]`` for :mod:`optiroute.router.guard`); costs k fits of a
            named kind (``auto`` cross-validates anyway).
        n_folds: folds of the cross-validation (default: :func:`~optiroute.fit.selection.n_folds_for`).
        strip_shared: learn the text more than half of the training prompts share (a system prompt,
            few-shot examples, a template around the question; :mod:`optiroute.analysis.shared_text`)
            and embed every prompt without it, at fit and at routing time (``parts["shared_text"]``).
            ``False``: embed prompts as given.
        shared_text: use this already learned shared text instead of learning it here (the bench
            learns it once from the train split to embed train and test prompts alike).

    Raises:
        DataFormatError: malformed files, or no outcome matching a training prompt.
        InvalidInputError: unknown predictor kind.
    """
    if not isinstance(predictor, str):
        raise InvalidInputError(f"predictor must be a kind name such as 'auto' or 'knn', got {predictor!r}.")
    if predictor != "auto":
        predictor_class(predictor)  # fail on a typo before embedding anything
    n_trees = integer(n_trees, "n_trees", lo=1, hi=1000)
    if val_frac is not None:
        real(val_frac, "val_frac", lo=0.0, lo_open=True, hi=0.9)
    if n_folds is not None:
        n_folds = integer(n_folds, "n_folds", lo=2, hi=20)
    seed = integer(seed, "seed", lo=0, hi=2**32 - 1)
    if split is not None and not isinstance(split, str):
        raise InvalidInputError(f"split must be a split name such as 'train' (or None), got {split!r}.")

    p = load_prompts(prompts)
    o = load_outcomes(outcomes)
    pr = load_prices(prices) if prices is not None else None
    if split is not None and (p["split"] == split).any():
        p = p[p["split"] == split].reset_index(drop=True)
    o = o[o["prompt_id"].isin(set(p["prompt_id"]))]
    if o.empty:
        raise DataFormatError(
            "No outcome row matches a training prompt_id; check that outcomes and prompts come from "
            "the same data set (and that some prompts have split == 'train')."
        )
    p = p[p["prompt_id"].isin(set(o["prompt_id"]))].reset_index(drop=True)
    o = fill_costs(o, p, pr)
    models = sorted(o["model"].unique().tolist())
    ids = p["prompt_id"].tolist()
    scores, costs = outcome_matrices(ids, models, o)
    embedder = embedder or get_default_embedder()
    raw = p["text"].tolist()
    if shared_text is not None and not isinstance(shared_text, SharedText):
        raise InvalidInputError(f"shared_text must be a SharedText or None, got {type(shared_text).__name__}.")
    shared = (shared_text or SharedText.learn(raw)) if strip_shared else None
    if shared is not None:
        log.info("fit: %s", shared.summary())  # counts only: the text itself is the user's prompts
        raw = shared.varying_all(raw)
    texts = raw  # the embedder reads a long prompt by its head and tail itself
    log.info("fit: embedding %d prompts for %d models", len(texts), len(models))
    emb = embedder.encode(texts, show_progress=show_progress)
    index = OutcomeIndex(emb, ids, p["task"].tolist(), models, scores, costs, n_trees=n_trees)

    base = registry if registry is not None else Registry.default()
    reg = base.copy() if hasattr(base, "copy") else base
    price_rows = {} if pr is None else {r["model"]: r for _, r in pr.iterrows()}
    in_tok = p["text"].str.len().to_numpy(dtype=np.float64) / 4.0
    for j, m in enumerate(models):
        found = reg.match(m)
        if found is None or found.how != "exact":  # a snapshot the registry only knows by its family
            reg.add(card_from_data(m, scores[:, j], costs[:, j], in_tok, price_rows.get(m)))
            continue
        card = found.card
        if m in price_rows:
            row = price_rows[m]
            reg.update(
                card.name,
                input_usd_per_mtok=float(row["input_usd_per_mtok"]),
                output_usd_per_mtok=float(row["output_usd_per_mtok"]),
            )
    lengths = implied_output_tokens(o, p, {m: reg.resolve(m) for m in models})
    an = analyzer or TaskAnalyzer.default()
    est = an.output_tokens(an.predict(emb).task_probs)
    if lengths["output_tokens"].notna().any():
        for m, v in measure_verbosity(ids, models, lengths, est).items():
            card = reg.resolve(m)
            reg.update(card.name, verbosity=v, sources={**card.sources, "verbosity": (
                "Router.fit: answer lengths in the fit data (output_tokens, else implied by cost_usd and "
                "the card's prices) / the analyzer's estimate on the same prompts")})
    parts: dict[str, Any] = {"registry": reg, "index": index, "models": models, "embedder": embedder,
                             "shared_text": shared}
    cards = [reg.resolve(m) for m in models]
    parts["predictor"], cv = choose_predictor(predictor, emb, scores, costs, models, index, cards, analyzer,
                                              seed=seed, n_folds=n_folds, cross_validate=guard)
    if guard and cv is not None:
        parts["cv"] = FitCheck(cv=cv, scores=scores, costs=costs, models=models,
                               predicted_cost=predicted_cost(cards, in_tok, est))
    if analyzer is not None:
        parts["analyzer"] = analyzer
    return parts

