"""Saved router directories and the bundled default: JSON, npz and Annoy files, never pickles.

A saved router directory holds::

    manifest.json   format name + version, candidate pool, settings, the shared text stripped
                    before embedding (``shared_text``, JSON; absent in routers saved before it),
                    SHA-256 of every other file and of itself (``checksum``)
    registry.json   the model cards
    analyzer.npz    the analyzer heads (analyzer.json beside it holds their names and sources)
    analyzer.json
    index.npz       the evaluation store (int8 embeddings, outcomes, costs, which outcomes are estimates)
    index.ann       its Annoy index (memory-mapped on load)
    predictor.npz   learned quality-predictor weights (kinds other than kNN; arrays only)
    predictor.json  their kind, model columns and hyper-parameters

The manifest's ``predictor`` entry names the kind, how it was chosen and its files; a manifest
without one (the bundled default, routers saved before learned predictors) means kNN.

A saved router directory is untrusted (it may come from anywhere): loading reads the manifest as a
regular file of at most 4 MB, JSON nested at most 64 deep, and validates it field by field (numbers
through :mod:`optiroute.schema.numbers`; a string where a number belongs is an error) and against
its own ``checksum`` when it has one (routers saved before it existed have none). Every file it lists
must be a plain name inside the directory (no separator, no ``..``, no symlink pointing out), a
regular file (never a device or a FIFO) within its size cap, checked before it is read, and match
its checksum; only listed files are read. Array shapes, dtypes and values are checked against each
other and against the embedder's dimension (:mod:`optiroute.schema.arrays`). So a truncated, edited
or hostile file gives a :class:`CorruptArtifactError` that names the file and the field instead of a
traceback from inside numpy or annoy, a hang, or a read outside the directory.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from optiroute.analysis.analyzer import TaskAnalyzer
from optiroute.analysis.shared_text import SharedText
from optiroute.catalog.registry import Registry
from optiroute.errors import (
    ArtifactNotFoundError,
    CorruptArtifactError,
    InvalidInputError,
    RegistryError,
    UnsupportedFormatError,
)
from optiroute.quality.base import Predictor, predictor_class
from optiroute.quality.index import OutcomeIndex
from optiroute.quality.knn import QualityPredictor
from optiroute.routing.guard import RoutingGuard
from optiroute.routing.policy import PolicyConfig
from optiroute.schema.files import check_plain_name, load_json, member, read_capped, sha256_capped
from optiroute.schema.numbers import integer, optiroute_error, real


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
    @property
    def guard(self) -> RoutingGuard | None: ...
    @property
    def shared_text(self) -> SharedText | None: ...

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "Manifest", "load_default_parts", "load_router_parts", "save_router",
           "seal"]

FORMAT_NAME = "optiroute-router"
FORMAT_VERSION = 1
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DEFAULT_DIR = DATA_DIR / "default"


MANIFEST = "manifest.json"
#: Files a router directory may list, and which parts read them.
ROUTER_FILES = ("registry.json", "analyzer.npz", "analyzer.json", "index.npz", "index.ann",
                "predictor.npz", "predictor.json")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _sha256(path: Path) -> str:
    return sha256_capped(path)


def _canonical(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def seal(manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` with its own ``checksum``: the SHA-256 of its canonical JSON without that field.

    It catches a manifest edited or damaged after saving (routers saved before it existed have none
    and load without it). Like every checksum here it detects accidents, not a forger, who can
    recompute it: that is why everything a manifest says is also validated."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return {**body, "checksum": hashlib.sha256(_canonical(body)).hexdigest()}


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
        if f.is_file() and not f.is_symlink() and f.name in ROUTER_FILES
    )
    manifest = seal({
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "models": router.models,
        "k": router.k,
        "lam": router.lam,
        "policy": router.policy.model_dump(),
        "predictor": {"kind": kind, "files": pred_files, "selection": getattr(predictor, "selection", None),
                      **_knn_options(predictor)},
        **({"guard": router.guard.model_dump()} if router.guard is not None else {}),
        **({"shared_text": router.shared_text.model_dump()} if router.shared_text is not None else {}),
        "files": {name: _sha256(directory / name) for name in files},
    })
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return directory


def _knn_options(predictor: Predictor) -> dict[str, Any]:
    """What a kNN predictor needs beyond the router's ``k``/``lam`` (absent for routers without it,
    so their manifests stay as the earlier release wrote them)."""
    n0 = getattr(predictor, "observed_n0", None) if getattr(predictor, "kind", "knn") == "knn" else None
    return {} if n0 is None else {"observed_n0": float(n0)}


class _PredictorEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    kind: str = Field(min_length=1, max_length=64)
    files: list[str] = Field(default_factory=list, max_length=16)
    selection: dict[str, Any] | None = None
    observed_n0: float | None = None

    @field_validator("observed_n0", mode="before")
    @classmethod
    def _n0(cls, value: Any) -> float | None:
        return None if value is None else real(value, "field 'predictor.observed_n0'", lo=0.0, hi=1e6,
                                               error=CorruptArtifactError)


class Manifest(BaseModel):
    """What ``manifest.json`` may say (everything else is refused). Numbers are checked by the one
    validation layer (:mod:`optiroute.schema.numbers`), so a string where a number belongs is an error."""

    model_config = ConfigDict(extra="forbid", strict=True)

    format: str
    version: int
    models: list[str] = Field(default_factory=list, max_length=100_000)
    k: int = 50
    lam: float = 3.0
    policy: dict[str, Any] = Field(default_factory=dict)
    predictor: _PredictorEntry | None = None
    guard: dict[str, Any] | None = None
    shared_text: dict[str, Any] | None = None
    files: dict[str, str]
    checksum: str | None = None
    # informational (the bundled default's build notes)
    sources: dict[str, str] | None = None
    prompts: int | None = None
    note: str | None = None

    @field_validator("models")
    @classmethod
    def _models(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name.strip() or len(name) > 512:
                raise CorruptArtifactError(f"field 'models' holds {name[:80]!r}, which is not a model name.")
        return value

    @field_validator("k", mode="before")
    @classmethod
    def _k(cls, value: Any) -> int:
        return integer(value, "field 'k'", lo=1, hi=10_000, error=CorruptArtifactError)

    @field_validator("lam", mode="before")
    @classmethod
    def _lam(cls, value: Any) -> float:
        return real(value, "field 'lam'", lo=0.0, lo_open=True, hi=1e6, error=CorruptArtifactError)

    @field_validator("prompts", mode="before")
    @classmethod
    def _prompts(cls, value: Any) -> int | None:
        return None if value is None else integer(value, "field 'prompts'", lo=0, error=CorruptArtifactError)

    @field_validator("files")
    @classmethod
    def _files(cls, value: dict[str, str]) -> dict[str, str]:
        for name, digest in value.items():
            check_plain_name(name, where="field 'files'")
            if not _HEX64.match(digest):
                raise CorruptArtifactError(f"field 'files' gives {name!r} the checksum {digest[:80]!r}, which is "
                                           "not a SHA-256 (64 lower-case hex digits).")
        return value


def _read_manifest(directory: Path) -> Manifest:
    """The manifest of ``directory``, read untrusted (see :func:`load_router_parts`)."""
    if not directory.is_dir():
        raise ArtifactNotFoundError(
            f"Router directory {str(directory)!r} does not exist; create one with router.save(dir)."
        )
    path = directory / MANIFEST
    shown = repr(str(path))
    if not path.exists() and not path.is_symlink():
        raise ArtifactNotFoundError(
            f"{shown} is missing, so {str(directory)!r} is not a saved OptiRoute router."
        )
    member(directory, MANIFEST, where=repr(str(directory)))
    raw = load_json(read_capped(path), label=shown)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
        raise UnsupportedFormatError(
            f"{shown} is not an OptiRoute router manifest (format "
            f"{_short(raw.get('format')) if isinstance(raw, dict) else None}); expected {FORMAT_NAME!r}."
        )
    version = raw.get("version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise UnsupportedFormatError(
            f"{shown} has format version {_short(version)}; this OptiRoute reads "
            f"version {FORMAT_VERSION}. Upgrade OptiRoute or re-save the router with this version."
        )
    checksum = raw.get("checksum")
    if checksum is not None and checksum != seal(raw)["checksum"]:
        raise CorruptArtifactError(
            f"{shown} does not match its own checksum (edited or damaged after saving); restore it or "
            "save the router again."
        )
    try:
        return Manifest(**raw)
    except ValidationError as exc:
        inner = optiroute_error(exc)
        if inner is not None:
            raise CorruptArtifactError(f"{shown}: {inner}") from None
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "manifest"
        raise CorruptArtifactError(f"{shown}: field {where!r}: {first.get('msg')}; save the router again.") from None
    except TypeError:  # keys that are not strings cannot be fields
        raise CorruptArtifactError(f"{shown} has a field name that is not a string.") from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _verify(directory: Path, manifest: Manifest) -> None:
    """Every file the manifest lists: a plain name, a regular file within its cap, the right checksum."""
    where = repr(str(directory / MANIFEST))
    for name, digest in manifest.files.items():
        path = member(directory, name, where=where)
        if _sha256(path) != digest:
            raise CorruptArtifactError(
                f"{str(path)!r} does not match its checksum in manifest.json (truncated or edited); "
                "restore it or save the router again."
            )


def _listed(directory: Path, manifest: Manifest, name: str, *, required: bool) -> bool:
    """Whether ``name`` is one of the manifest's (verified) files; a required one must be."""
    if name in manifest.files:
        return True
    if required:
        raise CorruptArtifactError(
            f"{str(directory / MANIFEST)!r} does not list {name!r} among its files, so it cannot be "
            "verified; save the router again."
        )
    return False


