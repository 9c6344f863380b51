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

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optiroute.errors import DataFormatError

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
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataFormatError(
            f"{kind} data is missing column(s) {missing}; found {list(df.columns)}. "
            f"Expected columns: {', '.join(_COLUMNS[kind])}."
        )


def _numeric(df: pd.DataFrame, col: str, kind: str, *, required: bool) -> None:
    import pandas as pd

    if col not in df.columns:
        df[col] = float("nan")
        return
    converted = pd.to_numeric(df[col], errors="coerce")
    bad = converted.isna() & df[col].notna() & (df[col].astype(str).str.strip() != "")
    if bad.any():
        row = int(bad.idxmax())
        raise DataFormatError(
            f"{kind} column {col!r} must be numeric; row {row} has {df[col].iloc[row]!r}."
        )
    if required and converted.isna().any():
        row = int(converted.isna().idxmax())
        raise DataFormatError(f"{kind} column {col!r} is empty in row {row}; every row needs a value.")
    df[col] = converted.astype("float64")


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
        df[col] = df[col].fillna("").astype(str)
    df["prompt_id"] = df["prompt_id"].astype(str)
    df["text"] = df["text"].fillna("").astype(str)
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
    """Load and validate outcomes; scores must lie in 0..1.

    Raises:
        DataFormatError: missing columns, non-numeric or out-of-range scores.
    """
    df = _read(source, "outcomes")
    _require(df, "outcomes", ("prompt_id", "model", "score"))
    df["prompt_id"] = df["prompt_id"].astype(str)
    df["model"] = df["model"].astype(str)
    _numeric(df, "score", "outcomes", required=True)
    _numeric(df, "cost_usd", "outcomes", required=False)
    _numeric(df, "output_tokens", "outcomes", required=False)
    out_of_range = (df["score"] < 0) | (df["score"] > 1)
    if out_of_range.any():
        row = int(out_of_range.idxmax())
        raise DataFormatError(
            f"outcomes score must be in 0..1 (scale judge scores first); row {row} has "
            f"{df['score'].iloc[row]!r}."
        )
    if (df["cost_usd"] < 0).any():
        raise DataFormatError("outcomes cost_usd must not be negative.")
    df = df.drop_duplicates(["prompt_id", "model"], keep="last")
    return df[list(OUTCOME_COLUMNS)].reset_index(drop=True)


def load_prices(source: Any) -> pd.DataFrame:
    """Load and validate a price table (USD per million input/output tokens)."""
    df = _read(source, "prices")
    _require(df, "prices", PRICE_COLUMNS)
    df["model"] = df["model"].astype(str)
    _numeric(df, "input_usd_per_mtok", "prices", required=True)
    _numeric(df, "output_usd_per_mtok", "prices", required=True)
    if ((df["input_usd_per_mtok"] < 0) | (df["output_usd_per_mtok"] < 0)).any():
        raise DataFormatError("prices must not be negative.")
    if "source" not in df.columns:
        df["source"] = "user"
    df["source"] = df["source"].fillna("").astype(str)
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
