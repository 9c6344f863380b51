"""Fitting a router's evaluation store from per-prompt outcomes (``Router.fit``).

Fitting embeds the training prompts, stacks their outcomes into a (prompts x models) matrix and
builds the kNN store. Models the registry knows keep their cards (with prices from the given price
table); models it does not know get a card derived from the data: accuracy = mean training score,
price from the price table or the observed costs, the other metrics neutral and marked imputed.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from .datasets import fill_costs, load_outcomes, load_prices, load_prompts
from .errors import DataFormatError, ModelNotFoundError

__all__ = ["fit_parts", "outcome_matrices", "card_from_data"]

log = logging.getLogger(__name__)

#: Used for models with no card and no price: typical of a mid-size hosted open model.
NEUTRAL_LATENCY = {"ttft_s": 0.6, "tokens_per_s": 60.0}


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


def card_from_data(
    model: str, scores: np.ndarray, costs: np.ndarray, in_tok: np.ndarray, price: Any | None
) -> Any:
    """A card for a model the registry does not know, built from its training outcomes."""
    from .registry import ModelCard

    acc = float(np.nanmean(scores)) if np.isfinite(scores).any() else 0.5
    if price is not None:
        pin, pout, src = float(price["input_usd_per_mtok"]), float(price["output_usd_per_mtok"]), str(price["source"])
    else:
        mean_cost = float(np.nanmean(costs)) if np.isfinite(costs).any() else math.nan
        # Without a price table, express the observed mean cost per prompt as one blended price.
        tokens = float(np.mean(in_tok)) + 256.0
        blended = mean_cost / tokens * 1e6 if math.isfinite(mean_cost) else 1.0
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
) -> dict[str, Any]:
    """Build the parts of a fitted router (see :meth:`Router.fit`).

    Args:
        prompts, outcomes, prices: paths or DataFrames in the documented format.
        registry: cards to start from (default: the bundled registry).
        embedder, analyzer: defaults are the bundled MiniLM and heads.
        split: keep only prompts of this split when the data has splits (``None``: all).
        show_progress: show a progress bar while embedding.

    Raises:
        DataFormatError: malformed files, or no outcome matching a training prompt.
    """
    from .embedding import get_default_embedder, prune_text
    from .index import OutcomeIndex
    from .registry import Registry

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
    texts = [prune_text(t)[0] for t in p["text"].tolist()]
    log.info("fit: embedding %d prompts for %d models", len(texts), len(models))
    emb = embedder.encode(texts, show_progress=show_progress)
    index = OutcomeIndex(emb, ids, p["task"].tolist(), models, scores, costs, n_trees=n_trees)

    base = registry if registry is not None else Registry.default()
    reg = base.copy() if hasattr(base, "copy") else base
    price_rows = {} if pr is None else {r["model"]: r for _, r in pr.iterrows()}
    in_tok = p["text"].str.len().to_numpy(dtype=np.float64) / 4.0
    for j, m in enumerate(models):
        try:
            card = reg.get(m)
        except ModelNotFoundError:
            reg.add(card_from_data(m, scores[:, j], costs[:, j], in_tok, price_rows.get(m)))
            continue
        if m in price_rows:
            row = price_rows[m]
            reg.update(
                card.name,
                input_usd_per_mtok=float(row["input_usd_per_mtok"]),
                output_usd_per_mtok=float(row["output_usd_per_mtok"]),
            )
    parts: dict[str, Any] = {"registry": reg, "index": index, "models": models, "embedder": embedder}
    if analyzer is not None:
        parts["analyzer"] = analyzer
    return parts
