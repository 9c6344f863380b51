"""The ``optiroute select-models`` and ``optiroute route-batch`` commands (registered in
:mod:`optiroute.cli.app`).

``select-models`` designs a pool (:mod:`optiroute.fit.pool`); ``route-batch`` streams a prompt file of
any size through the router in bounded memory (:mod:`optiroute.router.route_file`).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from optiroute.cli.common import (
    check_int,
    check_real,
    console,
    fail,
    load_router,
    parse_candidates,
    parse_preferences,
    writable_file,
)
from optiroute.cli.render import Col, print_json, print_table
from optiroute.errors import OptiRouteError
from optiroute.fit.pool import select_models_from_data
from optiroute.router.route_file import iter_prompt_chunks, route_file
from optiroute.schema.numbers import MAX_COUNT, MAX_USD

__all__ = ["route_batch", "select_models"]

def select_models(
    data: Annotated[
        Path, typer.Option("--data", help="Directory with prompts.csv[.gz], outcomes.csv[.gz] (and prices.csv).")
    ],
    k: Annotated[int, typer.Option("--k", help="How many models to pick.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the selection (.json, else CSV).")] = None,
    split: Annotated[str, typer.Option("--split", help="Prompts to measure coverage on ('' for all).")] = "train",
    cost_weight: Annotated[
        float,
        typer.Option("--cost-weight",
                     help="Cost-aware coverage: quality points per most-expensive-model cost (0: quality only)."),
    ] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the selection as JSON instead of a table.")] = False,
) -> None:
    """Pick the K most complementary models (greedy submodular coverage of best-per-prompt scores)."""
    check_int(k, "--k", lo=1, hi=10_000)
    check_real(cost_weight, "--cost-weight", lo=0.0, hi=1e6)
    if out is not None:
        writable_file(out, "--out")
    try:
        with console.status("Reading outcomes..."):
            sel = select_models_from_data(data, k, split=split or None, cost_weight=cost_weight)
    except OptiRouteError as exc:
        fail(exc)
        return
    if as_json:
        print_json({**sel.model_dump(), "use": f"--pool {','.join(sel.models)}"})
    else:
        rows = [{"rank": i, "model": m, "gain": g, "coverage": c, "score": s, "cost": cost}
                for i, (m, g, c, s, cost) in enumerate(zip(sel.models, sel.gains, sel.coverage, sel.mean_score,
                                                           sel.mean_cost_usd, strict=True), 1)]
        print_table(console, [
            Col("rank", "#", justify="right"),
            Col("model", "model", name=True),
            Col("gain", "gain", "coverage this model adds", lambda v: f"{v:+.4f}", justify="right"),
            Col("coverage", "coverage", "mean best score over the models so far", lambda v: f"{v:.4f}",
                justify="right"),
            Col("score", "own", "the model's own mean score", lambda v: f"{v:.4f}", justify="right"),
            Col("cost", "$/prompt", "mean cost per prompt in USD", lambda v: f"{v:.3g}", justify="right"),
        ], rows)
        console.print(
            f"coverage of these {k}: [bold]{sel.coverage[-1]:.4f}[/] vs {sel.best_single_coverage:.4f} for the "
            f"{k} best single models ({escape(', '.join(sel.best_single_models))}) on {sel.n_prompts} prompts"
        )
    if not as_json:
        console.print(f"use: --pool {','.join(sel.models)}", soft_wrap=True)
    if out is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            if out.suffix == ".json":
                out.write_text(json.dumps(sel.model_dump(), indent=2), encoding="utf-8")
            else:
                with open(out, "w", encoding="utf-8", newline="") as fh:
                    w = csv.writer(fh)
                    w.writerow(["rank", "model", "marginal_gain", "coverage", "mean_score", "mean_cost_usd"])
                    for i, row in enumerate(zip(sel.models, sel.gains, sel.coverage, sel.mean_score,
                                                sel.mean_cost_usd, strict=True), 1):
                        w.writerow([i, row[0], *(f"{v:.6g}" for v in row[1:])])
        except OSError as exc:
            fail(exc)
        if not as_json:
            console.print(f"wrote {out}")


def route_batch(
    input_path: Annotated[
        Path, typer.Option("--input", help="CSV (or .csv.gz) with a 'text' column and optional 'prompt_id'.")
    ],
    out: Annotated[
        Path,
        typer.Option("--out",
                     help="Decisions CSV (.gz to compress): prompt_id, model, predicted_quality, predicted_cost_usd."),
    ],
    preferences: Annotated[str, typer.Option("--preferences", "-p", help="Profile name or JSON weights.")] = "balanced",
    router_dir: Annotated[
        Path | None, typer.Option("--router", "-r", help="A saved router directory (default: bundled).")
    ] = None,
    candidates: Annotated[str | None, typer.Option("--candidates", "-c", help="Comma-separated model names.")] = None,
    chunk: Annotated[int, typer.Option("--chunk", help="Rows decided at a time (bounds memory).")] = 1024,
    budget: Annotated[
        float | None,
        typer.Option("--budget",
                     help="Total predicted-cost budget in USD for the whole file: maximise predicted quality within "
                          "it (reads the file twice)."),
    ] = None,
) -> None:
    """Route every prompt of a file of any size, streaming in chunks (bounded memory)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    check_int(chunk, "--chunk", lo=1, hi=MAX_COUNT)
    check_real(budget, "--budget", lo=0.0, lo_open=True, hi=MAX_USD)
    writable_file(out, "--out")
    prefs = parse_preferences(preferences)
    try:
        for _ in iter_prompt_chunks(input_path, 1):  # check the file before loading the router
            break
        with console.status("Loading the router..."):
            router = load_router(router_dir, None)
            router.models  # noqa: B018 - load now, so the progress bar measures routing only
        with Progress(TextColumn("routing"), BarColumn(), DownloadColumn(), TextColumn("{task.fields[rows]} prompts"),
                      TimeElapsedColumn(), console=console, transient=True) as bar:
            task = bar.add_task("route", total=input_path.stat().st_size if input_path.is_file() else None, rows=0)
            stats = route_file(
                router, input_path, out, preferences=prefs, candidates=parse_candidates(candidates), chunk=chunk,
                budget_usd=budget,
                progress=lambda done, total, rows: bar.update(task, completed=done, total=total, rows=rows),
            )
    except (OptiRouteError, OSError) as exc:
        fail(exc)
        return
    top = ", ".join(f"{m} {n / max(stats.rows, 1):.0%}" for m, n in list(stats.models.items())[:5])
    console.print(
        f"routed [bold]{stats.rows}[/] prompts in {stats.chunks} chunk(s), {stats.seconds:.1f}s "
        f"({stats.prompts_per_s:.0f} prompts/s); predicted cost ${stats.total_predicted_cost_usd:.4g}"
        + (f" of a ${stats.budget_usd:.4g} budget" if stats.budget_usd is not None else "")
    )
    if top:
        console.print(f"models: {top}")
    console.print(f"wrote {stats.out}")
