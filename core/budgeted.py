"""Batch-level choices: the best assignment of a whole batch under one total budget, and batch mode
(one model for a whole batch, chosen from a small sample).

**Budgets.** ``Router.decide_batch(texts, budget_usd=B)`` maximises the batch's total predicted
quality subject to its total predicted cost staying within ``B``. That is a multiple-choice knapsack
(one model per prompt). :func:`allocate` solves it with the classic LP-greedy, vectorised:

1. every prompt starts at its cheapest eligible model (the least any assignment can cost);
2. each prompt's possible upgrades are the vertices of the upper convex hull of its (cost, quality)
   points: upgrades inside the hull are never worth their price;
3. all upgrade steps of all prompts are sorted by marginal quality per marginal dollar and taken in
   that order while the budget lasts (a prompt's hull steps have decreasing slopes, so they are taken
   in order); a final pass spends what is left on the best steps that still fit.

The LP relaxation gives an upper bound on the best achievable total (reported as ``upper_bound``);
the greedy is within one prompt's quality gain of it. With ``alpha`` set, Routoo's cost-aware
selector is used instead: each prompt's target is its eligible model with the highest
``quality / cost**alpha``, and prompts are upgraded from their cheapest model to that target in order
of marginal quality per dollar while the budget lasts.

Eligibility is the hard constraints only (tools, JSON, context, allowed/blocked, per-call cost and
latency caps); the policy's task/domain filters are competence heuristics, which the quality objective
already weighs.

**Batch mode** (the OptiRoute seed): :func:`choose_batch_model` routes a seeded sample of a few
percent of a batch and picks the one model with the best mean preference score over the sample, with
the share of sampled prompts whose own routing agreed, so a caller can run the whole batch on one
model (one deployment, one prompt cache) after encoding only the sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field

from .batch import BatchDecisions, RouteArrays
from .errors import BudgetExceededError, InvalidConstraintsError, InvalidInputError, NoEligibleModelError
from .policy import Exclusion

if TYPE_CHECKING:
    from .router import Router
    from .types import RoutingDecision

__all__ = ["BatchModelChoice", "BudgetAllocation", "BudgetedBatch", "allocate", "allocate_batch",
           "choose_batch_model", "hard_eligible"]

#: Rows per block when building hulls (bounds the (rows x models) temporaries).
_BLOCK = 65536
#: Rounding slack on money comparisons (relative).
_REL = 1e-12


class BudgetAllocation(BaseModel):
    """What a budgeted batch assignment achieved, in predicted terms.

    Attributes:
        budget_usd: the total budget of the batch.
        total_cost_usd: predicted total cost of the chosen models (never above the budget).
        total_quality: sum of the chosen models' predicted quality.
        upper_bound: the LP-relaxation bound on the best achievable total quality at this budget
            (hull greedy only; ``None`` for Routoo's selector).
        min_budget_usd: cost of every prompt's cheapest eligible model (the least any budget needs).
        max_useful_usd: cost of the greedy's last hull vertex per prompt, i.e. the best predicted
            quality per prompt (budgets above this buy nothing).
        method: ``"mckp-greedy"`` or ``"routoo(alpha=...)"``.
    """

    budget_usd: float
    total_cost_usd: float
    total_quality: float
    upper_bound: float | None
    min_budget_usd: float
    max_useful_usd: float
    n_prompts: int
    method: str

    @property
    def mean_quality(self) -> float:
        """Mean predicted quality per prompt."""
        return self.total_quality / max(self.n_prompts, 1)


def _min_budget_message(need: float, budget: float, n: int) -> str:
    return (
        f"A total budget of ${budget:.6g} cannot cover this batch of {n} prompt(s): even the cheapest "
        f"eligible model for every prompt is predicted to cost ${need:.6g}. Raise budget_usd to at "
        f"least ${need:.6g}, route fewer prompts, or relax the constraints that exclude cheap models."
    )


def _base(q: np.ndarray, c: np.ndarray, elig: np.ndarray) -> np.ndarray:
    """Each row's cheapest eligible column (ties: the higher quality)."""
    cost = np.where(elig, c, np.inf)
    qual = np.where(elig, q, -np.inf)
    order = np.lexsort((-qual, cost), axis=1)
    return order[:, 0]


def _hull_steps(q: np.ndarray, c: np.ndarray, elig: np.ndarray, start: np.ndarray) -> list[np.ndarray]:
    """Upgrade steps along each row's upper (cost, quality) hull, by gift wrapping from ``start``.

    Returns ``[row, to, dq, dc, k, eff]`` arrays, ``k`` the step's position in its row and ``eff``
    its marginal quality per dollar, clipped to be non-increasing along a row (so rounding can never
    order a row's later step before an earlier one).
    """
    n, m = q.shape
    cur = start.copy()
    out: list[list[np.ndarray]] = [[], [], [], [], [], []]
    live = np.ones(n, dtype=bool)
    prev = np.full(n, np.inf)
    for k in range(m):
        rows = np.flatnonzero(live)
        if rows.size == 0:
            break
        qs, cs, es, cc = q[rows], c[rows], elig[rows], cur[rows]
        dq = qs - qs[np.arange(rows.size), cc][:, None]
        dc = cs - cs[np.arange(rows.size), cc][:, None]
        ok = es & (dq > 1e-12) & (dc > 0)
        slope = np.where(ok, dq / np.where(dc > 0, dc, 1.0), -np.inf)
        best = slope.max(axis=1)
        has = np.isfinite(best)
        live[rows[~has]] = False
        if not has.any():
            break
        tie = ok & (slope >= (best * (1 - 1e-9))[:, None])
        nxt = np.where(tie, cs, np.inf).argmin(axis=1)
        sel = np.flatnonzero(has)
        out[0].append(rows[sel])
        out[1].append(nxt[sel])
        out[2].append(dq[sel, nxt[sel]])
        out[3].append(dc[sel, nxt[sel]])
        out[4].append(np.full(sel.size, k, dtype=np.int32))
        eff = np.minimum(best[sel], prev[rows[sel]])
        prev[rows[sel]] = eff
        out[5].append(eff)
        cur[rows[sel]] = nxt[sel]
    if not out[0]:
        return [np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0, np.int32),
                np.zeros(0)]
    return [np.concatenate(x) for x in out]


