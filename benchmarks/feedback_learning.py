"""Feedback changes routing: simulated feedback from real outcomes, measured on held-out prompts.

The MMLU-Pro test split (3,609 prompts, never used for fitting) is shuffled with each seed (three by
default) and cut in two halves. The *stream* half is routed one prompt at a time under a fixed
preference (``decide_batch`` of one prompt with its cached embedding, then ``batch[0]``, which records
the decision exactly as ``decide`` does without re-embedding); after each decision the router gets
feedback = the real outcome (0/1) of the model it chose (prompts whose chosen model has no outcome
are skipped). After N = 0, 100, 300, 1000 and all feedback events the router routes the *evaluation*
half, which is never fed back: mean real accuracy and cost of the chosen models under the streaming
preference, and AIQ over a short cost-weight sweep.

Starting routers (both route among the 31 MMLU-Pro models):

- ``cold``: the user's own models onboarded from a small evaluation: the registry has no card for
  them (so no per-domain accuracy), their cards come from ``Router.fit`` on a seeded sample of
  MMLU-Pro *train* prompts, whose outcomes are also the kNN store;
- ``cards``: the bundled cards (per-domain MMLU-Pro train accuracy) and no kNN store, i.e. a router
  that knows these models per domain but nothing per prompt.

Mechanisms (:mod:`optiroute.learning.feedback_memory`): ``task`` = the store's shrunk residual per
(model, task type) only (the mechanism before this benchmark); ``pooled`` = the ridge fit over task
type, domain and complexity decile shared across models, and (model, task type) and (model, domain);
``pooled+kNN`` = also the kNN memory of rated prompts (``keep_prompts=True``).
``pooled+kNN+explore`` additionally turns on the router's exploration
(``PolicyConfig(explore=--explore)``, seeded): that share of the stream goes to a uniformly random
candidate, so feedback reaches models that greedy routing never picks; the evaluation half is always
routed by score (``decide_batch(..., explore=False)``).

Embeddings come from ``.cache/emb/mmlu_pro.npz`` (``scripts/embed_cache.py``); the script waits for
it rather than embedding 12k prompts itself. Run single-threaded:
``OMP_NUM_THREADS=1 python benchmarks/feedback_learning.py``; writes
``benchmarks/results/feedback_learning.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from embed_cache import _path as cache_path  # noqa: E402
from embed_cache import load_or_embed  # noqa: E402

from optiroute import Router  # noqa: E402
from optiroute.bench.embed_cache import LookupEmbedder  # noqa: E402
from optiroute.catalog.registry import Registry  # noqa: E402
from optiroute.errors import RoutingFallbackWarning  # noqa: E402
from optiroute.fit.training import outcome_matrices  # noqa: E402
from optiroute.metrics.curves import aiq  # noqa: E402
from optiroute.routing.policy import PolicyConfig  # noqa: E402

CHECKPOINTS = (0, 100, 300, 1000)
SWEEP = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
MECHANISMS = {  # name -> (keep_prompts, FeedbackMemory groups, explore)
    "task": (False, "store", False),
    "pooled": (False, "pooled", False),
    "pooled+kNN": (True, "pooled", False),
    "pooled+kNN+explore": (True, "pooled", True),
}


class Data:
    """The MMLU-Pro prompts, outcomes and cached embeddings, split for the simulation."""

    def __init__(self, root: Path, seed: int, n_train: int) -> None:
        p = pd.read_csv(root / "mmlu_pro/prompts.csv.gz", dtype={"prompt_id": str})
        self.outcomes = pd.read_csv(root / "mmlu_pro/outcomes.csv.gz", dtype={"prompt_id": str})
        self.prices = pd.read_csv(root / "mmlu_pro/prices.csv")
        self.models = sorted(self.outcomes["model"].unique())
        emb = load_or_embed("mmlu_pro", p["prompt_id"].tolist(), p["text"].astype(str).tolist())
        self.lookup = LookupEmbedder(None, p["text"].astype(str).tolist(), emb)
        rng = np.random.default_rng(seed)
        test = np.flatnonzero((p["split"] == "test").to_numpy())
        test = test[rng.permutation(len(test))]
        half = len(test) // 2
        self.stream, self.held = self._part(p, emb, test[:half]), self._part(p, emb, test[half:])
        train = np.flatnonzero((p["split"] == "train").to_numpy())
        self.train = p.iloc[np.sort(rng.choice(train, n_train, replace=False))].reset_index(drop=True)

    def _part(self, p: pd.DataFrame, emb: np.ndarray, rows: np.ndarray) -> dict:
        part = p.iloc[rows].reset_index(drop=True)
        scores, costs = outcome_matrices(part["prompt_id"].tolist(), self.models, self.outcomes)
        return {"texts": part["text"].astype(str).tolist(), "emb": emb[rows], "scores": scores,
                "costs": costs, "domain": part["task"].tolist()}


def make_router(kind: str, data: Data, keep_prompts: bool, groups: str, explore: float = 0.0,
                seed: int = 0) -> Router:
    policy = PolicyConfig(explore=explore, explore_seed=seed + 1)
    if kind == "cards":
        router = Router(index=None, models=data.models, embedder=data.lookup, keep_prompts=keep_prompts,
                        policy=policy)
    else:
        reg = Registry.default()
        for m in data.models:
            reg.remove(m)
        o = data.outcomes[data.outcomes["prompt_id"].isin(set(data.train["prompt_id"]))]
        # Fitted as a user's router is (the never-worse-than-one-model guard included).
        router = Router.fit(data.train, o, data.prices, registry=reg, embedder=data.lookup, predictor="knn",
                            keep_prompts=keep_prompts, policy=policy)
    router.feedback_memory.groups = groups
    return router


def evaluate(router: Router, data: Data, prefs: dict, c_lo: float, c_hi: float) -> dict:
    held = data.held
    idx = np.arange(len(held["texts"]))
    out, points = {}, []
    for w in SWEEP + (None,):
        p = prefs if w is None else ({"accuracy": 1 - w, "cost": w} if w < 1 else {"cost": 1.0})
        res = router.decide_batch(held["texts"], preferences=p, candidates=data.models, embeddings=held["emb"],
                                  explore=False)
        col = np.array([data.models.index(n) for n in res.model_names])
        s, c = held["scores"][idx, col], held["costs"][idx, col]
        ok = ~np.isnan(s)
        acc, cost = float(s[ok].mean()), float(c[ok].mean())
        if w is None:
            out.update(acc=acc, cost=cost, top=pd.Series(res.model_names).value_counts().index[0],
                       top_share=float(pd.Series(res.model_names).value_counts().iloc[0] / len(col)))
        else:
            points.append((cost, acc))
    out["aiq"] = aiq(points, c_lo, c_hi)
    return out


def simulate(kind: str, mech: str, data: Data, prefs: dict, explore: float, seed: int,
             c_lo: float, c_hi: float) -> tuple[list[dict], dict]:
    keep, groups, use_explore = MECHANISMS[mech]
    router = make_router(kind, data, keep, groups, explore if use_explore else 0.0, seed)
    st = data.stream
    rows, fed, t0, got = [], 0, time.perf_counter(), set()
    marks = list(CHECKPOINTS)
    rows.append({"n": 0, **evaluate(router, data, prefs, c_lo, c_hi)})
    marks.pop(0)
    for i in range(len(st["texts"])):
        d = router.decide_batch([st["texts"][i]], preferences=prefs, candidates=data.models,
                                embeddings=st["emb"][i : i + 1])[0]
        s = st["scores"][i, data.models.index(d.model)]
        if np.isnan(s):
            continue
        router.record_feedback(d.decision_id, float(s))
        fed += 1
        got.add(d.model)
        if marks and fed == marks[0]:
            rows.append({"n": fed, **evaluate(router, data, prefs, c_lo, c_hi)})
            marks.pop(0)
    rows.append({"n": fed, **evaluate(router, data, prefs, c_lo, c_hi)})
    info = {"models_with_feedback": len(got), "memory": len(router.feedback_memory),
            "seconds": time.perf_counter() - t0}
    return rows, info


def _fmt(values: list[float], digits: int) -> str:
    """Mean over seeds, with the range when there are several."""
    mean = f"{np.mean(values):.{digits}f}"
    return mean if len(values) == 1 else f"{mean} ({min(values):.{digits}f} to {max(values):.{digits}f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "feedback_learning.md")
    ap.add_argument("--settings", default="cold,cards")
    ap.add_argument("--mechanisms", default=",".join(MECHANISMS))
    ap.add_argument("--n-train", type=int, default=200, help="train prompts the cold router is fitted on")
    ap.add_argument("--cost-weights", default="0.1,0.3",
                    help="streaming preferences: accuracy 1-w, cost w (one simulation each)")
    ap.add_argument("--explore", type=float, default=0.1)
    ap.add_argument("--seeds", default="0,1,2", help="each seed: another split of the test set and train sample")
    args = ap.parse_args()
    warnings.simplefilter("ignore", RoutingFallbackWarning)
    while not cache_path("mmlu_pro").exists():  # the lead's embed_cache run writes it; never re-embed here
        print("waiting for .cache/emb/mmlu_pro.npz (scripts/embed_cache.py) ...", file=sys.stderr)
        time.sleep(30)
    t_all = time.perf_counter()
    seeds = [int(x) for x in args.seeds.split(",")]
    weights = [float(x) for x in args.cost_weights.split(",")]
    mechs, kinds = args.mechanisms.split(","), args.settings.split(",")
    # results[(kind, w, mech)][checkpoint index] -> list over seeds of row dicts
    results: dict[tuple[str, float, str], list[list[dict]]] = {}
    infos: dict[tuple[str, float, str], list[dict]] = {}
    context = []
    for seed in seeds:
        data = Data(args.data, seed, args.n_train)
        held = data.held
        single = {m: (float(np.nanmean(held["scores"][:, j])), float(np.nanmean(held["costs"][:, j])))
                  for j, m in enumerate(data.models)}
        c_lo, c_hi = min(c for _, c in single.values()), max(c for _, c in single.values())
        best = max(single, key=lambda m: single[m][0])
        oracle = float((np.nan_to_num(held["scores"]) > 0.5).any(axis=1).mean())
        context.append(f"seed {seed}: best single model {best} accuracy {single[best][0]:.3f} at "
                       f"${single[best][1]:.6f}; oracle {oracle:.3f}; AIQ cost range ${c_lo:.6f}-${c_hi:.6f}")
        for kind in kinds:
            for w in weights:
                prefs = {"accuracy": 1 - w, "cost": w}
                for mech in mechs:
                    rows, info = simulate(kind, mech, data, prefs, args.explore, seed, c_lo, c_hi)
                    slot = results.setdefault((kind, w, mech), [[] for _ in rows])
                    for i, r in enumerate(rows):
                        slot[i].append(r)
                    infos.setdefault((kind, w, mech), []).append(info)
                    print(f"seed {seed} {kind} w={w} {mech}: " + ", ".join(
                        f"N={r['n']} acc {r['acc']:.3f} ${r['cost']:.6f} AIQ {r['aiq']:.3f}" for r in rows),
                        flush=True)
    lines = [
        "# Feedback learning on held-out MMLU-Pro prompts",
        "",
        f"Generated by `benchmarks/feedback_learning.py` in one run ({time.perf_counter() - t_all:.0f} s, "
        f"{os.cpu_count()} CPUs shared, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}). "
        f"Seeds {seeds}: each shuffles the 3,609 MMLU-Pro test prompts into a stream half (fed back one "
        "decision at a time: feedback = the real 0/1 outcome of the chosen model, missing cells skipped) "
        "and an evaluation half (never fed back), and draws the cold router's training sample. Cells: "
        "mean over seeds (min to max). Accuracy and $ are those of the evaluation half routed under the "
        "streaming preference; AIQ is over the cost-weight sweep "
        f"{list(SWEEP)} (RouterBench hull, cost normalised between the cheapest and dearest single "
        "model on the evaluation half).",
        "",
        *[f"- {c}" for c in context],
        "",
        f"Settings: `cold` = the 31 models without registry cards, fitted on {args.n_train} MMLU-Pro "
        "train prompts (cards and kNN store from those outcomes only, no per-domain accuracy); `cards` "
        "= the bundled cards (per-domain MMLU-Pro train accuracy), no kNN store. Mechanisms: `task` = "
        "the store's shrunk mean residual per (model, task type) only, as before `optiroute.learning.feedback_memory` "
        "(now against the pre-feedback prediction); `pooled` = ridge fit of residuals on task type, "
        "domain and complexity decile shared across models plus (model, task type) and (model, domain), "
        "priors by empirical Bayes; `+kNN` = also the kNN memory of rated prompts (`keep_prompts=True`); "
        f"`+explore` = the router's exploration, `PolicyConfig(explore={args.explore:g})`: that share of "
        "the stream goes to a uniformly random candidate (the evaluation half is routed by score).",
        "",
    ]
    lines += ["## Summary: change after all feedback vs before (mean over seeds, min to max)", "",
              "| setting | preference (accuracy / cost) | mechanism | AIQ change | accuracy change | $ change |",
              "|---|---|---|---|---|---|"]
    for kind in kinds:
        for w in weights:
            for mech in mechs:
                first, last = results[(kind, w, mech)][0], results[(kind, w, mech)][-1]
                d = {k: [b[k] - a[k] for a, b in zip(first, last, strict=True)] for k in ("aiq", "acc", "cost")}
                lines.append(f"| {kind} | {1 - w:g} / {w:g} | {mech} | {_fmt(d['aiq'], 3)} | "
                             f"{_fmt(d['acc'], 3)} | {_fmt(d['cost'], 6)} |")
    lines.append("")
    for kind in kinds:
        for w in weights:
            lines += [f"## `{kind}`, streaming preference accuracy {1 - w:g} / cost {w:g}", "",
                      "| mechanism | feedback events | accuracy | mean $ / prompt | AIQ | models that got feedback |",
                      "|---|---|---|---|---|---|"]
            for mech in mechs:
                slots = results[(kind, w, mech)]
                got = [i["models_with_feedback"] for i in infos[(kind, w, mech)]]
                for i, rs in enumerate(slots):
                    n = [r["n"] for r in rs]
                    label = str(n[0]) if i < len(slots) - 1 else f"all ({min(n)}-{max(n)})"
                    lines.append(
                        f"| {mech} | {label} | {_fmt([r['acc'] for r in rs], 3)} | "
                        f"{_fmt([r['cost'] for r in rs], 6)} | {_fmt([r['aiq'] for r in rs], 3)} | "
                        + (f"{_fmt([float(g) for g in got], 1)} of 31 |" if i == len(slots) - 1 else "|"))
            lines.append("")
    lines.append(f"Total run time {time.perf_counter() - t_all:.0f} s.")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
