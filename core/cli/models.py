"""``optiroute models``: list, add, update and remove model cards.

``list`` fits an 80-column terminal (full model names, never cut; aliases and sources are in
``--json``), ``add`` stores only the figures it is given (a dimension nobody gave is marked unknown,
never a default that looks like a fact), ``update`` re-reads prices, long-context tiers and context
windows from the installed price library and prints what changed.
"""

from __future__ import annotations

import json
import warnings
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from optiroute.catalog.cold_start import predict_card_domains
from optiroute.catalog.current import refresh_prices
from optiroute.catalog.prices import library_price, library_version
from optiroute.catalog.priors import provider_of
from optiroute.catalog.registry import ModelCard, Registry
from optiroute.cli.common import (
    RegistryOpt,
    RouterOpt,
    check_int,
    check_real,
    console,
    fail,
    load_router,
    writable_file,
)
from optiroute.errors import ArtifactNotFoundError, OptiRouteError, RegistryError
from optiroute.schema.files import CAPS, read_capped
from optiroute.schema.numbers import MAX_PRICE_PER_MTOK, MAX_TOKENS

__all__ = ["card_row", "models_app"]

models_app = typer.Typer(help="List, add, update and remove model cards.", no_args_is_help=True)


def _tokens(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.3g}M"
    return f"{round(n / 1000)}k" if n >= 1000 else str(n)


def card_row(c: ModelCard) -> dict[str, Any]:
    """One card as the JSON ``models list --json`` prints."""
    return {
        "name": c.name, "aliases": list(c.aliases), "provider": c.provider, "kind": c.kind,
        "input_usd_per_mtok": c.input_usd_per_mtok, "output_usd_per_mtok": c.output_usd_per_mtok,
        "price_tiers": [t.model_dump() for t in c.price_tiers], "context_window": c.context_window,
        "supports_tools": c.supports_tools, "supports_json": c.supports_json,
        "accuracy": c.metrics.get("accuracy") if c.known("accuracy") else None,
        "unknown": list(c.unknown), "facts": dict(c.facts), "facts_date": c.facts_date,
        "price_source": c.sources.get("price"),
    }


@models_app.command("list")
def models_list(
    router_dir: RouterOpt = None, registry: RegistryOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every card as JSON (aliases, sources).")] = False,
) -> None:
    """List the model cards: price, context window, tools/JSON, accuracy and the date of their facts."""
    try:
        reg = load_router(router_dir, registry).registry
    except OptiRouteError as exc:
        fail(exc)
        return
    if as_json:
        typer.echo(json.dumps([card_row(c) for c in reg], indent=1))
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), show_edge=False,
                  caption="$ = USD per million input/output tokens; T/J = tools/JSON; acc ? = unknown")
    table.add_column("model", overflow="fold", min_width=20)  # a long name folds, never cut
    table.add_column("$ in/out", no_wrap=True, justify="right", min_width=11)
    table.add_column("ctx", no_wrap=True, justify="right", min_width=5)
    table.add_column("T/J", no_wrap=True, min_width=3)
    table.add_column("acc", no_wrap=True, justify="right", min_width=4)
    table.add_column("facts", no_wrap=True, min_width=10)
    for c in reg:
        acc = f"{c.metrics['accuracy']:.2f}" if c.known("accuracy") and "accuracy" in c.metrics else "?"
        caps = ("T" if c.supports_tools else "-") + ("J" if c.supports_json else "-")
        table.add_row(c.name, f"{c.input_usd_per_mtok:g}/{c.output_usd_per_mtok:g}", _tokens(c.context_window),
                      caps, acc, c.facts_date or "-")
    console.print(table)


def _load_or_default(registry: Path) -> Registry:
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


def _new_card(name: str, input_price: float | None, output_price: float | None, context_window: int | None,
              tools: bool, facts: dict[str, float]) -> ModelCard:
    """A card with only what was given or what the price library states; nothing else is made up."""
    provider = provider_of(name)
    lib = library_price(name, provider if provider != "unknown" else None)
    sources: dict[str, str] = {}
    fields: dict[str, Any] = {"name": name, "provider": provider, "supports_tools": tools,
                              "facts": facts, "metrics": {}, "facts_date": date.today().isoformat()}
    imputed: list[str] = []
    if input_price is not None and output_price is not None:
        fields.update(input_usd_per_mtok=input_price, output_usd_per_mtok=output_price)
        sources["price"] = "given to optiroute models add"
    elif lib is not None:
        fields.update(lib.card_fields())
        sources["price"] = lib.source
    else:
        raise RegistryError(f"The price library does not know {name!r}: give --input-price and --output-price.")
    if context_window is not None:
        fields["context_window"] = context_window
        sources["context_window"] = "given to optiroute models add"
    elif lib is not None and lib.context_window:
        fields["context_window"] = lib.context_window
        sources["context_window"] = lib.source
    else:
        imputed.append("context_window")  # the field's placeholder; cold start treats it as missing
    if facts:
        sources.update({k: "given to optiroute models add" for k in facts})
    fields.update(sources=sources, imputed=imputed)
    return ModelCard(**fields)


