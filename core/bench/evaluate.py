"""``optiroute bench``: fit a router on a data set's train split and measure it on the test split.

One run on any directory in the documented format (``prompts.csv[.gz]``, ``outcomes.csv[.gz]``,
``prices.csv``):

1. embed every prompt once (the caller's ``embed`` function, else the default embedder in batches,
   cached under ``cache_dir`` as npz when given);
2. fit :meth:`Router.fit` on the train split (the cached vectors are served to it, so nothing is
   embedded twice) with ``predictor=`` (default ``auto``: chosen by k-fold cross-validation on train,
   with the never-worse-than-one-model guard measured the same way);
3. sweep the router's accuracy/cost weight on the test split with ``decide_batch(embeddings=...)``,
   and do the same for a router fitted with every other predictor kind (``compare``), so each kind
   is reported as its own method in the same run;
4. measure the baselines (:mod:`optiroute.metrics.baselines`), the metrics (:mod:`optiroute.metrics.curves`),
   routing against not routing on test (:func:`guard_check`) and the decision overhead, and return a
   :class:`BenchResult` that :mod:`optiroute.bench.report` writes out.

Realised quality and cost come from the test outcomes (cost = the outcome's ``cost_usd``, else
``prices.csv`` with characters / 4 tokens). A missing cell counts as unknown: that prompt is left out
of the operating point's mean, and the number left out is reported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from optiroute.analysis.embedding import get_default_embedder
from optiroute.analysis.shared_text import SharedText
from optiroute.bench.embed_cache import LookupEmbedder, cached_encode
from optiroute.bench.overhead import Overhead, measure_overhead
from optiroute.bench.verdict import Verdict, bootstrap_verdict
from optiroute.errors import DataFormatError, InvalidInputError
from optiroute.fit.datasets import fill_costs, load_outcomes, load_prices, load_prompts
from optiroute.fit.training import outcome_matrices
from optiroute.metrics import baselines as bl
from optiroute.metrics import curves as metrics
from optiroute.quality.base import KINDS, TrainData, predictor_class
from optiroute.router.router import Router

__all__ = ["COST_WEIGHTS", "NOISE", "BenchResult", "GuardCheck", "GuardRow", "guard_check", "run_bench"]

log = logging.getLogger(__name__)

#: Router sweep: preferences ``{"accuracy": 1 - w, "cost": w}`` for each cost weight ``w``; denser
#: between 0.1 and 0.5, where the routers trade most of their quality for cost.
COST_WEIGHTS: tuple[float, ...] = (0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2,
                                   0.225, 0.25, 0.275, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: Strong-call fractions of the RouteLLM threshold protocol (APGR / CPT).
PAIR_FRACTIONS: tuple[float, ...] = tuple(round(f, 2) for f in np.linspace(0, 1, 21))
#: Mixing rates of the random best/cheapest baseline.
MIX_RATES: tuple[float, ...] = tuple(round(f, 1) for f in np.linspace(0, 1, 11))

EmbedFn = Callable[[list[str], list[str]], np.ndarray]


class OperatingPoint(BaseModel):
    """One point of the router's sweep, realised on the test split."""

    point: int
    cost_weight: float
    mean_cost_usd: float
    mean_score: float
    left_out: int = Field(description="test prompts whose chosen model has no outcome (missing cell)")


class MethodSummary(BaseModel):
    """Curve metrics of one method (router or baseline) against the best single model."""

    method: str
    n_points: int
    aiq: float
    quality_at_25: float = Field(description="best measured quality at <= 25 % of the best single model's cost")
    quality_at_50: float
    match_cost_fraction: float | None = Field(description="hull cost / best single cost to match its quality")


class PairRow(BaseModel):
    """APGR and CPT of one method on the strong/weak pair."""

    method: str
    apgr: float
    cpt50: float | None
    cpt80: float | None


