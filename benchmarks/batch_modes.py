"""Budgets, batch mode, pool design and streamed routing on MMLU-Pro, each against its obvious baseline.

A router is fitted on the MMLU-Pro train split (``Router.fit`` with its default predictor; prompts
embedded once by ``scripts/embed_cache.py`` and served from ``.cache/emb``); everything is measured
on the test split, realised accuracy and cost from the real outcomes (a missing cell, where a model
skipped a question, leaves the prompt out of that row's mean; the count is shown).

1. **Budgeted batches**: ``decide_batch(budget_usd=B)`` (the hull greedy, and Routoo's
   quality/cost^alpha selector) vs (a) the best single model (by train accuracy) whose predicted
   total cost fits in B and (b) per-prompt routing with the cost weight tuned (bisection) to the
   largest predicted spend within B. Budgets are fractions of the predicted cost of sending every
   test prompt to the best single model.
2. **Batch mode** (``choose_batch_model``, 5 % sample, one model per batch) vs per-call routing, on
   the whole test set as one batch and on one batch per category; and decisions per second with the
   real MiniLM encoder.
3. **Pool design**: ``select_models`` (greedy coverage on train) vs the k best single models (train
   accuracy), as oracle coverage and as routed accuracy / AIQ on test.
4. **route-batch** throughput and peak RSS on this machine, in subprocesses: a 50k-row file routed
   with the embeddings served from the cache (routing machinery only), a 10k-row file (same memory?),
   and a small file end to end with the real MiniLM, beside MiniLM's raw encode rate.

Run: ``python benchmarks/batch_modes.py --data ../shared/data``; writes
``benchmarks/results/batch_modes.md``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from embed_cache import load_or_embed  # noqa: E402

from optiroute import BudgetExceededError, Router  # noqa: E402
from optiroute.analysis.embedding import get_default_embedder  # noqa: E402
from optiroute.bench.embed_cache import LookupEmbedder  # noqa: E402
from optiroute.fit.datasets import fill_costs, load_outcomes, load_prices, load_prompts  # noqa: E402
from optiroute.fit.pool import coverage, select_models  # noqa: E402
from optiroute.fit.training import outcome_matrices  # noqa: E402
from optiroute.metrics import baselines as bl  # noqa: E402
from optiroute.metrics.curves import aiq  # noqa: E402
from optiroute.routing.budgeted import allocate, hard_eligible  # noqa: E402

BUDGET_FRACTIONS = (0.03, 0.1, 0.25, 0.5)
#: Routoo selector exponents: 0 targets the best predicted model; on MMLU-Pro's ~150x price range a
#: prompt's best model beats the cheapest on quality/cost^alpha only for alpha below ~0.1.
ALPHAS = (0.0, 0.1)
SCALE_ROWS = 1_000_000
POOL_SIZES = (2, 3, 5, 8)
SWEEP = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
PROFILES = ("quality-first", "balanced", "cost-effective")


def _prefs(w: float) -> dict[str, float]:
    return {"accuracy": 1 - w, "cost": w} if w < 1 else {"cost": 1.0}


def _rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB, from /proc (Linux)."""
    cur = peak = float("nan")
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                cur = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return cur, peak


