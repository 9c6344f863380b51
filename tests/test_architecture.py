"""The package's shape: no import cycles, import contracts that really fail on an upward import, and
public ``__all__`` lists that resolve (optiroute's own is pinned). Fast and offline: the import graph
is read from the source (grimp, which counts imports inside functions and under TYPE_CHECKING)."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import optiroute

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"optiroute": ROOT / "core", "langchain_optiroute": ROOT / "langchain_optiroute",
            "llama_index_optiroute": ROOT / "llama_index_optiroute"}

#: optiroute's public names. Changing this list changes the public API: do it on purpose.
PUBLIC = [
    "ArtifactError", "ArtifactNotFoundError", "BatchDecisions", "Budget", "BudgetExceededError", "CallTicket",
    "Constraints", "CorruptArtifactError", "DIMENSIONS", "DataFormatError", "DependencyError",
    "FallbackExhaustedError", "FeedbackError", "FeedbackStore", "InvalidConstraintsError", "InvalidInputError",
    "InvalidPreferencesError", "MemoryFeedbackStore", "ModelCard", "ModelNotFoundError", "ModelScore", "Neighbour",
    "NoEligibleModelError", "OptiRouteError", "OptiRouteWarning", "PROFILES", "PolicyConfig", "Preferences",
    "Registry", "RegistryError", "Router", "RoutingDecision", "RoutingFallbackWarning", "SQLStore",
    "SQLiteFeedbackStore", "SharedText", "StoreDegradedWarning", "StoreError", "TaskProfile", "UnknownModelWarning",
    "UnknownProfileError", "UnsupportedFormatError", "__version__", "open_store", "preferences",
]


# ---------------------------------------------------------------------------------------- cycles
def _cycles(graph: grimp.ImportGraph, prefix: str) -> list[list[str]]:
    """Strongly connected components of more than one module among the modules named ``prefix*``
    (Tarjan, iterative)."""
    nodes = sorted(m for m in graph.modules if m == prefix or m.startswith(prefix + "."))
    edges = {m: sorted(n for n in graph.find_modules_directly_imported_by(m) if n in nodes) for m in nodes}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if i < len(edges[node]):
                work.append((node, i + 1))
                nxt = edges[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if work:  # hand the finished node's low-link to its parent
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_sees_function_and_type_checking_imports(tmp_path, monkeypatch):
    pkg = tmp_path / "cyclepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from cyclepkg import b\n    return b\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    import cyclepkg.c\n")
    (pkg / "c.py").write_text("import cyclepkg.a\n")
    (pkg / "d.py").write_text("import cyclepkg.a\n")  # imports into the cycle, is not part of it
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    graph = grimp.build_graph("cyclepkg", cache_dir=None)
    assert _cycles(graph, "cyclepkg") == [["cyclepkg.a", "cyclepkg.b", "cyclepkg.c"]]


def test_optiroute_has_no_import_cycles():
    graph = grimp.build_graph("optiroute", cache_dir=None)
    on_disk = {p.relative_to(ROOT / "core").with_suffix("").parts for p in (ROOT / "core").rglob("*.py")}
    assert len(graph.modules) == len(on_disk) > 50  # the graph really is this source tree
    # package inits count like any module: importing one runs it, so a cycle through a re-export is real
    assert _cycles(graph, "optiroute") == []


# -------------------------------------------------------------------------------- import contracts
def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]


LAYERS = next(c["name"] for c in _contracts() if c["type"] == "layers")
NO_FRAMEWORK = next(c["name"] for c in _contracts()
                    if c["type"] == "forbidden" and c["source_modules"] == ["optiroute"])


@pytest.fixture(scope="module")
def lint_copy(tmp_path_factory):
    """A copy of the three packages and pyproject.toml; ``run(edits)`` applies ``{path: text appended}``
    to a fresh copy and returns lint-imports' exit code and output, run on that copy."""
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        exe = Path(shutil.which("lint-imports") or "lint-imports")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "data")

    def run(edits: dict[str, str]) -> tuple[int, str]:
        base = tmp_path_factory.mktemp("lint")
        for name, src in PACKAGES.items():
            shutil.copytree(src, base / name, ignore=ignore)
        shutil.copy(ROOT / "pyproject.toml", base / "pyproject.toml")
        for rel, text in edits.items():
            with open(base / rel, "a", encoding="utf-8") as f:
                f.write(text)
        env = {**os.environ, "PYTHONPATH": str(base)}
        where = subprocess.run(
            [sys.executable, "-c", "import json, optiroute, langchain_optiroute, llama_index_optiroute as l; "
             "print(json.dumps([optiroute.__file__, langchain_optiroute.__file__, l.__file__]))"],
            env=env, cwd=base, capture_output=True, text=True, check=True,
        )
        assert all(Path(f).is_relative_to(base) for f in json.loads(where.stdout)), "the copy must win"
        out = subprocess.run([str(exe), "--no-cache"], env=env, cwd=base, capture_output=True, text=True,
                             timeout=120)
        return out.returncode, out.stdout + out.stderr

    return run


