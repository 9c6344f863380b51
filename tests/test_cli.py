"""Every CLI command, through Typer's runner (in-process, so the router loads once per test run)."""

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from optiroute.cli.app import app

SLICE = Path(__file__).parent / "fixtures" / "mmlu_slice"

runner = CliRunner()


def invoke(*args, input=None):
    return runner.invoke(app, list(args), input=input, catch_exceptions=False, env={"COLUMNS": "300"})


def test_route_prints_model_runner_up_and_reason():
    res = invoke("route", "Write a haiku about autumn leaves", "-p", "latency-first",
                 "-c", "gpt-4o,gpt-4o-mini,claude-3-5-haiku")
    assert res.exit_code == 0, res.output
    assert "runner-up" in res.output and any(m in res.output for m in ("gpt-4o", "claude-3-5-haiku"))


def test_route_json_and_stdin():
    res = invoke("route", "-", "--json", "-c", "gpt-4o,gpt-4o-mini", input="What is the capital of France?")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["model"] in ("gpt-4o-2024-05-13", "gpt-4o-mini") and data["decision_id"]


def test_explain_shows_the_score_table():
    res = invoke("explain", "Prove that there are infinitely many primes.", "-c", "gpt-4o,gpt-4o-mini,deepseek-chat")
    assert res.exit_code == 0, res.output
    assert "task" in res.output and "deepseek-chat" in res.output and "Sub-scores" in res.output
    assert "acc" in res.output.split("Sub-scores", 1)[1].splitlines()[1].split()  # the column header
    data = json.loads(invoke("explain", "Prove that there are infinitely many primes.", "-c", "gpt-4o,deepseek-chat",
                             "--json").stdout)
    assert len(data["scores"]) == 2 and "deepseek-chat" in {s["model"] for s in data["scores"]}


def test_bad_input_exits_2_with_a_message():
    res = invoke("route", "   ")
    assert res.exit_code == 2 and "empty" in res.output
    res = invoke("route", "hi", "-p", "fastest")
    assert res.exit_code == 2 and "Unknown preference profile" in res.output
    res = invoke("route", "hi", "-p", "{bad json")
    assert res.exit_code == 2


def test_fit_then_route_with_the_saved_router(tmp_path):
    out = tmp_path / "r"
    res = invoke("fit", "--prompts", str(SLICE / "prompts.csv.gz"), "--out", str(out))
    assert res.exit_code == 0, res.output
    assert (out / "manifest.json").exists() and (out / "index.ann").exists()
    assert "quality predictor: knn" in res.output  # 300 train prompts: too few to validate, auto keeps kNN
    res = invoke("route", "Solve 3x + 5 = 20 for x.", "--router", str(out), "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["model"] in (
        "DeepSeek-Coder-V2", "jamba-1.5-large", "gpt-4o-2024-05-13", "Meta-Llama-3_1-8B-Instruct"
    )


def test_fit_learns_shared_text_unless_told_to_keep_it(tmp_path):
    import pandas as pd

    p = pd.read_csv(SLICE / "prompts.csv.gz", dtype={"prompt_id": str})
    p["text"] = "You are a careful exam tutor. Think before you answer.\n\n" + p["text"]
    p.to_csv(tmp_path / "prompts.csv", index=False)
    for name in ("outcomes.csv.gz", "prices.csv"):
        (tmp_path / name).write_bytes((SLICE / name).read_bytes())
    res = invoke("fit", "--prompts", str(tmp_path / "prompts.csv"), "--out", str(tmp_path / "on"),
                 "--predictor", "knn")
    assert res.exit_code == 0, res.output
    assert "Shared text: 1 shared lines" in res.output and "from 300 of 300 training prompts" in res.output
    assert "careful exam tutor" not in res.output  # counts, never the prompts' text
    assert json.loads((tmp_path / "on" / "manifest.json").read_text())["shared_text"]["leading"] == [
        "You are a careful exam tutor. Think before you answer."]
    res = invoke("fit", "--prompts", str(tmp_path / "prompts.csv"), "--out", str(tmp_path / "off"),
                 "--predictor", "knn", "--keep-shared")
    assert res.exit_code == 0 and "Shared text: kept" in res.output, res.output
    assert "shared_text" not in json.loads((tmp_path / "off" / "manifest.json").read_text())


def test_fit_with_a_named_predictor(tmp_path):
    out = tmp_path / "t"
    res = invoke("fit", "--prompts", str(SLICE / "prompts.csv.gz"), "--out", str(out), "--predictor", "task")
    assert res.exit_code == 0, res.output
    assert "quality predictor: task" in res.output and (out / "predictor.npz").exists()
    res = invoke("fit", "--prompts", str(SLICE / "prompts.csv.gz"), "--out", str(out), "--predictor", "svm")
    assert res.exit_code == 2 and "auto, knn, routoo, mlp, task" in res.output


