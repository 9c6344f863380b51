"""Routing a prompt file of any size in bounded memory (``optiroute route-batch``).

The input is a CSV (gzip when the name ends in ``.gz``) with a ``text`` column and optionally a
``prompt_id`` column (default: the 0-based row number). It is read ``chunk`` rows at a time; each
chunk goes through one vectorised :meth:`Router.decide_batch` (one encode batch, one prediction
matrix, one argmax; no per-prompt decision objects) and its rows
``prompt_id, model, predicted_quality, predicted_cost_usd`` are appended to the output, so memory
holds one chunk whatever the file size. The output is written to ``<out>.part`` and renamed when
complete, so an interrupted run never leaves a file that looks finished.

With a total budget (``budget_usd``, ``optiroute route-batch --budget``) the file is read twice: a
first pass counts its rows, then each chunk is allocated with :meth:`Router.decide_batch`'s budgeted
mode (:mod:`optiroute.routing.budgeted`) under its share of what is left, ``left * rows_in_chunk /
rows_left``, so money a chunk does not need carries over to the next ones and the total predicted
cost never exceeds the budget. Each chunk is optimal on its own; across chunks the split is
proportional to rows, which is close to the whole-file optimum when chunks are large and the file's
order is not sorted by difficulty.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic import BaseModel

from optiroute.errors import DataFormatError
from optiroute.schema.numbers import MAX_COUNT, MAX_USD, integer, real

if TYPE_CHECKING:
    from optiroute.router.router import Router

__all__ = ["OUTPUT_COLUMNS", "StreamStats", "iter_prompt_chunks", "route_file"]

OUTPUT_COLUMNS = ("prompt_id", "model", "predicted_quality", "predicted_cost_usd")

#: progress(bytes_read, total_bytes, rows_done)
ProgressFn = Callable[[int, int, int], None]


class StreamStats(BaseModel):
    """What one streamed run did."""

    rows: int
    chunks: int
    max_chunk_rows: int
    seconds: float
    prompts_per_s: float
    out: str
    models: dict[str, int]
    total_predicted_cost_usd: float
    budget_usd: float | None = None


def _open_text_out(path: Path, *, gz: bool) -> IO[str]:
    if gz:
        return io.TextIOWrapper(gzip.open(path, "wb"), encoding="utf-8", newline="")
    return open(path, "w", encoding="utf-8", newline="")


def iter_prompt_chunks(path: str | Path, chunk: int) -> Iterator[tuple[list[str], list[str], int, int]]:
    """Yield ``(prompt_ids, texts, bytes_read, total_bytes)`` for each block of ``chunk`` rows.

    Raises:
        DataFormatError: missing file or ``text`` column, unreadable CSV, or an empty text.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"Input file {str(path)!r} does not exist; check the path.")
    chunk = integer(chunk, "chunk", lo=1, hi=MAX_COUNT, hint="It is the rows decided at a time.")
    total = path.stat().st_size
    with open(path, "rb") as raw:
        try:  # pandas decompresses; raw.tell() is then the compressed bytes consumed (progress)
            reader = pd.read_csv(raw, chunksize=chunk, dtype=str, keep_default_na=False,
                                 compression="gzip" if path.name.endswith(".gz") else None,
                                 usecols=lambda c: c in ("text", "prompt_id"), encoding="utf-8")
        except pd.errors.EmptyDataError:
            raise DataFormatError(
                f"Input file {str(path)!r} is empty; it needs a header with a 'text' column."
            ) from None
        row = 0
        try:
            for df in reader:
                if "text" not in df.columns:
                    raise DataFormatError(
                        f"Input file {str(path)!r} has no 'text' column; route-batch needs a CSV with a "
                        "'text' column (and optionally 'prompt_id')."
                    )
                texts = df["text"].tolist()
                ids = (df["prompt_id"].tolist() if "prompt_id" in df.columns
                       else [str(i) for i in range(row, row + len(df))])
                for i, t in enumerate(texts):
                    if not t.strip():
                        raise DataFormatError(
                            f"Row {row + i + 1} of {str(path)!r} (prompt_id {ids[i]!r}) has an empty text; "
                            "drop or fill it, every row needs a prompt."
                        )
                row += len(df)
                yield ids, texts, raw.tell(), total
        except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as exc:
            raise DataFormatError(
                f"Cannot read {str(path)!r} as CSV near row {row + 1} ({type(exc).__name__}: {exc})."
            ) from None


def route_file(
    router: Router,
    input_path: str | Path,
    out_path: str | Path,
    *,
    preferences: Any = None,
    constraints: Any = None,
    candidates: Sequence[str] | None = None,
    chunk: int = 1024,
    progress: ProgressFn | None = None,
    budget_usd: float | None = None,
) -> StreamStats:
    """Route every row of ``input_path`` and write the decisions to ``out_path`` (see module doc).

    Args:
        router: the router to decide with.
        preferences, constraints, candidates: as for :meth:`Router.decide_batch`.
        chunk: rows read, encoded and decided at a time (bounds memory).
        progress: called after each chunk with ``(bytes_read, total_bytes, rows_done)``.
        budget_usd: a total predicted-cost budget for the whole file (see the module docstring).

    Raises:
        DataFormatError: the input is not a CSV with a non-empty ``text`` per row.
        BudgetExceededError: a chunk's share of the budget cannot cover even its cheapest models
            (the message gives the minimum for that chunk); nothing is written.
        NoEligibleModelError and the preference/constraint errors of ``decide_batch``.
    """
    if budget_usd is not None:
        budget_usd = real(budget_usd, "budget_usd", lo=0.0, lo_open=True, hi=MAX_USD,
                          hint="It is a positive amount of USD: the whole file's predicted cost.")
    chunk = integer(chunk, "chunk", lo=1, hi=MAX_COUNT, hint="It is the rows decided at a time.")
    rows_left = sum(len(ids) for ids, *_ in iter_prompt_chunks(input_path, 65536)) if budget_usd else 0
    money_left = float(budget_usd or 0.0)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    counts: Counter[str] = Counter()
    rows = chunks = biggest = 0
    total_cost = 0.0
    t0 = time.perf_counter()
    try:
        with _open_text_out(tmp, gz=out.name.endswith(".gz")) as fh:
            w = csv.writer(fh)
            w.writerow(OUTPUT_COLUMNS)
            for ids, texts, done, total in iter_prompt_chunks(input_path, chunk):
                share = None
                if budget_usd is not None:
                    share = money_left * len(ids) / max(rows_left, len(ids))
                res = router.decide_batch(texts, preferences=preferences, constraints=constraints,
                                          candidates=candidates, batch_size=max(chunk, 1), budget_usd=share)
                names = res.model_names
                quality = res.column("quality").tolist()
                cost = res.column("cost").tolist()
                w.writerows(zip(ids, names, (f"{q:.6f}" for q in quality), (f"{c:.6g}" for c in cost), strict=True))
                counts.update(names)
                spent = float(sum(cost))
                total_cost += spent
                if budget_usd is not None:
                    money_left = max(0.0, money_left - spent)
                    rows_left -= len(ids)
                rows += len(ids)
                chunks += 1
                biggest = max(biggest, len(ids))
                if progress is not None:
                    progress(done, total, rows)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    seconds = time.perf_counter() - t0
    return StreamStats(
        rows=rows, chunks=chunks, max_chunk_rows=biggest, seconds=seconds,
        prompts_per_s=rows / seconds if seconds > 0 else 0.0, out=str(out),
        models=dict(counts.most_common()), total_predicted_cost_usd=total_cost, budget_usd=budget_usd,
    )