class PairSummary(BaseModel):
    """The RouteLLM view: routing between one strong and one weak model."""

    strong: str
    weak: str
    strong_quality: float
    weak_quality: float
    rows: list[PairRow]
    curves: dict[str, list[tuple[float, float]]]


class GuardRow(BaseModel):
    """One operating point of the never-worse-than-one-model check, on the test split."""

    cost_weight: float
    router_score: float
    router_cost_usd: float
    single: str = Field(description="the best single model costing no more on test (w = 0: at any cost)")
    single_score: float
    single_cost_usd: float
    gain: float = Field(description="router_score - single_score on test")
    guard_single: str | None = Field(description="the model the guard (measured on train) sends this point to, "
                                                 "or None where it routes")


class GuardCheck(BaseModel):
    """Does routing beat not routing on test? The router's AIQ against the single models' own hull,
    and per operating point against the best single model at no higher cost."""

    router_aiq: float
    single_hull_aiq: float
    margin: float = Field(description="router_aiq - single_hull_aiq")
    never_worse: bool = Field(description="margin >= -NOISE (AIQ noise allowance)")
    rows: list[GuardRow]
    guard_on_train: list[dict[str, Any]] = Field(
        default_factory=list, description="the guard's own k-fold CV measurements on train (router.guard)")


#: AIQ difference treated as noise by the never-worse check.
NOISE = 0.003


class BenchResult(BaseModel):
    """Everything one bench run measured (what ``report.md`` and ``curve.csv`` are written from)."""

    data: str
    n_train: int
    n_test: int
    models: list[str]
    predictor: str
    best_single: str
    cheapest: str
    c_lo: float
    c_hi: float
    singles: dict[str, tuple[float, float]] = Field(description="model -> (mean_score, mean_cost_usd)")
    oracle: tuple[float, float]
    router: list[OperatingPoint]
    baselines: dict[str, list[tuple[float, float]]] = Field(description="name -> [(cost, score)]")
    predictors: dict[str, list[tuple[float, float]]] = Field(
        default_factory=dict, description="predictor kind -> its router's [(cost, score)] sweep")
    summaries: list[MethodSummary]
    pair: PairSummary | None
    overhead: Overhead | None
    missing_cells: int
    notes: list[str] = []
    guard: GuardCheck | None = Field(default=None, description="routing against not routing, on test")
    verdict: Verdict | None = Field(default=None, description="the bottom line, with bootstrap intervals")


def _load(data: Path, pool: Sequence[str] | None) -> tuple[Any, Any, Any, list[str]]:
    """Prompts, outcomes (costs filled) and prices of a data directory, restricted to ``pool``."""
    p = load_prompts(data)
    o = load_outcomes(data)
    prices = load_prices(data) if any((data / n).exists() for n in ("prices.csv", "prices.csv.gz")) else None
    splits = set(p["split"])
    if not {"train", "test"} <= splits:
        raise DataFormatError(
            f"bench needs prompts with split 'train' and 'test' in {str(data)!r} (found {sorted(splits)}); "
            "add a split column, e.g. a stratified 70/30 split by task."
        )
    models = sorted(o["model"].unique().tolist())
    if pool:
        unknown = [m for m in pool if m not in models]
        if unknown:
            raise InvalidInputError(
                f"--pool names {unknown} have no outcomes in {str(data)!r}; available: {', '.join(models)}."
            )
        models = list(dict.fromkeys(pool))
        o = o[o["model"].isin(models)].reset_index(drop=True)
    if len(models) < 2:
        raise InvalidInputError("bench needs at least two models to route between; widen --pool.")
    o = fill_costs(o, p, prices)
    no_cost = sorted(o.loc[o["cost_usd"].isna(), "model"].unique().tolist())
    if no_cost:
        raise DataFormatError(
            f"No cost for model(s) {no_cost}: their outcomes have no cost_usd and prices.csv has no row "
            "for them; add them to prices.csv (model, input_usd_per_mtok, output_usd_per_mtok, source)."
        )
    return p, o, prices, models


