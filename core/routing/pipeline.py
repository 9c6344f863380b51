"""One routing pass over a batch of prompts, fully vectorised.

Encode (or take precomputed embeddings), analyse, predict quality for every (prompt, candidate),
predict cost and latency, apply hard constraints and the task/domain filters, score under the
preferences, take the argmax, and fall back to the generalist where nothing is competent or the
router is unsure. Everything is a matrix of shape (n_prompts, n_candidates); explanations are
materialised later, only for the decisions somebody reads (:class:`~optiroute.routing.batch.RouteArrays`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from optiroute.analysis.analyzer import TaskAnalyzer
from optiroute.analysis.embedding import Embedder, prune_text
from optiroute.analysis.prompts import RoutableText
from optiroute.analysis.shared_text import SharedText
from optiroute.catalog.registry import ModelCard
from optiroute.catalog.table import card_names, derived, keyed_rows
from optiroute.errors import InvalidInputError, NoEligibleModelError, OptiRouteError
from optiroute.quality.base import Predictor
from optiroute.quality.index import quantize
from optiroute.routing import policy as pol
from optiroute.routing.batch import RouteArrays
from optiroute.routing.estimates import answer_tokens
from optiroute.routing.guard import RoutingGuard
from optiroute.routing.scoring import card_matrix, score
from optiroute.schema.decision import Constraints
from optiroute.schema.preferences import Preferences

__all__ = ["Corrections", "RoutingContext", "domain_matrix", "route_arrays", "tier_prices"]

#: Feedback corrections of (cards, task types, domains, embeddings, complexity) -> (n, m) or None.
Corrections = Callable[[Sequence[ModelCard], list[str], list[str], np.ndarray, np.ndarray], "np.ndarray | None"]


@dataclass(frozen=True)
class RoutingContext:
    """What one routing pass reads: the router's parts and what it learned, never the router.

    Attributes:
        corrections: feedback corrections for the pass (see :mod:`optiroute.learning.feedback_memory`).
        latency_ratios: observed / card latency per candidate (1.0 before observations).
        keep_embeddings: carry the prompts' int8 embeddings in the arrays (the router keeps prompts).
        guard: where routing measured no better than one model (:mod:`optiroute.routing.guard`).
        shared_text: text the router's training prompts share, removed before embedding
            (:mod:`optiroute.analysis.shared_text`); ``None``: embed the prompts as given.
    """

    embedder: Embedder
    analyzer: TaskAnalyzer
    predictor: Predictor
    policy: pol.PolicyConfig
    lam: float
    corrections: Corrections
    latency_ratios: Callable[[Sequence[ModelCard]], np.ndarray]
    explorer: pol.Explorer
    keep_embeddings: bool = False
    guard: RoutingGuard | None = None
    shared_text: SharedText | None = None


def domain_matrix(cards: Sequence[ModelCard], domains: Sequence[str]) -> np.ndarray:
    """(n, m) card accuracy in each prompt's domain (NaN where the card has none)."""
    rows: dict[str, np.ndarray] = derived(cards, "domain_accuracy", dict)  # filled per domain as they occur
    return keyed_rows(domains, rows, lambda d: np.array([c.accuracy_by_domain.get(d, np.nan) for c in cards],
                                                        dtype=np.float32))


def tier_prices(cards: Sequence[ModelCard], in_tok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, m) input and output USD per million tokens: each card's list price, or the long-context tier
    the prompt's input size selects (``ModelCard.price_tiers``, from the price library)."""
    base_in, base_out, tiers = derived(cards, "prices", lambda: _list_prices(cards))
    n = len(in_tok)
    pin = np.tile(base_in, (n, 1))
    pout = np.tile(base_out, (n, 1))
    for j, floor, tin, tout in tiers:
        over = in_tok > floor
        pin[over, j] = tin
        pout[over, j] = tout
    return pin, pout


def _list_prices(cards: Sequence[ModelCard]) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, float, float]]]:
    """List prices per card and every long-context tier as (column, from tokens, input, output),
    lowest threshold first per card."""
    tiers = [(j, t.min_input_tokens, t.input_usd_per_mtok, t.output_usd_per_mtok)
             for j, c in enumerate(cards)
             for t in sorted(getattr(c, "price_tiers", ()) or (), key=lambda t: t.min_input_tokens)]
    return (np.array([c.input_usd_per_mtok for c in cards], dtype=np.float32),
            np.array([c.output_usd_per_mtok for c in cards], dtype=np.float32), tiers)