@models_app.command("add")
def models_add(
    registry: Annotated[
        Path, typer.Option("--registry", help="Registry file to write (created from the bundled one if missing).")
    ],
    card: Annotated[Path | None, typer.Option(help="A JSON/YAML file with one model card.")] = None,
    name: Annotated[str | None, typer.Option(help="Model name (without --card).")] = None,
    input_price: Annotated[float | None, typer.Option(
        help="USD per million input tokens (default: the price library's, if it knows the model).")] = None,
    output_price: Annotated[float | None, typer.Option(help="USD per million output tokens.")] = None,
    context_window: Annotated[int | None, typer.Option(
        help="Tokens of prompt + answer (default: the price library's, else unknown).")] = None,
    tools: Annotated[bool, typer.Option("--tools/--no-tools")] = True,
    replace: Annotated[bool, typer.Option(help="Replace an existing card of that name.")] = False,
    cold_start: Annotated[
        bool,
        typer.Option("--cold-start/--no-cold-start",
                     help="Impute per-domain accuracy from the card's facts and price when the card has no "
                          "measured accuracy (recorded in 'imputed')."),
    ] = True,
    arena_elo: Annotated[
        float | None, typer.Option(help="The model's Chatbot Arena Elo (a card fact cold start uses).")
    ] = None,
    params_b: Annotated[
        float | None, typer.Option(help="The model's parameters in billions (a card fact cold start uses).")
    ] = None,
    gpqa: Annotated[float | None, typer.Option(help="Published GPQA Diamond accuracy, 0..1 (sets its level).")] = None,
    mmlu_pro: Annotated[float | None, typer.Option("--mmlu-pro", help="Published MMLU-Pro accuracy, 0..1.")] = None,
) -> None:
    """Add a model card to a registry file (the file is only written when the card and the whole
    registry are valid, and atomically). Only given figures are stored: other quality dimensions are
    marked unknown and score as neutral."""
    if card is None:
        if not name or not name.strip() or (input_price is None) != (output_price is None):
            fail("give --card FILE, or --name (with --input-price and --output-price unless the price "
                 "library knows the model)")
        check_real(input_price, "--input-price", lo=0.0, hi=MAX_PRICE_PER_MTOK)
        check_real(output_price, "--output-price", lo=0.0, hi=MAX_PRICE_PER_MTOK)
        check_int(context_window, "--context-window", lo=1, hi=MAX_TOKENS)
    check_real(arena_elo, "--arena-elo", lo=0.0, hi=10_000.0)
    check_real(params_b, "--params-b", lo=0.0, lo_open=True, hi=1e6)
    check_real(gpqa, "--gpqa", lo=0.0, hi=1.0)
    check_real(mmlu_pro, "--mmlu-pro", lo=0.0, hi=1.0)
    writable_file(registry, "--registry")
    given = {k: float(v) for k, v in (("arena_elo", arena_elo), ("params_b", params_b), ("gpqa", gpqa),
                                      ("mmlu_pro", mmlu_pro)) if v is not None}
    try:
        reg = _load_or_default(registry)
        if card is not None:
            new = ModelCard(**_card_file(card))
            if given:
                new = ModelCard(**{**new.model_dump(), "facts": {**new.facts, **given}})
        else:
            assert name is not None
            new = _new_card(name, input_price, output_price, context_window, tools, given)
        imputed = cold_start and not new.accuracy_by_domain and (
            "accuracy" in new.imputed or "accuracy" not in new.sources)
        if imputed:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
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
    if new.unknown:
        console.print(f"No figure given for {', '.join(new.unknown)}: marked unknown (neutral when scoring).")


@models_app.command("update")
def models_update(
    registry: Annotated[Path, typer.Option(
        "--registry", help="Registry file to refresh (created from the bundled one if missing).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would change; write nothing.")] = False,
) -> None:
    """Re-read prices, long-context tiers and context windows from the installed price library
    (genai-prices) for every card it knows; print what changed and record today's date on those cards."""
    writable_file(registry, "--registry")
    try:
        reg = _load_or_default(registry)
        changes = refresh_prices(reg)
        if not dry_run:
            reg.to_file(registry)
    except (OptiRouteError, OSError) as exc:
        fail(exc)
        return
    for ch in changes:
        console.print(f"{ch.model}: {ch.field} {ch.old} -> {ch.new}", soft_wrap=True)
    verb = "would change" if dry_run else "changed"
    console.print(f"genai-prices {library_version()}: {len(changes)} field(s) {verb}"
                  + ("" if dry_run else f"; wrote {registry}") + ".")


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
