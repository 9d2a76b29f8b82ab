"""A safe reader for Sketch-RNN ``.npz`` files (which hold pickled object arrays).

The Sketch-RNN data files (Quick, Draw! ``<category>.npz``, ``omniglot.npz``, ...) hold ``train`` /
``valid`` / ``test`` as numpy OBJECT arrays of int16 ``[N, 3]`` stroke-3 arrays. numpy stores an
object array as a pickle, written by Python 2, so plain numpy needs
``np.load(path, encoding='latin1', allow_pickle=True)`` -- and a pickle can run any code it names
(``os.system``, ``builtins.eval``, ...) the moment it is loaded.

This module reads the same files without that risk:

* the ``.npy`` header (magic, version, ``{'descr', 'fortran_order', 'shape'}``) is parsed here with
  :func:`ast.literal_eval` (literals only), and the dtype built with ``numpy.lib.format.descr_to_dtype``;
* numeric arrays are read straight from the bytes, no pickle involved;
* object arrays go through :class:`RestrictedUnpickler`, whose ``find_class`` hands out ONLY what a
  numpy object array of numpy arrays needs -- ``numpy.core.multiarray._reconstruct`` (or its numpy 2
  home ``numpy._core.multiarray._reconstruct``), ``numpy.ndarray`` and ``numpy.dtype`` -- and refuses
  everything else with ``ValueError("refusing to unpickle <module>.<name> ...")`` BEFORE anything
  is called. (The ``EXT*`` opcodes also go through ``find_class``; ``persistent_load`` is not
  defined, so persistent ids fail.) One more global is allowed in exactly one use:
  ``_codecs.encode(text, 'latin1')``, which is how pickle protocol <= 2 (files written by older
  tools) stores ``bytes`` -- the array data; it resolves to a function that accepts only a ``str``
  and ``'latin1'``.

:func:`read_arrays` is the general reader (a dict of arrays, the same as numpy's); :func:`load_npz`
turns a Sketch-RNN file into ``{split: [stroke-3 arrays]}`` and validates every sketch.
"""

from __future__ import annotations

import ast
import math
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from sketchlib.data.fileio import atomic_path
from sketchlib.data.strokes import validate_stroke3

_MAGIC = b"\x93NUMPY"
_MAX_HEADER = 100_000  # numpy itself refuses headers over 10 000 bytes by default


def _reconstruct_function():
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


_RECONSTRUCT = _reconstruct_function()


def _latin1_bytes(text, encoding=None):
    """``_codecs.encode`` as pickle protocol <= 2 uses it to store bytes: ``(str, 'latin1') -> bytes``, nothing else."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ValueError(f"refusing to unpickle _codecs.encode({type(text).__name__}, {encoding!r}): only "
                         "_codecs.encode(str, 'latin1') (protocol-2 bytes) is allowed")
    return text.encode("latin1")

#: (module, name) -> object: the only globals a pickle may name. Both spellings of _reconstruct are
#: accepted because files written by numpy 1.x (all the published Sketch-RNN files) name
#: ``numpy.core.multiarray`` and numpy 2 writes ``numpy._core.multiarray``.
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_bytes,  # protocol <= 2 bytes; checks its arguments
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can only rebuild numpy arrays (and their dtypes); it resolves no other global."""

    def find_class(self, module: str, name: str):
        obj = ALLOWED_GLOBALS.get((module, name))
        if obj is None:
            raise ValueError(
                f"refusing to unpickle {module}.{name}: a Sketch-RNN .npz may only contain numpy arrays "
                f"(allowed: {', '.join(sorted(m + '.' + n for m, n in ALLOWED_GLOBALS))})"
            )
        return obj


