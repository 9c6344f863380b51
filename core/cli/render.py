"""How the ``optiroute`` command prints: tables that fit the terminal, JSON, and warnings as lines.

Every table a command prints goes through :func:`print_table`. It never cuts a model name: a table
whose natural width fits the console is drawn as a table (columns wrap at spaces only where a
column says so); one that does not fit is printed vertically, one block per row (the row's name on
its own line, then ``label value`` pairs wrapped to the width). Headers stay short and a legend line
says what each abbreviation means, so an 80-column terminal shows whole words.

:func:`collected_warnings` turns Python warnings raised during a command into one styled line each
on standard error (what happened and how to fix it), grouped and deduplicated, instead of Python's
``file:line: Category: message`` form with a source line.
"""

from __future__ import annotations

import json
import textwrap
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

__all__ = ["Col", "collected_warnings", "print_json", "print_table", "warning_lines"]


@dataclass(frozen=True)
class Col:
    """One column: ``key`` into each row dict, a short ``header`` and what the header means.

    ``name`` marks a column holding model names (never cut, never wrapped); ``wrap`` lets a long text
    column wrap at spaces inside the table.
    """

    key: str
    header: str
    meaning: str = ""
    fmt: Callable[[Any], str] = str
    name: bool = False
    wrap: bool = False
    justify: str = "left"

    def cell(self, row: dict[str, Any]) -> str:
        value = row.get(self.key)
        return "" if value is None else self.fmt(value)


def legend(cols: Sequence[Col]) -> str:
    """``header = meaning`` for every column that has a meaning, joined with ``; ``."""
    return "; ".join(f"{c.header} = {c.meaning}" for c in cols if c.meaning)


def _table(cols: Sequence[Col], rows: Sequence[dict[str, Any]], title: str | None) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, title_justify="left",
                  title_style="bold")
    for c in cols:
        table.add_column(c.header, justify=c.justify,  # type: ignore[arg-type]
                         no_wrap=not c.wrap, overflow="fold" if c.wrap else "ellipsis",
                         style="bold" if c.name else None)
    for r in rows:
        table.add_row(*(escape(c.cell(r)) for c in cols))
    return table


def _longest_word(fmt: Callable[[Any], str]) -> Callable[[Any], str]:
    def word(value: Any) -> str:
        return max(fmt(value).split() or [""], key=len)

    return word


def fits(console: Console, cols: Sequence[Col], rows: Sequence[dict[str, Any]], title: str | None = None) -> bool:
    """Whether the table's natural width (no column shrunk) fits ``console``'s width."""
    # A wrapping column may shrink to its longest word: measure it by that word.
    table = _table([Col(c.key, c.header, fmt=_longest_word(c.fmt)) if c.wrap else c for c in cols], rows, title)
    need = Measurement.get(console, console.options.update(width=10_000), table).maximum
    return need <= console.width


def print_table(console: Console, cols: Sequence[Col], rows: Sequence[dict[str, Any]], *,
                title: str | None = None, show_legend: bool = True) -> None:
    """Print ``rows`` as a table when it fits the console, else vertically; never cuts a cell."""
    if fits(console, cols, rows, title):
        console.print(_table(cols, rows, title))
    else:
        if title:
            console.print(f"[bold]{escape(title)}[/]")
        key_cols = [c for c in cols if c.name][:1] or list(cols[:1])
        rest = [c for c in cols if c not in key_cols]
        for r in rows:
            console.print(f"[bold]{escape(' '.join(c.cell(r) for c in key_cols))}[/]", soft_wrap=True)
            pairs = [f"{c.header} {c.cell(r)}" for c in rest if c.cell(r)]
            for line in textwrap.wrap("   ".join(pairs), width=max(console.width - 2, 20),
                                      break_long_words=False, break_on_hyphens=False):
                console.print("  " + escape(line), soft_wrap=True, highlight=False)
    text = legend(cols) if show_legend else ""
    if text:
        console.print(f"[dim]{escape(text)}[/]", highlight=False)


def print_json(data: Any) -> None:
    """``data`` as indented JSON on standard output, plain (no colour, never wrapped)."""
    typer.echo(json.dumps(data, indent=2, default=str))


# --- warnings -------------------------------------------------------------------------------------

_FIX = {
    "UnknownModelWarning": "check the spelling, or add a card with `optiroute models add`",
    "RoutingFallbackWarning": "give candidates suited to this task (-c) or a router fitted on your data (--router)",
    "StoreDegradedWarning": "check the store's path or database URL",
}


def warning_lines(caught: Sequence[warnings.WarningMessage]) -> list[str]:
    """One line per distinct warning: OptiRoute's grouped by kind (unknown models in one line)."""
    unknown: list[str] = []
    lines: list[str] = []
    for w in caught:
        kind = type(w.message).__name__ if isinstance(w.message, Warning) else w.category.__name__
        text = " ".join(str(w.message).split())
        if kind == "UnknownModelWarning":
            name = text.split("model ", 1)[-1].split(";", 1)[0] if "model " in text else text
            if name not in unknown:
                unknown.append(name)
            continue
        if kind == "DeprecationWarning" or kind.startswith("Pending"):
            continue  # library internals, not the user's to fix
        text = text.removeprefix("OptiRoute ").rstrip(".")
        line = f"{text}; fix: {_FIX[kind]}" if kind in _FIX else text
        if line not in lines:
            lines.append(line)
    if unknown:
        n = len(unknown)
        lines.insert(0, f"no card for {', '.join(unknown)}: {'it is' if n == 1 else 'they are'} routed with "
                        f"median figures; fix: {_FIX['UnknownModelWarning']}")
    return lines


@contextmanager
def collected_warnings(err: Console) -> Iterator[list[warnings.WarningMessage]]:
    """Record every warning raised inside; on exit print each distinct one as one line on ``err``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield caught
        finally:
            for line in warning_lines(caught):
                err.print("[bold yellow]warning:[/] ", end="", soft_wrap=True)
                err.print(line, markup=False, highlight=False, soft_wrap=True)
