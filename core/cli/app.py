"""The ``optiroute`` command line: route, explain, fit, models list/add/remove, demo.

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
from optiroute.catalog.cold_start import predict_card_domains
from optiroute.catalog.registry import ModelCard, Registry
from optiroute.cli.batch import route_batch, select_models
from optiroute.cli.bench import bench
from optiroute.cli.common import (
    CandOpt,
    OneLineErrors,
    PrefsOpt,
    RegistryOpt,
    RouterOpt,
    check_int,
    check_real,
    console,
    fail,
    load_router,
    parse_candidates,
    parse_preferences,
    writable_file,
)
from optiroute.cli.demo import run_demo
from optiroute.cli.onboard import onboard_cmd
from optiroute.errors import ArtifactNotFoundError, OptiRouteError, RegistryError
from optiroute.quality.base import predictor_class
from optiroute.router.router import Router
from optiroute.schema.files import CAPS, read_capped
from optiroute.schema.numbers import MAX_PRICE_PER_MTOK, MAX_TOKENS

app = typer.Typer(help="Route every LLM call to the best model for your preferences.", cls=OneLineErrors,
                  no_args_is_help=True, pretty_exceptions_enable=False)
models_app = typer.Typer(help="List, add and remove model cards.", no_args_is_help=True)
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
        typer.Option(help="Quality predictor: auto (best k-fold cross-validated AIQ on train), knn, routoo, mlp, "
                          "task (needs the task column), mean or stack (a blend learned out of fold)."),
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


@models_app.command("list")
def models_list(router_dir: RouterOpt = None, registry: RegistryOpt = None) -> None:
    """List the model cards (price, context, tools, accuracy)."""
    try:
        reg = load_router(router_dir, registry).registry
    except OptiRouteError as exc:
        fail(exc)
        return
    table = Table("name", "kind", "$ in/out per Mtok", "context", "tools", "json", "accuracy", "aliases")
    for c in reg:
        table.add_row(c.name, c.kind, f"{c.input_usd_per_mtok:g}/{c.output_usd_per_mtok:g}", str(c.context_window),
                      "yes" if c.supports_tools else "no", "yes" if c.supports_json else "no",
                      f"{c.metrics.get('accuracy', 0):.2f}", ", ".join(c.aliases[:3]))
    console.print(table)


def _load_or_default(registry: Path) -> Any:
    return Registry.from_file(registry) if registry.exists() else Registry.default()


def _card_file(card: Path) -> dict[str, Any]:
    """One model card from a JSON/YAML file, read untrusted (size cap, safe loader)."""
    import yaml

    try:
        data = yaml.safe_load(read_capped(card, CAPS["registry.json"], error=RegistryError).decode("utf-8"))
    except ArtifactNotFoundError:
        raise RegistryError(f"Card file {str(card)!r} does not exist.") from None
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError, ValueError) as exc:
        raise RegistryError(f"Card file {str(card)!r} cannot be parsed: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise RegistryError(f"Card file {str(card)!r} must hold one model card: a mapping of field names to values.")
    return data


@models_app.command("add")
def models_add(
    registry: Annotated[
        Path, typer.Option("--registry", help="Registry file to write (created from the bundled one if missing).")
    ],
    card: Annotated[Path | None, typer.Option(help="A JSON/YAML file with one model card.")] = None,
    name: Annotated[str | None, typer.Option(help="Model name (without --card).")] = None,
    input_price: Annotated[float | None, typer.Option(help="USD per million input tokens.")] = None,
    output_price: Annotated[float | None, typer.Option(help="USD per million output tokens.")] = None,
    context_window: Annotated[int, typer.Option()] = 8192,
    tools: Annotated[bool, typer.Option("--tools/--no-tools")] = True,
    replace: Annotated[bool, typer.Option(help="Replace an existing card of that name.")] = False,
    cold_start: Annotated[
        bool,
        typer.Option("--cold-start/--no-cold-start",
                     help="Impute per-domain accuracy from the card's metrics and price when the card has no "
                          "measured accuracy (recorded in 'imputed')."),
    ] = True,
    arena_elo: Annotated[
        float | None, typer.Option(help="The model's Chatbot Arena Elo (a card fact cold start uses).")
    ] = None,
    params_b: Annotated[
        float | None, typer.Option(help="The model's parameters in billions (a card fact cold start uses).")
    ] = None,
) -> None:
    """Add a model card to a registry file (the file is only written when the card and the whole
    registry are valid, and atomically)."""
    if card is None:
        if not name or not name.strip() or input_price is None or output_price is None:
            fail("give --card FILE, or --name, --input-price and --output-price")
        check_real(input_price, "--input-price", lo=0.0, hi=MAX_PRICE_PER_MTOK)
        check_real(output_price, "--output-price", lo=0.0, hi=MAX_PRICE_PER_MTOK)
        check_int(context_window, "--context-window", lo=1, hi=MAX_TOKENS)
    check_real(arena_elo, "--arena-elo", lo=0.0, hi=10_000.0)
    check_real(params_b, "--params-b", lo=0.0, lo_open=True, hi=1e6)
    writable_file(registry, "--registry")
    try:
        reg = _load_or_default(registry)
        if card is not None:
            new = ModelCard(**_card_file(card))
        else:
            assert name is not None
            base = reg.resolve(name)  # a neutral prior to start from, with a warning if unknown
            new = ModelCard(**{**base.model_dump(), "name": name, "aliases": [], "input_usd_per_mtok": input_price,
                               "output_usd_per_mtok": output_price, "context_window": context_window,
                               "supports_tools": tools, "prior": False})
        given = {k: v for k, v in (("arena_elo", arena_elo), ("params_b", params_b)) if v is not None}
        if given:
            new = ModelCard(**{**new.model_dump(), "facts": {**new.facts, **given},
                               "sources": {**new.sources, "facts": "given to optiroute models add"}})
        imputed = cold_start and not new.accuracy_by_domain and (
            "accuracy" in new.imputed or "accuracy" not in new.sources)
        if imputed:
            new = predict_card_domains(new, reg)
        reg.add(new, replace=replace)  # validates the card again
        reg.to_file(registry)
    except (OptiRouteError, OSError) as exc:
        fail(exc)
        return
    console.print(f"Added {new.name} to {registry} ({len(reg)} models).")
    if imputed:
        console.print(f"Per-domain accuracy imputed from its card (cold start; overall {new.metrics['accuracy']:.3f}): "
                      "measure it with `optiroute onboard` when you can run the model.")


@models_app.command("remove")
def models_remove(
    name: Annotated[str, typer.Argument(help="Model name or alias.")],
    registry: Annotated[Path, typer.Option("--registry", help="Registry file to edit.")],
) -> None:
    """Remove a model card from a registry file."""
    writable_file(registry, "--registry")
    try:
        reg = _load_or_default(registry)
        reg.remove(name)
        reg.to_file(registry)
    except (OptiRouteError, OSError) as exc:
        fail(exc)
        return
    console.print(f"Removed {name} from {registry} ({len(reg)} models).")


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
