"""Every table the CLI prints, rendered at 80 columns: no line wider than the terminal, no model name
cut, ``--json`` parses, and warnings are one styled line each (never Python's ``file:line`` form)."""

from __future__ import annotations

import io
import json
import re
import warnings
from pathlib import Path

from rich.cells import cell_len
from rich.console import Console
from typer.testing import CliRunner

from optiroute.cli.app import app
from optiroute.cli.render import Col, print_table, warning_lines
from optiroute.errors import RoutingFallbackWarning, UnknownModelWarning

SLICE = Path(__file__).parent / "fixtures" / "mmlu_slice"
runner = CliRunner()
CANDIDATES = "gpt-4o,gpt-4o-mini,claude-3-5-haiku,llama-3.1-8b-instruct,deepseek-chat,gemini-1.5-flash"


def invoke80(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input, catch_exceptions=False, env={"COLUMNS": "80"})


def assert_fits_80(text: str) -> None:
    wide = [line for line in text.splitlines() if cell_len(line) > 80]
    assert not wide, f"{len(wide)} line(s) wider than 80 columns: {wide[:3]}"


def assert_whole(names: list[str], text: str) -> None:
    """Each name appears whole, and no line holds a cut prefix of it (``gpt-4o-2…``)."""
    for name in names:
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), f"{name!r} missing or cut"
        for k in range(3, len(name)):
            assert name[:k] + "…" not in text, f"{name!r} cut to {name[:k]}…"


# --- the renderer itself ------------------------------------------------------------------------

def _render(width: int, rows: list[dict[str, object]]) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None)
    print_table(console, [Col("model", "model", name=True), Col("q", "quality", "predicted quality",
                                                                  lambda v: f"{v:.2f}", justify="right"),
                          Col("c", "$/call", "predicted cost", lambda v: f"{v:.2g}", justify="right")], rows)
    return buf.getvalue()


def test_a_table_that_fits_is_a_table_with_a_legend():
    out = _render(80, [{"model": "gpt-4o-mini", "q": 0.71, "c": 0.0003}, {"model": "gpt-4o", "q": 0.78, "c": 0.03}])
    assert out.splitlines()[0].split() == ["model", "quality", "$/call"]
    assert "$/call = predicted cost" in out
    assert_fits_80(out)
    assert_whole(["gpt-4o-mini", "gpt-4o"], out)


def test_a_table_too_wide_turns_vertical_and_keeps_every_name_whole():
    long = ["an-organisation/an-extremely-long-fine-tuned-model-name-v2-instruct-2025-01-31",
            "Meta-Llama-3_1-70B-Instruct-Turbo"]
    out = _render(60, [{"model": n, "q": 0.5, "c": 0.001} for n in long])
    assert out.splitlines()[0] == long[0]  # no header row: one block per row, the name first
    assert_whole(long, out)
    assert all(cell_len(line) <= 60 for line in out.splitlines() if not any(n in line for n in long))
    assert "quality 0.50" in out


def test_warnings_become_one_line_each_with_how_to_fix():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in ("acme-1", "acme-2", "acme-1"):
            warnings.warn(f"OptiRoute has no card for model {name!r}; routing it with a neutral prior.",
                          UnknownModelWarning, stacklevel=1)
        warnings.warn("OptiRoute fell back to the generalist model: the router is unsure.", RoutingFallbackWarning,
                      stacklevel=1)
        warnings.warn("OptiRoute fell back to the generalist model: the router is unsure.", RoutingFallbackWarning,
                      stacklevel=1)
    lines = warning_lines(caught)
    assert len(lines) == 2
    assert lines[0].startswith("no card for 'acme-1', 'acme-2'") and "fix:" in lines[0]
    assert "generalist" in lines[1] and "fix:" in lines[1]


# --- every command that prints a table, at 80 columns -------------------------------------------

def test_explain_fits_80_columns_and_explains_relative_sub_scores():
    res = invoke80("explain", "Write a haiku about autumn", "-c", CANDIDATES)
    assert res.exit_code == 0, res.output
    assert_fits_80(res.stdout)
    data = json.loads(invoke80("explain", "Write a haiku about autumn", "-c", CANDIDATES, "--json").stdout)
    names = [s["model"] for s in data["scores"]]
    assert len(names) == 6 and data["model"] in names
    assert_whole(names, res.stdout)
    assert "…" not in res.stdout
    assert "relative to these candidates" in " ".join(res.stdout.split())
    assert {"sub_scores", "predicted_latency_s"} <= set(data["scores"][0])


