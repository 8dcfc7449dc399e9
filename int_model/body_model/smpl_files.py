"""Reading the licensed SMPL files (``SMPL_NEUTRAL.pkl``, optional ``J_regressor_h36m.npy``) without chumpy.

The official SMPL pickles were written by Python 2 and hold chumpy objects (``chumpy.ch.Ch`` and
friends) and scipy sparse matrices. :class:`RestrictedUnpickler` maps every chumpy class to
:class:`ChumpyArray`, which keeps only the underlying numpy array (``x`` in its state), and refuses
any global outside a short allow-list, so a pickle cannot run code on load.
"""

from __future__ import annotations

import builtins
import functools
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

SMPL_FILE_NAME = "SMPL_NEUTRAL.pkl"
H36M_REGRESSOR_FILE_NAME = "J_regressor_h36m.npy"
SMPL_DIR_ENV = "INT_SMPL_DIR"
SMPL_KEYS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")
WHERE_TO_GET_SMPL = (
    "The SMPL model is licensed: register at https://smpl.is.tue.mpg.de, download the neutral model and "
    f"put it there as {SMPL_FILE_NAME}; point INT Studio at the folder with --smpl-dir or {SMPL_DIR_ENV}. "
    "Without it, INT Studio uses its built-in procedural body model (leave both unset)."
)


class ChumpyArray:
    """Stand-in for chumpy objects in SMPL pickles: keeps the numpy array found in their state (``x``)."""

    array: np.ndarray | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.array = None

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            state = state[0]
        value = state.get("x") if isinstance(state, dict) else None
        self.array = None if value is None else np.asarray(value)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if self.array is None:
            raise ValueError("chumpy object in the SMPL file holds no array ('x')")
        return self.array if dtype is None else self.array.astype(dtype)


class RefusedGlobalError(pickle.UnpicklingError):
    """A pickle named a global that the restricted unpickler does not allow."""


class SmplFileError(ValueError):
    """The SMPL file cannot be used (not a pickle of SMPL arrays, or a pickle that names forbidden globals)."""


_CHUMPY_MODULES = (
    "chumpy",
    "chumpy.ch",
    "chumpy.reordering",
    "chumpy.ch_ops",
    "chumpy.linalg",
    "chumpy.utils",
    "chumpy.logic",
)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """(module, name) -> object for every global an SMPL pickle may name (old and new module paths)."""
    import scipy.sparse

    allowed: dict[tuple[str, str], Any] = {("numpy", "dtype"): np.dtype, ("numpy", "ndarray"): np.ndarray}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = _reconstruct
        allowed[(module, "scalar")] = _numpy_scalar
    for name in ("csc_matrix", "csr_matrix"):
        short = name.split("_")[0]
        for module in ("scipy.sparse", f"scipy.sparse.{short}", f"scipy.sparse._{short}"):
            allowed[(module, name)] = getattr(scipy.sparse, name)
    for name in ("object", "set", "frozenset", "list", "dict", "tuple", "slice", "complex"):
        allowed[("__builtin__", name)] = allowed[("builtins", name)] = getattr(builtins, name)
    allowed[("_codecs", "encode")] = _latin1_encode  # how protocol-2 pickles from Python 3 store bytes
    allowed[("copy_reg", "_reconstructor")] = allowed[("copyreg", "_reconstructor")] = _copyreg_reconstructor
    return allowed


