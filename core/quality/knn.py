"""Per-prompt quality prediction for every candidate model.

Two sources are blended per (prompt, model):

- **kNN** over the evaluation store (:class:`~optiroute.quality.index.OutcomeIndex`): the similarity-weighted
  outcome of the nearest stored prompts, exact where the model has dense per-prompt outcomes;
- **the model card** (cold start): the card's accuracy in the prompt's domain (or overall), shifted
  by the analyzer's predicted difficulty on the logit scale (an item-response view: harder prompts
  lower every model's odds).

The blend is ``prior + support / (support + lam) * residual``: the kNN residual is how much better
than the other evaluated models this model did on similar prompts (relative outcomes stay comparable
across data sets scored on different scales), shrunk by ``support``, the similarity mass of the
neighbours that have an outcome for the model. A model with no stored outcomes falls back to its card
smoothly instead of through a hard switch. Feedback
then moves the estimate by the mean residual (observed - predicted) per model and task type.

This is the ``knn`` kind of the predictor interface (:mod:`optiroute.quality.base`), beside the
learned ``routoo`` and ``mlp`` kinds; :func:`~optiroute.quality.priors.card_prior` is every kind's fallback for models
without outcomes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from optiroute.quality.base import Predictor, TrainData, match_columns
from optiroute.quality.index import OutcomeIndex
from optiroute.quality.observed import observed_level, toward_observed
from optiroute.quality.priors import card_prior

if TYPE_CHECKING:
    from optiroute.catalog.registry import ModelCard
    from optiroute.quality.index import KNNResult, OutcomeIndex

__all__ = ["QualityPredictor"]

class QualityPredictor(Predictor):
    """Blends kNN outcomes with card priors, then applies feedback corrections (kind ``knn``).

    Args:
        index: the evaluation store (may be ``None`` for card-only routing).
        lam: prior strength in pseudo-neighbours (larger trusts cards more).
        k: neighbours per query.
        tau: similarity temperature for neighbour weights.
        observed_n0: when set (fitted routers), each model's prior level moves from its card to its
            observed mean in the store, ``n / (n + observed_n0)`` for ``n`` outcomes
            (:mod:`optiroute.quality.observed`); ``None`` keeps the card level (the bundled default
            and routers saved before it).
    """

    kind: ClassVar[str] = "knn"

    def __init__(
        self,
        index: OutcomeIndex | None,
        *,
        lam: float = 3.0,
        k: int = 50,
        tau: float = 0.1,
        mean_complexity: float = 0.5,
        observed_n0: float | None = None,
    ) -> None:
        self.index = index
        self.lam = lam
        self.k = k
        self.tau = tau
        self.mean_complexity = mean_complexity
        self.observed_n0 = observed_n0
        self._level: tuple[int, tuple[np.ndarray, np.ndarray]] | None = None

    @classmethod
    def fit(cls, data: TrainData, **kwargs: Any) -> QualityPredictor:
        """The kNN kind "fits" by storing the outcomes: it predicts from ``data.index``."""
        if data.index is None:
            data.index = OutcomeIndex(
                data.embeddings, [str(i) for i in range(len(data.embeddings))],
                [""] * len(data.embeddings), data.models, data.scores,
            )
        keep = {k: kwargs[k] for k in ("lam", "k", "tau", "mean_complexity", "observed_n0") if k in kwargs}
        return cls(data.index, **keep)

    def columns(self, cards: Sequence[ModelCard]) -> list[int | None]:
        """Index columns holding each card's outcomes (by name, then by alias, then by the
        registry's normalised spelling: see :func:`optiroute.quality.base.match_columns`)."""
        if self.index is None:
            return [None] * len(cards)
        return match_columns(cards, self.index.models)

    def neighbours(self, embeddings: np.ndarray, *, exact: bool) -> KNNResult | None:
        """kNN of the queries (Annoy for one prompt, an exact matrix product for batches)."""
        if self.index is None or len(self.index) == 0:
            return None
        if exact or embeddings.shape[0] > 1:
            return self.index.search_batch(embeddings, self.k)
        return self.index.search(embeddings[0], self.k)

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
        """Predicted quality and kNN support, both of shape (n_prompts, n_models).

        Args:
            knn: neighbours of each prompt (``None`` for card-only).
            cards: the candidates, in output column order.
            domains, tasks, complexity: the analyzer's view of each prompt.
            columns: precomputed :meth:`columns` (saves alias lookups on the hot path).
            corrections: optional (n_prompts, n_models) additive feedback corrections.
        """
        prior = card_prior(
            cards, domains, tasks, complexity, mean_complexity=self.mean_complexity
        )
        cols = list(columns) if columns is not None else self.columns(cards)
        if self.observed_n0 is not None and self.index is not None:
            means, counts = self._observed()
            prior = toward_observed(prior, cards, cols, means, counts, self.observed_n0)
        if knn is None or self.index is None:
            quality, support = prior, np.zeros_like(prior)
        else:
            resid, support = self.index.knn_quality(knn, cols, tau=self.tau, relative=True)
            resid = np.where(np.isnan(resid), np.float32(0.0), resid)  # cheaper than nan_to_num on one row
            quality = prior + support * resid / (support + self.lam)
        if corrections is not None:
            quality = quality + corrections
        return np.clip(quality, 0.0, 1.0).astype(np.float32), support

    def _observed(self) -> tuple[np.ndarray, np.ndarray]:
        """Observed mean and count per store column, cached until the store's outcomes change."""
        index = self.index
        assert index is not None
        key = id(index.model_means)  # add_model() always recomputes it
        if self._level is None or self._level[0] != key:
            self._level = (key, observed_level(index.scores, index.estimated))
        return self._level[1]
