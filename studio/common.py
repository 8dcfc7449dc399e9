"""Plumbing shared by the app's tabs: settings, one-line error messages, the model cache, session folders.

No maths here (DESIGN §2): the tabs call ``int_model``, ``viz`` and ``training``.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
import threading
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from int_model import CheckpointError, IntModel, build_model, demo_checkpoint, load_body_model, load_checkpoint
from int_model.pipeline.boxes import BoxFileError
from int_model.pipeline.detection import DetectorUnavailable
from int_model.pipeline.media import MediaError
from viz import RendererUnavailable

log = logging.getLogger("int_studio.app")

FRESH_VARIANTS = ("small", "paper", "tiny")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".tar", ".ckpt")
MAX_CACHED_MODELS = 3
#: Sessions whose heavy work (reconstruct, attention) may run at the same time; later ones queue.
SESSIONS_AT_ONCE = 2
#: The concurrency group those events share (one limit for all of them, not one per event).
HEAVY_WORK = "heavy-work"


@dataclass(frozen=True)
class Settings:
    """What the command line (or the environment) chose for this app process."""

    smpl_dir: str | None = os.environ.get("INT_SMPL_DIR") or None
    checkpoint: str | None = os.environ.get("INT_CHECKPOINT") or (str(demo_checkpoint()) if demo_checkpoint() else None)
    device: str = os.environ.get("INT_DEVICE", "cpu")
    output_root: Path = Path(os.environ.get("INT_STUDIO_OUTPUTS", Path(tempfile.gettempdir()) / "int-studio"))
    # Limits of what one upload may ask for (longer clips are cut, with a note in the summary).
    max_frames: int = int(os.environ.get("INT_MAX_FRAMES", "900"))
    max_duration_s: float = float(os.environ.get("INT_MAX_DURATION_S", "60"))
    max_upload: str = os.environ.get("INT_MAX_UPLOAD", "500mb")
    # The Train tab: the data folder every run reads (dataset paths must lie inside it; synthetic clips are
    # generated into it) and the folder the run folders go to.
    data_root: Path = Path(os.environ.get("INT_DATA_ROOT", "data"))
    runs_root: Path = Path(os.environ.get("INT_RUNS_ROOT", "runs"))


class UserError(Exception):
    """A problem with what the user asked for; its message is shown as it is."""


USER_ERRORS = (UserError, CheckpointError, FileNotFoundError, ValueError, RendererUnavailable, MediaError, BoxFileError,
               DetectorUnavailable)


def handler(fn):
    """Turn every failure into a one-line message in the UI (never a traceback); log the details."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except USER_ERRORS as exc:
            raise gr.Error(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__) from exc
        except Exception as exc:  # noqa: BLE001 - the UI must stay up whatever happened
            log.error("unexpected error in %s:\n%s", fn.__name__, traceback.format_exc())
            raise gr.Error(f"Something went wrong ({type(exc).__name__}: {exc}). The app is still running; "
                           "the server log has the details.") from exc

    return wrapped


class ModelCache:
    """The few most recently used models, shared by all sessions (models are read-only once loaded)."""

    def __init__(self, settings: Settings, capacity: int = MAX_CACHED_MODELS) -> None:
        self.settings = settings
        self.capacity = capacity
        self._models: OrderedDict[str, tuple[IntModel, dict]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[IntModel, dict]:
        """``key`` is ``checkpoint:<path>`` or ``fresh:<variant>``; returns (model, info)."""
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            kind, _, value = key.partition(":")
            body_model = load_body_model(self.settings.smpl_dir)
            if kind == "checkpoint":
                ckpt = load_checkpoint(value, device=self.settings.device, body_model=body_model)
                info = {"checkpoint": str(ckpt.path), "source": ckpt.source, "meta": ckpt.meta, "warnings": ckpt.warnings}
                model = ckpt.model
            else:
                model = build_model(value, body_model=body_model).to(self.settings.device).eval()
                info = {"checkpoint": None, "source": "fresh", "meta": {}, "warnings": []}
            self._models[key] = (model, info)
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
            return model, info


def session_dir(settings: Settings, request: gr.Request | None) -> Path:
    name = getattr(request, "session_hash", None) or "shared"
    path = settings.output_root / "sessions" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def forget_session(settings: Settings, request: gr.Request) -> None:
    """Delete a closed session's output folder."""
    shutil.rmtree(session_dir(settings, request), ignore_errors=True)