def _fit(train_p: Any, o: Any, prices: Any, models: list[str], embedder: LookupEmbedder,
         predictor: str, shared: SharedText | None, *, guard: bool = True) -> tuple[Any, str]:
    """Fit the router on train only; returns it and a description of its quality predictor.
    ``guard=False`` fits the predictor alone (the compared kinds: what each kind does by itself).
    ``shared``: the shared text learned from train (``None``: prompts embedded as given)."""
    router = Router.fit(train_p, o, prices, embedder=embedder, models=models, predictor=predictor, guard=guard,
                        strip_shared=shared is not None, shared_text=shared)
    used = _kind(router)
    selection = getattr(router.predictor, "selection", None) or {}
    if selection.get("requested") == "auto":
        table = selection.get("validation_aiq")
        if isinstance(table, dict):
            table = ", ".join(f"{k} {float(v):.3f}" for k, v in table.items())
            used = (f"auto -> {used} ({selection.get('criterion', 'validation AIQ')} over "
                    f"{selection.get('n_validation')} train prompts: {table})")
        else:
            used = f"auto -> {used} ({selection.get('note', '')})"
    return router, used


def _kind(router: Any) -> str:
    return str(getattr(router.predictor, "kind", "") or "knn")


def _sweep(router: Any, texts: list[str], emb: np.ndarray, models: list[str], col: dict[str, int],
           te_s: np.ndarray, te_c: np.ndarray, cost_weights: Sequence[float], progress: Any,
           label: str) -> tuple[list[OperatingPoint], list[np.ndarray]]:
    """The router's operating points over ``cost_weights``, realised on the test outcomes."""
    task = progress.add_task(label, total=len(cost_weights)) if progress else None
    points, decisions = [], []
    for i, w in enumerate(cost_weights):
        prefs = {"accuracy": 1 - w, "cost": w} if w < 1 else {"cost": 1.0}
        res = router.decide_batch(texts, preferences=prefs, candidates=models, embeddings=emb)
        choice = np.array([col[n] for n in res.model_names])
        q, c, left = bl.realise(choice, te_s, te_c)
        points.append(OperatingPoint(point=i, cost_weight=float(w), mean_cost_usd=c, mean_score=q, left_out=left))
        decisions.append(choice)
        if progress:
            progress.advance(task)
    return points, decisions


