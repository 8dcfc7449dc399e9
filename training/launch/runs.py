"""Run folders: what each holds (:class:`RunInfo`), the record of a launch (``launch.json``), the runs list and
the checkpoint choices.

A run folder holds a ``config.yaml``, a ``metrics.jsonl``, a ``launch.json`` or a checkpoint. ``launch.json``
records the request, the command and, once the process ended, the outcome; runs started from the command line
(no ``launch.json``) are listed too, their state read from their checkpoints.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from int_model.files import OutsideRootError, atomic_write, inside_root
from int_model.loading import ModelKey

from ..trainer import FINAL, LAST, METRICS_FILE
from .follow import Metrics, read_metrics
from .processes import training_processes
from .request import LaunchPlan
from .validation import PHASES, LaunchError

LAUNCH_FILE = "launch.json"
CONFIG_FILE = "config.yaml"  # the resolved config the trainer writes into the run folder
CHECKPOINT_FILES = (FINAL, LAST)
#: What a run can be: ``running``; ``finished`` (final.pt); ``stopped`` (by a signal, resumable when it has
#: last.pt); ``failed`` (a non-zero exit status); ``incomplete`` (a folder without an outcome, e.g. the app
#: died while it ran).
STATES = ("running", "finished", "stopped", "failed", "incomplete")
_PHASE_IN_NAME = re.compile(r"phase[\s_-]?([123])(?!\d)")


@dataclass(frozen=True)
class RunInfo:
    """One run folder: what it is, where it got to, and its checkpoints (``{"final.pt": path, "last.pt": ...}``)."""

    name: str
    path: Path
    phase: int | None
    config_set: str | None
    state: str
    exit_code: int | None
    step: int
    epoch: int
    val: dict[str, Any] | None
    checkpoints: dict[str, Path]
    message: str = ""

    @property
    def val_summary(self) -> str:
        if not self.val:
            return ""
        parts = [f"{k} {self.val[k]:.1f}" for k in ("pa_mpjpe", "mpjpe", "pve")
                 if isinstance(self.val.get(k), (int, float))]
        return f"{self.val.get('mode', '')}: " + ", ".join(parts) + " mm" if parts else ""


@dataclass(frozen=True)
class RunStatus:
    """The launcher's current (or most recent, or a chosen) run as the app shows it."""

    run: RunInfo | None
    message: str
    log: str = ""
    metrics: Metrics = field(default_factory=Metrics)
    active: bool = False  # running, or about to start the next phase of a chain

    @property
    def state(self) -> str:
        return self.run.state if self.run else "idle"

    @property
    def name(self) -> str | None:
        return self.run.name if self.run else None


def describe_run(info: RunInfo, *, stopping: bool = False) -> str:
    """One line on a run: its name and phase, its state (or recorded outcome), where it got to, its latest val."""
    phase = f"phase {info.phase}" if info.phase else "phase ?"
    where = f"step {info.step}, epoch {info.epoch}" if info.step else "no step yet"
    val = f"; val {info.val_summary}" if info.val_summary else ""
    if info.state == "running":
        doing = "stopping (finishing the step, saving last.pt)" if stopping else "running"
        return f"{info.name} ({phase}): {doing}, {where}{val}"
    if info.message:  # the outcome the launcher recorded: it starts with the state
        return f"{info.name} ({phase}): {info.message}{val}"
    detail = {"finished": f"{FINAL} written", "stopped": "resumable" if LAST in info.checkpoints
              else "nothing to resume", "incomplete": "no outcome recorded"}.get(info.state, "")
    return f"{info.name} ({phase}): {info.state} - {detail}, {where}{val}"


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file's content; empty when it is missing, broken or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(data, indent=1) + "\n").encode()))


def record_start(plan: LaunchPlan, *, pid: int, data_root: Path) -> None:
    """``<run>/launch.json`` of a run just started: the request, the command, no outcome yet (a resumed run keeps
    what it recorded before, its first init among it)."""
    launch = read_json(plan.out / LAUNCH_FILE) if plan.resume else {}
    write_json(plan.out / LAUNCH_FILE, {
        **launch, "name": plan.name, "phase": plan.phase, "config_set": plan.config_set,
        "config": str(plan.config), "nproc": plan.nproc, "data_root": str(data_root),
        "init": str(plan.init) if plan.init else launch.get("init"), "request": plan.request.to_dict(),
        "train_args": [a for a in plan.train_args if a != "--resume"], "command": plan.command, "pid": pid,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "outcome": None,
    })