def test_the_unmodified_copy_keeps_the_core_contracts(lint_copy):
    code, out = lint_copy({})
    assert f"{LAYERS} KEPT" in out and f"{NO_FRAMEWORK} KEPT" in out, out


@pytest.mark.parametrize(
    ("rel", "text", "contract", "chain"),
    [
        # the lowest layer importing the highest, at module level
        ("optiroute/errors.py", "\nimport optiroute.cli.app\n", LAYERS, "optiroute.errors -> optiroute.cli.app"),
        # a schema reaching up to the router from inside a function (a lazy import is still an import)
        ("optiroute/schema/budget.py",
         "\n\ndef _late():\n    from optiroute.router.router import Router\n    return Router\n",
         LAYERS, "optiroute.schema.budget -> optiroute.router"),
        # the core importing a framework adapter
        ("optiroute/routing/scoring.py", "\nimport langchain_optiroute\n", NO_FRAMEWORK,
         "optiroute.routing.scoring -> langchain_optiroute"),
    ],
    ids=["errors-imports-cli", "schema-imports-router-lazily", "core-imports-adapter"],
)
def test_an_upward_import_breaks_its_contract(lint_copy, rel, text, contract, chain):
    code, out = lint_copy({rel: text})
    assert code != 0, out
    assert f"{contract} BROKEN" in out, out
    assert chain in out, out


# ------------------------------------------------------------------------------------------ __all__
def _packages_with_all() -> list[str]:
    names = ["optiroute"]
    for init in sorted((ROOT / "core").rglob("__init__.py")):
        parts = init.parent.relative_to(ROOT / "core").parts
        if parts and "__all__" in init.read_text(encoding="utf-8"):
            names.append(".".join(("optiroute", *parts)))
    return names


def test_optiroute_all_is_the_public_list():
    assert optiroute.__all__ == PUBLIC
    assert optiroute.__all__ == sorted(optiroute.__all__)
    assert set(optiroute._LAZY) <= set(optiroute.__all__)
    assert dir(optiroute) == PUBLIC


def test_the_subpackages_with_all_are_found():
    assert {"optiroute.integration", "optiroute.local", "optiroute.store"} <= set(_packages_with_all())


@pytest.mark.parametrize("name", _packages_with_all())
def test_every_name_in_all_resolves(name):
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert len(exported) == len(set(exported)), "duplicates in __all__"
    for attr in exported:
        assert getattr(module, attr) is not None, f"{name}.{attr}"
    # nothing of optiroute's is public in the package without being listed (httpx's exported-members rule)
    unlisted = {
        attr for attr, value in vars(module).items()
        if not attr.startswith("_") and not isinstance(value, type(module))
        and str(getattr(value, "__module__", "")).startswith("optiroute") and attr not in exported
    }
    assert not unlisted, f"{name} exposes {sorted(unlisted)} without listing them in __all__"
