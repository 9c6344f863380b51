"""`optiroute models`: list at 80 columns and as JSON, add without made-up figures, update from the price library."""

import json

from typer.testing import CliRunner

from optiroute.catalog.registry import Registry
from optiroute.cli.app import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "80", "TERM": "dumb"})


def test_models_list_fits_80_columns_and_never_cuts_a_name():
    res = invoke("models", "list")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in res.output
    names: list[str] = []  # a long name folds onto the next line (its only text there): join it back
    for line in lines:
        cells = line.split()
        if len(cells) == 1 and names and not line.startswith(" "):
            names[-1] += cells[0]
        elif cells:
            names.append(cells[0])
    for card in Registry.default():
        assert card.name in names, card.name
    gpt5 = next(line for line in lines if line.split() and line.split()[0] == "gpt-5")
    assert Registry.default().get("gpt-5").facts_date in gpt5  # the date of its facts


def test_models_list_json():
    res = invoke("models", "list", "--json")
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert rows["gpt-5"]["input_usd_per_mtok"] == 1.25 and "gpt-5-2025-08-07" in rows["gpt-5"]["aliases"]
    assert rows["gemini-3-pro-preview"]["accuracy"] is None and "accuracy" in rows["gemini-3-pro-preview"]["unknown"]
    assert "genai-prices" in rows["claude-sonnet-4-5"]["price_source"]


def test_models_add_stores_no_made_up_figure(tmp_path):
    reg = tmp_path / "models.json"
    res = invoke("models", "add", "--registry", str(reg), "--name", "gpt-5-pro", "--no-cold-start")
    assert res.exit_code == 0, res.output  # the price library knows it: no price needed
    card = Registry.from_file(reg).get("gpt-5-pro")
    assert (card.input_usd_per_mtok, card.output_usd_per_mtok) == (15.0, 120.0)
    assert set(card.unknown) == {"accuracy", "helpfulness", "honesty", "harmlessness", "steerability", "creativity"}
    assert card.context_window == 400_000 and "genai-prices" in card.sources["context_window"]
    assert "marked unknown" in res.output
    res = invoke("models", "add", "--registry", str(reg), "--name", "house-model", "--input-price", "1",
                 "--output-price", "2", "--gpqa", "0.7")
    assert res.exit_code == 0, res.output
    house = Registry.from_file(reg).get("house-model")
    assert "context_window" in house.imputed and "helpfulness" in house.unknown
    assert "GPQA" in house.sources["accuracy"]  # its level comes from the given figure
    res = invoke("models", "add", "--registry", str(reg), "--name", "nobody-knows-this-model")
    assert res.exit_code == 2 and "--input-price" in res.output


def test_models_update_prints_what_changed(tmp_path):
    reg = tmp_path / "models.json"
    r = Registry.default()
    r.update("gpt-5", input_usd_per_mtok=9.0)
    r.to_file(reg)
    res = invoke("models", "update", "--registry", str(reg), "--dry-run")
    assert res.exit_code == 0 and "gpt-5: input_usd_per_mtok 9.0 -> 1.25" in res.output
    assert Registry.from_file(reg).get("gpt-5").input_usd_per_mtok == 9.0  # dry run writes nothing
    res = invoke("models", "update", "--registry", str(reg))
    assert res.exit_code == 0 and "1 field(s) changed" in res.output
    assert Registry.from_file(reg).get("gpt-5").input_usd_per_mtok == 1.25
    res = invoke("models", "update", "--registry", str(reg))
    assert "0 field(s) changed" in res.output
