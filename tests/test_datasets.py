import pandas as pd
import pytest

from optiroute import DataFormatError
from optiroute.fit.datasets import fill_costs, load_outcomes, load_prices, load_prompts


def _prompts():
    return pd.DataFrame({"prompt_id": ["1", "2"], "split": ["train", "test"], "task": ["math", "law"],
                         "text": ["a" * 40, "b" * 80]})


def test_prompts_from_path_dir_and_frame(tmp_path):
    _prompts().to_csv(tmp_path / "prompts.csv.gz", index=False)
    assert len(load_prompts(tmp_path)) == 2
    assert len(load_prompts(tmp_path / "prompts.csv.gz")) == 2
    assert list(load_prompts(_prompts()).columns) == ["prompt_id", "split", "task", "text"]


@pytest.mark.parametrize(
    "frame, match",
    [
        (pd.DataFrame({"id": ["1"], "text": ["x"]}), "missing column"),
        (pd.DataFrame({"prompt_id": ["1", "1"], "text": ["x", "y"]}), "duplicate"),
        (pd.DataFrame({"prompt_id": ["1"], "text": ["  "]}), "empty text"),
    ],
)
def test_bad_prompts(frame, match):
    with pytest.raises(DataFormatError, match=match):
        load_prompts(frame)


def test_bad_outcomes_and_files(tmp_path):
    with pytest.raises(DataFormatError, match="0..1"):
        load_outcomes(pd.DataFrame({"prompt_id": ["1"], "model": ["m"], "score": [3.0]}))
    with pytest.raises(DataFormatError, match="numeric"):
        load_outcomes(pd.DataFrame({"prompt_id": ["1"], "model": ["m"], "score": ["good"]}))
    with pytest.raises(DataFormatError, match="does not exist"):
        load_outcomes(tmp_path / "nope.csv")
    junk = tmp_path / "outcomes.csv.gz"
    junk.write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(DataFormatError, match="Cannot read"):
        load_outcomes(junk)
    with pytest.raises(DataFormatError, match="path"):
        load_outcomes(42)
    with pytest.raises(DataFormatError, match="input_usd_per_mtok"):
        load_prices(pd.DataFrame({"model": ["m"]}))


def test_fill_costs_uses_prices_for_empty_cells():
    p = load_prompts(_prompts())
    o = load_outcomes(pd.DataFrame({"prompt_id": ["1", "2"], "model": ["m", "m"], "score": [1, 0],
                                    "cost_usd": [0.5, None], "output_tokens": [100, None]}))
    prices = load_prices(pd.DataFrame({"model": ["m"], "input_usd_per_mtok": [1e6], "output_usd_per_mtok": [0.0]}))
    filled = fill_costs(o, p, prices)
    assert filled["cost_usd"].tolist() == [0.5, 20.0]  # 80 chars / 4 tokens at $1 per token
