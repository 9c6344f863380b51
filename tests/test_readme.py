"""The README's Python examples run as written, in order, in one namespace (as a reader pasting them into
one session would), offline, in an empty working directory. A block whose first line starts with
``# Needs`` says what it needs (an API key, the network) and is only compiled, not run."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
SKIP_MARK = "# Needs"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)


def test_the_first_screen_says_what_it_is_how_to_install_and_how_to_use() -> None:
    first = "\n".join(README.read_text(encoding="utf-8").splitlines()[:24])  # one 80x24 screen
    assert "pip install" in first and '".[langchain]"' in first and '".[llama-index]"' in first
    assert '".[local]"' in first and "```python" in first
    use = python_blocks()[0]
    assert len(use.strip().splitlines()) == 3 and "Router.default()" in use
    code = re.findall(r"^```\w*\n(.*?)^```", first, flags=re.S | re.M)
    assert len(code) == 2 and all(len(line) <= 80 for block in code for line in block.splitlines())


def test_every_marked_block_compiles_and_says_what_it_needs() -> None:
    blocks = python_blocks()
    skipped = [b for b in blocks if b.startswith(SKIP_MARK)]
    assert 0 < len(skipped) < len(blocks) / 2
    for b in blocks:
        compile(b, "README.md", "exec")


def test_the_readme_python_blocks_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__readme__"}
    ran = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an example may route with a fallback warning; it still runs
        for i, block in enumerate(python_blocks()):
            if block.startswith(SKIP_MARK):
                continue
            try:
                exec(compile(block, f"README.md python block {i}", "exec"), namespace)
            except Exception as exc:  # name the block that failed
                raise AssertionError(f"README python block {i} failed: {type(exc).__name__}: {exc}\n{block}") from exc
            ran += 1
    assert ran >= 6
    assert (tmp_path / "my-router" / "manifest.json").exists()  # the fit example saved its router