def _read_header(f, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Parse a ``.npy`` header from file object ``f``: returns ``(shape, fortran_order, dtype)``."""
    magic = f.read(8)
    if len(magic) < 8 or magic[:6] != _MAGIC:
        raise ValueError(f"{where}: not a .npy array (bad magic {magic[:6]!r})")
    version = (magic[6], magic[7])
    if version == (1, 0):
        size_fmt, encoding = "<H", "latin1"
    elif version in ((2, 0), (3, 0)):
        size_fmt, encoding = "<I", "latin1" if version == (2, 0) else "utf8"
    else:
        raise ValueError(f"{where}: unsupported .npy format version {version[0]}.{version[1]}")
    raw_len = f.read(struct.calcsize(size_fmt))
    if len(raw_len) < struct.calcsize(size_fmt):
        raise ValueError(f"{where}: truncated .npy header")
    (hlen,) = struct.unpack(size_fmt, raw_len)
    if hlen > _MAX_HEADER:
        raise ValueError(f"{where}: .npy header of {hlen} bytes is implausibly large")
    raw = f.read(hlen)
    if len(raw) < hlen:
        raise ValueError(f"{where}: truncated .npy header ({len(raw)} of {hlen} bytes)")
    try:
        header = ast.literal_eval(raw.decode(encoding))
    except (SyntaxError, ValueError, UnicodeDecodeError, MemoryError, RecursionError) as e:
        raise ValueError(f"{where}: corrupt .npy header ({e})") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise ValueError(f"{where}: corrupt .npy header {header!r}")
    shape, fortran = header["shape"], header["fortran_order"]
    if not (isinstance(shape, tuple) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                             for n in shape)):
        raise ValueError(f"{where}: bad shape {shape!r} in .npy header")
    if not isinstance(fortran, bool):
        raise ValueError(f"{where}: bad fortran_order {fortran!r} in .npy header")
    try:
        dtype = np.lib.format.descr_to_dtype(header["descr"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: bad dtype {header['descr']!r} in .npy header ({e})") from None
    return shape, fortran, dtype


def _read_numeric(f, shape, fortran, dtype, size_left: int, where: str) -> np.ndarray:
    count = math.prod(shape)  # Python ints: a huge declared shape cannot overflow
    nbytes = count * dtype.itemsize
    if nbytes > size_left:
        raise ValueError(f"{where}: truncated array data: the header declares shape {shape} of {dtype} "
                         f"({nbytes} bytes), but only {size_left} bytes follow it")
    data = f.read(nbytes)
    if len(data) < nbytes:
        raise ValueError(f"{where}: truncated array data ({len(data)} of {nbytes} bytes)")
    arr = np.frombuffer(bytearray(data), dtype=dtype, count=count)
    return arr.reshape(shape, order="F" if fortran else "C")


def _read_object(f, shape, where: str) -> np.ndarray:
    try:
        arr = RestrictedUnpickler(f, encoding="latin1").load()
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    except (pickle.UnpicklingError, EOFError, TypeError, AttributeError, IndexError, KeyError,
            struct.error, MemoryError, RecursionError) as e:
        raise ValueError(f"{where}: corrupt pickled object array ({type(e).__name__}: {e})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype != object or arr.shape != shape:
        got = f"{type(arr).__name__} {getattr(arr, 'dtype', '')} {getattr(arr, 'shape', '')}".strip()
        raise ValueError(f"{where}: the pickle does not hold an object array of shape {shape} (got {got})")
    return arr


def read_arrays(path) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` file, safely: a dict ``{key: array}``.

    Gives the same arrays as ``dict(np.load(path, encoding='latin1', allow_pickle=True))`` for
    numeric arrays and object arrays of numpy arrays, and refuses any other pickled content. Raises
    ``ValueError`` naming the file (and the array) for anything corrupt, truncated or refused.
    """
    path = Path(path)
    out: dict[str, np.ndarray] = {}
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not an .npz file")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as e:
        raise ValueError(f"{path}: not a valid .npz (zip) file ({e})") from None
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            where = f"{path}: array {key!r}"
            try:
                with zf.open(info) as f:
                    shape, fortran, dtype = _read_header(f, where)
                    if dtype == object:
                        arr = _read_object(f, shape, where)
                    elif dtype.hasobject:
                        raise ValueError(f"{where}: structured dtype {dtype} with object fields is not supported")
                    else:
                        arr = _read_numeric(f, shape, fortran, dtype, info.file_size - f.tell(), where)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as e:
                raise ValueError(f"{where}: corrupt .npz member ({type(e).__name__}: {e})") from None
            out[key] = arr
    return out


def validate_sketches(sketches, where: str = "") -> None:
    """:func:`~sketchlib.data.strokes.validate_stroke3` on every sketch, fast: one call on all of them
    concatenated (a valid stroke-3 array iff every part is one); only when that fails, sketch by
    sketch, so the ``ValueError`` names ``where`` and the index of the first bad sketch."""
    prefix = f"{where}, " if where else ""
    ok = all(isinstance(s, np.ndarray) and s.ndim == 2 and s.shape[0] > 0 and s.shape[1] == 3 for s in sketches)
    if ok and len(sketches) > 0:
        try:
            validate_stroke3(np.concatenate(sketches))
            if len({s.dtype for s in sketches}) == 1:
                return
        except (ValueError, TypeError):
            pass
    for i, s in enumerate(sketches):
        if not isinstance(s, np.ndarray):
            raise ValueError(f"{prefix}sketch {i}: expected a numpy array, got {type(s).__name__}")
        try:
            validate_stroke3(s, index=i)
        except ValueError as e:
            raise ValueError(f"{prefix}{e}") from None


def load_npz(path, validate: bool = True) -> dict[str, list[np.ndarray]]:
    """Load a Sketch-RNN ``.npz``: ``{split: [stroke-3 array, ...]}`` (e.g. train / valid / test).

    Object arrays give their elements as they are (int16 ``[N, 3]`` in the published files, exactly
    what ``np.load(..., encoding='latin1', allow_pickle=True)`` gives); a numeric ``[K, N, 3]`` array
    gives its ``K`` sketches. With ``validate`` every sketch is checked with
    :func:`sketchlib.data.strokes.validate_stroke3`; the error names the file, the split and the index.
    """
    path = Path(path)
    out: dict[str, list[np.ndarray]] = {}
    for key, arr in read_arrays(path).items():
        if arr.dtype == object:
            if arr.ndim != 1:
                raise ValueError(f"{path}: split {key!r} must be a 1-D array of sketches, got shape {arr.shape}")
            sketches = list(arr)
        elif arr.ndim == 3:
            sketches = list(arr)
        else:
            raise ValueError(f"{path}: split {key!r} is a {arr.dtype} array of shape {arr.shape}, "
                             "not a list of stroke-3 sketches")
        if validate:
            validate_sketches(sketches, f"{path}: split {key!r}")
        out[key] = sketches
    return out


def save_npz(path, splits: dict, compressed: bool = True) -> Path:
    """Write ``{split: [stroke-3 arrays]}`` in the Sketch-RNN layout (object arrays), atomically.

    Object arrays are pickled by numpy; :func:`load_npz` reads them back with the restricted
    unpickler. Used by tests and to export data in the reference format.
    """
    arrays = {}
    for key, sketches in splits.items():
        a = np.empty(len(sketches), dtype=object)
        for i, s in enumerate(sketches):
            a[i] = np.asarray(s)
        arrays[key] = a
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            (np.savez_compressed if compressed else np.savez)(f, **arrays)
    return Path(path)


__all__ = ["ALLOWED_GLOBALS", "RestrictedUnpickler", "read_arrays", "load_npz", "save_npz", "validate_sketches"]