def run_bench(
    data: str | Path,
    *,
    pool: Sequence[str] | None = None,
    predictor: str = "auto",
    compare: Sequence[str] | None = None,
    pair: tuple[str, str] | None = None,
    embed: EmbedFn | None = None,
    cache_dir: Path | None = None,
    cost_weights: Sequence[float] = COST_WEIGHTS,
    overhead_n: int = 256,
    progress: Any = None,
    strip_shared: bool = True,
) -> tuple[BenchResult, np.ndarray, list[str]]:
    """Fit on train, evaluate on test, sweep, run the baselines and measure the metrics.

    Args:
        data: directory in the documented format.
        pool: model names to route among (default: every model with outcomes).
        predictor: passed to ``Router.fit(predictor=...)``: a kind or ``auto`` (validation AIQ on
            a split of train).
        compare: predictor kinds to fit and sweep beside it, each reported as a method
            (default: every kind the data supports; ``()``: none).
        pair: ``(strong, weak)`` for APGR/CPT (default: best single model and cheapest).
        embed: ``embed(prompt_ids, texts) -> (n, dim)`` unit vectors matching the router's embedder
            (the repo's benchmarks pass their shared cache); default: the router's embedder. The
            texts it gets are the ones the router embeds: shared text already removed.
        cache_dir: where the default embedding path caches vectors (``None``: no cache).
        cost_weights: the router sweep's cost weights.
        overhead_n: prompts for the decision-overhead timing (0 skips it).
        progress: a ``rich.progress.Progress`` to report on (optional).
        strip_shared: learn the text more than half of the train prompts share and embed every
            prompt, train and test, without it (``Router.fit(strip_shared=...)``); ``False``: embed
            prompts as given.

    Returns:
        ``(result, decisions, test_prompt_ids)``; ``decisions`` is (points, n_test) model indices
        into ``result.models``, one row per operating point.
    """
    kinds = [k for k in KINDS if k != "stack"] if compare is None else list(compare)
    for k in [predictor, *kinds]:  # a typo fails before any embedding
        if k != "auto":
            predictor_class(k)
    data = Path(data)
    p, o, prices, models = _load(data, pool)
    texts = p["text"].tolist()
    is_train = (p["split"] == "train").to_numpy()
    is_test = (p["split"] == "test").to_numpy()
    # Learned once from train and applied to train and test alike, so both embed what the router will.
    shared = SharedText.learn(p.loc[is_train, "text"].tolist()) if strip_shared else None
    routed = shared.varying_all(texts) if shared is not None else texts
    base = get_default_embedder()
    t0 = time.perf_counter()
    if embed is not None:
        emb = np.asarray(embed(p["prompt_id"].tolist(), routed), dtype=np.float32)
    else:  # the cache keys on the embedded (stripped) text, so a changed template never reuses a vector
        emb = cached_encode(base, routed, cache_dir, progress=progress)
    log.info("bench: %d prompts embedded in %.1fs", len(texts), time.perf_counter() - t0)
    train_p, test_p = p[is_train].reset_index(drop=True), p[is_test].reset_index(drop=True)
    emb_train, emb_test = emb[is_train], emb[is_test]

    if compare is None:  # by default every kind the data supports (``task`` needs task labels)
        labels = TrainData(emb_train, np.zeros((len(train_p), 0)), [], labels=train_p["task"].astype(str).tolist())
        kinds = [k for k in kinds if predictor_class(k).unavailable(labels) is None]
    lookup = LookupEmbedder(base, routed, emb)
    router, used = _fit(train_p, o, prices, models, lookup, predictor, shared)
    routers = {_kind(router): router} if router.guard is None else {}
    for k in kinds:  # the chosen kind's refit on all train is the router itself (same seed)
        if k not in routers:
            routers[k] = _fit(train_p, o, prices, models, lookup, k, shared, guard=False)[0]
    lookup.clear()
    card = {m: router.registry.resolve(m).name for m in models}
    # Decisions name models as given (the data's names); card names are kept as keys too.
    col = {**{card[m]: j for j, m in enumerate(models)}, **{m: j for j, m in enumerate(models)}}

    tr_s, tr_c = outcome_matrices(train_p["prompt_id"].tolist(), models, o)
    te_s, te_c = outcome_matrices(test_p["prompt_id"].tolist(), models, o)
    keep = ~np.isnan(te_s).all(axis=1)  # test prompts nobody answered carry no information
    test_p, emb_test, te_s, te_c = test_p[keep].reset_index(drop=True), emb_test[keep], te_s[keep], te_c[keep]
    missing = int(np.isnan(te_s).sum())

    singles = bl.single_models(te_s, te_c)
    single = {m: singles[j] for j, m in enumerate(models)}
    best = max(models, key=lambda m: (single[m][0], -single[m][1]))
    cheapest = min(models, key=lambda m: (single[m][1], -single[m][0]))
    c_lo = min(c for _, c in singles)
    c_hi = max(c for _, c in singles)
    b_q, b_c = single[best]

    # Router sweep, then one sweep per compared predictor kind (the router's own kind is reused).
    test_texts = test_p["text"].tolist()
    sweep = (test_texts, emb_test, models, col, te_s, te_c, cost_weights, progress)
    points, decisions = _sweep(router, *sweep, "router sweep")
    pred_curves: dict[str, list[tuple[float, float]]] = {}
    for k, r_k in routers.items():
        if k not in kinds:
            continue
        pts = points if r_k is router and router.guard is None else _sweep(r_k, *sweep, f"predictor {k} sweep")[0]
        pred_curves[k] = [(pt.mean_cost_usd, pt.mean_score) for pt in pts]

    # Baselines.
    base_curves: dict[str, list[tuple[float, float]]] = {
        "single models": [(c, q) for q, c in singles],
        f"random mix ({best} / {cheapest})": [
            (c, q) for c, q in bl.random_mix(b_q, b_c, single[cheapest][0], single[cheapest][1], MIX_RATES)
        ],
    }
    with bl._quiet():
        cost_est = np.nanmean(tr_c, axis=0)
    task_pred = bl.per_task_table(train_p["task"].tolist(), tr_s, test_p["task"].tolist())
    knn_pred = bl.knn_predictions(emb_train, tr_s, emb_test)
    for name, pred in (("per-task best (given task label)", task_pred),
                       ("plain kNN (MiniLM, k=100, no cards)", knn_pred)):
        base_curves[name] = bl.sweep_curve(pred, cost_est, te_s, te_c)
    oq, oc, _ = bl.realise(bl.oracle_choice(te_s, te_c), te_s, te_c)

    router_pts = [(pt.mean_cost_usd, pt.mean_score) for pt in points]
    summaries = [_summary("router", router_pts, c_lo, c_hi, b_q, b_c)]
    summaries += [_summary(f"predictor {k}", pts, c_lo, c_hi, b_q, b_c) for k, pts in pred_curves.items()]
    summaries += [_summary(n, pts, c_lo, c_hi, b_q, b_c) for n, pts in base_curves.items()]

    # Each router's quality matrix alone: the pair's gap threshold, and a linear cost sweep like the
    # baselines' (separates what the predictor knows from what the scorer and policy make of it).
    quals = {"router": _quality(router, test_texts, emb_test, models, card)}
    lin = []
    for k in pred_curves:
        r_k = routers[k]
        quals[f"predictor {k}"] = quals["router"] if r_k is router else _quality(
            r_k, test_texts, emb_test, models, card)
        lin.append(_summary(f"predictor {k}: quality matrix, linear cost sweep (no scorer/policy)",
                            bl.sweep_curve(quals[f"predictor {k}"], cost_est, te_s, te_c),
                            c_lo, c_hi, b_q, b_c))
    summaries[1 + len(pred_curves) : 1 + len(pred_curves)] = lin
    quals["plain kNN (MiniLM, k=100, no cards)"] = knn_pred
    pair_summary = _pair(quals, models, te_s, single, pair or (best, cheapest))
    overhead = measure_overhead(router, test_texts, overhead_n, models) if overhead_n > 0 else None
    notes = []
    if (~keep).any():
        notes.append(f"{int((~keep).sum())} test prompts without any outcome were dropped.")
    if shared is not None and not shared.empty:
        notes.append(f"Embedded without the text the train prompts share: {shared.summary()}.")
    result = BenchResult(
        data=str(data), n_train=len(train_p), n_test=len(test_p), models=models, predictor=used,
        best_single=best, cheapest=cheapest, c_lo=c_lo, c_hi=c_hi, singles=single, oracle=(oq, oc),
        router=points, baselines=base_curves, predictors=pred_curves, summaries=summaries, pair=pair_summary,
        overhead=overhead, missing_cells=missing, notes=notes,
        guard=guard_check(router, points, single, c_lo, c_hi),
        verdict=bootstrap_verdict(np.stack(decisions), te_s, te_c, models, best, c_lo, c_hi),
    )
    return result, np.stack(decisions), test_p["prompt_id"].tolist()