def _speeds(cards: Sequence[ModelCard]) -> tuple[np.ndarray, np.ndarray]:
    """Each card's time to first token and tokens per second (floored above zero)."""
    return (np.array([c.ttft_s for c in cards], dtype=np.float32),
            np.array([max(c.tokens_per_s, 1e-3) for c in cards], dtype=np.float32))


#: How far a row of embeddings may stray from unit length (float16/int8 round trips stay well inside).
UNIT_TOLERANCE = 0.05


def _unit_rows(values: object, what: str) -> np.ndarray:
    """``values`` as float32 rows of (about) unit length, else InvalidInputError: a vector that is not
    a unit vector makes kNN weights overflow, which would put NaN into the scores."""
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            emb = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{what} must be a numeric (n, dim) array ({type(exc).__name__}: {exc}).") from None
    if emb.ndim != 2:
        raise InvalidInputError(f"{what} must be a 2-D (n, dim) array, got shape {emb.shape}.")
    if not np.isfinite(emb).all():
        raise InvalidInputError(f"{what} contains NaN or infinite values; re-encode the prompts.")
    norms = np.sqrt(np.einsum("ij,ij->i", emb, emb, dtype=np.float64))
    if norms.size and np.abs(norms - 1.0).max() > UNIT_TOLERANCE:
        raise InvalidInputError(
            f"{what} must be unit vectors (L2 norm 1, as the routing embedder makes them); a row has norm "
            f"{float(norms[np.abs(norms - 1.0).argmax()]):.4g}."
        )
    return emb


def _finite(**arrays: np.ndarray) -> None:
    """No NaN or infinity reaches a score: every input is validated, so one here is a bug, reported
    as such instead of a silent arbitrary choice."""
    for name, a in arrays.items():
        if not np.isfinite(a).all():
            raise OptiRouteError(
                f"OptiRoute computed a non-finite predicted {name} for this prompt; this is a bug (or a "
                "predictor or card that bypassed validation). Please report it with the router's files."
            )