def test_route_with_unknown_models_prints_one_warning_line_and_no_source_lines():
    res = invoke80("route", "Write a haiku about autumn", "-c", "gpt-4o-mini,zz-one,zz-two,zz-three,zz-four")
    assert res.exit_code == 0, res.output
    assert len(res.stderr.splitlines()) == 1, res.stderr
    assert res.stderr.startswith("warning: no card for 'zz-one', 'zz-two', 'zz-three', 'zz-four'")
    assert not re.search(r"\.py:\d+", res.output) and "warnings.warn" not in res.output
    data = json.loads(invoke80("route", "Write a haiku", "-c", "gpt-4o-mini,zz-one", "--json").stdout)
    assert data["model"] in ("gpt-4o-mini", "zz-one")


def test_select_models_fits_80_columns_and_has_json():
    res = invoke80("select-models", "--data", str(SLICE), "--k", "3")
    assert res.exit_code == 0, res.output
    data = json.loads(invoke80("select-models", "--data", str(SLICE), "--k", "3", "--json").stdout)
    assert len(data["models"]) == 3 and data["use"].startswith("--pool ")
    assert_fits_80(res.stdout.replace(data["use"], ""))  # the copy-paste line is one line on purpose
    assert_whole(data["models"], res.stdout)


def test_demo_fits_80_columns_and_names_every_choice_whole():
    res = invoke80("demo", "--no-local")
    assert res.exit_code == 0, res.output
    assert_fits_80(res.stdout)
    data = json.loads(invoke80("demo", "--json").stdout)
    assert {d["profile"] for d in data} >= {"quality-first", "balanced", "cost-effective"}
    balanced = [d for d in data if d["profile"] == "balanced"]
    assert len(balanced) == 13
    lines = [line.rstrip() for line in res.stdout.splitlines()]
    for d in balanced:  # each row of the per-prompt table ends with the whole chosen name
        assert any(line.endswith(d["model"]) and line.startswith(d["label"]) for line in lines), d
    assert_whole(sorted({d["model"] for d in data}), res.stdout)
    long_form = invoke80("demo", "--no-local", "--all").stdout
    assert_fits_80("\n".join(line for line in long_form.splitlines() if "runner-up" not in line))
    assert_whole(sorted({d["model"] for d in data}), long_form)


def test_onboard_fits_80_columns_and_has_json(tmp_path: Path, monkeypatch) -> None:
    import threading
    from http.server import ThreadingHTTPServer

    import pandas as pd

    from optiroute.analysis import embedding
    from tests.test_onboard import FakeEmbedder, _FakeOpenAI, _router

    router, prompts = _router()
    router.save(tmp_path / "r")
    monkeypatch.setattr(embedding, "get_default_embedder", lambda: FakeEmbedder())
    pd.DataFrame({"prompt_id": list(prompts), "split": "train", "task": "t", "text": list(prompts.values())}).to_csv(
        tmp_path / "prompts.csv", index=False)
    pd.DataFrame({"prompt_id": list(prompts), "reference": "B"}).to_csv(tmp_path / "refs.csv", index=False)
    name = "gamma-a-rather-long-model-name-2025-01-31"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        args = ["onboard", "--router", str(tmp_path / "r"), "--model", name, "--base-url", url, "--prompts",
                str(tmp_path / "prompts.csv"), "--references", str(tmp_path / "refs.csv"), "--k", "6",
                "--price-in", "1", "--price-out", "1", "--no-impute"]
        res = invoke80(*args, "--out", str(tmp_path / "r2"))
        as_json = invoke80(*args, "--out", str(tmp_path / "r3"), "--json")
    finally:
        server.shutdown()
        server.server_close()
    assert res.exit_code == 0, res.output
    assert_fits_80(res.stdout.split("Saved the router")[0])  # the last line names a path
    assert_whole([name], res.stdout)
    data = json.loads(as_json.stdout)
    assert data["model"] == name and data["representatives"] == 6 and data["scored"] == 6