def record_outcome(out: Path, *, state: str, exit_code: int, message: str) -> None:
    """Add the outcome of an ended run to its ``launch.json``."""
    launch = read_json(out / LAUNCH_FILE)
    launch["outcome"] = {"state": state, "exit_code": exit_code, "message": message,
                         "ended": time.strftime("%Y-%m-%dT%H:%M:%S")}
    write_json(out / LAUNCH_FILE, launch)


def run_folder(runs_root: Path, name: str) -> Path:
    """The folder of run ``name`` (relative to ``runs_root``, and inside it); LaunchError when there is none."""
    if not name or not str(name).strip():
        raise LaunchError("choose a run first")
    try:
        out = inside_root(str(name).strip(), runs_root, what="run", root_name="the runs root")
    except OutsideRootError as exc:
        raise LaunchError(str(exc)) from None
    if out == runs_root:
        raise LaunchError(f"run {name!r} is not a folder under the runs root {runs_root}")
    if not out.is_dir():
        raise LaunchError(f"no run {name!r} under {runs_root}")
    return out


def is_run_folder(path: Path) -> bool:
    return path.is_dir() and ((path / CONFIG_FILE).is_file() or (path / METRICS_FILE).is_file()
                              or (path / LAUNCH_FILE).is_file() or any(path.glob("*.pt")))


def _phase_of(path: Path, launch: Mapping[str, Any]) -> int | None:
    if launch.get("phase") in PHASES:
        return int(launch["phase"])
    names = [path.name]
    if (path / CONFIG_FILE).is_file():
        try:
            names.insert(0, str((yaml.safe_load((path / CONFIG_FILE).read_text()) or {}).get("name", "")))
        except (OSError, yaml.YAMLError):
            pass
    for text in names:
        match = _PHASE_IN_NAME.search(text.lower())
        if match:
            return int(match.group(1))
    return None


def run_info(path: str | os.PathLike, *, metrics: Metrics | None = None, state: str | None = None,
             exit_code: int | None = None, running: Mapping[Path, int] | None = None) -> RunInfo:
    """What a run folder holds. Its state: ``running`` when a training process writes into it (``running``:
    :func:`~training.launch.processes.training_processes`, read when not given), else the outcome in
    ``launch.json``, else what its checkpoints say."""
    path = Path(path)
    launch = read_json(path / LAUNCH_FILE)
    metrics = read_metrics(path) if metrics is None else metrics
    checkpoints = {n: (path / n).resolve() for n in CHECKPOINT_FILES if (path / n).is_file()}
    message = ""
    if state is None:
        outcome = launch.get("outcome") or {}
        running = training_processes() if running is None else running
        if Path(os.path.normpath(path.absolute())) in running or path.resolve() in running:
            state = "running"
        elif outcome:
            state, exit_code, message = outcome.get("state"), outcome.get("exit_code"), outcome.get("message", "")
        else:
            state = "finished" if FINAL in checkpoints else "stopped" if LAST in checkpoints else "incomplete"
    return RunInfo(name=path.name, path=path.resolve(), phase=_phase_of(path, launch),
                   config_set=launch.get("config_set"), state=state or "incomplete", exit_code=exit_code,
                   step=metrics.step, epoch=metrics.epoch, val=metrics.latest_val(), checkpoints=checkpoints,
                   message=message)


def list_runs(runs_root: str | os.PathLike) -> list[RunInfo]:
    """Every run folder directly under ``runs_root`` (or one level deeper, as ``runs/cpu-demo/phase1``), newest
    first."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    folders = []
    for child in root.iterdir():
        if is_run_folder(child):
            folders.append(child)
        elif child.is_dir():
            folders += [grandchild for grandchild in child.iterdir() if is_run_folder(grandchild)]
    folders.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    running = training_processes()
    infos = []
    for folder in folders:
        info = run_info(folder, running=running)
        relative = folder.relative_to(root).as_posix()
        infos.append(replace(info, name=relative))
    return infos


def checkpoint_choices(runs_root: str | os.PathLike) -> list[tuple[str, str]]:
    """(label, ModelCache key ``checkpoint:<absolute path>``) of every run's final.pt and last.pt, newest run
    first."""
    choices = []
    for info in list_runs(runs_root):
        for name, path in info.checkpoints.items():
            phase = f"phase {info.phase}" if info.phase else "phase ?"
            val = f", {info.val_summary}" if info.val_summary else ""
            choices.append((f"{info.name}/{name} ({phase}, {info.state}, step {info.step}{val})", str(ModelKey.checkpoint(path))))
    return choices
