"""Files from outside: reading artifact files (saved routers, analyzer heads, registries) untrusted.

A saved router directory may come from anywhere, so nothing in it is trusted: a file name from a
manifest must be a plain name inside the directory (no separator, no ``..``, no symlink pointing
out), the file must be a regular file (never a device such as ``/dev/zero`` or a FIFO, which would
hang a reader) no larger than a cap for its kind, checked *before* anything is read, and JSON must
be small and shallow enough to parse without exhausting the stack. Every failure is the caller's
error class (by default :class:`~optiroute.errors.CorruptArtifactError`) naming the file; a name that
points outside the directory is refused on the name alone, so the error never tells whether a file
exists out there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from optiroute.errors import ArtifactNotFoundError, CorruptArtifactError, OptiRouteError

__all__ = [
    "CAPS",
    "MAX_JSON_DEPTH",
    "check_plain_name",
    "json_depth",
    "load_json",
    "member",
    "read_capped",
    "sha256_capped",
]

_MB = 1 << 20
#: Size caps by file name (bytes), checked before reading. Generous for what OptiRoute writes (the
#: bundled default's index.npz is 3.4 MB for 12.9k prompts) and small enough that no file can
#: exhaust memory; anything else a manifest lists gets ``CAPS["*"]``.
CAPS: dict[str, int] = {
    "manifest.json": 4 * _MB,
    "registry.json": 64 * _MB,
    "analyzer.json": 16 * _MB,
    "analyzer.npz": 512 * _MB,
    "index.npz": 4096 * _MB,
    "index.ann": 16384 * _MB,
    "predictor.json": 16 * _MB,
    "predictor.npz": 2048 * _MB,
    "*": 64 * _MB,
}
#: Deepest nesting of arrays and objects accepted in an artifact's JSON.
MAX_JSON_DEPTH = 64
_NAME_MAX = 255
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def cap_of(name: str) -> int:
    """The size cap of an artifact file called ``name``."""
    return CAPS.get(name, CAPS["*"])


def check_plain_name(name: Any, *, where: str, error: type[OptiRouteError] = CorruptArtifactError) -> str:
    """``name`` if it is a plain file name (no directory part), else ``error`` saying so.

    ``where`` names what listed it (e.g. ``"'/r/manifest.json' field 'files'"``).
    """
    ok = (isinstance(name, str) and 0 < len(name) <= _NAME_MAX and name not in (".", "..")
          and "/" not in name and "\\" not in name and "\x00" not in name
          and (os.sep not in name) and (os.altsep is None or os.altsep not in name)
          and not (len(name) >= 2 and name[1] == ":"))
    if not ok:
        shown = repr(name) if isinstance(name, str) and len(name) <= 80 else type(name).__name__
        raise error(f"{where} lists the file name {shown}, which is not a plain file name inside the "
                    "directory (no path separators, '.' or '..'); the artifact is corrupted or hostile.")
    return name


def member(directory: Path, name: str, *, where: str, cap: int | None = None,
           error: type[OptiRouteError] = CorruptArtifactError) -> Path:
    """The path of file ``name`` inside ``directory``, checked before anything is read from it.

    The name must be plain (:func:`check_plain_name`); a symlink must resolve inside the directory;
    the file must be a regular file of at most ``cap`` bytes (default: :data:`CAPS` for the name).

    Raises:
        ArtifactNotFoundError: the file does not exist.
        ``error``: anything else (names the file and what is wrong).
    """
    check_plain_name(name, where=where, error=error)
    path = directory / name
    shown = repr(str(path))
    if path.is_symlink():
        target = path.resolve(strict=False)
        if not target.is_relative_to(directory.resolve(strict=False)):
            raise error(f"{shown} is a symbolic link pointing outside its directory; refusing to read it.")
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ArtifactNotFoundError(f"{shown} is listed in {where} but missing.") from None
    except OSError as exc:
        raise error(f"{shown} cannot be examined ({type(exc).__name__}: {exc}).") from None
    _check_stat(st, shown, cap_of(name) if cap is None else cap, error)
    return path


def _check_stat(st: os.stat_result, shown: str, cap: int, error: type[OptiRouteError]) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{shown} is not a regular file (a device, FIFO, socket or directory); refusing to read it.")
    if st.st_size > cap:
        raise error(f"{shown} is {st.st_size} bytes, more than the {cap} bytes such a file may have; "
                    "refusing to read it.")


def _open(path: Path, cap: int, error: type[OptiRouteError]) -> int:
    """A read-only descriptor of a regular file of at most ``cap`` bytes (checked on the descriptor,
    so a file swapped after :func:`member` is caught; non-blocking, so a FIFO cannot hang the open)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ArtifactNotFoundError(f"{str(path)!r} is missing.") from None
    except OSError as exc:
        raise error(f"{str(path)!r} cannot be opened ({type(exc).__name__}: {exc}).") from None
    try:
        _check_stat(os.fstat(fd), repr(str(path)), cap, error)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_capped(path: Path, cap: int | None = None, *, error: type[OptiRouteError] = CorruptArtifactError) -> bytes:
    """All bytes of the regular file ``path``, refusing it (``error``) when it is larger than ``cap``
    (default: :data:`CAPS` for its name) or not a regular file."""
    limit = cap_of(path.name) if cap is None else cap
    fd = _open(path, limit, error)
    with os.fdopen(fd, "rb") as fh:
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise error(f"{str(path)!r} cannot be read ({type(exc).__name__}: {exc}).") from None
    if len(data) > limit:
        raise error(f"{str(path)!r} grew beyond {limit} bytes while being read; refusing it.")
    return data


def sha256_capped(path: Path, cap: int | None = None, *, error: type[OptiRouteError] = CorruptArtifactError) -> str:
    """SHA-256 of the regular file ``path`` (same checks as :func:`read_capped`), streamed."""
    limit = cap_of(path.name) if cap is None else cap
    fd = _open(path, limit, error)
    h = hashlib.sha256()
    seen = 0
    with os.fdopen(fd, "rb") as fh:
        try:
            for block in iter(lambda: fh.read(1 << 20), b""):
                seen += len(block)
                if seen > limit:
                    raise error(f"{str(path)!r} grew beyond {limit} bytes while being read; refusing it.")
                h.update(block)
        except OSError as exc:
            raise error(f"{str(path)!r} cannot be read ({type(exc).__name__}: {exc}).") from None
    return h.hexdigest()


def json_depth(text: str, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of the arrays and objects in JSON ``text`` (strings skipped), counting only up
    to ``limit + 1`` (enough to refuse it)."""
    depth = best = 0
    for tok in _TOKENS.finditer(text):
        c = tok.group()
        if c in "[{":
            depth += 1
            if depth > best:
                best = depth
                if best > limit:
                    return best
        elif c in "]}":
            depth -= 1
    return best


def load_json(data: bytes | str, *, label: str, error: type[OptiRouteError] = CorruptArtifactError,
              max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON from an untrusted file: UTF-8, nested at most ``max_depth`` deep, else ``error``
    naming ``label`` (the file)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise error(f"{label} is not UTF-8 text ({exc}).") from None
    if json_depth(text, max_depth) > max_depth:
        raise error(f"{label} nests arrays or objects more than {max_depth} deep; it is not a file "
                    "OptiRoute wrote.")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise error(f"{label} is not valid JSON ({type(exc).__name__}: {exc}).") from None
