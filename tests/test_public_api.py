"""The public surface: names in __all__, lazy imports, import time and no torch at import."""

import subprocess
import sys

import pytest

import optiroute


def test_all_names_resolve_and_are_sorted():
    for name in optiroute.__all__:
        assert getattr(optiroute, name) is not None
    assert optiroute.__all__ == sorted(optiroute.__all__)
    with pytest.raises(AttributeError):
        optiroute.NotAThing  # noqa: B018


def test_every_error_is_an_optiroute_error():
    errors = [getattr(optiroute, n) for n in optiroute.__all__ if n.endswith("Error")]
    assert len(errors) >= 15
    for e in errors:
        assert issubclass(e, optiroute.OptiRouteError)


def test_no_bare_core_package_is_installed():
    out = subprocess.run([sys.executable, "-c", "import core"], capture_output=True, text=True, cwd="/")
    assert out.returncode != 0 and "No module named 'core'" in out.stderr


@pytest.mark.parametrize("module", ["optiroute", "langchain_optiroute", "llama_index_optiroute"])
def test_import_does_not_pull_torch(module):
    code = f"import sys; import {module}; print('torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_router_construction_does_no_io(monkeypatch):
    import builtins

    opened = []
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    optiroute.Router.default()
    optiroute.Router(preferences="cost-effective")
    assert opened == []


def test_state_and_budget_names_are_public():
    names = {"Budget", "BudgetExceededError", "CallTicket", "SQLStore", "StoreDegradedWarning", "open_store"}
    assert names <= set(optiroute.__all__)
    assert issubclass(optiroute.StoreDegradedWarning, optiroute.OptiRouteWarning)