def _routoo_steps(q: np.ndarray, c: np.ndarray, elig: np.ndarray, start: np.ndarray,
                  alpha: float) -> list[np.ndarray]:
    """One step per row, from the cheapest model to the one maximising quality / cost**alpha."""
    n = q.shape[0]
    r = np.arange(n)
    ratio = np.maximum(q, 0.0) / np.power(np.maximum(c, 1e-12), alpha)
    ratio = np.where(elig, ratio, -np.inf)
    best = ratio.max(axis=1, keepdims=True)
    target = np.where(elig & (ratio >= best * (1 - 1e-9)), c, np.inf).argmin(axis=1)
    dq = q[r, target] - q[r, start]
    dc = c[r, target] - c[r, start]
    ok = (dq > 1e-12) & (dc > 0)
    rows = np.flatnonzero(ok)
    return [rows, target[rows], dq[rows], dc[rows], np.zeros(rows.size, dtype=np.int32), dq[rows] / dc[rows]]


def allocate(
    quality: np.ndarray,
    cost: np.ndarray,
    eligible: np.ndarray,
    budget_usd: float,
    *,
    alpha: float | None = None,
) -> tuple[np.ndarray, BudgetAllocation]:
    """Choose one column per row maximising total ``quality`` with total ``cost`` <= the budget.

    Args:
        quality, cost: (n, m) predicted quality and cost per call.
        eligible: (n, m) boolean, the models each prompt may use (every row needs one).
        budget_usd: the total budget for all n prompts.
        alpha: ``None`` for the hull greedy (default, near-optimal); a number for Routoo's
            ``quality / cost**alpha`` selector.

    Returns:
        ``(choice, allocation)``: the column per row and what it achieves.

    Raises:
        InvalidConstraintsError: a negative or non-finite budget, or a negative alpha.
        NoEligibleModelError: some row has no eligible column.
        BudgetExceededError: the cheapest eligible assignment alone exceeds the budget.
    """
    if budget_usd is None or not math.isfinite(float(budget_usd)) or budget_usd < 0:
        raise InvalidConstraintsError(f"budget_usd must be a finite number >= 0, got {budget_usd!r}.")
    if alpha is not None and (not math.isfinite(float(alpha)) or alpha < 0):
        raise InvalidConstraintsError(f"alpha must be a finite number >= 0 (or None), got {alpha!r}.")
    q = np.asarray(quality, dtype=np.float64)
    c = np.asarray(cost, dtype=np.float64)
    elig = np.asarray(eligible, dtype=bool) & np.isfinite(q) & np.isfinite(c)
    n = q.shape[0]
    if not elig.any(axis=1).all():
        raise NoEligibleModelError(
            f"{int((~elig.any(axis=1)).sum())} prompt(s) have no eligible model; relax the constraints."
        )
    budget = float(budget_usd)
    start = np.empty(n, dtype=np.int64)
    steps: list[list[np.ndarray]] = [[], [], [], [], [], []]
    for s in range(0, n, _BLOCK):
        sl = slice(s, s + _BLOCK)
        start[sl] = _base(q[sl], c[sl], elig[sl])
        part = (_hull_steps(q[sl], c[sl], elig[sl], start[sl]) if alpha is None
                else _routoo_steps(q[sl], c[sl], elig[sl], start[sl], float(alpha)))
        part[0] = part[0] + s
        for acc, x in zip(steps, part):
            acc.append(x)
    rows, to, dq, dc, k, eff = (np.concatenate(x) for x in steps)
    r = np.arange(n)
    base_cost = float(c[r, start].sum())
    if base_cost > budget * (1 + _REL) + 1e-15:
        raise BudgetExceededError(_min_budget_message(base_cost, budget, n))
    choice = start.copy()
    limit = budget * (1 - _REL)
    # Greedy prefix in order of marginal quality per dollar (within a row: hull order).
    order = np.lexsort((k, -eff))
    rows, to, dq, dc, k = rows[order], to[order], dq[order], dc[order], k[order]
    cum = base_cost + np.cumsum(dc)
    n_take = int(np.searchsorted(cum, limit, side="right"))
    taken = np.zeros(rows.size, dtype=bool)
    taken[:n_take] = True
    spent = base_cost + (float(dc[:n_take].sum()) if n_take else 0.0)
    bound: float | None = None
    if alpha is None:  # the LP relaxation's optimum: the prefix plus a fraction of the next hull step
        bound = float(q[r, start].sum() + dq[:n_take].sum())
        if n_take < rows.size:
            bound += float(dq[n_take]) * max(0.0, budget - spent) / float(dc[n_take])
    # Fill: spend the remainder on the best next steps that still fit (repeat while any fits).
    for _ in range(64):
        done = np.bincount(rows[taken], minlength=n)
        cand = np.flatnonzero(~taken & (k == done[rows]) & (dc <= limit - spent))
        if cand.size == 0:
            break
        # cand is in efficiency order and its first step fits, so this prefix is never empty.
        fit = cand[np.cumsum(dc[cand]) <= limit - spent]
        taken[fit] = True
        spent += float(dc[fit].sum())
    # A row ends at its last taken step (steps of a row are consecutive from k = 0).
    end_rows, end_to = _last_per_row(rows[taken], k[taken], to[taken])
    choice[end_rows] = end_to
    top = start.copy()
    last_rows, last_to = _last_per_row(rows, k, to)
    top[last_rows] = last_to
    total_cost = float(c[r, choice].sum())
    allocation = BudgetAllocation(
        budget_usd=budget, total_cost_usd=total_cost, total_quality=float(q[r, choice].sum()),
        upper_bound=None if bound is None else max(bound, float(q[r, choice].sum())), min_budget_usd=base_cost,
        max_useful_usd=float(c[r, top].sum()), n_prompts=n,
        method="mckp-greedy" if alpha is None else f"routoo(alpha={float(alpha):g})",
    )
    return choice, allocation


