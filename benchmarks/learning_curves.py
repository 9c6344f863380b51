"""Learning curves: does routing beat not routing at every train size, on every shared set?

For each shared set (MMLU-Pro, LLMRouter, RouteLLM MMLU / GSM8K / MT-Bench) the train split is
subsampled to 100, 300 and 1,000 prompts (seeded; a few seeds) and used whole; a router is fitted
on the subsample with ``predictor="auto"`` and swept over the bench's cost weights on the test split
(a fixed seeded subsample of at most ``--max-test`` prompts, the same for every run of a set).
Reported per set and size (mean over seeds):

- the single-model hull: AIQ of the single models' own operating points (what not routing reaches);
- **after**: the router of this code (k-fold cross-validated predictor choice, stacked blend,
  observed outcomes over card priors, the never-worse-than-one-model guard);
- **before**: the router of the release before those changes (:data:`BASE_REF`: predictor chosen on
  one 15 % validation split of train, kNN kept below 50 validation prompts, no guard), run from
  that commit's source exported with ``git archive`` into ``.cache/learning_curves/base``;
- each predictor kind alone (this code, fitted on the same subsample, its quality matrix swept
  linearly against the mean train cost, as the bench's ``quality matrix`` rows);
- (unless ``--no-renamed``) the same "after" router on a copy of the data whose models are renamed so that
  no card matches (every card is then derived from the data).

Writes ``benchmarks/results/learning_curves.md``; raw rows go to ``.cache/learning_curves/*.jsonl``
(``--rows-dir``: elsewhere, e.g. when ``.cache`` is shared and another run's rows must stay).
Embeddings come from the shared cache (``scripts/embed_cache.py``), which keys them by encoder: each
code version routes with the vectors of its own encoder (the base release: torch, its first 256 word
pieces; this code: the default encoder).
Run: ``python benchmarks/learning_curves.py [--data ../shared/data] [--seeds 3] [--sizes 100,300]``
(``--sizes``: some train sizes only, ``all`` the whole split; small sizes take a few minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))

SETS = ["mmlu_pro", "llmrouter", "routellm/mmlu", "routellm/gsm8k", "routellm/mt_bench"]
SIZES: list[int | None] = [100, 300, 1000, None]  # None: the whole train split
#: The release before k-fold selection, stacking, observed-over-card levels and the guard.
BASE_REF = "acaf977"
KIND_NAMES = ("knn", "routoo", "mlp", "task", "mean")
OUT = ROOT / ".cache" / "learning_curves"


# ----------------------------------------------------------------------------- one run (worker)
def _load(data: Path, set_name: str, renamed: bool) -> tuple[Any, Any, Any]:
    """Prompts, outcomes and prices of a set (prices from the registry for RouteLLM, as the bench)."""
    import pandas as pd
    from bench_goals import _with_prices

    from optiroute.fit.datasets import load_outcomes, load_prices, load_prompts

    src = _with_prices(data, set_name)
    p, o, pr = load_prompts(src), load_outcomes(src), load_prices(src)
    if renamed:  # no card matches: every model gets a card derived from the data
        names = {m: f"model-{i:02d}" for i, m in enumerate(sorted(o["model"].unique()))}
        o = o.assign(model=o["model"].map(names))
        pr = pr[pr["model"].isin(names)].assign(model=lambda d: d["model"].map(names))
        pr = pd.DataFrame(pr).reset_index(drop=True)
    return p, o, pr


def _run(data: Path, set_name: str, size: int | None, seed: int, renamed: bool, max_test: int,
         kinds: bool) -> dict[str, Any] | None:
    from embed_cache import load_or_embed

    from optiroute import Router
    from optiroute.analysis.embedding import get_default_embedder
    from optiroute.bench.embed_cache import LookupEmbedder
    from optiroute.bench.evaluate import COST_WEIGHTS
    from optiroute.fit.datasets import fill_costs
    from optiroute.fit.training import outcome_matrices
    from optiroute.metrics import baselines as bl
    from optiroute.metrics.curves import aiq

    t0 = time.perf_counter()
    p, o, pr = _load(data, set_name, renamed)
    o = fill_costs(o, p, pr)
    models = sorted(o["model"].unique().tolist())
    answered = set(o["prompt_id"])
    train = p[(p["split"] == "train") & p["prompt_id"].isin(answered)].reset_index(drop=True)
    test = p[(p["split"] == "test") & p["prompt_id"].isin(answered)].reset_index(drop=True)
    if len(test) > max_test:  # the same test subsample for every run of a set
        test = test.iloc[np.sort(np.random.default_rng(0).choice(len(test), max_test, replace=False))]
        test = test.reset_index(drop=True)
    n_all = len(train)
    if size is not None and size >= n_all:
        return None  # the whole split is its own row
    if size is not None:
        train = train.iloc[np.sort(np.random.default_rng(seed).choice(n_all, size, replace=False))]
        train = train.reset_index(drop=True)
    both = [*train["text"].astype(str), *test["text"].astype(str)]
    ids = [*train["prompt_id"], *test["prompt_id"]]
    emb = load_or_embed(set_name, ids, both)
    lookup = LookupEmbedder(get_default_embedder(), both, emb)
    o_train = o[o["prompt_id"].isin(set(train["prompt_id"]))]
    router = Router.fit(train, o_train, pr, embedder=lookup, models=models, predictor="auto", seed=seed)
    te_s, te_c = outcome_matrices(test["prompt_id"].tolist(), models, o)
    emb_test = emb[len(train):]
    singles = bl.single_models(te_s, te_c)
    c_lo, c_hi = min(c for _, c in singles), max(c for _, c in singles)
    card = {m: router.registry.resolve(m).name for m in models}
    # Decisions name the models as the data does (the card names are kept as keys for older code).
    col = {**{card[m]: j for j, m in enumerate(models)}, **{m: j for j, m in enumerate(models)}}
    texts = test["text"].astype(str).tolist()
    pts, guarded = [], 0
    for w in COST_WEIGHTS:
        prefs = {"accuracy": 1 - w, "cost": w} if w < 1 else {"cost": 1.0}
        res = router.decide_batch(texts, preferences=prefs, candidates=models, embeddings=emb_test)
        q, c, _ = bl.realise(np.array([col[n] for n in res.model_names]), te_s, te_c)
        pts.append((c, q))
        guarded += int(any(getattr(part, "guarded", None) is not None and part.guarded.any() for part in res.parts))
    sel = getattr(router.predictor, "selection", None) or {}
    row: dict[str, Any] = {
        "set": set_name, "size": size, "n_train": len(train), "n_train_all": n_all, "n_test": len(test),
        "seed": seed, "renamed": renamed, "chosen": sel.get("chosen", getattr(router.predictor, "kind", "knn")),
        "router_aiq": aiq(pts, c_lo, c_hi), "hull_aiq": aiq([(c, q) for q, c in singles], c_lo, c_hi),
        "guarded_points": guarded, "n_points": len(COST_WEIGHTS),
    }
    if kinds:
        row["kinds"] = _kinds_alone(router, train, o_train, models, emb[: len(train)], emb_test, te_s, te_c,
                                    c_lo, c_hi, seed)
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def _kinds_alone(router: Any, train: Any, o_train: Any, models: list[str], emb_train: np.ndarray,
                 emb_test: np.ndarray, te_s: np.ndarray, te_c: np.ndarray, c_lo: float, c_hi: float,
                 seed: int) -> dict[str, float]:
    """AIQ of each predictor kind alone: fitted on the same rows, its quality matrix swept linearly."""
    import warnings

    from optiroute.fit.selection import FIT_OPTIONS
    from optiroute.fit.training import outcome_matrices
    from optiroute.metrics import baselines as bl
    from optiroute.metrics.curves import aiq
    from optiroute.quality.base import TrainData, predictor_class
    from optiroute.quality.index import OutcomeIndex

    tr_s, tr_c = outcome_matrices(train["prompt_id"].tolist(), models, o_train)
    index = OutcomeIndex(emb_train, train["prompt_id"].tolist(), train["task"].astype(str).tolist(), models,
                         tr_s, tr_c)
    data = TrainData(emb_train, tr_s, models, index, seed)
    cards = [router.registry.resolve(m) for m in models]
    an = router.analyzer
    out = an.predict(emb_test)
    domains = [an.domains[i] for i in out.domain_probs.argmax(axis=1)]
    tasks = [an.task_types[i] for i in out.task_probs.argmax(axis=1)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cost_est = np.nanmean(tr_c, axis=0)
    res = {}
    for k in KIND_NAMES:
        cls = predictor_class(k)
        if cls.unavailable(data) is not None:
            continue
        q, _ = cls.fit(data, **FIT_OPTIONS.get(k, {})).predict_matrix(emb_test, cards, domains, tasks, out.complexity)
        res[k] = aiq(bl.sweep_curve(q, cost_est, te_s, te_c), c_lo, c_hi)
    return res


def worker(args: argparse.Namespace) -> None:
    tasks = json.loads(args.tasks)
    with open(args.out, "a", encoding="utf-8") as f:
        for t in tasks:
            row = _run(args.data, t["set"], t["size"], t["seed"], t["renamed"], args.max_test, t["kinds"])
            if row is None:
                continue
            row["code"] = args.label
            f.write(json.dumps(row) + "\n")
            f.flush()
            print(f"  {args.label} {t['set']} size={t['size']} seed={t['seed']} renamed={t['renamed']}: "
                  f"router {row['router_aiq']:.3f} hull {row['hull_aiq']:.3f} ({row['chosen']}, "
                  f"{row['seconds']:.0f} s)", flush=True)


# ----------------------------------------------------------------------------- orchestration
def _base_code() -> Path:
    """The base release's ``optiroute`` package, exported from git (``BASE_REF:core``)."""
    dst = OUT / f"base_{BASE_REF}"
    pkg = dst / "optiroute"
    if not (pkg / "__init__.py").exists():
        blob = subprocess.run(["git", "-C", str(ROOT), "archive", BASE_REF, "core"], check=True,
                              capture_output=True).stdout
        dst.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=BytesIO(blob)) as tar:
            tar.extractall(dst, filter="data")
        (dst / "core").rename(pkg)
    return dst


