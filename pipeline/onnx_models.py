"""The trained detector and keypoint networks INT Studio ships, run with onnxruntime.

The weights come from registry packages (see ``pipeline/assets/detectors/README.md`` for where each file comes
from, its licence, and ``scripts/convert_detectors.py`` for how it was converted); nothing is downloaded.
"""

from __future__ import annotations

import os
import threading
from functools import cache
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets" / "detectors"
SSDLITE_PERSON = ASSETS / "ssdlite_person.onnx"
BLAZEPOSE_FULL = ASSETS / "pose_landmark_full.onnx"

_INSTALL_HINT = "install onnxruntime (it is in requirements.txt: run `make setup`)"
_lock = threading.Lock()


class ModelUnavailable(RuntimeError):
    """A shipped network cannot run here; the message says why and what to do."""


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def model_available(path: Path) -> bool:
    return path.is_file() and onnxruntime_available()


@cache
def session(path: Path):
    """One inference session per network and process (onnxruntime sessions are safe to share across threads).

    Runs on CUDA when onnxruntime was built with it, else on the CPU with ``INT_ONNX_THREADS`` threads (default:
    onnxruntime's own choice, every core).

    Raises:
        ModelUnavailable: onnxruntime is missing or the file is absent.
    """
    try:
        import onnxruntime as ort
    except ImportError as error:
        raise ModelUnavailable(f"{path.name} needs onnxruntime: {_INSTALL_HINT}") from error
    if not path.is_file():
        raise ModelUnavailable(f"{path} is missing: the package was installed without its assets; reinstall it")
    options = ort.SessionOptions()
    threads = os.environ.get("INT_ONNX_THREADS")
    if threads:
        options.intra_op_num_threads = int(threads)
    options.log_severity_level = 3
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    with _lock:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
