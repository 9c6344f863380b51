"""The ``optiroute`` command line: route, explain, fit, models (in :mod:`optiroute.cli.models`), demo.

Built on Typer with Rich output; anything that takes more than a second shows a progress bar or
spinner. Every command checks its options before doing any work and exits with status 2 and a
one-line message (no traceback) on bad input: an OptiRouteError, a value Click rejects, an output
path that cannot be written. No command writes an invalid file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from optiroute.analysis.prompts import to_routable
from optiroute.cli.batch import route_batch, select_models
from optiroute.cli.bench import bench
from optiroute.cli.common import (
    CandOpt,
    OneLineErrors,
    PrefsOpt,
    RegistryOpt,
    RouterOpt,
    check_int,
    console,
    fail,
    load_router,
    parse_candidates,
    parse_preferences,
    writable_file,
)
from optiroute.cli.demo import run_demo
from optiroute.cli.models import models_app
from optiroute.cli.onboard import onboard_cmd
from optiroute.errors import OptiRouteError
from optiroute.quality.base import predictor_class
from optiroute.router.router import Router

app = typer.Typer(help="Route every LLM call to the best model for your preferences.", cls=OneLineErrors,
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(models_app, name="models")


def _decide(prompt: str, router_dir: Path | None, registry: Path | None, preferences: str,
            candidates: str | None) -> Any:
    prefs = parse_preferences(preferences)  # checked before anything loads
    to_routable(prompt)
    with console.status("Routing (loads the embedder and store on first use)..."):
        router = load_router(router_dir, registry)
        return router.decide(prompt, preferences=prefs, candidates=parse_candidates(candidates))


@app.command()
def route(
    prompt: Annotated[str, typer.Argument(help="The prompt text ('-' reads standard input).")],
    preferences: PrefsOpt = "balanced",
    candidates: CandOpt = None,
    router_dir: RouterOpt = None,
    registry: RegistryOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision summary as JSON.")] = False,
) -> None:
    """Choose a model for one prompt and say why."""
    try:
        text = sys.stdin.read() if prompt == "-" else prompt
        d = _decide(text, router_dir, registry, preferences, candidates)
    except OptiRouteError as exc:
        fail(exc)
        return
    if as_json:
        console.print_json(json.dumps(d.summary()))
        return
    console.print(f"[bold green]{d.model}[/]  (runner-up: {d.runner_up or '-'})")
    console.print(d.reason)


@app.command()
def explain(
    prompt: Annotated[str, typer.Argument(help="The prompt text ('-' reads standard input).")],
    preferences: PrefsOpt = "balanced",
    candidates: CandOpt = None,
    router_dir: RouterOpt = None,
    registry: RegistryOpt = None,
    top: Annotated[int, typer.Option(help="Rows of the score table.")] = 10,
) -> None:
    """Show the full decision: task profile, every candidate's sub-scores, neighbours."""
    check_int(top, "--top", lo=1, hi=10_000)
    try:
        text = sys.stdin.read() if prompt == "-" else prompt
        d = _decide(text, router_dir, registry, preferences, candidates)
    except OptiRouteError as exc:
        fail(exc)
        return
    p = d.profile
    console.print(f"task [bold]{p.task_type}[/] ({p.task_confidence:.2f}), domain [bold]{p.domain}[/] "
                  f"({p.domain_confidence:.2f}), complexity {p.complexity:.2f}, ~{p.est_input_tokens} "
                  f"input tokens, confidence {d.confidence:.2f}")
    dims = sorted({k for s in d.scores for k in s.sub_scores})
    table = Table("model", "score", "quality", "cost $", "latency s", *dims, "excluded")
    for s in d.scores[:top]:
        table.add_row(s.model, f"{s.score:.3f}", f"{s.predicted_quality:.2f}", f"{s.predicted_cost_usd:.2g}",
                      f"{s.predicted_latency_s:.1f}", *(f"{s.sub_scores.get(k, 0):.2f}" for k in dims),
                      s.excluded or "")
    console.print(table)
    if d.neighbours:
        console.print("neighbours: " + ", ".join(f"{n.prompt_id} ({n.task}, {n.similarity:.2f})" for n in d.neighbours))
    console.print(f"[bold green]{d.model}[/]: {d.reason}")


@app.command()
def fit(
    prompts: Annotated[Path, typer.Option(help="prompts.csv[.gz] (prompt_id, split, task, text) or a data directory.")],
    outcomes: Annotated[Path | None, typer.Option(help="outcomes.csv[.gz]; default: beside prompts.")] = None,
    prices: Annotated[Path | None, typer.Option(help="prices.csv; default: beside prompts if present.")] = None,
    out: Annotated[Path, typer.Option(help="Directory to save the fitted router into.")] = Path("router"),
    predictor: Annotated[
        str,
        typer.Option(help="Quality predictor: auto (best validation AIQ on a split of train), knn, routoo, mlp or "
                          "task (needs the task column)."),
    ] = "auto",
) -> None:
    """Fit a router on per-prompt outcomes and save it."""
    base = prompts if prompts.is_dir() else prompts.parent
    outcomes = outcomes or base
    if prices is None and (base / "prices.csv").exists():
        prices = base / "prices.csv"
    if out.exists() and not out.is_dir():
        fail(f"--out {str(out)!r} is a file; give a directory to save the router into.")
    writable_file(out / "manifest.json", "--out")
    try:
        if predictor != "auto":
            predictor_class(predictor)  # a typo fails before the data is read
        console.print("Embedding training prompts...")
        router = Router.fit(prompts, outcomes, prices, show_progress=True, predictor=predictor)
        with console.status("Building the Annoy index and saving..."):
            router.save(out)
    except (OptiRouteError, OSError) as exc:
        fail(exc)
        return
    pred = router.predictor
    how = (pred.selection or {}).get("validation_aiq")
    chosen = getattr(pred, "kind", "knn") or "knn"
    if how:
        chosen += " (validation AIQ: " + ", ".join(f"{k} {v:.3f}" for k, v in how.items()) + ")"
    console.print(f"Saved a router over {len(router.models)} models and {len(router.index or [])} prompts to {out}; "
                  f"quality predictor: {chosen}")


@app.command()
def demo(
    local: Annotated[
        bool, typer.Option("--local/--no-local", help="Also answer one prompt with a local model.")
    ] = True,
) -> None:
    """Route real prompts under several profiles on the bundled default (no API key, no network)."""
    try:
        run_demo(console, local=local)
    except OptiRouteError as exc:
        fail(exc)


app.command("bench")(bench)
app.command("select-models")(select_models)
app.command("route-batch")(route_batch)
app.command("onboard")(onboard_cmd)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