def _plan(args: argparse.Namespace) -> list[dict[str, Any]]:
    plan = []
    for s in [x for x in args.sets.split(",") if x]:
        for size in args.sizes:
            seeds = range(args.all_seeds if size is None else args.seeds)
            plan += [{"set": s, "size": size, "seed": seed, "renamed": False,
                      "kinds": seed == 0 and size in (300, None)} for seed in seeds]
        if args.renamed:  # every size and seed too: no card may be what keeps routing above the hull
            plan += [{"set": s, "size": size, "seed": seed, "renamed": True, "kinds": False} for size in args.sizes
                     for seed in range(args.all_seeds if size is None else args.seeds)]
    return plan


def _spawn(label: str, tasks: list[dict[str, Any]], args: argparse.Namespace, pythonpath: str | None) -> Path:
    out = args.rows_dir / f"{label}.jsonl"
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, __file__, "--worker", "--label", label, "--out", str(out), "--data", str(args.data),
           "--max-test", str(args.max_test), "--tasks", json.dumps(tasks)]
    subprocess.run(cmd, check=True, env=env)
    return out


def _mean(xs: list[float]) -> str:
    xs = [x for x in xs if x is not None and np.isfinite(x)]
    if not xs:
        return "n/a"
    return f"{np.mean(xs):.3f}" + (f" ± {np.std(xs):.3f}" if len(xs) > 1 else "")


