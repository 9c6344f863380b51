"""The card prior: what a model's card says about a prompt before any outcome of it is known.

The base rate is the card's accuracy in the prompt's domain (else overall), shifted by the analyzer's
predicted difficulty on the logit scale (an item-response view: harder prompts lower every model's
odds). Every predictor kind falls back to it for models without outcomes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from optiroute.catalog.table import derived, keyed_rows

if TYPE_CHECKING:
    from optiroute.catalog.registry import ModelCard

__all__ = ["DIFFICULTY_SLOPE", "card_prior", "logit"]

#: How strongly predicted difficulty shifts every model's log-odds (complexity is 0..1).
DIFFICULTY_SLOPE = 2.0


def _base_row(cards: Sequence[ModelCard], domain: str) -> np.ndarray:
    """Each card's base rate in ``domain``: its domain accuracy, else its overall accuracy. A card with
    neither a domain figure nor a known overall accuracy is neutral: the mean of the candidates that
    have one (0.5 when none has), never a made-up low or high number."""
    overall = [c.metrics.get("accuracy", 0.5) if "accuracy" not in getattr(c, "unknown", ()) else np.nan
               for c in cards]
    row = np.array([c.accuracy_by_domain.get(domain, overall[j]) for j, c in enumerate(cards)], dtype=np.float32)
    known = ~np.isnan(row)
    n_known = known.sum()  # a numpy integer: the mean is taken in float64, then rounded once
    mean = np.where(known, row, 0.0).sum() / n_known if n_known else 0.5
    out: np.ndarray = np.where(known, row, mean).astype(np.float32)
    return out


def logit(p: np.ndarray) -> np.ndarray:
    q: np.ndarray = np.clip(p, 1e-3, 1 - 1e-3)
    out: np.ndarray = np.log(q / (1 - q))
    return out


def card_prior(
    cards: Sequence[ModelCard],
    domains: Sequence[str],
    tasks: Sequence[str],
    complexity: np.ndarray,
    *,
    mean_complexity: float = 0.5,
) -> np.ndarray:
    """Card-based quality for each (prompt, model): shape (n_prompts, n_models).

    The base rate is the card's accuracy in the prompt's domain, else its overall accuracy (both on
    the MMLU-Pro-anchored scale of the registry); difficulty then shifts the logit. ``tasks`` is
    accepted for predictors that use it.
    """
    # Few distinct domains occur: each one's row is looked up once (per candidate table, see
    # optiroute.catalog.table) and broadcast, vectorised for batches of millions of prompts.
    # Task-level accuracies come from data sets scored on other scales, so the prior stays on the
    # domain / overall (MMLU-Pro-anchored) scale; kNN residuals add task strengths.
    rows: dict[str, np.ndarray] = derived(cards, "prior_base", dict)
    base = keyed_rows(domains, rows, lambda d: _base_row(cards, d))
    shift = DIFFICULTY_SLOPE * (mean_complexity - np.asarray(complexity, dtype=np.float32))
    z = logit(base) + shift[:, None]
    prior: np.ndarray = (1.0 / (1.0 + np.exp(-z))).astype(np.float32)  # numpy types this arithmetic as Any
    return prior


