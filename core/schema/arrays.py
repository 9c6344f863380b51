"""Arrays from outside: reading an untrusted ``.npz`` and checking shapes, dtypes and values.

An ``.npz`` is a zip of ``.npy`` files. Each member's header (shape and dtype) is read and checked
*before* its data: object arrays are refused (nothing is ever unpickled), and the arrays together may
not decompress to more than :func:`decompressed_cap` bytes, so a small file cannot expand into a
memory bomb. Shapes are then checked against each other with :func:`bind_shapes` (symbolic sizes
such as ``"n"`` or ``"dim"`` must agree across arrays and with sizes known from elsewhere, e.g. the
embedder's dimension). Every failure is the caller's error class (default
:class:`~optiroute.errors.CorruptArtifactError`) naming the file and the array.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import IO

import numpy as np

from optiroute.errors import CorruptArtifactError, OptiRouteError

__all__ = ["bind_shapes", "check_values", "decompressed_cap", "load_npz"]

_GB = 1 << 30


def decompressed_cap(file_bytes: int) -> int:
    """The most bytes the arrays of an ``.npz`` of ``file_bytes`` may decompress to: 1 GiB, or 64x
    the file (embeddings barely compress, so real artifacts stay far below that)."""
    return max(_GB, 64 * file_bytes)


def _header(fh: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version in ((2, 0), (3, 0)):
        shape, _fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    else:  # pragma: no cover - read_magic refuses unknown versions itself
        raise ValueError(f"unknown .npy version {version}")
    return tuple(int(x) for x in shape), np.dtype(dtype)


def load_npz(data: bytes, *, label: str, keys: Iterable[str] | None = None,
             error: type[OptiRouteError] = CorruptArtifactError) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` bytes ``data`` (only ``keys`` when given; missing ones are left out).

    Raises:
        ``error``: not a zip of ``.npy`` files, an object array, a header that does not parse, or
            arrays that would decompress beyond :func:`decompressed_cap` (``label`` names the file).
    """
    wanted = None if keys is None else set(keys)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members: dict[str, zipfile.ZipInfo] = {}
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    raise error(f"{label} holds {info.filename!r}, which is not an array.")
                key = info.filename[: -len(".npy")]
                if wanted is None or key in wanted:
                    members[key] = info
            total = 0
            for key, info in members.items():
                with zf.open(info) as fh:
                    shape, dtype = _header(fh)
                if dtype.hasobject:
                    raise error(f"{label}: array {key!r} holds Python objects ({dtype}); OptiRoute never "
                                "reads pickled data.")
                total += math.prod(shape) * dtype.itemsize
            if total > decompressed_cap(len(data)):
                raise error(f"{label}: its arrays would take {total} bytes in memory, more than "
                            f"{decompressed_cap(len(data))} for a file of {len(data)} bytes; refusing it.")
            out: dict[str, np.ndarray] = {}
            for key, info in members.items():
                with zf.open(info) as fh:
                    out[key] = np.lib.format.read_array(fh, allow_pickle=False)
            return out
    except OptiRouteError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error,
            struct.error, NotImplementedError, OverflowError, MemoryError) as exc:
        raise error(f"{label} is corrupted or not an array file ({type(exc).__name__}: {exc}).") from None


def bind_shapes(arrays: Mapping[str, np.ndarray], spec: Mapping[str, Sequence[str | int]], *, label: str,
                sizes: Mapping[str, int] | None = None, kinds: Mapping[str, str] | None = None,
                error: type[OptiRouteError] = CorruptArtifactError) -> dict[str, int]:
    """Check ``arrays`` against ``spec`` (array name -> shape, with symbolic sizes); returns the sizes.

    A symbolic size is bound by the first array that has it (or given in ``sizes``) and must then
    agree everywhere; ``kinds`` maps array names to allowed dtype kinds (``"f"``, ``"iu"``, ``"U"``...).

    Raises:
        ``error``: a missing array, a wrong number of dimensions, a size that disagrees, a wrong dtype
            kind (naming the file, the array and what was expected).
    """
    bound: dict[str, int] = dict(sizes or {})
    for key, dims in spec.items():
        if key not in arrays:
            raise error(f"{label} lacks the array {key!r}.")
        a = arrays[key]
        allowed = (kinds or {}).get(key)
        if allowed is not None and a.dtype.kind not in allowed:
            raise error(f"{label}: array {key!r} has dtype {a.dtype}, expected kind {allowed!r}.")
        if a.ndim != len(dims):
            raise error(f"{label}: array {key!r} has shape {a.shape}, expected {len(dims)} dimension(s) "
                        f"({', '.join(map(str, dims)) or 'a scalar'}).")
        for axis, (want, got) in enumerate(zip(dims, a.shape, strict=True)):
            if isinstance(want, int):
                if got != want:
                    raise error(f"{label}: array {key!r} has shape {a.shape}; axis {axis} must be {want}.")
            elif want in bound:
                if got != bound[want]:
                    raise error(f"{label}: array {key!r} has shape {a.shape}; axis {axis} ({want}) must be "
                                f"{bound[want]} to match the other arrays" + (
                                    " and the embedder" if want == "dim" else "") + ".")
            else:
                bound[want] = got
    return bound


def check_values(a: np.ndarray, key: str, *, label: str, lo: float | None = None, hi: float | None = None,
                 allow_nan: bool = False, error: type[OptiRouteError] = CorruptArtifactError) -> None:
    """Every value of numeric array ``a`` is finite (or NaN when ``allow_nan``) and within ``lo..hi``."""
    v = np.asarray(a, dtype=np.float64)
    ok = np.isfinite(v)
    if allow_nan:
        ok |= np.isnan(v)
    with np.errstate(invalid="ignore"):
        if lo is not None:
            ok &= ~(v < lo)
        if hi is not None:
            ok &= ~(v > hi)
    if not ok.all():
        bad = v.reshape(-1)[int(np.flatnonzero(~ok.reshape(-1))[0])]
        span = f" in {lo}..{hi}" if lo is not None or hi is not None else ""
        raise error(f"{label}: array {key!r} must hold finite values{span}"
                    f"{' (NaN allowed)' if allow_nan else ''}; it has {bad!r}.")
