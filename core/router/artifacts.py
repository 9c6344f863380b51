"""Saved router directories and the bundled default: JSON, npz and Annoy files, never pickles.

A saved router directory holds::

    manifest.json   format name + version, candidate pool, settings, SHA-256 of every other file
    registry.json   the model cards
    analyzer.npz    the analyzer heads (analyzer.json beside it holds their names and sources)
    analyzer.json
    index.npz       the evaluation store (int8 embeddings, outcomes, costs, which outcomes are estimates)
    index.ann       its Annoy index (memory-mapped on load)
    predictor.npz   learned quality-predictor weights (kinds other than kNN; arrays only)
    predictor.json  their kind, model columns and hyper-parameters

The manifest's ``predictor`` entry names the kind, how it was chosen and its files; a manifest
without one (the bundled default, routers saved before learned predictors) means kNN.

Loading verifies the manifest's format and every checksum, so a truncated or edited file gives a
:class:`CorruptArtifactError` that names it instead of a traceback from inside numpy or annoy.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Protocol

from optiroute.analysis.analyzer import TaskAnalyzer
from optiroute.catalog.registry import Registry
from optiroute.errors import ArtifactNotFoundError, CorruptArtifactError, InvalidInputError, UnsupportedFormatError
from optiroute.quality.base import Predictor, predictor_class
from optiroute.quality.index import OutcomeIndex
from optiroute.quality.knn import QualityPredictor
from optiroute.routing.policy import PolicyConfig


class SavableRouter(Protocol):
    """What :func:`save_router` reads of a router."""

    k: int
    lam: float

    @property
    def registry(self) -> Registry: ...
    @property
    def analyzer(self) -> TaskAnalyzer: ...
    @property
    def index(self) -> OutcomeIndex | None: ...
    @property
    def models(self) -> list[str]: ...
    @property
    def policy(self) -> PolicyConfig: ...
    @property
    def predictor(self) -> Predictor: ...

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "save_router", "load_router_parts", "load_default_parts"]

FORMAT_NAME = "optiroute-router"
FORMAT_VERSION = 1
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DEFAULT_DIR = DATA_DIR / "default"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_router(router: SavableRouter, directory: Path) -> Path:
    """Write ``router`` into ``directory`` (created if needed; existing files are replaced)."""
    directory.mkdir(parents=True, exist_ok=True)
    router.registry.to_file(directory / "registry.json")
    router.analyzer.save(directory / "analyzer.npz")
    index = router.index
    if index is not None:
        index.save(directory)
    predictor = router.predictor
    kind = getattr(predictor, "kind", "knn") or "knn"
    for stale in ("predictor.npz", "predictor.json"):
        (directory / stale).unlink(missing_ok=True)
    pred_files = predictor.save(directory) if kind != "knn" else []
    files = sorted(
        f.name for f in directory.iterdir()
        if f.is_file() and f.name != "manifest.json" and f.suffix in (".json", ".npz", ".ann")
    )
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "models": router.models,
        "k": router.k,
        "lam": router.lam,
        "policy": router.policy.model_dump(),
        "predictor": {"kind": kind, "files": pred_files, "selection": getattr(predictor, "selection", None)},
        "files": {name: _sha256(directory / name) for name in files},
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return directory


def _read_manifest(directory: Path) -> dict[str, Any]:
    if not directory.is_dir():
        raise ArtifactNotFoundError(
            f"Router directory {str(directory)!r} does not exist; create one with router.save(dir)."
        )
    path = directory / "manifest.json"
    if not path.exists():
        raise ArtifactNotFoundError(
            f"{str(path)!r} is missing, so {str(directory)!r} is not a saved OptiRoute router."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptArtifactError(f"{str(path)!r} is not valid JSON ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise UnsupportedFormatError(
            f"{str(path)!r} is not an OptiRoute router manifest (format "
            f"{manifest.get('format') if isinstance(manifest, dict) else None!r}); expected {FORMAT_NAME!r}."
        )
    if manifest.get("version") != FORMAT_VERSION:
        raise UnsupportedFormatError(
            f"{str(path)!r} has format version {manifest.get('version')!r}; this OptiRoute reads "
            f"version {FORMAT_VERSION}. Upgrade OptiRoute or re-save the router with this version."
        )
    return manifest


def _verify(directory: Path, manifest: dict[str, Any]) -> None:
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise CorruptArtifactError(f"{str(directory / 'manifest.json')!r} lists no files.")
    for name, digest in files.items():
        path = directory / name
        if not path.exists():
            raise ArtifactNotFoundError(f"{str(path)!r} is listed in the manifest but missing.")
        if _sha256(path) != digest:
            raise CorruptArtifactError(
                f"{str(path)!r} does not match its checksum in manifest.json (truncated or edited); "
                "restore it or save the router again."
            )


def load_router_parts(directory: Path) -> dict[str, Any]:
    """Read and verify a saved router; returns the keyword arguments of :class:`Router`."""

    manifest = _read_manifest(directory)
    _verify(directory, manifest)
    parts: dict[str, Any] = {
        "registry": Registry.from_file(directory / "registry.json"),
        "analyzer": TaskAnalyzer.load(directory / "analyzer.npz"),
        "models": list(manifest.get("models") or []) or None,
        "k": int(manifest.get("k", 50)),
        "lam": float(manifest.get("lam", 3.0)),
        "policy": PolicyConfig(**manifest.get("policy", {})),
    }
    if (directory / "index.npz").exists():
        parts["index"] = OutcomeIndex.load(directory)
    entry = manifest.get("predictor") or {"kind": "knn"}
    kind = str(entry.get("kind", "knn"))
    if kind != "knn":
        try:
            cls = predictor_class(kind)
        except InvalidInputError:
            raise UnsupportedFormatError(
                f"{str(directory)!r} uses quality predictor {kind!r}, which this OptiRoute does not "
                "know; upgrade OptiRoute or re-save the router."
            ) from None
        parts["predictor"] = cls.load(directory, parts.get("index"))
    else:
        parts["predictor"] = QualityPredictor(None)  # rebuilt on the store with the router's k, lam
    parts["predictor"].selection = entry.get("selection")
    return parts


@functools.lru_cache(maxsize=1)
def load_default_parts() -> dict[str, Any]:
    """The bundled default: registry and analyzer from their bundled files, plus the default store.

    Loaded once per process: every ``Router.default()`` shares the read-only store (and its Annoy
    index, built on first use), as LangChain rebuilds models per call under ``configurable_fields``.
    """

    manifest_path = DEFAULT_DIR / "manifest.json"
    if not manifest_path.exists():
        raise ArtifactNotFoundError(
            f"The bundled default router is missing ({str(manifest_path)!r}); reinstall optiroute or "
            "rebuild it with `python scripts/build_default.py`."
        )
    manifest = _read_manifest(DEFAULT_DIR)
    _verify(DEFAULT_DIR, manifest)
    return {"index": OutcomeIndex.load(DEFAULT_DIR), "models": manifest.get("models") or None}


def copy_tree(src: Path, dst: Path) -> None:
    """Copy a saved router directory (used by the CLI)."""
    shutil.copytree(src, dst, dirs_exist_ok=True)
