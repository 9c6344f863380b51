"""Batch mode (the OptiRoute seed): one model for a whole batch, chosen from a small sample.

:func:`choose_batch_model` routes a seeded sample of a few
percent of a batch and picks the one model with the best mean preference score over the sample, with
the share of sampled prompts whose own routing agreed, so a caller can run the whole batch on one
model (one deployment, one prompt cache) after encoding only the sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, Field

from optiroute.analysis.prompts import to_routable
from optiroute.catalog.registry import Registry
from optiroute.errors import InvalidInputError, NoEligibleModelError
from optiroute.routing.batch import BatchDecisions, RouteArrays
from optiroute.routing.budgeted import hard_eligible
from optiroute.routing.scoring import card_matrix, score
from optiroute.schema.decision import Constraints
from optiroute.schema.numbers import MAX_COUNT, integer, real


class BatchRouter(Protocol):
    """What batch mode needs of a router: its cards, its constraints and vectorised routing."""

    constraints: Constraints

    @property
    def registry(self) -> Registry: ...

    def decide_batch(self, texts: Sequence[Any], *, preferences: Any = ..., constraints: Any = ...,
                     candidates: Sequence[str] | None = ..., embeddings: np.ndarray | None = ...,
                     explore: bool = ...) -> BatchDecisions: ...

__all__ = ["BatchModelChoice", "choose_batch_model"]


class BatchModelChoice(BaseModel):
    """Batch mode's answer: one model for a whole batch, chosen on a sample.

    Attributes:
        model: the model with the best mean preference score over the sampled prompts.
        agreement: share of sampled prompts whose own per-prompt routing chose ``model`` (how much
            one model for all costs: 1.0 means per-call routing would have agreed everywhere).
        shares: per-prompt winners over the sample, model -> share.
        mean_scores: model -> mean preference score over the sample (models passing the hard
            constraints on every sampled prompt; the per-prompt task/domain filters do not apply to
            a whole batch), best first.
        predicted_quality, predicted_cost_usd: ``model``'s mean predictions over the sample.
        unfit: models passed over because some prompt *outside* the sample would not fit them
            (context window, per-call cost cap), model -> number of such prompts.
    """

    model: str
    runner_up: str | None
    agreement: float
    sample_size: int
    batch_size: int
    shares: dict[str, float]
    mean_scores: dict[str, float]
    predicted_quality: float
    predicted_cost_usd: float
    sample_indices: list[int] = Field(repr=False)
    unfit: dict[str, int] = Field(default_factory=dict)


def choose_batch_model(
    router: BatchRouter,
    texts: Sequence[Any],
    *,
    sample: float = 0.05,
    min_sample: int = 32,
    preferences: Any = None,
    constraints: Any = None,
    candidates: Sequence[str] | None = None,
    seed: int = 0,
    embeddings: np.ndarray | None = None,
) -> BatchModelChoice:
    """Route a seeded sample of ``texts`` and pick one model for all of them.

    Only the sample is encoded and scored, so this costs ``sample`` of a full ``decide_batch``.
    Hard constraints are checked on the sampled prompts; the constraints that depend on a prompt's
    length (the context window and the per-call cost cap) are then checked on *every* prompt of the
    batch from its input length (characters / 4, no encoding) plus the sample's 95th-percentile
    answer length times the model's verbosity, and a model that some prompt would not fit is
    passed over (listed in ``unfit``).

    Args:
        sample: fraction of the batch to route, in (0, 1].
        min_sample: route at least this many prompts (or the whole batch if smaller).
        seed: the sample's seed (the same batch and seed give the same choice).
        embeddings: optional precomputed (n, dim) embeddings of all ``texts`` (rows are sampled).

    Raises:
        InvalidInputError: empty batch or a sample fraction outside (0, 1].
        NoEligibleModelError: no candidate is eligible for every sampled prompt.
    """
    if isinstance(texts, (str, bytes)):
        raise InvalidInputError("choose_batch_model takes a list of prompts, not one string.")
    n = len(texts)
    if n == 0:
        raise InvalidInputError("choose_batch_model got no prompts.")
    sample = real(sample, "sample", lo=0.0, lo_open=True, hi=1.0, hint="It is the fraction of the batch routed.")
    min_sample = integer(min_sample, "min_sample", lo=1, hi=MAX_COUNT)
    seed = integer(seed, "seed", lo=0, hi=2**63 - 1)
    size = min(n, max(min_sample, math.ceil(sample * n)))
    idx = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
    res = router.decide_batch(
        [texts[int(i)] for i in idx], preferences=preferences, constraints=constraints,
        candidates=candidates, embeddings=None if embeddings is None else np.asarray(embeddings)[idx],
        explore=False,
    )
    names = res.parts[0].names
    total = np.concatenate([_hard_scores(router, p) for p in res.parts]).astype(np.float64)
    mean = total.mean(axis=0)
    ok = np.isfinite(mean)
    if not ok.any():
        raise NoEligibleModelError(
            "No candidate is eligible for every sampled prompt, so no single model can take the whole "
            "batch; route per prompt with decide_batch, or relax the constraints."
        )
    ranked = [int(j) for j in np.argsort(-np.where(ok, mean, -np.inf)) if ok[j]]
    unfit = _unfit_for_batch(router, texts, res.parts, names, ranked, constraints)
    ranked = [j for j in ranked if names[j] not in unfit]
    if not ranked:
        raise NoEligibleModelError(
            "Every candidate eligible on the sample is too small (context window) or too dear (max_cost_usd) "
            f"for some prompt of the batch ({unfit}); route per prompt with decide_batch, or split the batch."
        )
    best = ranked[0]
    winners = np.concatenate([p.winner for p in res.parts])
    counts = np.bincount(winners, minlength=len(names)) / len(winners)
    quality = np.concatenate([p.quality[:, best] for p in res.parts])
    cost = np.concatenate([p.cost[:, best] for p in res.parts])
    return BatchModelChoice(
        model=names[best], runner_up=names[ranked[1]] if len(ranked) > 1 else None,
        agreement=float(counts[best]), sample_size=size, batch_size=n,
        shares={names[j]: round(float(counts[j]), 4) for j in np.argsort(-counts) if counts[j] > 0},
        mean_scores={names[j]: round(float(mean[j]), 4) for j in ranked},
        predicted_quality=float(quality.mean()), predicted_cost_usd=float(cost.mean()),
        sample_indices=idx.tolist(), unfit=unfit,
    )


def _unfit_for_batch(router: BatchRouter, texts: Sequence[Any], parts: list[RouteArrays], names: list[str],
                     ranked: list[int], constraints: Any) -> dict[str, int]:
    """Models (of ``ranked``) that some prompt of the whole batch would not fit, with the count."""
    cons = router.constraints.merged(Constraints.coerce(constraints))
    in_tok = np.array([max(1, to_routable(t).total_chars // 4) for t in texts], dtype=np.float64)
    out_hi = float(np.quantile(np.concatenate([p.out_tok for p in parts]), 0.95))
    unfit: dict[str, int] = {}
    for j in ranked:
        card = router.registry.resolve(names[j])
        out = out_hi * card.verbosity
        need = in_tok + out
        if cons.min_context is not None:
            need = np.maximum(need, cons.min_context)
        bad = need > card.context_window
        if cons.max_cost_usd is not None:
            bad |= (in_tok * card.input_usd_per_mtok + out * card.output_usd_per_mtok) / 1e6 > cons.max_cost_usd
        if bad.any():
            unfit[names[j]] = int(bad.sum())
    return unfit


def _hard_scores(router: BatchRouter, part: RouteArrays) -> np.ndarray:
    """Preference scores with only the hard constraints excluding (``-inf``).

    Per-prompt routing drops a model the task/domain filters call not competent for *that* prompt;
    for one model over a whole batch that would leave only a model no prompt filters out (often the
    strongest and dearest), so here the filters' concern is left to the quality term of the score,
    as in budgeted batches.
    """
    cards = [router.registry.resolve(n) for n in part.names]
    return score(part.prefs.normalized(), part.quality, part.cost, part.latency, card_matrix(cards),
                 hard_eligible(part)).total
