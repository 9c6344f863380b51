"""Onboarding a new model cheaply: evaluate it only on K-Means representatives of the store.

A new candidate (a fresh API model, a local fine-tune) has no per-prompt outcomes, so routing knows
it only from its card. Running it on every stored prompt costs as much as the original evaluation;
the Wisconsin seed's answer is to cluster the stored prompts and evaluate the model only on one
*representative* per cluster (the stored prompt nearest each K-Means centre): a few percent of the
prompts cover every region of the embedding space.

:func:`onboard` does that end to end on a router: K-Means (scikit-learn, seeded) over the store's
prompt embeddings, the candidate's answers on the representatives (``answer_fn``), a score per
answer, and a new outcome column in the store (NaN elsewhere). Scores come from, in order:

- a caller's ``scorer``;
- a reference answer (``references``): for multiple choice (a reference that is one letter A-J, as in
  MMLU-Pro) the answer's letter is extracted and compared, otherwise a normalised exact match;
- an LLM judge that is itself a routed candidate: the router picks the judge among its own models
  under ``quality-first`` (never the model being onboarded), the judge grades 0..10 and the grade is
  scaled to 0..1; an unparseable grade leaves the cell unknown.

Filling (``impute=True``, default): :func:`optiroute.onboard.impute.impute_column` fills unmeasured
cells from the stored models the new one answers like; the card's ``sources["outcomes"]`` says so.

How the predictors use the new column:

- ``knn`` (the default kind) reads the store directly: a test prompt near a representative inherits
  its outcome, blended with the card prior by support. With ``propagate > 0`` each representative's
  residual (its score minus the other models' mean on it) is also written, times ``propagate``, onto
  the members of its cluster (relative to each member's own mean), so every prompt of the cluster
  carries evidence; ``benchmarks/onboarding.py`` measures both (see :data:`DEFAULT_PROPAGATE`).
- learned kinds (``routoo``, ``mlp``) have no head for the new model, so they are refitted on the
  updated store (their masked loss ignores the NaN cells); ``refit=False`` keeps them as they are and
  the new model is then routed from its card only.

Cards: on data like MMLU-Pro the kNN predictor's per-domain card prior carries most of the routing
signal (per-prompt residuals are shrunk by their small neighbour support), so outcomes that only
entered the store would leave a cold-start card's level wrong everywhere the representatives do not
reach. Onboarding therefore also estimates the model's accuracy over the store, overall and per
domain, with its standard error (difficulty-adjusted: relative to the other models on the same
prompts; :mod:`optiroute.onboard.level`), and moves a card whose accuracy is imputed towards it; a
model without a card gets one built from these estimates (prices as given). A card with sourced
accuracy is left alone.

Running onboarding again on a model the store already has adds outcomes instead of replacing them:
its measured cells are kept (cells that onboarding filled are marked in the store and dropped), the
new representatives are drawn from the prompts it has no measurement for, and the estimate, the
card and the fill are redone from everything measured. That is how a caller whose
``accuracy_se`` is too wide for the decision at hand buys more precision.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field

from optiroute.errors import InvalidInputError
from optiroute.fit.training import card_from_data
from optiroute.onboard.impute import ImputeResult, impute_column
from optiroute.onboard.level import calibrate_card, estimate_level
from optiroute.onboard.scoring import JudgeFn, _judge, choice_letter, parse_grade, reference_score
from optiroute.quality.base import TrainData, match_columns, predictor_class
from optiroute.schema.numbers import MAX_COUNT, MAX_PRICE_PER_MTOK, integer, real

if TYPE_CHECKING:
    from optiroute.catalog.registry import ModelCard
    from optiroute.router.router import Router

__all__ = ["DEFAULT_FRAC", "DEFAULT_PROPAGATE", "OnboardResult", "Representatives", "calibrate_card", "choice_letter",
           "onboard", "parse_grade", "reference_score", "representatives"]

log = logging.getLogger(__name__)

#: Share of the stored prompts evaluated when ``k`` is not given (the Wisconsin seed's budget).
DEFAULT_FRAC = 0.02
#: Weight of a representative's residual on its cluster members (0 = representatives only);
#: chosen on MMLU-Pro by ``benchmarks/onboarding.py`` (see benchmarks/results/onboarding.md).
DEFAULT_PROPAGATE = 0.0

AnswerFn = Callable[[str], str]
Scorer = Callable[[str, str, str], "float | None"]


class Representatives(BaseModel):
    """K-Means clusters of stored prompts: row of each cluster's representative and each row's cluster."""

    model_config = {"arbitrary_types_allowed": True}

    rows: list[int] = Field(description="store row of the prompt nearest each centre, one per cluster")
    labels: list[int] = Field(description="cluster of every candidate row (aligned with ``candidates``)")
    candidates: list[int] = Field(description="store rows that were clustered")


class OnboardResult(BaseModel):
    """What :func:`onboard` did."""

    model: str
    k: int
    n_store: int
    prompt_ids: list[str]
    scores: list[float | None] = Field(description="score per representative (None: could not be scored)")
    sources: list[str] = Field(description="per representative: 'scorer', 'reference' or 'judge:<model>'")
    mean_score: float | None
    accuracy_estimate: float = Field(description="difficulty-adjusted accuracy over the store, from every "
                                                 "measured outcome (earlier runs' included)")
    accuracy_se: float = Field(description="standard error of ``accuracy_estimate``; run onboard again to shrink it")
    measured_before: int = Field(0, description="measured outcomes the store already had for this model")
    propagated: int = Field(description="cluster members that received a propagated value")
    imputed: int = Field(0, description="cells filled from the models the new one resembles")
    imputation: ImputeResult | None = Field(None, description="how the column was filled, or why not")
    card_added: bool
    predictor: str = Field(description="what happened to the quality predictor")


def representatives(embeddings: np.ndarray, k: int, *, seed: int = 0,
                    rows: Sequence[int] | None = None) -> Representatives:
    """Seeded K-Means over ``embeddings[rows]``; per cluster, the member nearest its centre.

    Args:
        embeddings: (n, dim) unit vectors (the store's).
        k: number of clusters (capped at the number of rows).
        rows: the rows eligible (default: all), e.g. those whose text the caller has.
    """
    from sklearn.cluster import KMeans

    cand = np.arange(len(embeddings)) if rows is None else np.asarray(sorted({int(r) for r in rows}))
    if len(cand) == 0:
        raise InvalidInputError("No stored prompt to cluster: pass the texts of the router's stored prompts.")
    k = int(max(1, min(k, len(cand))))
    x = np.asarray(embeddings[cand], dtype=np.float32)
    km = KMeans(n_clusters=k, random_state=seed, n_init=3).fit(x)
    d = ((x - km.cluster_centers_[km.labels_]) ** 2).sum(axis=1)
    reps = []
    for c in range(k):
        members = np.flatnonzero(km.labels_ == c)
        if len(members):
            reps.append(int(cand[members[np.argmin(d[members])]]))
    return Representatives(rows=reps, labels=km.labels_.astype(int).tolist(), candidates=cand.tolist())


# ------------------------------------------------------------------------------------ onboarding
def onboard(
    router: Router,
    model_name: str,
    answer_fn: AnswerFn,
    *,
    prompts: Mapping[str, str],
    k: int | None = None,
    frac: float = DEFAULT_FRAC,
    references: Mapping[str, str] | None = None,
    judge_fn: JudgeFn | None = None,
    scorer: Scorer | None = None,
    card: ModelCard | None = None,
    price: tuple[float, float] | None = None,
    propagate: float = DEFAULT_PROPAGATE,
    refit: bool = True,
    seed: int = 0,
    reps: Representatives | None = None,
    calibrate: bool = True,
    impute: bool = True,
) -> OnboardResult:
    """Evaluate ``model_name`` on cluster representatives of the router's store and add the outcomes.

    Args:
        router: a router with an evaluation store (``Router.fit``/``load``/``default``); changed in place.
        model_name: the new candidate's name (also its outcome column).
        answer_fn: ``answer_fn(prompt_text) -> answer_text``, the candidate itself.
        prompts: ``prompt_id -> text`` of the stored prompts (the store keeps embeddings, not texts);
            only stored prompts found here can be representatives.
        k: representatives to evaluate (default: ``frac`` of the eligible stored prompts, at least 1;
            eligible: in ``prompts`` and not yet measured for this model).
        references: ``prompt_id -> reference answer`` where the data has one.
        judge_fn: ``judge_fn(judge_model, judge_prompt) -> text``, calls the judge the router picks.
        scorer: ``scorer(prompt_id, text, answer) -> score in 0..1 or None``; overrides the others.
        card: the new model's card, if the registry has none (default: built from these outcomes).
        price: ``(input, output)`` USD per million tokens for a built card and the outcome costs.
        propagate: weight of each representative's residual on its cluster members (0: none).
        refit: refit a learned quality predictor so it has a head for the new model.
        seed: K-Means seed.
        calibrate: set the level of a card whose accuracy is imputed (a cold-start or neutral
            card, or the one built here) from these outcomes; see :func:`calibrate_card`.
        impute: fill the rest of the new column from the stored models the new one resembles
            (:func:`optiroute.onboard.impute.impute_column`; skipped when that does not predict
            held-out representatives better than their mean).
        reps: precomputed :func:`representatives` of this store (reused across models; also lets
            a caller evaluate rows of its own choosing).

    Raises:
        InvalidInputError: no store, no eligible prompt (every one given is already measured for
            this model), or an answer that cannot be scored because
            neither a reference, a judge nor a scorer is available.
    """
    st = router.state
    index = st.index
    if index is None:
        raise InvalidInputError("This router has no evaluation store to add outcomes to; fit one with "
                                "Router.fit(prompts, outcomes) or load a saved router.")
    propagate = real(propagate, "propagate", lo=0.0, hi=1.0)
    frac = real(frac, "frac", lo=0.0, lo_open=True, hi=1.0, hint="It is the share of stored prompts evaluated.")
    k = None if k is None else integer(k, "k (representatives)", lo=1, hi=MAX_COUNT)
    seed = integer(seed, "seed", lo=0, hi=2**32 - 1)
    if price is not None:
        if not isinstance(price, (tuple, list)) or len(price) != 2:
            raise InvalidInputError("price must be (input, output) USD per million tokens.")
        price = (real(price[0], "price (input)", lo=0.0, hi=MAX_PRICE_PER_MTOK),
                 real(price[1], "price (output)", lo=0.0, hi=MAX_PRICE_PER_MTOK))
    if not isinstance(model_name, str) or not model_name.strip():
        raise InvalidInputError(f"model_name must be the new model's name, got {model_name!r}.")
    if model_name in st.registry:  # another name of a stored model onboards that column, not a second one

        j = match_columns([st.registry.resolve(model_name)], index.models)[0]
        model_name = model_name if j is None else index.models[j]
    n = len(index)
    col = np.full(n, np.nan, dtype=np.float32)
    cost = np.full(n, np.nan, dtype=np.float32)
    j = index.column(model_name)
    if j is not None:  # a second run: keep what was measured, re-estimate the rest from all of it
        keep = np.isfinite(index.scores[:, j]) & ~index.estimated[:, j]
        col[keep], cost[keep] = index.scores[keep, j], index.costs[keep, j]
    others = index.scores if j is None else np.delete(index.scores, j, axis=1)
    other_models = [m for m in index.models if m != model_name]
    before = int(np.isfinite(col).sum())
    eligible = [i for i, p in enumerate(index.prompt_ids) if p in prompts and np.isnan(col[i])]
    if reps is None and not eligible:
        raise InvalidInputError(
            f"{model_name!r} already has measured outcomes on every stored prompt given ({before} in all); "
            "there is nothing left to evaluate. Pass the texts of other stored prompts, or remove the model first.")
    index = _private_store(st)  # only now: a refused call leaves the router's store object as it was
    n_k = k if k is not None else max(1, round(frac * len(eligible)))
    if reps is None:
        reps = representatives(index.matrix, n_k, seed=seed, rows=eligible)
    missing = [index.prompt_ids[r] for r in reps.rows if index.prompt_ids[r] not in prompts]
    if missing:
        raise InvalidInputError(f"No text for stored prompt(s) {missing[:3]}; pass them in prompts.")
    known = model_name in st.registry
    the_card = st.registry.get(model_name) if known else card
    prices = price if price is not None else (
        (the_card.input_usd_per_mtok, the_card.output_usd_per_mtok) if the_card is not None else None)

    scores: list[float | None] = []
    sources: list[str] = []
    for row in reps.rows:
        pid = index.prompt_ids[row]
        text = prompts[pid]
        answer = answer_fn(text)
        s, src = _score(router, model_name, pid, text, answer, references, judge_fn, scorer)
        scores.append(s)
        sources.append(src)
        if s is not None:
            col[row] = min(max(float(s), 0.0), 1.0)
            if prices is not None:
                cost[row] = (len(text) / 4 * prices[0] + len(answer) / 4 * prices[1]) / 1e6
    got = [s for s in scores if s is not None]
    if not got:
        raise InvalidInputError(f"None of the {len(scores)} answers of {model_name!r} could be scored; "
                                "check the endpoint's answers and the judge's replies.")
    measured = np.isfinite(col)
    est = estimate_level(others, index.tasks, col, st.analyzer.domains)
    level, n_obs, by_domain = est.level, est.n, est.by_domain
    spread = _propagate(others, reps, col, propagate) if propagate > 0 else 0
    fill = ImputeResult(reason="impute=False")
    if impute:
        filled, fill = impute_column(others, index.tasks, col, other_models, seed=seed)
        col = filled.astype(np.float32)
    index.add_model(model_name, col, cost, estimated=np.isfinite(col) & ~measured)

    added = False
    if not known:
        if the_card is None:
            in_tok = np.array([len(t) / 4 for t in prompts.values()], dtype=np.float64)
            p = None if prices is None else {"input_usd_per_mtok": prices[0], "output_usd_per_mtok": prices[1],
                                             "source": "given at onboarding"}
            the_card = card_from_data(model_name, col, cost, in_tok, p)
            the_card = calibrate_card(the_card.model_copy(update={"metrics": {**the_card.metrics, "accuracy": level}}),
                                      level, n_obs, by_domain)
        elif calibrate and "accuracy" in the_card.imputed:
            the_card = calibrate_card(the_card, level, n_obs, by_domain)
        st.registry.add(the_card.model_copy(update={"name": model_name}) if the_card.name != model_name else the_card)
        added = True
    elif calibrate and _estimated_accuracy(st.registry.get(model_name)):
        st.registry.add(calibrate_card(st.registry.get(model_name), level, n_obs, by_domain), replace=True)
    if fill.filled:  # the card says which of its outcomes are estimates (saved with the router)
        c = st.registry.get(model_name)
        card_sources = {**c.sources, "outcomes": fill.provenance(n_obs)}
        st.registry.add(c.model_copy(update={"sources": card_sources}), replace=True)
    st.add_to_pool(st.registry.resolve(model_name).name)
    how = _update_predictor(router, refit, seed)
    log.info("onboarded %s on %d representatives (mean score %.3f)", model_name, len(got), float(np.mean(got)))
    return OnboardResult(
        model=model_name, k=len(reps.rows), n_store=n, prompt_ids=[index.prompt_ids[r] for r in reps.rows],
        scores=scores, sources=sources, mean_score=float(np.mean(got)), accuracy_estimate=level, propagated=spread,
        card_added=added, predictor=how, imputed=fill.filled, imputation=fill, accuracy_se=est.se,
        measured_before=before,
    )


def _estimated_accuracy(card: ModelCard) -> bool:
    """Whether the card's accuracy is an estimate onboarding may set: imputed, or set by an earlier run."""
    return "accuracy" in card.imputed or str(card.sources.get("accuracy", "")).startswith("onboarding:")


def _score(router: Router, model: str, pid: str, text: str, answer: str,
           references: Mapping[str, str] | None, judge_fn: JudgeFn | None,
           scorer: Scorer | None) -> tuple[float | None, str]:
    if scorer is not None:
        return scorer(pid, text, answer), "scorer"
    ref = None if references is None else references.get(pid)
    if ref is not None and not (isinstance(ref, float) and math.isnan(ref)) and str(ref).strip():
        return reference_score(answer, str(ref)), "reference"
    if judge_fn is not None:
        return _judge(router, model, text, answer, judge_fn)
    raise InvalidInputError(f"Prompt {pid!r} has no reference answer and no judge was given; pass "
                            "references, a judge_fn (optiroute onboard --judge-base-url) or a scorer.")


def _propagate(others: np.ndarray, reps: Representatives, col: np.ndarray, weight: float) -> int:
    """Write ``weight`` x each representative's residual onto its cluster members (in ``col``)."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        row_mean = np.nan_to_num(np.nanmean(others, axis=1), nan=0.5)
    labels = np.asarray(reps.labels)
    cand = np.asarray(reps.candidates)
    pos = {int(c): i for i, c in enumerate(cand)}
    spread = 0
    for rep in reps.rows:
        if np.isnan(col[rep]):
            continue
        members = cand[labels == labels[pos[int(rep)]]]
        members = members[members != rep]
        col[members] = np.clip(row_mean[members] + weight * (col[rep] - row_mean[rep]), 0.0, 1.0)
        spread += len(members)
    return spread


def _private_store(st: Any) -> Any:
    """Give the router its own copy of the store before adding a column: a store may be shared
    (every ``Router.default()`` in a process shares the bundled one). Embeddings and the Annoy index
    are shared (they do not change); the outcome matrices are copied."""
    new = st.index.copy_outcomes()
    st.replace_index(new)
    return new


def _update_predictor(router: Router, refit: bool, seed: int) -> str:
    """kNN reads the updated store; a learned kind is refitted on it (or left card-only)."""
    st = router.state
    kind = getattr(st.predictor, "kind", "knn") or "knn"
    if kind == "knn":
        return "knn: reads the new column from the store"
    if not refit:
        return f"{kind}: kept as fitted; the new model is routed from its card"

    index = st.index
    if index is None:  # onboard() refuses a router without a store before it gets here
        raise InvalidInputError("This router has no evaluation store to refit its predictor on.")
    refitted = predictor_class(kind).fit(TrainData(index.matrix, index.scores, list(index.models), index, seed))
    refitted.selection = getattr(st.predictor, "selection", None)
    st.replace_predictor(refitted)
    return f"{kind}: refitted on the updated store"
