"""Plumbing shared by the app's tabs: settings, one-line error messages, the model cache, session folders.

No maths here (docs/architecture.md): the tabs call ``analysis``, ``pipeline``, ``viz`` and ``training``.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from int_model import CheckpointError, IntModel, demo_checkpoint
from int_model.checkpoint import CHECKPOINT_SUFFIXES, DEMO_CHECKPOINT, server_checkpoint
from int_model.files import inside_root
from int_model.loading import ModelKey, load_model
from pipeline.boxes import BoxFileError
from pipeline.detection import DetectorUnavailable
from pipeline.media import DEFAULT_MAX_DURATION_S, DEFAULT_MAX_FRAMES, MediaError
from viz import RendererUnavailable

log = logging.getLogger("int_studio.app")

FRESH_VARIANTS = ("small", "paper", "tiny")
#: The project's own checkpoint folder (the evidence checkpoints of the README's results table).
PROJECT_CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
MAX_CACHED_MODELS = 3
#: Sessions whose heavy work (reconstruct, attention) may run at the same time; later ones queue.
SESSIONS_AT_ONCE = 2
#: The concurrency group those events share (one limit for all of them, not one per event).
HEAVY_WORK = "heavy-work"
#: Session folders that an earlier app process left behind are removed at start-up after this long.
SESSION_MAX_AGE_S = 24 * 3600.0


@dataclass(frozen=True)
class Settings:
    """What the command line (or the environment) chose for this app process."""

    smpl_dir: str | None = os.environ.get("INT_SMPL_DIR") or None
    checkpoint: str | None = os.environ.get("INT_CHECKPOINT") or (str(demo_checkpoint()) if demo_checkpoint() else None)
    device: str = os.environ.get("INT_DEVICE", "cpu")
    output_root: Path = Path(os.environ.get("INT_STUDIO_OUTPUTS", Path(tempfile.gettempdir()) / "int-studio"))
    # Limits of what one upload may ask for (longer clips are cut, with a note in the summary).
    max_frames: int = DEFAULT_MAX_FRAMES  # the command line's default too (INT_MAX_FRAMES)
    max_duration_s: float = DEFAULT_MAX_DURATION_S  # INT_MAX_DURATION_S
    max_upload: str = os.environ.get("INT_MAX_UPLOAD", "500mb")
    # The Train tab: the data folder every run reads (dataset paths must lie inside it; synthetic clips are
    # generated into it) and the folder the run folders go to.
    data_root: Path = Path(os.environ.get("INT_DATA_ROOT", "data"))
    runs_root: Path = Path(os.environ.get("INT_RUNS_ROOT", "runs"))
    # More folders whose checkpoints a client may name by a server path (os.pathsep-separated).
    extra_checkpoint_dirs: tuple[str, ...] = tuple(
        p for p in os.environ.get("INT_CHECKPOINT_DIRS", "").split(os.pathsep) if p.strip())

    @property
    def checkpoint_roots(self) -> tuple[Path, ...]:
        """The folders a server checkpoint path may point into: the runs, the project's checkpoints, the
        shipped demo model's folder and ``INT_CHECKPOINT_DIRS``; nothing else on the server can be named."""
        return (Path(self.runs_root), PROJECT_CHECKPOINTS, DEMO_CHECKPOINT.parent,
                *(Path(p).expanduser() for p in self.extra_checkpoint_dirs))

    def server_checkpoint(self, text: str) -> Path:
        """A checkpoint path typed by a client, inside :attr:`checkpoint_roots` (CheckpointError otherwise)."""
        return server_checkpoint(text, self.checkpoint_roots)


class UserError(Exception):
    """A problem with what the user asked for; its message is shown as it is."""


USER_ERRORS = (UserError, CheckpointError, FileNotFoundError, ValueError, RendererUnavailable, MediaError, BoxFileError,
               DetectorUnavailable)


def uploaded_checkpoint(upload: Any) -> Path:
    """The path of an uploaded checkpoint file (Gradio's copy), after a look at its name."""
    path = Path(upload if isinstance(upload, str) else upload.name)
    if path.suffix.lower() not in CHECKPOINT_SUFFIXES:
        raise UserError(f"{path.name} is not a checkpoint: expected a file ending in {', '.join(CHECKPOINT_SUFFIXES)}")
    return path


