"""The best assignment of a whole batch under one total budget (batch mode lives in
:mod:`optiroute.router.batch_mode`).

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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel

from optiroute.errors import BudgetExceededError, InvalidConstraintsError, NoEligibleModelError
from optiroute.routing.batch import BatchDecisions, RouteArrays
from optiroute.routing.policy import Exclusion

if TYPE_CHECKING:
    from optiroute.schema.decision import RoutingDecision

__all__ = ["BudgetAllocation", "BudgetedBatch", "allocate", "allocate_batch", "hard_eligible"]

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
    # On the log scale: cost**alpha underflows (and the ratio overflows) for large alpha otherwise.
    with np.errstate(divide="ignore"):
        ratio = np.log(np.maximum(q, 0.0)) - alpha * np.log(np.maximum(c, 1e-12))
    ratio = np.where(elig, ratio, -np.inf)
    best = ratio.max(axis=1, keepdims=True)
    target = np.where(elig & (ratio >= best - 1e-9), c, np.inf).argmin(axis=1)
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
        for acc, x in zip(steps, part, strict=True):
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
