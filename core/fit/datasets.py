"""Reading routing data in the documented CSV format, with errors that say what is wrong.

The format (the same as ``../shared/data`` and the one users bring):

- ``prompts.csv[.gz]``: ``prompt_id, split, task, text`` (``split`` is ``train``/``test`` or empty);
- ``outcomes.csv[.gz]``: ``prompt_id, model, score, cost_usd, output_tokens`` (score in 0..1; cost
  and output tokens may be empty);
- ``prices.csv``: ``model, input_usd_per_mtok, output_usd_per_mtok, source``.

Each loader accepts a path or an already loaded :class:`pandas.DataFrame`. pandas is imported lazily
because ``import optiroute`` must stay fast.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optiroute.errors import DataFormatError
from optiroute.schema.numbers import MAX_PRICE_PER_MTOK, MAX_TOKENS, MAX_USD, describe

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "PROMPT_COLUMNS",
    "OUTCOME_COLUMNS",
    "PRICE_COLUMNS",
    "load_prompts",
    "load_outcomes",
    "load_prices",
    "input_tokens",
    "fill_costs",
]

PROMPT_COLUMNS = ("prompt_id", "split", "task", "text")
OUTCOME_COLUMNS = ("prompt_id", "model", "score", "cost_usd", "output_tokens")
PRICE_COLUMNS = ("model", "input_usd_per_mtok", "output_usd_per_mtok")

DataLike = "str | os.PathLike[str] | pd.DataFrame"


def _read(source: Any, kind: str) -> pd.DataFrame:
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return source.copy()
    if not isinstance(source, (str, os.PathLike)):
        raise DataFormatError(
            f"{kind} must be a path to a CSV file or a pandas DataFrame, got {type(source).__name__}."
        )
    path = Path(source)
    if path.is_dir():
        for name in (f"{kind}.csv.gz", f"{kind}.csv"):
            if (path / name).exists():
                path = path / name
                break
        else:
            raise DataFormatError(f"No {kind}.csv or {kind}.csv.gz in directory {str(path)!r}.")
    if not path.exists():
        raise DataFormatError(f"{kind} file {str(path)!r} does not exist; check the path.")
    try:
        return pd.read_csv(path, dtype={"prompt_id": str}, keep_default_na=True)
    except Exception as exc:  # pandas raises many types (ParserError, UnicodeDecodeError, EOFError...)
        raise DataFormatError(
            f"Cannot read {kind} file {str(path)!r} as CSV ({type(exc).__name__}: {exc}). "
            f"Expected columns: {', '.join(_COLUMNS[kind])}."
        ) from None


_COLUMNS = {"prompts": PROMPT_COLUMNS, "outcomes": OUTCOME_COLUMNS, "prices": PRICE_COLUMNS}


def _require(df: pd.DataFrame, kind: str, required: Iterable[str]) -> None:
    dup = df.columns[df.columns.duplicated()].tolist()
    if dup:
        raise DataFormatError(f"{kind} data has duplicate column(s) {dup}; each column must appear once.")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataFormatError(
            f"{kind} data is missing column(s) {missing}; found {list(df.columns)}. "
            f"Expected columns: {', '.join(_COLUMNS[kind])}."
        )


def _first(mask: Any) -> int:
    """Position (0-based data row) of the first True of a boolean Series."""
    import numpy as np

    return int(np.flatnonzero(mask.to_numpy(dtype=bool))[0])


def _numeric(df: pd.DataFrame, col: str, kind: str, *, required: bool, lo: float = 0.0,
             hi: float | None = None, whole: bool = False, what: str = "") -> None:
    """Make ``df[col]`` float64, checking every value: numeric (no booleans), finite, in ``lo..hi``
    and a whole number when ``whole``; empty cells are NaN (refused when ``required``)."""
    import numpy as np
    import pandas as pd

    if col not in df.columns:
        df[col] = float("nan")
        return
    raw = df[col]
    cells = raw.tolist()
    for row, v in enumerate(cells):
        if isinstance(v, (bool, np.bool_, bytes, bytearray, memoryview)):
            raise DataFormatError(f"{kind} column {col!r} must be numeric; row {row} has {v!r}.")
    blank = [v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())
             for v in cells]
    converted = pd.to_numeric(raw, errors="coerce")
    if converted.dtype.kind not in "iuf":
        raise DataFormatError(f"{kind} column {col!r} must hold real numbers, got {converted.dtype}.")
    converted = converted.astype("float64")
    bad = converted.isna().to_numpy() & ~np.asarray(blank, dtype=bool)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataFormatError(
            f"{kind} column {col!r} must be numeric; row {row} has {cells[row]!r}."
        )
    if required and converted.isna().any():
        row = _first(converted.isna())
        raise DataFormatError(f"{kind} column {col!r} is empty in row {row}; every row needs a value.")
    values = converted.to_numpy()
    known = ~np.isnan(values)
    out = known & ~(np.isfinite(values) & (values >= lo) & (values <= (np.inf if hi is None else hi)))
    if whole:
        out |= known & np.isfinite(values) & (np.floor(values) != values)
    if out.any():
        row = int(np.flatnonzero(out)[0])
        rng = describe(lo, hi, whole=whole)
        raise DataFormatError(
            f"{kind} column {col!r} must be {rng}{what}; row {row} has {raw.iloc[row]!r}."
        )
    df[col] = converted


#: The longest model name or prompt id accepted (a model card's name has the same limit).
MAX_NAME_CHARS = 512


def _as_text(df: pd.DataFrame, col: str, kind: str) -> None:
    """``df[col]`` as Python strings (empty for missing cells); bytes are refused, naming the row."""
    import pandas as pd

    values = df[col].tolist()
    for row, v in enumerate(values):
        if isinstance(v, (bytes, bytearray, memoryview)):
            raise DataFormatError(f"{kind} column {col!r} holds bytes in row {row}; decode them to text first.")
    df[col] = pd.Series(["" if v is None or (isinstance(v, float) and v != v) else str(v) for v in values],
                        index=df.index, dtype=object)


def _text_column(df: pd.DataFrame, col: str, kind: str) -> None:
    """``df[col]`` as non-empty strings of at most :data:`MAX_NAME_CHARS` characters; a missing or blank
    cell is refused, naming its row."""
    _as_text(df, col, kind)
    missing = df[col].str.strip() == ""
    if missing.any():
        row = _first(missing)
        raise DataFormatError(f"{kind} column {col!r} is empty in row {row}; every row needs a value.")
    long = df[col].str.len() > MAX_NAME_CHARS
    if long.any():
        raise DataFormatError(f"{kind} column {col!r} has a value of more than {MAX_NAME_CHARS} characters in "
                              f"row {_first(long)}; ids and model names are short labels.")


def load_prompts(source: Any) -> pd.DataFrame:
    """Load and validate prompts; ``split`` and ``task`` are optional (empty strings if absent).

    Raises:
        DataFormatError: missing ``prompt_id``/``text`` columns, duplicate ids or empty texts.
    """
    df = _read(source, "prompts")
    _require(df, "prompts", ("prompt_id", "text"))
    for col in ("split", "task"):
        if col not in df.columns:
            df[col] = ""
        _as_text(df, col, "prompts")
    _text_column(df, "prompt_id", "prompts")
    _as_text(df, "text", "prompts")
    if df["prompt_id"].duplicated().any():
        dup = df.loc[df["prompt_id"].duplicated(), "prompt_id"].iloc[0]
        raise DataFormatError(f"prompts has duplicate prompt_id {dup!r}; ids must be unique.")
    empty = df["text"].str.strip() == ""
    if empty.any():
        raise DataFormatError(
            f"prompts has {int(empty.sum())} empty text(s), e.g. prompt_id "
            f"{df.loc[empty, 'prompt_id'].iloc[0]!r}; drop them or fill them in."
        )
    return df[list(PROMPT_COLUMNS)].reset_index(drop=True)


def load_outcomes(source: Any) -> pd.DataFrame:
    """Load and validate outcomes: scores in 0..1, costs finite USD in 0..1e9, output tokens whole
    numbers in 0..1e9 (empty cost and token cells are allowed), ids and model names non-empty.

    Raises:
        DataFormatError: missing columns, non-numeric or out-of-range values (naming column and row).
    """
    df = _read(source, "outcomes")
    _require(df, "outcomes", ("prompt_id", "model", "score"))
    _text_column(df, "prompt_id", "outcomes")
    _text_column(df, "model", "outcomes")
    _numeric(df, "score", "outcomes", required=True, lo=0.0, hi=1.0,
             what=" (a score in 0..1: scale judge scores first)")
    _numeric(df, "cost_usd", "outcomes", required=False, lo=0.0, hi=MAX_USD, what=" (USD per call)")
    _numeric(df, "output_tokens", "outcomes", required=False, lo=0, hi=MAX_TOKENS, whole=True,
             what=" (tokens of the answer)")
    df = df.drop_duplicates(["prompt_id", "model"], keep="last")
    return df[list(OUTCOME_COLUMNS)].reset_index(drop=True)


def load_prices(source: Any) -> pd.DataFrame:
    """Load and validate a price table (USD per million input/output tokens)."""
    df = _read(source, "prices")
    _require(df, "prices", PRICE_COLUMNS)
    _text_column(df, "model", "prices")
    _numeric(df, "input_usd_per_mtok", "prices", required=True, hi=MAX_PRICE_PER_MTOK,
             what=" (USD per million tokens)")
    _numeric(df, "output_usd_per_mtok", "prices", required=True, hi=MAX_PRICE_PER_MTOK,
             what=" (USD per million tokens)")
    if "source" not in df.columns:
        df["source"] = "user"
    _as_text(df, "source", "prices")
    return df.drop_duplicates("model", keep="last").reset_index(drop=True)


def input_tokens(outcomes: pd.DataFrame, prompts: pd.DataFrame) -> np.ndarray:
    """Each outcome row's prompt length in tokens, counted as characters / 4 (0 for an unknown prompt).

    The one token estimate shared by cost filling and by reading answer lengths back out of costs, so
    the two invert each other exactly."""
    import numpy as np

    chars = prompts.set_index("prompt_id")["text"].str.len()
    return outcomes["prompt_id"].map(chars).fillna(0).to_numpy(dtype=np.float64) / 4.0


def fill_costs(
    outcomes: pd.DataFrame, prompts: pd.DataFrame, prices: pd.DataFrame | None
) -> pd.DataFrame:
    """Fill empty ``cost_usd`` cells from ``prices`` (tokens counted as characters / 4).

    Output tokens come from ``output_tokens`` where given, else the model's median over the data,
    else 256. Cells that stay unknown (no price for the model) remain NaN and are reported by the
    caller.
    """
    import numpy as np

    out = outcomes.copy()
    if prices is None or out["cost_usd"].notna().all():
        return out
    price = prices.set_index("model")
    in_tok = input_tokens(out, prompts)
    out_tok = out["output_tokens"].copy()
    med = out.groupby("model")["output_tokens"].transform("median")
    out_tok = out_tok.fillna(med).fillna(256.0).to_numpy()
    pin = out["model"].map(price["input_usd_per_mtok"]).to_numpy(dtype=float)
    pout = out["model"].map(price["output_usd_per_mtok"]).to_numpy(dtype=float)
    est = (in_tok * pin + out_tok * pout) / 1e6
    missing = out["cost_usd"].isna().to_numpy()
    out.loc[missing, "cost_usd"] = np.where(np.isnan(est[missing]), np.nan, est[missing])
    return out