def report(rows: list[dict[str, Any]], seconds: float, args: argparse.Namespace) -> str:
    """The markdown fragment: one table row per set and train size."""
    def key(r: dict[str, Any]) -> tuple[str, int | None, bool]:
        return r["set"], r["size"], r["renamed"]

    groups: dict[tuple[str, int | None, bool], dict[str, list[dict[str, Any]]]] = {}
    for r in rows:
        groups.setdefault(key(r), {}).setdefault(r["code"], []).append(r)
    names = ", ".join(sorted({r["set"] for r in rows}, key=lambda s: SETS.index(s) if s in SETS else 99))
    lines = [
        f"Measured by `python benchmarks/learning_curves.py` in one run ({seconds / 60:.0f} min of fits and "
        f"sweeps; sets: {names}; "
        f"{args.seeds} seeds per subsampled size, {args.all_seeds} on the whole train split; test capped at "
        f"{args.max_test} prompts, the same for every run of a set). AIQ on the test split, mean ± sd over "
        f"seeds. **after** is this code's router (`predictor=\"auto\"`: k-fold CV choice among the kinds "
        f"and their stacked blend, observed outcomes over card priors, the never-worse-than-one-model "
        f"guard); **before** is the release at `{BASE_REF}` (one 15 % validation split, kNN kept below "
        "50 validation prompts, no guard, its torch encoder). *hull* is the single models' own AIQ (not routing). "
        "`after - hull` below -0.003 means routing lost to picking one model. Kinds alone: each "
        "predictor fitted on the same subsample (seed 0; 300 prompts and whole), its quality matrix swept "
        "linearly against the mean train cost. *guarded* counts the cost weights (of 24) where the guard sent every "
        "prompt to one model.",
        "",
        "| set | train prompts | hull | before | after | after - hull | after - before | guarded | "
        "chosen (after) | kinds alone (seed 0) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (s, size, renamed), by in sorted(groups.items(), key=lambda kv: (SETS.index(kv[0][0]) if kv[0][0] in SETS
                                                                         else 99, kv[0][2], kv[0][1] or 10**9)):
        after, before = by.get("after", []), by.get("before", [])
        ref = after or before
        hull = ref[0]["hull_aiq"]
        n = ref[0]["n_train"]
        a = [r["router_aiq"] for r in after]
        b = [r["router_aiq"] for r in before]
        diff = _mean([x - hull for x in a])
        paired = {r["seed"]: r["router_aiq"] for r in before}
        d_ab = _mean([r["router_aiq"] - paired[r["seed"]] for r in after if r["seed"] in paired])
        kinds = next((r.get("kinds") for r in after if r.get("kinds")), None)
        kinds_txt = ", ".join(f"{k} {v:.3f}" for k, v in kinds.items()) if kinds else ""
        chosen = ", ".join(sorted({r["chosen"] for r in after}))
        guarded = f"{np.mean([r['guarded_points'] for r in after]):.1f}" if after else "n/a"
        label = f"{s} (renamed)" if renamed else s
        size_txt = f"{n}" + (" (all)" if size is None or n == ref[0]["n_train_all"] else "")
        lines.append(f"| {label} | {size_txt} | {hull:.3f} | {_mean(b)} | {_mean(a)} | {diff} | {d_ab} | "
                     f"{guarded} | {chosen} | {kinds_txt} |")
    worst = [(r["router_aiq"] - r["hull_aiq"], r) for r in rows if r["code"] == "after"]
    if worst:
        gap, r = min(worst, key=lambda x: x[0])
        lines += ["", f"Worst single run of **after** against the hull: {gap:+.3f} ({r['set']}, "
                  f"{r['n_train']} train prompts, seed {r['seed']}{', renamed' if r['renamed'] else ''})."]
    return "\n".join(lines) + "\n"