def guard_check(router: Any, points: Sequence[OperatingPoint], single: dict[str, tuple[float, float]],
                c_lo: float, c_hi: float) -> GuardCheck:
    """Routing against not routing on test: AIQ against the single models' hull, and each operating
    point against the best single model that costs no more (at cost weight 0: the best at any cost)."""
    guard = getattr(router, "guard", None)
    rows = []
    for pt in points:
        allowed = {m: qc for m, qc in single.items() if pt.cost_weight == 0 or qc[1] <= pt.mean_cost_usd * (1 + 1e-9)}
        if not allowed:
            continue
        best = max(allowed, key=lambda m: (allowed[m][0], -allowed[m][1]))
        w = pt.cost_weight
        gp = guard.point_for({"accuracy": 1 - w, "cost": w}) if guard is not None else None
        rows.append(GuardRow(
            cost_weight=w, router_score=pt.mean_score, router_cost_usd=pt.mean_cost_usd, single=best,
            single_score=allowed[best][0], single_cost_usd=allowed[best][1], gain=pt.mean_score - allowed[best][0],
            guard_single=gp.single if gp is not None and gp.use_single else None,
        ))
    r_aiq = metrics.aiq([(pt.mean_cost_usd, pt.mean_score) for pt in points], c_lo, c_hi)
    h_aiq = metrics.aiq([(c, q) for q, c in single.values()], c_lo, c_hi)
    return GuardCheck(router_aiq=r_aiq, single_hull_aiq=h_aiq, margin=r_aiq - h_aiq, never_worse=r_aiq >= h_aiq - NOISE,
                      rows=rows, guard_on_train=guard.summary() if guard is not None else [])