def route_arrays(
    ctx: RoutingContext,
    items: list[RoutableText],
    prefs: Preferences,
    constraints: Constraints,
    cards: Sequence[ModelCard],
    columns: list[int | None],
    *,
    batch: bool,
    show_progress: bool = False,
    embeddings: np.ndarray | None = None,
    explore: bool = False,
) -> RouteArrays:
    """Route ``items`` over ``cards`` (``columns``: their predictor columns); raises
    NoEligibleModelError when a prompt has no candidate left after the hard constraints."""
    # What varies is embedded: text shared by the training prompts is removed first. The token
    # estimate (in_tok below) still counts the whole prompt. The embedder reads a long prompt by its
    # head and tail itself; the pruned flag tells the analyzer's profile.
    texts = [it.text for it in items]
    if ctx.shared_text is not None:
        texts = ctx.shared_text.varying_all(texts)
    pruned = [prune_text(t)[1] for t in texts]
    if embeddings is None:
        emb = _unit_rows(ctx.embedder.encode(texts, show_progress=show_progress),
                         "the embedder's output")
        if emb.shape[0] != len(items):
            raise InvalidInputError(f"The embedder returned {emb.shape[0]} rows for {len(items)} prompts.")
    else:
        emb = _unit_rows(embeddings, "embeddings")
        if emb.shape != (len(items), ctx.embedder.dim):
            raise InvalidInputError(
                f"embeddings must have shape ({len(items)}, {ctx.embedder.dim}), got {emb.shape}."
            )
    out = ctx.analyzer.predict(emb)
    tasks = [ctx.analyzer.task_types[i] for i in out.task_probs.argmax(axis=1)]
    domains = [ctx.analyzer.domains[i] for i in out.domain_probs.argmax(axis=1)]
    in_tok = np.array([max(1, it.total_chars // 4) for it in items], dtype=np.float32)
    out_tok = ctx.analyzer.output_tokens(out.task_probs)
    knn = ctx.predictor.neighbours(emb, exact=batch)
    corr = ctx.corrections(cards, tasks, domains, emb, out.complexity)
    quality, support = ctx.predictor.predict(
        knn, cards, domains, tasks, out.complexity, columns=columns, corrections=corr
    )
    pin, pout = tier_prices(cards, in_tok)
    # Each model's expected answer length: the prompt's estimate times the share of the model's
    # verbosity that was measured on prompts like this one (routing/estimates.py says why).
    out_m = answer_tokens(out_tok, cards, out.task_probs, ctx.analyzer.task_types)
    cost = (in_tok[:, None] * pin + out_m * pout) / 1e6
    ttft, tps = derived(cards, "speeds", lambda: _speeds(cards))
    ratio = np.asarray(ctx.latency_ratios(cards), dtype=np.float32)
    latency = (ttft + out_m / tps) * ratio
    hard = pol.hard_mask(cards, constraints, in_tok[:, None] + out_m, cost, latency)
    dom = domain_matrix(cards, domains)
    weights = prefs.normalized()
    # The task/domain filters and the low-confidence generalist protect predicted quality. A caller
    # who gives accuracy no weight ({"cost": 1.0}) has said quality must not override the other
    # preferences, so only the hard constraints apply (the named profiles all weigh accuracy).
    guard = weights.get("accuracy", 0.0) > 0
    if guard:
        codes, nothing = pol.soft_mask(hard, quality, dom, ctx.policy)
    else:
        codes, nothing = hard.copy(), np.zeros(len(items), dtype=bool)
    empty = ~(hard == 0).any(axis=1)
    if empty.any():
        i = int(empty.argmax())
        reasons = {c.name: pol.EXCLUSION_TEXT[int(hard[i, j])] for j, c in enumerate(cards)}
        raise NoEligibleModelError(
            f"No candidate passes the hard constraints ({int(empty.sum())} of {len(items)} "
            f"prompt(s)); relax one of them: " + "; ".join(f"{m}: {r}" for m, r in reasons.items()),
            exclusions=reasons,
        )
    _finite(quality=quality, cost=cost, latency=latency)
    table = score(weights, quality, cost, latency, card_matrix(cards), codes == 0)
    winner = table.total.argmax(axis=1)
    conf = pol.confidence(out.task_probs.max(axis=1), support, winner, ctx.lam)
    low = (conf < ctx.policy.min_confidence) & guard
    general = nothing | low
    if general.any():
        gidx = pol.generalist_index(cards, hard == 0, ctx.policy.generalist)
        winner = np.where(general, gidx, winner)
        codes = np.where(general[:, None], hard, codes)
    guarded, guard_reason = _apply_guard(ctx.guard, weights, cards, hard)
    if guarded is not None:
        winner = np.where(guarded, guarded_column(ctx.guard, weights, cards), winner)
        nothing, low = nothing & ~guarded, low & ~guarded
    explored = np.zeros(len(items), dtype=bool)
    if explore and ctx.policy.explore > 0:
        winner, explored = ctx.explorer.choose(winner, hard == 0, ctx.policy.explore)
        codes = np.where(explored[:, None], hard, codes)
    return RouteArrays(
        names=list(card_names(cards)), winner=winner, total=table.total, sub=table.sub,
        quality=quality, cost=cost, latency=latency, codes=codes, support=support,
        confidence=conf, nothing_fits=nothing, low_confidence=low, tasks=tasks,
        domains=domains, out=out, in_tok=in_tok, out_tok=out_tok, pruned=pruned,
        knn=knn, prefs=prefs, task_types=list(ctx.analyzer.task_types), explored=explored,
        corrections=corr, embeddings=quantize(emb) if ctx.keep_embeddings else None,
        guarded=guarded, guard_reason=guard_reason,
    )


def guarded_column(guard: RoutingGuard | None, weights: dict[str, float], cards: Sequence[ModelCard]) -> int:
    """The candidate column of the single model the guard names for ``weights`` (-1: none)."""
    point = guard.point_for(weights) if guard is not None else None
    if point is None or not point.use_single:
        return -1
    return next((j for j, c in enumerate(cards) if point.single in (c.name, *c.aliases)), -1)


def _apply_guard(guard: RoutingGuard | None, weights: dict[str, float], cards: Sequence[ModelCard],
                 hard: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """Rows the guard sends to its single model (those where it passes the hard constraints)."""
    j = guarded_column(guard, weights, cards)
    if guard is None or j < 0:
        return None, None
    point = guard.point_for(weights)
    assert point is not None
    return hard[:, j] == 0, guard.reason(point)
