"""What every ``optiroute`` command shares: the consoles, option types, the one-line failure, the
checks of numeric options, and reading preferences, candidates and routers from the command line.

Every command checks its options before doing any work and fails the same way on bad input: one red
line on standard error and exit status 2, never a traceback. That holds for the values Click itself
rejects too (a word where a number belongs, an unknown option): :class:`OneLineErrors` prints them on
one line instead of Click's usage box.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

from optiroute.catalog.registry import Registry
from optiroute.cli.render import collected_warnings
from optiroute.errors import InvalidPreferencesError, OptiRouteError
from optiroute.router.router import Router
from optiroute.schema.files import load_json
from optiroute.schema.numbers import integer, real
from optiroute.schema.preferences import coerce_preferences

__all__ = ["CandOpt", "OneLineErrors", "PrefsOpt", "RegistryOpt", "RouterOpt", "check_int", "check_real",
           "check_url", "console", "err", "fail", "fail_line", "load_router", "parse_candidates", "parse_preferences",
           "writable_file"]

console = Console()
err = Console(stderr=True)

RouterOpt = Annotated[Path | None, typer.Option("--router", "-r", help="A saved router directory (default: bundled).")]
RegistryOpt = Annotated[Path | None, typer.Option("--registry", help="A registry file (.json/.yaml) of model cards.")]
PrefsOpt = Annotated[str, typer.Option("--preferences", "-p", help="Profile name or JSON weights.")]
CandOpt = Annotated[str | None, typer.Option("--candidates", "-c", help="Comma-separated model names.")]


class OneLineErrors(TyperGroup):
    """The command group: Click's own usage errors (a bad option value, an unknown option, a missing
    one) become one line on standard error with exit status 2, like every OptiRoute error; warnings
    raised while a command runs become one styled line each on standard error, after its output."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, windows_expand_args: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            with collected_warnings(err):
                return super().main(args, prog_name, complete_var, standalone_mode, windows_expand_args, **extra)
        try:
            with collected_warnings(err):
                rv = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except Exception as exc:
            kinds = {c.__name__ for c in type(exc).__mro__}
            if "NoArgsIsHelpError" in kinds:
                console.print(exc.format_message(), markup=False, highlight=False)  # type: ignore[attr-defined]
            elif kinds & {"ClickException", "TyperException"}:  # Typer vendors Click's exceptions
                fail_line(exc.format_message())  # type: ignore[attr-defined]
            elif "Abort" in kinds:
                fail_line("aborted")
                sys.exit(1)
            else:
                raise
            sys.exit(getattr(exc, "exit_code", 2))
        sys.exit(rv if isinstance(rv, int) else 0)


def fail_line(message: object) -> None:
    """Print ``message`` as one red ``error:`` line on standard error (never wrapped)."""
    err.print("[bold red]error:[/] ", end="", soft_wrap=True)
    err.print(" ".join(str(message).split()), markup=False, highlight=False, soft_wrap=True)


def fail(exc: Exception | str) -> NoReturn:
    """Print ``exc`` as one red line and exit with status 2 (no traceback)."""
    fail_line(exc)
    raise typer.Exit(code=2)


def check_real(value: Any, option: str, *, lo: float | None = None, hi: float | None = None,
               lo_open: bool = False) -> Any:
    """A numeric option checked by the validation layer (``None`` passes), else :func:`fail`."""
    if value is None:
        return None
    try:
        return real(value, option, lo=lo, hi=hi, lo_open=lo_open)
    except OptiRouteError as exc:
        fail(exc)


def check_int(value: Any, option: str, *, lo: int | None = None, hi: int | None = None) -> Any:
    """An integer option checked by the validation layer (``None`` passes), else :func:`fail`."""
    if value is None:
        return None
    try:
        return integer(value, option, lo=lo, hi=hi)
    except OptiRouteError as exc:
        fail(exc)


def check_url(value: str | None, option: str) -> str | None:
    """An ``http(s)://`` base URL (``None`` passes), else :func:`fail`."""
    if value is None:
        return None
    if not value.startswith(("http://", "https://")) or len(value) <= len("https://"):
        fail(f"{option} must be an http:// or https:// URL, got {value!r}.")
    return value


def writable_file(path: Path, option: str) -> Path:
    """An output file path that can be written: not a directory, its parent not a file."""
    if path.is_dir():
        fail(f"{option} {str(path)!r} is a directory; give a file name.")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                fail(f"{option} {str(path)!r} lies under {str(parent)!r}, which is a file.")
            break
    return path


def parse_preferences(value: str) -> Any:
    """A profile name, or JSON weights when the value starts with ``{``; checked (exit 2 when bad)."""
    value = value.strip()
    try:
        parsed: Any = value
        if value.startswith("{"):
            parsed = load_json(value, label="--preferences", error=InvalidPreferencesError)
        coerce_preferences(parsed)  # an unknown profile or a bad weight fails before any work
    except OptiRouteError as exc:
        fail(exc)
    return parsed


def load_router(router_dir: Path | None, registry: Path | None) -> Router:
    """The saved router in ``router_dir`` (default: the bundled one), with ``registry``'s cards if given."""
    reg = Registry.from_file(registry) if registry is not None else None
    if router_dir is not None:
        return Router.load(router_dir, **({"registry": reg} if reg else {}))
    return Router.default(registry=reg)


def parse_candidates(value: str | None) -> list[str] | None:
    """Comma-separated model names (``None`` for the default pool)."""
    return [c.strip() for c in value.split(",") if c.strip()] if value else None
