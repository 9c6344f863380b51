"""What every ``optiroute`` command shares: the consoles, option types, the one-line failure, and
reading preferences, candidates and routers from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from optiroute.catalog.registry import Registry
from optiroute.router.router import Router

__all__ = ["CandOpt", "PrefsOpt", "RegistryOpt", "RouterOpt", "console", "err", "fail", "load_router",
           "parse_candidates", "parse_preferences"]

console = Console()
err = Console(stderr=True)

RouterOpt = Annotated[Path | None, typer.Option("--router", "-r", help="A saved router directory (default: bundled).")]
RegistryOpt = Annotated[Path | None, typer.Option("--registry", help="A registry file (.json/.yaml) of model cards.")]
PrefsOpt = Annotated[str, typer.Option("--preferences", "-p", help="Profile name or JSON weights.")]
CandOpt = Annotated[str | None, typer.Option("--candidates", "-c", help="Comma-separated model names.")]


def fail(exc: Exception) -> NoReturn:
    """Print ``exc`` as one red line and exit with status 2 (no traceback)."""
    err.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(code=2)


def parse_preferences(value: str) -> Any:
    """A profile name, or JSON weights when the value starts with ``{``."""
    value = value.strip()
    if value.startswith("{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            fail(ValueError(f"--preferences is not valid JSON: {exc}"))
    return value


def load_router(router_dir: Path | None, registry: Path | None) -> Router:
    """The saved router in ``router_dir`` (default: the bundled one), with ``registry``'s cards if given."""
    reg = Registry.from_file(registry) if registry is not None else None
    if router_dir is not None:
        return Router.load(router_dir, **({"registry": reg} if reg else {}))
    return Router.default(registry=reg)


def parse_candidates(value: str | None) -> list[str] | None:
    """Comma-separated model names (``None`` for the default pool)."""
    return [c.strip() for c in value.split(",") if c.strip()] if value else None
