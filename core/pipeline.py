"""One routing pass over a batch of prompts, fully vectorised.

Encode (or take precomputed embeddings), analyse, predict quality for every (prompt, candidate),
predict cost and latency, apply hard constraints and the task/domain filters, score under the
preferences, take the argmax, and fall back to the generalist where nothing is competent or the
router is unsure. Everything is a matrix of shape (n_prompts, n_candidates); explanations are
materialised later, only for the decisions somebody reads (:class:`~optiroute.batch.RouteArrays`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import policy as pol
from .batch import RouteArrays
from .errors import InvalidInputError, NoEligibleModelError
from .router_state import domain_matrix, latency_group
from .scorer import card_matrix, score

if TYPE_CHECKING:
    from .profiles import Preferences
    from .prompts import RoutableText
    from .types import Constraints

__all__ = ["route_arrays"]


def route_arrays(
    router: Any,
    items: list[RoutableText],
    prefs: Preferences,
    constraints: Constraints,
    candidates: Sequence[str] | None,
    *,
    batch: bool,
    show_progress: bool = False,
    embeddings: np.ndarray | None = None,
    explore: bool = False,
) -> RouteArrays:
    """Route ``items`` with ``router``'s state; raises NoEligibleModelError when a prompt has no
    candidate left after the hard constraints."""
    from .embedding import prune_text

    st = router._ensure()
    cards, columns = router._candidates(candidates)
    pruned = [prune_text(it.text) for it in items]
    if embeddings is None:
        emb = st.embedder.encode([p for p, _ in pruned], show_progress=show_progress)
    else:
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.shape != (len(items), st.embedder.dim):
            raise InvalidInputError(
                f"embeddings must have shape ({len(items)}, {st.embedder.dim}), got {emb.shape}."
            )
    out = st.analyzer.predict(emb)
    tasks = [st.analyzer.task_types[i] for i in out.task_probs.argmax(axis=1)]
    domains = [st.analyzer.domains[i] for i in out.domain_probs.argmax(axis=1)]
    in_tok = np.array([max(1, it.total_chars // 4) for it in items], dtype=np.float32)
    out_tok = st.analyzer.output_tokens(out.task_probs)
    knn = st.predictor.neighbours(emb, exact=batch)
    corr = router._corrections(cards, tasks, domains, emb, out.complexity)
    quality, support = st.predictor.predict(
        knn, cards, domains, tasks, out.complexity, columns=columns, corrections=corr
    )
    pin = np.array([c.input_usd_per_mtok for c in cards], dtype=np.float32)
    pout = np.array([c.output_usd_per_mtok for c in cards], dtype=np.float32)
    # Each model's expected answer length: the prompt's estimate times the model's verbosity.
    out_m = out_tok[:, None] * np.array([c.verbosity for c in cards], dtype=np.float32)
    cost = (in_tok[:, None] * pin + out_m * pout) / 1e6
    ttft = np.array([c.ttft_s for c in cards], dtype=np.float32)
    tps = np.array([max(c.tokens_per_s, 1e-3) for c in cards], dtype=np.float32)
    ratio = np.array(router._latency.ratios([c.name for c in cards], [latency_group(c) for c in cards]),
                     dtype=np.float32)
    latency = (ttft + out_m / tps) * ratio
    hard = pol.hard_mask(cards, constraints, in_tok[:, None] + out_m, cost, latency)
    dom = domain_matrix(cards, domains)
    weights = prefs.normalized()
    # The task/domain filters and the low-confidence generalist protect predicted quality. A caller
    # who gives accuracy no weight ({"cost": 1.0}) has said quality must not override the other
    # preferences, so only the hard constraints apply (the named profiles all weigh accuracy).
    guard = weights.get("accuracy", 0.0) > 0
    if guard:
        codes, nothing = pol.soft_mask(hard, quality, dom, router.policy)
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
    table = score(weights, quality, cost, latency, card_matrix(cards), codes == 0)
    winner = table.total.argmax(axis=1)
    conf = pol.confidence(out.task_probs.max(axis=1), support, winner, router.lam)
    low = (conf < router.policy.min_confidence) & guard
    general = nothing | low
    if general.any():
        gidx = pol.generalist_index(cards, hard == 0, router.policy.generalist)
        winner = np.where(general, gidx, winner)
        codes = np.where(general[:, None], hard, codes)
    explored = np.zeros(len(items), dtype=bool)
    if explore and router.policy.explore > 0:
        with router._explore_lock:
            winner, explored = pol.explore_choice(winner, hard == 0, router.policy.explore, router._explore_rng)
        codes = np.where(explored[:, None], hard, codes)
    return RouteArrays(
        names=[c.name for c in cards], winner=winner, total=table.total, sub=table.sub,
        quality=quality, cost=cost, latency=latency, codes=codes, support=support,
        confidence=conf, nothing_fits=nothing, low_confidence=low, tasks=tasks,
        domains=domains, out=out, in_tok=in_tok, out_tok=out_tok, pruned=[p for _, p in pruned],
        knn=knn, prefs=prefs, task_types=list(st.analyzer.task_types), explored=explored,
    )