# ------------------------------------------------------------------ stream worker (subprocess)
def _worker(args: argparse.Namespace) -> None:
    from optiroute.router.route_file import route_file

    kw = {}
    if args.worker == "lookup":
        p = load_prompts(args.data / "mmlu_pro")
        emb = load_or_embed("mmlu_pro", p["prompt_id"].tolist(), p["text"].tolist())
        kw["embedder"] = LookupEmbedder(get_default_embedder(), p["text"].tolist(), emb)
        del p
    router = Router.load(args.router, **kw)
    router.decide_batch(["warm-up: load the store and analyzer"])
    before, _ = _rss_mb()
    stats = route_file(router, args.input, args.output, preferences="balanced", chunk=args.chunk)
    after, peak = _rss_mb()
    print(json.dumps({"rows": stats.rows, "seconds": stats.seconds, "prompts_per_s": stats.prompts_per_s,
                      "rss_before_mb": before, "rss_after_mb": after, "peak_rss_mb": peak,
                      "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def _stream(data: Path, router_dir: Path, src: Path, mode: str, chunk: int) -> dict:
    out = src.with_name(src.stem + f".{mode}.out.csv")
    cmd = [sys.executable, __file__, "--data", str(data), "--worker", mode, "--router", str(router_dir),
           "--input", str(src), "--output", str(out), "--chunk", str(chunk)]
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------- main run
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "batch_modes.md")
    ap.add_argument("--stream-rows", type=int, default=50_000)
    ap.add_argument("--minilm-rows", type=int, default=400, help="rows routed end to end with real MiniLM")
    ap.add_argument("--worker", choices=["lookup", "minilm"], help=argparse.SUPPRESS)
    ap.add_argument("--router", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--chunk", type=int, default=1024, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(args)
        return

    t_start = time.perf_counter()
    d = args.data / "mmlu_pro"
    p, o = load_prompts(d), load_outcomes(d)
    prices = load_prices(d / "prices.csv")
    o = fill_costs(o, p, prices)
    models = sorted(o["model"].unique().tolist())
    texts = p["text"].tolist()
    emb = load_or_embed("mmlu_pro", p["prompt_id"].tolist(), texts)
    tr, te = (p["split"] == "train").to_numpy(), (p["split"] == "test").to_numpy()
    train_p, test_p = p[tr].reset_index(drop=True), p[te].reset_index(drop=True)
    lookup = LookupEmbedder(get_default_embedder(), texts, emb)
    t0 = time.perf_counter()
    router = Router.fit(train_p, o, prices, embedder=lookup, models=models)
    kind = getattr(router.predictor, "kind", None) or "knn"
    fit_s = time.perf_counter() - t0
    lookup.clear()  # from here on, anything not given embeddings= really encodes
    tr_s, tr_c = outcome_matrices(train_p["prompt_id"].tolist(), models, o)
    te_s, te_c = outcome_matrices(test_p["prompt_id"].tolist(), models, o)
    keep = ~np.isnan(te_s).all(axis=1)
    test_p, te_s, te_c, e_te = test_p[keep].reset_index(drop=True), te_s[keep], te_c[keep], emb[te][keep]
    tt = test_p["text"].tolist()
    n = len(tt)
    # Decisions name the models as the data does; card names are kept as keys too.
    col = {**{router.registry.resolve(m).name: j for j, m in enumerate(models)}, **{m: j for j, m in enumerate(models)}}
    train_acc = np.nanmean(tr_s, axis=0)
    best_j = int(np.argmax(train_acc))
    single = bl.single_models(te_s, te_c)
    c_lo, c_hi = min(c for _, c in single), max(c for _, c in single)

    def realise(names: list[str]) -> tuple[float, float, int, float]:
        """(accuracy over answered prompts, realised $/prompt, prompts left out, accuracy with a
        missing cell counted as wrong)."""
        choice = np.array([col[m] for m in names])
        acc, cost, left = bl.realise(choice, te_s, te_c)
        return acc, cost, left, float(np.nan_to_num(te_s[np.arange(len(choice)), choice]).mean())

    def decide(**kw):
        return router.decide_batch(tt, candidates=models, embeddings=e_te, **kw)

    lines = [
        f"MMLU-Pro: router fitted on {len(train_p)} train prompts in {fit_s:.0f}s (predictor: {kind}); "
        f"{n} test prompts, {len(models)} candidate models. Machine: {platform.machine()}, "
        f"{os.cpu_count()} cores shared with other jobs (load average at start "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}), torch/BLAS single-threaded.",
    ]

    # ---------------------------------------------------------------- 1. budgets
    base = decide(preferences="quality-first")
    pc = np.concatenate([x.cost for x in base.parts]).astype(np.float64)
    names = base.parts[0].names
    bj = names.index(router.registry.resolve(models[best_j]).name)
    full = float(pc[:, bj].sum())
    ratios = [float(pc[:, names.index(router.registry.resolve(m).name)].mean()) / single[j][1]
              for j, m in enumerate(models) if single[j][1] > 0]
    lines += ["", "### 1. Budgeted batches", "",
              f"Budget = a fraction of the predicted cost of sending all {n} test prompts to "
              f"{models[best_j]} (best train accuracy): ${full:.3f}. Spend is *predicted* "
              "(what the budget constrains); accuracy and $/prompt are realised from the outcomes. "
              "'left out' counts prompts whose chosen model has no outcome (mostly DeepSeek models, which "
              "skipped questions); the last column counts them as wrong instead. Routoo's selector sends "
              "each prompt at most to its best quality/cost^alpha model, so with alpha > 0 it may leave "
              "budget unspent. Predicted cost = prompt tokens x input price + the analyzer's answer "
              "length x the model's verbosity (measured by Router.fit from the train outcomes' "
              "output_tokens) x output price. The router predicts "
              f"${full / n:.5f}/prompt for {models[best_j]} where the outcomes record "
              f"${single[best_j][1]:.5f} (ratio {full / n / single[best_j][1]:.2f}); over the {len(models)} "
              f"models the ratio of predicted to realised mean cost per prompt spans {min(ratios):.2f} to "
              f"{max(ratios):.2f} (median {float(np.median(ratios)):.2f}). A budget caps *predicted* spend, "
              "so realised spend tracks it as closely as these ratios.", "",
              "| budget | method | predicted spend $ | realised $/prompt | accuracy | left out "
              "| accuracy, missing = wrong |",
              "|---|---|---|---|---|---|---|"]
    for frac in BUDGET_FRACTIONS:
        budget = frac * full
        rows = []
        t0 = time.perf_counter()
        try:
            res = decide(budget_usd=budget)
        except BudgetExceededError as exc:
            lines.append(f"| {frac:.0%} (${budget:.3f}) | below the minimum: {exc} | | | | | |")
            continue
        t_alloc = time.perf_counter() - t0
        al = res.allocation
        rows.append((f"**decide_batch(budget_usd)**, hull greedy ({t_alloc:.1f}s; predicted quality "
                     f"{al.mean_quality:.4f}, LP bound {al.upper_bound / al.n_prompts:.4f})", res.total_cost_usd,
                     realise(res.model_names)))
        for alpha in ALPHAS:
            r2 = decide(budget_usd=budget, alpha=alpha)
            rows.append((f"decide_batch(budget_usd, alpha={alpha:g}) (Routoo s/c^alpha)", r2.total_cost_usd,
                         realise(r2.model_names)))
        spend = pc.sum(axis=0)
        afford = [j for j in range(len(names)) if spend[j] <= budget]
        if afford:
            j = max(afford, key=lambda j: train_acc[col[names[j]]])
            rows.append((f"(a) best affordable single model: {names[j]}", float(spend[j]),
                         realise([names[j]] * n)))
        best = None  # (spend, w, result): the feasible cost weight with the largest predicted spend
        lo, hi = 0.0, 1.0
        for w in [0.0, 1.0] + [None] * 12:  # spend falls (mostly) as the cost weight rises: bisect
            w = (lo + hi) / 2 if w is None else w
            r3 = decide(preferences=_prefs(w))
            s = float(r3.column("cost").sum())
            if s <= budget:
                hi = w
                if best is None or s > best[0]:
                    best = (s, w, r3)
                if w == 0.0:
                    break
            else:
                lo = w
                if w == 1.0:
                    break
        best_w = None if best is None else best[1]
        if best is not None:
            best_s, best_r = best[0], best[2]
        if best_w is not None:
            rows.append((f"(b) per-prompt routing, cost weight {best_w:.4f}", best_s,
                         realise(best_r.model_names)))
        else:
            nan = float("nan")
            rows.append(("(b) per-prompt routing: no cost weight fits", nan, (nan, nan, 0, nan)))
        for label, s, (acc, cost, left, acc0) in rows:
            lines.append(f"| {frac:.0%} (${budget:.3f}) | {label} | {s:.4f} | {cost:.6f} | {acc:.4f} | {left} "
                         f"| {acc0:.4f} |")
        print(f"budget {frac:.0%} done", flush=True)

    pq = np.concatenate([x.quality for x in base.parts])
    el = np.concatenate([hard_eligible(x) for x in base.parts])
    reps = -(-SCALE_ROWS // n)
    big_q, big_c, big_e = (np.tile(a, (reps, 1))[:SCALE_ROWS] for a in (pq, pc, el))
    t0 = time.perf_counter()
    _, big_al = allocate(big_q, big_c, big_e, 0.25 * full * SCALE_ROWS / n)
    t_big = time.perf_counter() - t0
    del big_q, big_c, big_e
    lines += ["", f"Allocation alone at scale: the test set's predicted ({n} x {len(names)}) matrices tiled to "
              f"{SCALE_ROWS:,} prompts, budget 25 %: `allocate` took {t_big:.1f}s (predicted quality "
              f"{big_al.mean_quality:.4f} vs LP bound {big_al.upper_bound / big_al.n_prompts:.4f})."]
    print("allocation at scale done", flush=True)

    # ---------------------------------------------------------------- 2. batch mode
    lines += ["", "### 2. Batch mode (one model per batch from a 5 % sample) vs per-call routing", "",
              "Per-call = every prompt routed on its own (vectorised `decide_batch`). Batch mode on the "
              "whole test set as one batch, and on one batch per MMLU-Pro category (14 batches; a batch of "
              "similar jobs). Agreement = share of sampled prompts whose own routing chose the batch's model.",
              "", "| preferences | mode | accuracy | realised $/prompt | left out | accuracy, missing = wrong "
              "| model(s) / agreement |",
              "|---|---|---|---|---|---|---|"]
    cats = test_p["task"].to_numpy()
    for prof in PROFILES:
        per = decide(preferences=prof)
        acc, cost, left, acc0 = realise(per.model_names)
        lines.append(f"| {prof} | per-call | {acc:.4f} | {cost:.6f} | {left} | {acc0:.4f} "
                     f"| {len(set(per.model_names))} distinct models |")
        ch = router.choose_batch_model(tt, sample=0.05, preferences=prof, candidates=models, embeddings=e_te)
        acc, cost, left, acc0 = realise([ch.model] * n)
        lines.append(f"| {prof} | batch mode, 1 batch ({ch.sample_size} sampled) | {acc:.4f} | {cost:.6f} | "
                     f"{left} | {acc0:.4f} | {ch.model} / {ch.agreement:.2f} |")
        chosen = np.empty(n, dtype=object)
        agree = []
        for c in sorted(set(cats)):
            idx = np.flatnonzero(cats == c)
            chc = router.choose_batch_model([tt[i] for i in idx], sample=0.05, preferences=prof,
                                            candidates=models, embeddings=e_te[idx])
            chosen[idx] = chc.model
            agree.append(chc.agreement)
        acc, cost, left, acc0 = realise(chosen.tolist())
        lines.append(f"| {prof} | batch mode, per category (14 batches) | {acc:.4f} | {cost:.6f} | {left} | "
                     f"{acc0:.4f} | {len(set(chosen.tolist()))} distinct / mean {np.mean(agree):.2f} |")
    print("batch mode accuracy done", flush=True)
    router.decide("warm up the encoder", candidates=models)
    t0 = time.perf_counter()
    ch = router.choose_batch_model(tt, sample=0.05, preferences="balanced", candidates=models)
    t_bm = time.perf_counter() - t0
    k_batch = 300
    t0 = time.perf_counter()
    router.decide_batch(tt[:k_batch], preferences="balanced", candidates=models)
    t_vec = time.perf_counter() - t0
    k_one = 60
    t0 = time.perf_counter()
    for t in tt[:k_one]:
        router.decide(t, preferences="balanced", candidates=models)
    t_one = time.perf_counter() - t0
    lines += ["", "Decisions per second, real MiniLM encoding (single thread), balanced:", "",
              "| mode | prompts | seconds | prompts decided / s |", "|---|---|---|---|",
              f"| batch mode (encodes the {ch.sample_size}-prompt sample, one model for all) | {n} | {t_bm:.1f} "
              f"| {n / t_bm:.0f} |",
              f"| per-call, vectorised `decide_batch` | {k_batch} | {t_vec:.1f} | {k_batch / t_vec:.1f} |",
              f"| per-call, one `decide()` per prompt | {k_one} | {t_one:.1f} | {k_one / t_one:.1f} |"]
    print("batch mode speed done", flush=True)

    # ---------------------------------------------------------------- 3. pool design
    lines += ["", "### 3. select-models (greedy coverage on train) vs the k best single models (train accuracy)", "",
              "Oracle coverage = mean over test prompts of the best score in the pool (a missing cell counts as "
              "the model's mean). Routed = the router restricted to the pool (`candidates=`): quality-first "
              f"accuracy and AIQ of a {len(SWEEP)}-point cost-weight sweep (cost normalised over all "
              f"{len(models)} single models).", "",
              "| k | pool | models | train coverage | test oracle coverage | routed accuracy (quality-first) "
              "| $/prompt | routed AIQ |",
              "|---|---|---|---|---|---|---|---|"]
    for k in POOL_SIZES:
        sel = select_models(tr_s, models, k, costs=tr_c)
        for label, pool in (("greedy coverage", sel.models), ("k best single", sel.best_single_models)):
            cols = [models.index(m) for m in pool]
            pts = []
            for w in SWEEP:
                r = router.decide_batch(tt, candidates=pool, embeddings=e_te, preferences=_prefs(w))
                a, c, _, _ = realise(r.model_names)
                pts.append((c, a))
                if w == 0.0:
                    q_acc, q_cost = a, c
            lines.append(f"| {k} | {label} | {', '.join(pool)} | {coverage(tr_s, cols):.4f} | "
                         f"{coverage(te_s, cols):.4f} | {q_acc:.4f} | {q_cost:.6f} | {aiq(pts, c_lo, c_hi):.3f} |")
        print(f"pool k={k} done", flush=True)

    # ---------------------------------------------------------------- 4. route-batch
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        rdir = router.save(tmpd / "router")
        rng = np.random.default_rng(0)

        def make(rows: int, name: str) -> Path:
            path = tmpd / name
            pick = rng.integers(0, len(texts), rows)
            with open(path, "w", encoding="utf-8", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["prompt_id", "text"])
                w.writerows((f"r{i}", texts[j]) for i, j in enumerate(pick))
            return path

        big, mid = make(args.stream_rows, "big.csv"), make(10_000, "mid.csv")
        small = make(args.minilm_rows, "small.csv")
        res_big = _stream(args.data, rdir, big, "lookup", 1024)
        res_mid = _stream(args.data, rdir, mid, "lookup", 1024)
        res_big_chunk = _stream(args.data, rdir, big, "lookup", 4096)
        res_small = _stream(args.data, rdir, small, "minilm", 1024)
        enc = get_default_embedder()
        small_texts = pd.read_csv(small, dtype=str)["text"].tolist()
        t0 = time.perf_counter()
        enc.encode(small_texts)
        t_enc = time.perf_counter() - t0
    lines += ["", "### 4. route-batch: streamed file routing on this machine", "",
              "Each run is a fresh process (`route_file`, the code behind `optiroute route-batch`, "
              "chunk 1024 (the default) unless said, balanced). *cached embeddings*: the MiniLM vectors "
              "come from the embedding cache, so the "
              "numbers are the routing machinery alone (read, prune, analyse, kNN, score, write); *MiniLM*: "
              "end to end with the real encoder. RSS includes the loaded router and, for the cached runs, the "
              "cache of 12k vectors; the growth above it is one chunk's working set (mostly the exact kNN "
              "similarity block, chunk x 8,423 stored prompts), so `--chunk` sets it.", "",
              "| file | embeddings | rows | seconds | prompts / s | RSS after load MB | peak RSS MB |",
              "|---|---|---|---|---|---|---|"]
    for label, r, how in ((f"{args.stream_rows // 1000}k rows", res_big, "cached"), ("10k rows", res_mid, "cached"),
                          (f"{args.stream_rows // 1000}k rows, chunk 4096", res_big_chunk, "cached"),
                          (f"{args.minilm_rows} rows", res_small, "MiniLM (1 thread)")):
        lines.append(f"| {label} | {how} | {r['rows']} | {r['seconds']:.1f} | {r['prompts_per_s']:.0f} | "
                     f"{r['rss_before_mb']:.0f} | {r['peak_rss_mb']:.0f} |")
    lines += ["", f"Raw MiniLM encode of the same {len(small_texts)} prompts (the floor): {t_enc:.1f}s, "
              f"{len(small_texts) / t_enc:.1f} prompts/s.",
              "", f"_Run finished {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} in "
              f"{time.perf_counter() - t_start:.0f}s._"]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
