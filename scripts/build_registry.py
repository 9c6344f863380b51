"""Build the bundled model registry ``core/data/models.json`` from ../shared/data.

Sources: ``model_metrics.csv`` (44 models, every cell with its ``*_src``), MMLU-Pro and LLMRouter
train-split outcomes (accuracy overall / per domain / per task), ``prices.csv`` of both sets, and a small
manual table of today's common API models that the data lacks (list prices and context windows from the
vendors' public price lists, late 2024; Arena Elo from the public LMSYS leaderboard, late 2024). Every
metric a model has no sourced value for is imputed by a regression on Arena Elo (or on accuracy) fitted
over the models that have both, and listed in the card's ``imputed``.

Run: ``python scripts/build_registry.py [--data ../shared/data]`` (deterministic).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "core" / "data" / "models.json"

#: analyzer task types <- LLMRouter task labels
LLMROUTER_TASKS = {
    "math": "math", "gsm8k": "math", "agentverse-mgsm": "math",
    "mbpp": "coding", "human_eval": "coding",
    "commonsense_qa": "reasoning", "openbook_qa": "knowledge", "arc_challenge": "knowledge",
    "agentverse-logicgrid": "reasoning",
    "mmlu": "knowledge", "gpqa": "knowledge", "natural_qa": "knowledge", "trivia_qa": "knowledge",
    "commongen": "writing",
}
#: LLMRouter model names that are the same model as a model_metrics / MMLU-Pro card.
SAME_MODEL = {"llama-3.1-8b-instruct": "Meta-Llama-3_1-8B-Instruct"}

ALIASES = {
    "gpt-4o-2024-05-13": ["gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-2024-11-20", "chatgpt-4o-latest"],
    "gemini-1.5-pro-002": ["gemini-1.5-pro", "gemini-1.5-pro-latest"],
    "gemini-1.5-flash-002": ["gemini-1.5-flash", "gemini-1.5-flash-latest"],
    "deepseek-chat": ["deepseek-v2.5"],
    "DeepSeek-Coder-V2": ["deepseek-coder", "deepseek-coder-v2-instruct"],
    "jamba-1.5-large": ["ai21/jamba-1-5-large"],
    "c4ai-command-r-v01": ["command-r"],
    "Meta-Llama-3_1-70B-Instruct": ["llama-3.1-70b-instruct", "llama3.1:70b", "llama-3.1-70b",
                                    "meta-llama-3.1-70b-instruct", "llama-3.1-70b-versatile"],
    "Meta-Llama-3_1-8B-Instruct": ["llama-3.1-8b-instruct", "llama3.1:8b", "llama-3.1-8b",
                                   "meta-llama-3.1-8b-instruct", "llama-3.1-8b-instant", "llama3.1"],
    "Mixtral-8x7B-Instruct-v0.1": ["mixtral-8x7b-instruct", "mixtral-8x7b", "mixtral", "open-mixtral-8x7b"],
    "Mistral-7B-Instruct-v0.2": ["mistral-7b-instruct", "mistral:7b", "open-mistral-7b"],
    "gpt-4-1106-preview": ["gpt-4-turbo-preview"],
    "gpt-3.5-turbo-1106": ["gpt-3.5-turbo"],
    "SmolLM2-135M-Instruct": ["smollm2", "smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1"],
    "gemma-3-270m": ["gemma3-270m", "gemma-3-270m-q4_k_m"],
}

_VENDOR = "vendor list price / model card, late 2024 (manual entry)"
_ARENA = "LMSYS Chatbot Arena leaderboard, late 2024 (manual entry)"
_SPEED = "approximate public throughput figures, late 2024 (manual entry; estimate)"
#: Common API models the data lacks: (name, provider, aliases, $in, $out, context, tools, json, elo, tps, ttft)
MANUAL_API = [
    ("gpt-4o-mini", "openai", ["gpt-4o-mini-2024-07-18"], 0.15, 0.60, 128000, True, True, 1272, 100.0, 0.45),
    ("claude-3-5-sonnet", "anthropic", ["claude-3-5-sonnet-20241022", "claude-3-5-sonnet-20240620",
                                         "claude-3-5-sonnet-latest", "claude-3.5-sonnet"],
     3.0, 15.0, 200000, True, False, 1283, 55.0, 0.9),
    ("claude-3-5-haiku", "anthropic", ["claude-3-5-haiku-20241022", "claude-3-5-haiku-latest", "claude-3.5-haiku"],
     0.80, 4.0, 200000, True, False, 1236, 65.0, 0.7),
    ("claude-3-haiku", "anthropic", ["claude-3-haiku-20240307"], 0.25, 1.25, 200000, True, False, 1179, 120.0, 0.5),
    ("claude-3-opus", "anthropic", ["claude-3-opus-20240229", "claude-3-opus-latest"], 15.0, 75.0, 200000, True, False,
     1248, 25.0, 1.5),
]
#: List prices of the older API models in model_metrics.csv that the data's price tables lack.
MANUAL_PRICES = {
    "gpt-4-1106-preview": (10.0, 30.0), "gpt-3.5-turbo-1106": (1.0, 2.0), "claude-v2": (8.0, 24.0),
    "claude-v1": (8.0, 24.0), "claude-instant-v1": (0.8, 2.4),
}
#: LLMRouter's open models (not in model_metrics.csv): context windows from their model cards.
LLMROUTER_CONTEXT = {
    "codegemma-7b": 8192, "gemma-2-9b-it": 8192, "llama-3.1-nemotron-51b-instruct": 131072,
    "llama-3.3-nemotron-super-49b-v1": 131072, "llama3-chatqa-1.5-70b": 8192, "llama3-chatqa-1.5-8b": 8192,
    "mistral-7b-instruct-v0.3": 32768, "qwen2.5-7b-instruct": 32768,
}
LLMROUTER_PARAMS = {"codegemma-7b": 7, "gemma-2-9b-it": 9, "llama-3.1-nemotron-51b-instruct": 51,
                    "llama-3.3-nemotron-super-49b-v1": 49, "llama3-chatqa-1.5-70b": 70, "llama3-chatqa-1.5-8b": 8,
                    "mistral-7b-instruct-v0.3": 7, "qwen2.5-7b-instruct": 7}
#: Latency by size when no throughput figure exists (hosted open model; an estimate, marked imputed).
SIZE_TIERS = [(10, 120.0, 0.3), (40, 70.0, 0.4), (80, 45.0, 0.5), (math.inf, 30.0, 0.6)]


def provider_of(name: str, kind: str) -> str:
    n = name.lower()
    for key, prov in (("gpt", "openai"), ("claude", "anthropic"), ("gemini", "google"), ("deepseek", "deepseek"),
                      ("jamba", "ai21"), ("c4ai", "cohere"), ("command", "cohere")):
        if key in n:
            return prov
    return "local" if kind == "local" else "open-weights"


def fit_map(x: pd.Series, y: pd.Series) -> tuple[float, float]:
    """Least-squares y = a + b x over rows having both."""
    ok = x.notna() & y.notna()
    b, a = np.polyfit(x[ok].to_numpy(float), y[ok].to_numpy(float), 1)
    return float(a), float(b)


def short_src(s: Any) -> str:
    return str(s)[:160] if isinstance(s, str) else ""


FACTS_SRC = ("../shared/data/model_metrics.csv params_b / arena_elo / mt_bench (each with its *_src there); "
             "Arena Elo of vendor entries: LMSYS leaderboard, late 2024 (manual entry); LLMRouter model sizes "
             "from their names")
VERBOSITY_SRC = ("MMLU-Pro train split (5-shot chain-of-thought answers): sum of recorded output_tokens / the "
                 "bundled analyzer's answer-length estimate on the same prompts "
                 "(optiroute.fit.training.measure_verbosity)")


def verbosity(d: Path) -> dict[str, float]:
    """Each model's answer length relative to the bundled analyzer's estimate, on the train splits.

    The same measurement ``Router.fit`` makes on a user's outcomes, here on the data behind the bundled
    store, so the default router prices a verbose model's answers (gpt-4o writes about four times
    the estimate on MMLU-Pro) at what they really cost. Only MMLU-Pro records answer lengths
    (LLMRouter's outcomes have none), so the ratios describe MMLU-Pro's chain-of-thought answers.
    Embeddings come from ``.cache/emb`` (computed and cached on first use, deterministic).
    """
    sys.path.insert(0, str(ROOT / "scripts"))
    from embed_cache import load_or_embed

    from optiroute.analysis.analyzer import TaskAnalyzer
    from optiroute.fit.training import measure_verbosity

    analyzer = TaskAnalyzer.default()
    p = pd.read_csv(d / "mmlu_pro" / "prompts.csv.gz", dtype={"prompt_id": str})
    emb = load_or_embed("mmlu_pro", p["prompt_id"].tolist(), p["text"].astype(str).tolist())
    train = (p["split"] == "train").to_numpy()
    est = analyzer.output_tokens(analyzer.predict(emb[train]).task_probs)
    outcomes = pd.read_csv(d / "mmlu_pro" / "outcomes.csv.gz", dtype={"prompt_id": str})
    models = sorted(outcomes["model"].unique().tolist())
    return measure_verbosity(p.loc[train, "prompt_id"].tolist(), models, outcomes, est)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    d = args.data
    mm = pd.read_csv(d / "model_metrics.csv")

    # --- MMLU-Pro: train accuracy overall and per domain
    mp = pd.read_csv(d / "mmlu_pro/prompts.csv.gz", dtype={"prompt_id": str})
    mo = pd.read_csv(d / "mmlu_pro/outcomes.csv.gz", dtype={"prompt_id": str})
    mo = mo.merge(mp[mp["split"] == "train"][["prompt_id", "task"]], on="prompt_id")
    mmlu_acc = mo.groupby("model")["score"].mean()
    mmlu_dom = mo.groupby(["model", "task"])["score"].mean().unstack()
    prices = pd.concat([pd.read_csv(d / "mmlu_pro/prices.csv"), pd.read_csv(d / "llmrouter/prices.csv")])
    prices = prices.drop_duplicates("model").set_index("model")

    # --- LLMRouter: train mean score per analyzer task
    lp = pd.read_csv(d / "llmrouter/prompts.csv.gz", dtype={"prompt_id": str})
    lo = pd.read_csv(d / "llmrouter/outcomes.csv.gz", dtype={"prompt_id": str})
    lo = lo.merge(lp[lp["split"] == "train"][["prompt_id", "task"]], on="prompt_id")
    lo["atask"] = lo["task"].map(LLMROUTER_TASKS)
    lr_task = lo.groupby(["model", "atask"])["score"].mean().unstack()
    lr_mean = lo.groupby("model")["score"].mean()

    # --- raw metric table: one row per card
    rows: dict[str, dict[str, Any]] = {}
    for _, r in mm.iterrows():
        kind = "local" if r["pools"] == "C" else str(r["kind"])
        rows[r["model"]] = {"kind": kind, "elo": r["arena_elo"], "mt": r["mt_bench"], "alpaca": r["alpacaeval2_lc"],
                            "tqa": r["truthfulqa_mc2"], "ifeval": r["ifeval"], "safety": r["safety_score"],
                            "creative": r["creative_score"], "creative_name": r["creative_metric_name"],
                            "ctx": r["context_window"], "tools": r["supports_tools"], "json": r["supports_json"],
                            "tps": r["tokens_per_s"], "ttft": r["ttft_s"], "params": r["params_b"], "src": r}
    for m in lr_mean.index:
        if m in SAME_MODEL:
            continue
        rows[m] = {"kind": "chat", "ctx": LLMROUTER_CONTEXT[m], "params": LLMROUTER_PARAMS[m],
                   "tools": m.startswith(("llama-3", "mistral", "qwen")), "json": False}
    for name, prov, aliases, pin, pout, ctx, tools, js, elo, tps, ttft in MANUAL_API:
        rows[name] = {"kind": "api", "elo": elo, "ctx": ctx, "tools": tools, "json": js, "tps": tps, "ttft": ttft,
                      "manual": (prov, aliases, pin, pout)}
    t = pd.DataFrame.from_dict(rows, orient="index")
    t["acc"] = mmlu_acc.reindex(t.index)

    # --- normalised metrics (0..1, higher is better)
    al = t["alpaca"].astype(float)
    norm = pd.DataFrame(index=t.index)
    norm["accuracy"] = t["acc"]
    norm["helpfulness"] = (al - al.min()) / (al.max() - al.min())
    norm["honesty"] = t["tqa"].astype(float) / 100
    norm["harmlessness"] = 1 - t["safety"].astype(float) / 100
    norm["steerability"] = t["ifeval"].astype(float) / 100
    v3 = t["creative_name"].astype(str).str.contains("0-20")
    norm["creativity"] = np.where(v3, t["creative"].astype(float) / 20, t["creative"].astype(float) / 100)
    sources: dict[str, dict[str, str]] = {m: {} for m in t.index}
    imputed: dict[str, list[str]] = {m: [] for m in t.index}
    for m in t.index:
        src = rows[m].get("src")
        if not math.isnan(norm.at[m, "accuracy"]) if isinstance(norm.at[m, "accuracy"], float) else False:
            sources[m]["accuracy"] = "MMLU-Pro train-split accuracy (TIGER-AI-Lab/MMLU-Pro@f418b116)"
        if src is not None:
            for metric, col in (("helpfulness", "alpacaeval2_lc_src"), ("honesty", "truthfulqa_mc2_src"),
                                ("harmlessness", "safety_score_src"), ("steerability", "ifeval_src"),
                                ("creativity", "creative_score_src")):
                if not pd.isna(norm.at[m, metric]):
                    sources[m][metric] = short_src(src[col])
    # LLMRouter models: accuracy anchored through the model both sets share (Llama-3.1-8B-Instruct).
    anchor_lr, anchor_mp = "llama-3.1-8b-instruct", SAME_MODEL["llama-3.1-8b-instruct"]
    for m in lr_mean.index:
        if m in SAME_MODEL:
            continue
        norm.at[m, "accuracy"] = float(np.clip(mmlu_acc[anchor_mp] + lr_mean[m] - lr_mean[anchor_lr], 0.02, 0.98))
        sources[m]["accuracy"] = ("LLMRouter train mean score, offset onto the MMLU-Pro scale through "
                                  "Llama-3.1-8B-Instruct (in both sets)")
    # Impute what is still missing: from Elo where the model has it, else from accuracy.
    elo = t["elo"].astype(float)
    logp = np.log(pd.to_numeric(t["params"], errors="coerce").astype(float))
    a_p, b_p = fit_map(logp, norm["accuracy"].astype(float))
    for metric in ("accuracy", "helpfulness", "honesty", "harmlessness", "steerability", "creativity"):
        y = norm[metric].astype(float)
        a_e, b_e = fit_map(elo, y)
        a_a, b_a = fit_map(norm["accuracy"].astype(float), y) if metric != "accuracy" else (0.0, 1.0)
        for m in t.index:
            if not pd.isna(y[m]):
                continue
            if not pd.isna(elo[m]):
                v = a_e + b_e * elo[m]
            elif metric == "accuracy" and not pd.isna(logp[m]):
                # No Arena figure: MMLU-Pro accuracy grows roughly with log(parameters); clip at the
                # 10-option chance level.
                v = max(0.1, a_p + b_p * logp[m])
            elif metric != "accuracy" and not pd.isna(norm.at[m, "accuracy"]):
                v = a_a + b_a * norm.at[m, "accuracy"]
            else:
                v = float(y.median())
            norm.at[m, metric] = float(np.clip(v, 0.02, 0.98))
            imputed[m].append(metric)
    for name, *_rest in MANUAL_API:
        sources[name]["arena_elo"] = _ARENA

    cards = []
    for m in t.index:
        r = rows[m]
        kind = r["kind"]
        manual = r.get("manual")
        card: dict[str, Any] = {"name": m, "kind": kind, "provider": provider_of(m, kind)}
        aliases = list(ALIASES.get(m, []))
        if manual:
            card["provider"], extra, pin, pout = manual
            aliases += extra
            sources[m]["price"] = _VENDOR
            sources[m]["context_window"] = _VENDOR
            sources[m]["latency"] = _SPEED
        elif kind == "local":
            pin = pout = 0.0
            sources[m]["price"] = "runs locally (no per-token price)"
        elif m in MANUAL_PRICES:
            pin, pout = MANUAL_PRICES[m]
            sources[m]["price"] = _VENDOR
        elif m in prices.index:
            pin, pout = float(prices.at[m, "input_usd_per_mtok"]), float(prices.at[m, "output_usd_per_mtok"])
            sources[m]["price"] = short_src(prices.at[m, "source"])
        else:
            ref = prices[prices.index.str.contains("70b", case=False)]
            pin, pout = float(ref["input_usd_per_mtok"].median()), float(ref["output_usd_per_mtok"].median())
            imputed[m].append("price")
        card["aliases"] = aliases + [a for a, same in SAME_MODEL.items() if same == m and a not in aliases]
        card["input_usd_per_mtok"], card["output_usd_per_mtok"] = pin, pout
        ctx = r.get("ctx")
        if ctx is None or pd.isna(ctx):
            ctx = 8192
            imputed[m].append("context_window")
        elif "context_window" not in sources[m] and r.get("src") is not None:
            sources[m]["context_window"] = short_src(r["src"]["context_window_src"])
        card["context_window"] = int(ctx)
        card["supports_tools"] = bool(r.get("tools")) if not pd.isna(r.get("tools")) else False
        card["supports_json"] = bool(r.get("json")) if not pd.isna(r.get("json")) else False
        tps, ttft = r.get("tps"), r.get("ttft")
        params = r.get("params")
        params = float(params) if params is not None and not pd.isna(params) else 70.0
        tier = next(tr for tr in SIZE_TIERS if params <= tr[0])
        if tps is None or pd.isna(tps):
            tps = tier[1] if kind != "api" else 60.0
            imputed[m].append("tokens_per_s")
        if ttft is None or pd.isna(ttft):
            ttft = 0.05 if kind == "local" else (tier[2] if kind != "api" else 0.5)
            imputed[m].append("ttft_s")
        card["tokens_per_s"], card["ttft_s"] = float(tps), float(ttft)
        card["metrics"] = {k: round(float(norm.at[m, k]), 4) for k in norm.columns}
        facts = {}
        for key, col in (("params_b", "params"), ("arena_elo", "elo"), ("mt_bench", "mt")):
            v = pd.to_numeric(pd.Series([r.get(col)]), errors="coerce").iloc[0]
            if not pd.isna(v):
                facts[key] = round(float(v), 3)
        if facts:  # what cold start maps to accuracy for a model without outcomes
            card["facts"] = facts
            sources[m]["facts"] = FACTS_SRC
        if m in mmlu_dom.index:
            card["accuracy_by_domain"] = {k: round(float(v), 4) for k, v in mmlu_dom.loc[m].dropna().items()}
        lr_name = next((a for a, same in SAME_MODEL.items() if same == m), m)
        if lr_name in lr_task.index:
            card["accuracy_by_task"] = {k: round(float(v), 4) for k, v in lr_task.loc[lr_name].dropna().items()}
            sources[m]["accuracy_by_task"] = "LLMRouter train split (ulab-uiuc/LLMRouter@4e7a7969), mean task metric"
        if "accuracy_by_domain" in card:
            sources[m]["accuracy_by_domain"] = "MMLU-Pro train split per category"
        card["sources"] = sources[m]
        card["imputed"] = sorted(set(imputed[m]))
        cards.append(card)

    measured = verbosity(d)
    for card in cards:
        names = [card["name"], *card.get("aliases", [])]
        names += [a for a, same in SAME_MODEL.items() if same == card["name"]]
        v = next((measured[n] for n in names if n in measured), None)
        if v is not None:
            card["verbosity"] = round(v, 3)
            card["sources"]["verbosity"] = VERBOSITY_SRC

    out = {
        "format": "optiroute-registry",
        "version": 1,
        "sources": {
            "model_metrics": "../shared/data/model_metrics.csv (per-cell *_src columns kept in each card)",
            "mmlu_pro": "TIGER-AI-Lab/MMLU-Pro @ f418b116 / ff991b5b, Apache-2.0 (train split only)",
            "llmrouter": "ulab-uiuc/LLMRouter @ 4e7a7969, MIT (train split only)",
            "prices": "litellm price tables (late 2024) via ../shared/data/*/prices.csv; manual entries say so",
        },
        "cards": cards,
    }
    OUT.write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"wrote {len(cards)} cards to {OUT} ({OUT.stat().st_size / 1e3:.0f} KB)")


if __name__ == "__main__":
    main()