def user_message(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def handler(fn):
    """Turn every failure into a one-line message in the UI (never a traceback).

    The server log gets one line for a user error (a bad input is not a fault of the server) and the whole
    traceback only for an unexpected failure; Gradio is told not to print the traceback again.
    """

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error as exc:
            log.info("%s: %s", fn.__name__, user_message(exc))
            exc.print_exception = False
            raise
        except USER_ERRORS as exc:
            message = user_message(exc)
            log.info("%s: %s", fn.__name__, message)
            raise gr.Error(message, print_exception=False) from exc
        except Exception as exc:  # noqa: BLE001 - the UI must stay up whatever happened
            log.error("unexpected error in %s:\n%s", fn.__name__, traceback.format_exc())
            raise gr.Error(f"Something went wrong ({type(exc).__name__}: {exc}). The app is still running; "
                           "the server log has the details.", print_exception=False) from exc

    return wrapped


class ModelCache:
    """The few most recently used models, shared by all sessions (models are read-only once loaded), and the
    sessions' output folders."""

    def __init__(self, settings: Settings, capacity: int = MAX_CACHED_MODELS) -> None:
        self.settings = settings
        self.capacity = capacity
        #: The sessions' output folders (the tabs write only there).
        self.sessions = SessionFolders(settings.output_root)
        self._models: OrderedDict[ModelKey, tuple[IntModel, dict]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str | ModelKey) -> tuple[IntModel, dict]:
        """``key`` is a :class:`ModelKey` or its text (``checkpoint:<path>``, ``fresh:<variant>``, ``demo``);
        returns (model, info)."""
        key = key if isinstance(key, ModelKey) else ModelKey.parse(key)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            loaded = load_model(key, device=self.settings.device, smpl_dir=self.settings.smpl_dir)
            info = {"checkpoint": None if loaded.untrained else str(loaded.checkpoint), "source": loaded.source,
                    "meta": loaded.meta, "warnings": loaded.warnings}
            self._models[key] = (loaded.model, info)
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
            return loaded.model, info


class SessionFolders:
    """Each browser or API session's output folder, named by the server, never by the client.

    Gradio's ``session_hash`` is chosen by the client (any string, ``..`` included), so it only looks up a folder
    name made here (a random hex id); every folder is resolved through :func:`int_model.files.inside_root`, and
    :meth:`forget` deletes only a folder this object created for that session.
    """

    def __init__(self, root: Path, *, max_age_s: float = SESSION_MAX_AGE_S) -> None:
        self.root = Path(root) / "sessions"
        self.max_age_s = max_age_s
        self._names: dict[str, str] = {}
        self._lock = threading.Lock()

    def folder(self, request: gr.Request | None) -> Path:
        """The session's folder (created on first use)."""
        key = _session_key(request)
        with self._lock:
            name = self._names.get(key)
            if name is None:
                name = self._names[key] = uuid.uuid4().hex
        path = inside_root(name, self.root, what="session folder", root_name="the sessions folder")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def forget(self, request: gr.Request | None) -> bool:
        """Delete the closed session's folder, if this object made one for it; True when something was deleted."""
        key = _session_key(request)
        with self._lock:
            name = self._names.pop(key, None)
        if name is None:
            return False
        path = inside_root(name, self.root, what="session folder", root_name="the sessions folder")
        if path.is_symlink() or not path.is_dir():
            return False
        shutil.rmtree(path, ignore_errors=True)
        return True

    def sweep(self, *, now: float | None = None) -> list[Path]:
        """Delete folders left by an earlier app process (not touched for ``max_age_s``); returns them."""
        if not self.root.is_dir():
            return []
        now = time.time() if now is None else now
        with self._lock:
            live = set(self._names.values())
        removed = []
        for path in self.root.iterdir():
            if path.name in live or path.is_symlink() or not path.is_dir():
                continue
            if now - path.stat().st_mtime > self.max_age_s:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed


def _session_key(request: gr.Request | None) -> str:
    # Calls without a request (tests, scripts) share one folder; the key is only ever a dictionary key.
    return str(getattr(request, "session_hash", None) or "")