def _check_dims(directory: Path, dim: int | None, analyzer: TaskAnalyzer, index: OutcomeIndex | None) -> int:
    """The embedding dimension the parts share (the embedder's, else the analyzer's); raises
    CorruptArtifactError naming the file whose arrays disagree."""
    want = dim if dim is not None else analyzer.dim
    if analyzer.dim != want:
        raise CorruptArtifactError(
            f"{str(directory / 'analyzer.npz')!r}: array 'task_w' is for embeddings of dimension {analyzer.dim}, "
            f"but the embedder makes {want}."
        )
    if index is not None and index.dim != want:
        raise CorruptArtifactError(
            f"{str(directory / 'index.npz')!r}: array 'embeddings' has dimension {index.dim}, but the analyzer "
            f"and the embedder use {want}."
        )
    return want



def _validated(model: Any, value: Any, name: str, where: str) -> Any:
    """``model.model_validate(value)``, a manifest entry's validation error named after its field."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ()))
        raise CorruptArtifactError(f"{where}: field '{name}.{field}': {first.get('msg')}; save the router "
                                   "again.") from None


def load_router_parts(directory: Path, *, dim: int | None = None) -> dict[str, Any]:
    """Read and verify a saved router; returns the keyword arguments of :class:`Router`.

    Nothing in the directory is trusted: the manifest is a regular file of at most 4 MB, JSON nested
    at most 64 deep, validated field by field (and against its own checksum when it has one); every
    file it lists is a plain name inside the directory (no separator, no symlink pointing out), a
    regular file within its size cap and matches its checksum; every part is read only if listed;
    array shapes, dtypes and values are checked against each other and against ``dim`` (the
    embedder's dimension; ``None``: the analyzer's).

    Raises:
        ArtifactNotFoundError: the directory, its manifest or a listed file is missing.
        CorruptArtifactError: anything else, naming the file and the field.
        UnsupportedFormatError: another format or version.
    """
    manifest = _read_manifest(directory)
    _verify(directory, manifest)
    where = repr(str(directory / MANIFEST))
    for name in ("registry.json", "analyzer.npz", "analyzer.json"):
        _listed(directory, manifest, name, required=True)
    try:
        registry = Registry.from_file(directory / "registry.json")
    except RegistryError as exc:
        raise CorruptArtifactError(f"{str(directory / 'registry.json')!r} is not a valid registry: {exc}") from None
    analyzer = TaskAnalyzer.load(directory / "analyzer.npz")
    dim = _check_dims(directory, dim, analyzer, None)
    index = None
    if _listed(directory, manifest, "index.npz", required=False):
        if (directory / "index.ann").exists() and "index.ann" not in manifest.files:
            raise CorruptArtifactError(f"{where} does not list 'index.ann', which lies beside the index; "
                                       "delete it (it is rebuilt) or save the router again.")
        index = OutcomeIndex.load(directory, dim=dim)
    _check_dims(directory, dim, analyzer, index)
    try:
        policy = PolicyConfig(**manifest.policy)
    except InvalidInputError as exc:
        raise CorruptArtifactError(f"{where}: field 'policy': {exc}") from None
    parts: dict[str, Any] = {
        "registry": registry,
        "analyzer": analyzer,
        "models": list(manifest.models) or None,
        "k": manifest.k,
        "lam": manifest.lam,
        "policy": policy,
    }
    if index is not None:
        parts["index"] = index
    if manifest.guard is not None:
        parts["guard"] = _validated(RoutingGuard, manifest.guard, "guard", where)
    if manifest.shared_text is not None:  # absent: a router saved before it existed embeds prompts as given
        parts["shared_text"] = _validated(SharedText, manifest.shared_text, "shared_text", where)
    entry = manifest.predictor or _PredictorEntry(kind="knn")
    if entry.kind != "knn":
        try:
            cls = predictor_class(entry.kind)
        except InvalidInputError:
            raise UnsupportedFormatError(
                f"{str(directory)!r} uses quality predictor {entry.kind!r}, which this OptiRoute does not "
                "know; upgrade OptiRoute or re-save the router."
            ) from None
        for name in ("predictor.npz", "predictor.json"):
            _listed(directory, manifest, name, required=True)
        parts["predictor"] = cls.load(directory, index, dim=dim)
    else:  # rebuilt on the store with the router's k, lam
        parts["predictor"] = QualityPredictor(None, observed_n0=entry.observed_n0)
    parts["predictor"].selection = entry.selection
    return parts


@functools.lru_cache(maxsize=1)
def load_default_parts() -> dict[str, Any]:
    """The bundled default: registry and analyzer from their bundled files, plus the default store.

    Loaded once per process: every ``Router.default()`` shares the read-only store (and its Annoy
    index, built on first use), as LangChain rebuilds models per call under ``configurable_fields``.
    """

    manifest_path = DEFAULT_DIR / MANIFEST
    if not manifest_path.exists():
        raise ArtifactNotFoundError(
            f"The bundled default router is missing ({str(manifest_path)!r}); reinstall optiroute or "
            "rebuild it with `python scripts/build_default.py`."
        )
    manifest = _read_manifest(DEFAULT_DIR)
    _verify(DEFAULT_DIR, manifest)
    return {"index": OutcomeIndex.load(DEFAULT_DIR), "models": list(manifest.models) or None}


def copy_tree(src: Path, dst: Path) -> None:
    """Copy a saved router directory (used by the CLI)."""
    shutil.copytree(src, dst, dirs_exist_ok=True)
