"""The ``optiroute`` command line: route, explain, fit, models (in :mod:`optiroute.cli.models`), demo.

Built on Typer with Rich output; anything that takes more than a second shows a progress bar or
spinner. Every command checks its options before doing any work and exits with status 2 and a
one-line message (no traceback) on bad input: an OptiRouteError, a value Click rejects, an output
path that cannot be written. No command writes an invalid file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

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
from optiroute.cli.render import Col, print_json, print_table
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
        print_json(d.summary())
        return
    console.print(f"[bold green]{escape(d.model)}[/]  (runner-up: {escape(d.runner_up or '-')})", soft_wrap=True)
    console.print(d.reason, markup=False, highlight=False)


#: Sub-score columns of ``explain``: short header per preference dimension.
_DIM_HEADERS = {"accuracy": "acc", "cost": "cost", "latency": "lat", "harmlessness": "harm", "honesty": "hon",
                "helpfulness": "help", "steerability": "steer", "creativity": "creat"}


def _f(fmt: str) -> Any:
    return lambda v: format(v, fmt)


@app.command()
def explain(
    prompt: Annotated[str, typer.Argument(help="The prompt text ('-' reads standard input).")],
    preferences: PrefsOpt = "balanced",
    candidates: CandOpt = None,
    router_dir: RouterOpt = None,
    registry: RegistryOpt = None,
    top: Annotated[int, typer.Option(help="Rows of the score tables.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole decision as JSON.")] = False,
) -> None:
    """Show the full decision: task profile, every candidate's predictions and sub-scores, neighbours."""
    check_int(top, "--top", lo=1, hi=10_000)
    try:
        text = sys.stdin.read() if prompt == "-" else prompt
        d = _decide(text, router_dir, registry, preferences, candidates)
    except OptiRouteError as exc:
        fail(exc)
        return
    if as_json:
        print_json(d.model_dump(mode="json"))
        return
    p = d.profile
    console.print(f"task [bold]{p.task_type}[/] ({p.task_confidence:.2f}), domain [bold]{p.domain}[/] "
                  f"({p.domain_confidence:.2f}), complexity {p.complexity:.2f}, ~{p.est_input_tokens} input and "
                  f"~{p.est_output_tokens} output tokens; confidence {d.confidence:.2f}")
    shown = d.scores[:top]
    rows = [{"model": s.model, "score": s.score, "quality": s.predicted_quality, "cost": s.predicted_cost_usd,
             "latency": s.predicted_latency_s, "excluded": "excluded" if s.excluded else "",
             **{f"sub:{k}": v for k, v in s.sub_scores.items()}} for s in shown]
    print_table(console, [
        Col("model", "model", name=True),
        Col("score", "score", "preference-weighted total (highest wins)", _f(".3f"), justify="right"),
        Col("quality", "quality", "predicted answer quality 0..1", _f(".2f"), justify="right"),
        Col("cost", "$/call", "predicted cost in USD", lambda v: f"{v:.2g}", justify="right"),
        Col("latency", "latency s", "estimated seconds to the full answer", _f(".1f"), justify="right"),
        Col("excluded", ""),
    ], rows, title="Predictions")
    dims = [k for k in _DIM_HEADERS if any(k in s.sub_scores for s in shown)]
    dims += sorted({k for s in shown for k in s.sub_scores} - set(dims))
    relative = [k for k in ("accuracy", "cost", "latency") if k in dims]
    card = [k for k in dims if k not in relative]
    note = []
    if relative:
        note.append(f"{', '.join(_DIM_HEADERS[k] for k in relative)}: relative to these candidates for this prompt "
                    "(adding or removing one changes them)")
    if card:
        note.append("; ".join(f"{_DIM_HEADERS.get(k, k)} = {k}" for k in card) + ": the model card's own metric")
    print_table(console, [Col("model", "model", name=True)] + [
        Col(f"sub:{k}", _DIM_HEADERS.get(k, k), fmt=_f(".2f"), justify="right") for k in dims
    ], rows, title="Sub-scores (0 = worst, 1 = best)")
    if note:
        console.print(f"[dim]{escape('. '.join(note))}.[/]", highlight=False)
    for s in shown:
        if s.excluded:
            console.print(f"excluded [bold]{escape(s.model)}[/]: {escape(s.excluded)}", soft_wrap=False)
    if d.neighbours:
        console.print("nearest stored prompts: " + ", ".join(
            f"{escape(n.prompt_id)} ({escape(n.task or '?')}, {n.similarity:.2f})" for n in d.neighbours),
            highlight=False)
    console.print(f"[bold green]{escape(d.model)}[/]: {escape(d.reason)}")


@app.command()
def fit(
    prompts: Annotated[Path, typer.Option(help="prompts.csv[.gz] (prompt_id, split, task, text) or a data directory.")],
    outcomes: Annotated[Path | None, typer.Option(help="outcomes.csv[.gz]; default: beside prompts.")] = None,
    prices: Annotated[Path | None, typer.Option(help="prices.csv; default: beside prompts if present.")] = None,
    out: Annotated[Path, typer.Option(help="Directory to save the fitted router into.")] = Path("router"),
    predictor: Annotated[
        str,
        typer.Option(help="Quality predictor: auto (best k-fold cross-validated AIQ on train), knn, routoo, mlp, "
                          "task (needs the task column), mean or stack (a blend learned out of fold)."),
    ] = "auto",
    strip_shared: Annotated[
        bool,
        typer.Option("--strip-shared/--keep-shared",
                     help="Learn the text more than half of the training prompts share (a system prompt, few-shot "
                          "examples, a template) and route on what varies (default), or embed prompts as given."),
    ] = True,
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
        router = Router.fit(prompts, outcomes, prices, show_progress=True, predictor=predictor,
                            strip_shared=strip_shared)
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
    shared = router.shared_text
    console.print(f"Shared text: {shared.summary()}" if shared is not None else
                  "Shared text: kept (--keep-shared); prompts are embedded as given")


@app.command()
def demo(
    local: Annotated[
        bool, typer.Option("--local/--no-local", help="Also answer one prompt with a local model.")
    ] = True,
    show_all: Annotated[
        bool, typer.Option("--all", help="Print every decision with its runner-up and reason.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print every decision as JSON (no local answer).")] = False,
) -> None:
    """Route real prompts under several profiles on the bundled default (no API key, no network)."""
    try:
        run_demo(console, local=local and not as_json, show_all=show_all, as_json=as_json)
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