def test_models_add_imputes_domains_from_the_card_unless_told_not_to(tmp_path):
    from optiroute.catalog.registry import Registry

    reg = tmp_path / "models.json"
    res = invoke("models", "add", "--registry", str(reg), "--name", "big-api", "--input-price", "5",
                 "--output-price", "15")
    assert res.exit_code == 0 and "cold start" in res.output, res.output
    cheap = invoke("models", "add", "--registry", str(reg), "--name", "tiny-api", "--input-price", "0.05",
                   "--output-price", "0.1")
    assert cheap.exit_code == 0, cheap.output
    big, tiny = Registry.from_file(reg).get("big-api"), Registry.from_file(reg).get("tiny-api")
    assert len(big.accuracy_by_domain) >= 14 and "accuracy_by_domain" in big.imputed
    assert "cold start" in big.sources["accuracy_by_domain"]
    # Price is a card feature: the dearer card is predicted the stronger one.
    assert big.metrics["accuracy"] > tiny.metrics["accuracy"]
    res = invoke("models", "add", "--registry", str(reg), "--name", "plain", "--input-price", "1",
                 "--output-price", "2", "--no-cold-start")
    assert res.exit_code == 0 and Registry.from_file(reg).get("plain").accuracy_by_domain == {}
    # Card facts such as Arena Elo feed the same cold start.
    for name, elo in (("elo-high", "1300"), ("elo-low", "1050")):
        res = invoke("models", "add", "--registry", str(reg), "--name", name, "--input-price", "1",
                     "--output-price", "2", "--arena-elo", elo, "--params-b", "70")
        assert res.exit_code == 0, res.output
    high, low = Registry.from_file(reg).get("elo-high"), Registry.from_file(reg).get("elo-low")
    assert high.facts == {"arena_elo": 1300.0, "params_b": 70.0}
    assert high.metrics["accuracy"] > low.metrics["accuracy"]


def test_fit_with_bad_data_is_a_clean_error(tmp_path):
    (tmp_path / "prompts.csv").write_text("id,body\n1,hello\n")
    res = invoke("fit", "--prompts", str(tmp_path / "prompts.csv"), "--out", str(tmp_path / "r"))
    assert res.exit_code == 2 and "missing column" in res.output


def test_models_list_add_remove(tmp_path):
    reg = tmp_path / "models.json"
    res = invoke("models", "list")
    assert res.exit_code == 0 and "gpt-4o-mini" in res.output
    res = invoke("models", "add", "--registry", str(reg), "--name", "acme-7b",
                 "--input-price", "0.1", "--output-price", "0.2")
    assert res.exit_code == 0, res.output
    res = invoke("models", "list", "--registry", str(reg))
    assert "acme-7b" in res.output
    res = invoke("route", "hello there", "--registry", str(reg), "-c", "acme-7b,gpt-4o", "--json")
    assert res.exit_code == 0, res.output
    res = invoke("models", "remove", "acme-7b", "--registry", str(reg))
    assert res.exit_code == 0 and "Removed" in res.output
    res = invoke("models", "remove", "acme-7b", "--registry", str(reg))
    assert res.exit_code == 2 and "No model card" in res.output


def test_models_add_from_a_card_file(tmp_path):
    card = tmp_path / "card.yaml"
    card.write_text("name: tiny\ninput_usd_per_mtok: 0\noutput_usd_per_mtok: 0\nkind: local\n")
    reg = tmp_path / "models.yaml"
    res = invoke("models", "add", "--registry", str(reg), "--card", str(card))
    assert res.exit_code == 0, res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ninput_usd_per_mtok: -3\noutput_usd_per_mtok: 0\n")
    res = invoke("models", "add", "--registry", str(reg), "--card", str(bad))
    assert res.exit_code == 2 and "input_usd_per_mtok" in res.output


def test_demo_runs_offline_without_the_local_model():
    res = invoke("demo", "--no-local")
    assert res.exit_code == 0, res.output
    for profile in ("quality-first", "cost-effective", "latency-first"):
        assert profile in res.output
    assert "Per profile" in res.output and "optiroute demo --all" in res.output
    assert len(res.output.splitlines()) < 60  # a summary, not every decision


def test_demo_all_prints_every_decision_with_its_reason():
    res = invoke("demo", "--no-local", "--all")
    assert res.exit_code == 0, res.output
    assert "profile: quality-first" in res.output and res.output.count("runner-up") >= 5 * 13


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "optiroute"
    assert exe.exists(), "pip install -e . installs the optiroute console script"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "route" in out.stdout
