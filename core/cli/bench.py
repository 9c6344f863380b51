"""The ``optiroute bench`` command (registered in :mod:`optiroute.cli.app`).

Fits a router on a data directory's train split (quality predictor ``--predictor``, default ``auto``:
chosen on a validation split of train), fits every other predictor kind too (``--compare``), measures
them and the baselines on the test split and writes ``report.md``, ``curve.csv``,
``decisions.csv.gz`` and ``cost_quality.png`` (see :mod:`optiroute.bench.evaluate`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from optiroute.bench.evaluate import run_bench
from optiroute.bench.report import write_outputs
from optiroute.bench.verdict import verdict_lines
from optiroute.cli.common import check_int, console, fail, writable_file
from optiroute.cli.render import print_json
from optiroute.errors import OptiRouteError

__all__ = ["bench"]

def _names(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def bench(
    data: Annotated[
        Path, typer.Option("--data", help="Directory with prompts.csv[.gz], outcomes.csv[.gz], prices.csv.")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Directory for report.md, curve.csv, decisions.csv.gz, cost_quality.png.")
    ] = Path("bench"),
    pool: Annotated[
        str | None, typer.Option("--pool", help="Comma-separated models to route among (default: all).")
    ] = None,
    predictor: Annotated[
        str,
        typer.Option("--predictor",
                     help="Quality predictor for Router.fit: auto (best k-fold cross-validated AIQ on train), "
                          "knn, routoo, mlp, task (needs task labels), mean or stack."),
    ] = "auto",
    compare: Annotated[
        str | None,
        typer.Option("--compare",
                     help="Predictor kinds also fitted and reported as methods (default: all; 'none' to skip)."),
    ] = None,
    pair: Annotated[
        str | None, typer.Option("--pair", help="strong,weak for APGR/CPT (default: best single, cheapest).")
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="Cache prompt embeddings here (npz) across runs.")
    ] = None,
    overhead_n: Annotated[
        int, typer.Option("--overhead-n", help="Prompts timed for decision overhead (0: skip).")
    ] = 256,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary and the verdict as JSON (outputs are still written).")
    ] = False,
    strip_shared: Annotated[
        bool,
        typer.Option("--strip-shared/--keep-shared",
                     help="Embed train and test prompts without the text most train prompts share (default), or "
                          "as given."),
    ] = True,
) -> None:
    """Fit on train, evaluate on test: AIQ, budgets, APGR/CPT, overhead and every baseline."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    check_int(overhead_n, "--overhead-n", lo=0, hi=1_000_000)
    if out.exists() and not out.is_dir():
        fail(f"--out {str(out)!r} is a file; give a directory for the report.")
    writable_file(out / "report.md", "--out")
    pair_names = _names(pair)
    if pair_names is not None and len(pair_names) != 2:
        fail("--pair takes exactly two names: strong,weak")
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=console, transient=True) as progress:
            result, decisions, ids = run_bench(
                data, pool=_names(pool), predictor=predictor,
                compare=None if compare is None else ([] if compare == "none" else _names(compare)),
                pair=None if pair_names is None else (pair_names[0], pair_names[1]),
                cache_dir=cache_dir, overhead_n=overhead_n, progress=progress, strip_shared=strip_shared,
            )
        paths = write_outputs(result, decisions, ids, out)
    except (OptiRouteError, OSError) as exc:
        fail(exc)
    router = next(s for s in result.summaries if s.method == "router")
    if as_json:
        print_json({"router_aiq": router.aiq, "predictor": result.predictor, "best_single": result.best_single,
                    "best_single_quality": result.singles[result.best_single][0],
                    "methods": {s.method: s.aiq for s in result.summaries},
                    "verdict": None if result.verdict is None else {
                        **result.verdict.model_dump(), "text": verdict_lines(result.verdict)},
                    "written": [str(p) for p in paths]})
        return
    console.print(
        f"router AIQ [bold]{router.aiq:.3f}[/] (predictor: {escape(result.predictor)}); best single "
        f"{escape(result.best_single)} {result.singles[result.best_single][0]:.3f}"
    )
    for s in result.summaries:
        if s.method.startswith("predictor ") and ":" not in s.method:
            console.print(f"  {escape(s.method)}: AIQ {s.aiq:.3f}, quality at 25 % cost {s.quality_at_25:.3f}")
    console.print(f"wrote {', '.join(str(p) for p in paths)}")
    if result.verdict is not None:
        console.print()
        lines = verdict_lines(result.verdict)
        console.print(f"[bold]{escape(lines[0])}[/]")
        for line in lines[1:]:
            style = "bold yellow" if line.startswith("Warning:") else ""
            console.print(f"[{style}]{escape(line)}[/]" if style else escape(line))