def _reconstruct(cls: type, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's pickle helper, limited to ndarray itself."""
    if cls is not np.ndarray:
        raise RefusedGlobalError(f"numpy array reconstruction of {cls!r} is not allowed")
    return np.ndarray.__new__(cls, shape, dtype)


def _numpy_scalar(dtype: np.dtype, data: bytes | str | None = None) -> Any:
    """numpy's scalar pickle helper (``numpy.core.multiarray.scalar``)."""
    if isinstance(data, str):  # a Python 2 byte string read with encoding='latin1'
        data = data.encode("latin1")
    return np.frombuffer(data, dtype=dtype, count=1)[0] if data is not None else np.zeros((), dtype=dtype)[()]


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` limited to the latin-1 round trip that pickle uses for bytes."""
    if encoding.replace("-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        raise RefusedGlobalError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin1")


def _copyreg_reconstructor(cls: type, base: type, state: Any) -> Any:
    """Protocol-0/1 object reconstruction, for chumpy stand-ins only."""
    if cls is not ChumpyArray or base is not object:
        raise RefusedGlobalError(f"copyreg reconstruction of {cls!r} is not allowed")
    return object.__new__(cls)


def allowed_global(module: str, name: str, *, what: str = "the SMPL file") -> Any:
    """The object a restricted pickle may name as ``module.name`` (chumpy classes -> :class:`ChumpyArray`);
    :class:`RefusedGlobalError` for anything else."""
    if module in _CHUMPY_MODULES or module.startswith("chumpy."):
        return ChumpyArray
    try:
        return _ALLOWED_GLOBALS()[(module, name)]
    except KeyError:
        raise RefusedGlobalError(
            f"refusing to load global {module}.{name} from {what}: only numpy arrays, scipy sparse matrices, "
            "chumpy arrays and plain Python values are allowed"
        ) from None


_ALLOWED_GLOBALS = functools.cache(_allowed_globals)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for SMPL files: chumpy -> :class:`ChumpyArray`, numpy/scipy/builtins from an allow-list."""

    def __init__(self, file: Any, *, what: str = "the SMPL file", **kwargs: Any) -> None:
        kwargs.setdefault("encoding", "latin1")
        super().__init__(file, **kwargs)
        self.what = what

    def find_class(self, module: str, name: str) -> Any:
        return allowed_global(module, name, what=self.what)


def restricted_load(data: bytes | Any, *, what: str = "the SMPL file") -> Any:
    """Unpickle ``data`` (bytes or a binary file) with :class:`RestrictedUnpickler`."""
    handle = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    return RestrictedUnpickler(handle, what=what).load()


def to_numpy(value: Any) -> np.ndarray:
    """Chumpy stand-ins, scipy sparse matrices and array-likes -> a plain dense numpy array."""
    if isinstance(value, ChumpyArray):
        return np.asarray(value)
    if hasattr(value, "toarray"):
        return np.asarray(value.toarray())
    return np.asarray(value)


def smpl_file_path(smpl_dir: str | os.PathLike) -> Path:
    """Path of the neutral SMPL pickle in ``smpl_dir``; FileNotFoundError (saying where SMPL comes from) if absent."""
    path = Path(smpl_dir) / SMPL_FILE_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{SMPL_FILE_NAME} not found in {Path(smpl_dir)} (looked for {path}). {WHERE_TO_GET_SMPL}"
        )
    return path


def read_smpl_arrays(smpl_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """The SMPL model arrays from ``smpl_dir`` as plain numpy arrays.

    Returns ``v_template (V,3)``, ``f (F,3) int64``, ``shapedirs (V,3,B)``, ``posedirs (V,3,207)``,
    ``J_regressor (24,V)`` dense, ``weights (V,24)``, ``kintree_table (2,24) int64``, and
    ``J_regressor_h36m (17,V)`` when ``J_regressor_h36m.npy`` is in the folder.
    """
    path = smpl_file_path(smpl_dir)
    try:
        with path.open("rb") as handle:
            raw = restricted_load(handle, what=str(path))
    except RefusedGlobalError as exc:
        raise SmplFileError(f"{path} is not the SMPL model file and was not loaded ({exc}). {WHERE_TO_GET_SMPL}") \
            from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise SmplFileError(f"{path} is not a readable SMPL model file ({type(exc).__name__}: {exc}). "
                            f"{WHERE_TO_GET_SMPL}") from None
    if not isinstance(raw, dict):
        raise SmplFileError(f"{path}: expected a dict of arrays, found {type(raw).__name__}")
    missing = [key for key in SMPL_KEYS if key not in raw]
    if missing:
        raise SmplFileError(f"{path}: not an SMPL model file (missing {', '.join(missing)})")
    arrays = {key: to_numpy(raw[key]) for key in SMPL_KEYS}
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
        arrays[key] = arrays[key].astype(np.float32)
    arrays["f"] = arrays["f"].astype(np.int64)
    kintree = arrays["kintree_table"].astype(np.int64)
    kintree[kintree > np.iinfo(np.int32).max] = -1  # SMPL stores the root's parent as uint32 max
    arrays["kintree_table"] = kintree
    h36m_path = Path(smpl_dir) / H36M_REGRESSOR_FILE_NAME
    if h36m_path.is_file():
        arrays["J_regressor_h36m"] = to_numpy(np.load(h36m_path, allow_pickle=False)).astype(np.float32)
    return arrays