PNG = ROOT / "benchmarks" / "results" / "learning_curves.png"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """One panel per set: test AIQ against train prompts (log scale) for the single-model hull, the
    release before and this router (mean over seeds, bars: min to max), renamed models as crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = [s for s in SETS if any(r["set"] == s for r in rows)]
    fig, axes = plt.subplots(1, len(sets), figsize=(3.2 * len(sets), 3.2), squeeze=False)
    for ax, s in zip(axes[0], sets, strict=True):
        mine = [r for r in rows if r["set"] == s]
        hull = mine[0]["hull_aiq"]
        ax.axhline(hull, color="grey", linestyle="--", linewidth=1, label="best single model (hull)")
        for code, renamed, style, label in (("before", False, "o", f"before ({BASE_REF})"),
                                            ("after", False, "s", "this router"),
                                            ("after", True, "x", "this router, models renamed")):
            pts: dict[int, list[float]] = {}
            for r in mine:
                if r["code"] == code and r["renamed"] == renamed:
                    pts.setdefault(r["n_train"], []).append(r["router_aiq"])
            if not pts:
                continue
            xs = sorted(pts)
            ys = [float(np.mean(pts[x])) for x in xs]
            lo = [y - min(pts[x]) for x, y in zip(xs, ys, strict=True)]
            hi = [max(pts[x]) - y for x, y in zip(xs, ys, strict=True)]
            ax.errorbar(xs, ys, yerr=[lo, hi], fmt=style, markersize=4, capsize=2, label=label,
                        linestyle="none" if renamed else "-")
        ax.set_xscale("log")
        ax.set_title(s, fontsize=9)
        ax.set_xlabel("train prompts", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("test AIQ", fontsize=8)
    axes[0][0].legend(fontsize=6, loc="lower right")
    fig.suptitle("Routing against not routing at every train size (higher is better)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _sizes(text: str) -> list[int | None]:
    return [None if x.strip() == "all" else int(x) for x in text.split(",") if x.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--sizes", type=_sizes, default=SIZES,
                    help="train sizes, comma-separated ('all': the whole split; default 100,300,1000,all)")
    ap.add_argument("--rows-dir", type=Path, default=OUT,
                    help="where the raw rows go (rewritten by each run; default .cache/learning_curves)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--all-seeds", type=int, default=1)
    ap.add_argument("--max-test", type=int, default=1000)
    ap.add_argument("--renamed", action=argparse.BooleanOptionalAction, default=True,
                    help="also the renamed-models variant (after only; default on)")
    ap.add_argument("--no-before", action="store_true", help="skip the base release's runs")
    ap.add_argument("--report-only", action="store_true",
                    help="only rewrite the report from the rows of the last (possibly partial) run")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--label", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--tasks", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    t0 = time.perf_counter()
    args.rows_dir.mkdir(parents=True, exist_ok=True)
    outs = [args.rows_dir / "after.jsonl", args.rows_dir / "before.jsonl"]
    if not args.report_only:
        for p in outs:
            p.unlink(missing_ok=True)
        base_code = None if args.no_before else str(_base_code())
        for set_name in [x for x in args.sets.split(",") if x]:  # set by set: rows accumulate as they finish
            plan = _plan(argparse.Namespace(**{**vars(args), "sets": set_name}))
            _spawn("after", plan, args, None)
            if base_code is not None:
                _spawn("before", [dict(t, kinds=False) for t in plan if not t["renamed"]], args, base_code)
    rows = [json.loads(line) for p in outs if p.exists() for line in p.read_text(encoding="utf-8").splitlines()
            if line]
    seconds = sum(r.get("seconds", 0.0) for r in rows) if args.report_only else time.perf_counter() - t0
    text = report(rows, seconds, args)
    plot(rows, PNG)
    text += f"\n![Learning curves](benchmarks/results/{PNG.name})\n"
    print(text)
    (ROOT / "benchmarks" / "results" / "learning_curves.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