def _last_per_row(rows: np.ndarray, k: np.ndarray, to: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row with steps, the target of its step with the largest ``k``."""
    if rows.size == 0:
        return rows, to
    o = np.lexsort((k, rows))
    rs, ts = rows[o], to[o]
    end = np.r_[rs[1:] != rs[:-1], True]
    return rs[end], ts[end]


def hard_eligible(part: RouteArrays) -> np.ndarray:
    """Hard-eligible pairs: code 0, or excluded only by the soft task/domain filters."""
    return (part.codes == Exclusion.OK) | (part.codes == Exclusion.TASK) | (part.codes == Exclusion.DOMAIN)


class BudgetedBatch(BatchDecisions):
    """:class:`BatchDecisions` whose models were chosen under one total budget.

    Attributes:
        allocation: the :class:`BudgetAllocation` (total predicted cost and quality, bound, minimum).
    """

    def __init__(self, parts: list[RouteArrays], materialise: Callable[..., RoutingDecision],
                 allocation: BudgetAllocation) -> None:
        super().__init__(parts, self._explained)
        self._inner = materialise
        self.allocation = allocation

    @property
    def total_cost_usd(self) -> float:
        """Predicted total cost of the batch (<= the budget)."""
        return self.allocation.total_cost_usd

    def _explained(self, part: RouteArrays, i: int, decision_id: str) -> RoutingDecision:
        d = self._inner(part, i, decision_id)
        j = int(part.winner[i])
        q = np.where(hard_eligible(part)[i], part.quality[i], -np.inf)
        b = int(q.argmax())
        a = self.allocation
        extra = "" if b == j else (
            f"; the best predicted model here, {part.names[b]} ({float(part.quality[i, b]):.2f} at "
            f"${float(part.cost[i, b]):.2g}), was worth less per dollar than upgrades elsewhere"
        )
        reason = (
            f"Chosen by the batch budget ({a.method}, ${a.budget_usd:.4g} for {a.n_prompts} prompts): "
            f"{part.names[j]} at predicted quality {float(part.quality[i, j]):.2f} for "
            f"${float(part.cost[i, j]):.2g}{extra}."
        )
        return d.model_copy(update={"reason": reason})


def allocate_batch(parts: list[RouteArrays], materialise: Callable[..., RoutingDecision],
                   budget_usd: float, *, alpha: float | None = None) -> BudgetedBatch:
    """Re-choose the winners of routed chunks under one total budget (used by ``decide_batch``)."""
    quality = np.concatenate([p.quality for p in parts])
    cost = np.concatenate([p.cost for p in parts])
    elig = np.concatenate([hard_eligible(p) for p in parts])
    choice, allocation = allocate(quality, cost, elig, budget_usd, alpha=alpha)
    s = 0
    for p in parts:
        p.winner = choice[s : s + len(p)].astype(p.winner.dtype, copy=False)
        s += len(p)
    return BudgetedBatch(parts, materialise, allocation)


class BatchModelChoice(BaseModel):
    """Batch mode's answer: one model for a whole batch, chosen on a sample.

    Attributes:
        model: the model with the best mean preference score over the sampled prompts.
        agreement: share of sampled prompts whose own per-prompt routing chose ``model`` (how much
            one model for all costs: 1.0 means per-call routing would have agreed everywhere).
        shares: per-prompt winners over the sample, model -> share.
        mean_scores: model -> mean preference score over the sample (eligible for every sampled
            prompt), best first.
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
    router: Router,
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
    if not (isinstance(sample, (int, float)) and 0 < sample <= 1):
        raise InvalidInputError(f"sample must be a fraction in (0, 1], got {sample!r}.")
    size = min(n, max(int(min_sample), math.ceil(sample * n)))
    idx = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
    res = router.decide_batch(
        [texts[int(i)] for i in idx], preferences=preferences, constraints=constraints,
        candidates=candidates, embeddings=None if embeddings is None else np.asarray(embeddings)[idx],
        explore=False,
    )
    names = res.parts[0].names
    total = np.concatenate([p.total for p in res.parts]).astype(np.float64)
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


def _unfit_for_batch(router: Router, texts: Sequence[Any], parts: list[RouteArrays], names: list[str],
                     ranked: list[int], constraints: Any) -> dict[str, int]:
    """Models (of ``ranked``) that some prompt of the whole batch would not fit, with the count."""
    from .prompts import to_routable
    from .types import Constraints

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
