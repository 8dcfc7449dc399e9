"""The procedural body's disk cache and identity.

The arrays are generated once into ``$INT_CACHE_DIR`` (default ``~/.cache/int-studio``) as
``procedural_body_v1.npz`` and read from there afterwards. The identity string carries a content hash
(``procedural-v1:<12 hex>``).
"""

from __future__ import annotations

import functools
import hashlib
import os
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ...files import atomic_write
from .generate import generate_procedural_body

GENERATOR_VERSION = 1
CACHE_FILE_NAME = f"procedural_body_v{GENERATOR_VERSION}.npz"
CACHE_FILE_MODE = 0o644


def cache_dir() -> Path:
    """``$INT_CACHE_DIR`` or ``~/.cache/int-studio``."""
    env = os.environ.get("INT_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "int-studio"


HASH_DECIMALS = 5  # the identity ignores float noise below 1e-5 (10 micrometres for positions)


def content_hash(arrays: Mapping[str, np.ndarray], decimals: int = HASH_DECIMALS) -> str:
    """12 hex digits of a SHA-256 over the arrays (names, shapes, and values; floats rounded to ``decimals``)."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        a = np.asarray(arrays[name])
        if a.dtype.kind == "f":
            a = np.round(a.astype(np.float64), decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
        elif a.dtype.kind in "iub":
            a = a.astype(np.int64)
        digest.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()[:12]


def _write_atomic(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    atomic_write(path, lambda handle: np.savez_compressed(handle, **arrays), mode=CACHE_FILE_MODE)


ARRAY_KEYS = (
    "v_template",
    "f",
    "shapedirs",
    "posedirs",
    "J_regressor",
    "J_regressor_h36m",
    "weights",
    "kintree_table",
    "J",
    "J_shapedirs",
    "landmark_ids",
    "part_labels",
)


def _read(path: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when the file is missing, damaged or incomplete."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None
    return arrays if set(ARRAY_KEYS) <= set(arrays) else None


@functools.lru_cache(maxsize=4)
def _cached_arrays(path: str) -> tuple[tuple[str, np.ndarray], ...]:
    arrays = _read(Path(path))
    if arrays is None:
        arrays = generate_procedural_body()
        try:
            _write_atomic(Path(path), arrays)
        except OSError as error:  # a read-only cache folder costs a regeneration per process, nothing more
            warnings.warn(f"could not cache the procedural body model at {path}: {error}", stacklevel=3)
    for a in arrays.values():
        a.setflags(write=False)
    return tuple(sorted(arrays.items()))


def load_procedural_arrays() -> dict[str, np.ndarray]:
    """The procedural body arrays (read-only), from the in-process cache, the disk cache, or generated."""
    return dict(_cached_arrays(str(cache_dir() / CACHE_FILE_NAME)))


def procedural_identity(arrays: Mapping[str, np.ndarray]) -> str:
    """``procedural-v1:<12 hex>`` for the arrays."""
    return f"procedural-v{GENERATOR_VERSION}:{content_hash(arrays)}"