def _summary(name: str, pts: list[tuple[float, float]], c_lo: float, c_hi: float,
             b_q: float, b_c: float) -> MethodSummary:
    match = metrics.cost_to_match(pts, b_q - 1e-9)
    return MethodSummary(
        method=name, n_points=len(pts), aiq=metrics.aiq(pts, c_lo, c_hi),
        quality_at_25=metrics.quality_at_cost(pts, 0.25 * b_c),
        quality_at_50=metrics.quality_at_cost(pts, 0.5 * b_c),
        match_cost_fraction=None if match is None else match / b_c,
    )


def _quality(router: Any, texts: list[str], emb: np.ndarray, models: list[str],
             card: dict[str, str]) -> np.ndarray:
    """The router's predicted quality on the test prompts, (n_test, n_models) in ``models`` order."""
    res = router.decide_batch(texts, preferences="quality-first", candidates=models, embeddings=emb)
    names = res.parts[0].names
    quality = np.concatenate([part.quality for part in res.parts])
    return quality[:, [names.index(m) if m in names else names.index(card[m]) for m in models]]


def _pair(quals: dict[str, np.ndarray], models: list[str], te_s: np.ndarray,
          single: dict[str, tuple[float, float]], pair: tuple[str, str]) -> PairSummary | None:
    """APGR/CPT of each method (threshold on its predicted strong-weak gap) and the random mix."""
    strong, weak = pair
    for m in pair:
        if m not in models:
            raise InvalidInputError(f"--pair model {m!r} is not in the pool; choose among {', '.join(models)}.")
    qs, qw = single[strong][0], single[weak][0]
    if strong == weak or qs == qw:
        return None
    js, jw = models.index(strong), models.index(weak)
    curves = {n: bl.threshold_pair_curve(q[:, js] - q[:, jw], te_s, js, jw, PAIR_FRACTIONS)
              for n, q in quals.items()}
    curves["random mix"] = [(f, f * qs + (1 - f) * qw) for f in PAIR_FRACTIONS]
    rows = [
        PairRow(method=n, apgr=metrics.apgr(c, qw, qs), cpt50=metrics.cpt(c, qw, qs, 0.5),
                cpt80=metrics.cpt(c, qw, qs, 0.8))
        for n, c in curves.items()
    ]
    return PairSummary(strong=strong, weak=weak, strong_quality=qs, weak_quality=qw, rows=rows, curves=curves)
