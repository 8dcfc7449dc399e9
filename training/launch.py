"""Launching, following and stopping training runs from the app (no Gradio here: ``studio/train_tab.py`` is the UI).

A :class:`TrainLauncher` (one per app process) turns a :class:`TrainRequest` (a phase, a set of phase configs,
the data, epochs, batch size, processes, an init checkpoint) into the ``python -m training.train`` command line,
starts it in the background and follows it through the files the trainer writes::

    launcher = TrainLauncher(runs_root="runs", data_root="data")
    launcher.start(TrainRequest(phase=1, config_set="cpu-demo", synthetic=SyntheticData(clips=64, frames=32)))
    launcher.status()            # state, log tail, loss per step, val metrics per epoch, checkpoints
    launcher.stop()              # SIGTERM: the trainer finishes its step, writes last.pt and exits
    launcher.resume(name)        # the same command again with --resume
    launcher.start(launcher.next_request(name))   # phase N+1 from <run>/final.pt

* The command is a list (never a shell string): one process runs ``python -m training.train`` directly, N > 1
  processes run it under ``python -m torch.distributed.run --standalone --nproc_per_node N``. The trainer's
  output goes to ``<run>/train.log``; the process gets its own session, so that the app's Ctrl-C leaves it alone.
* One run at a time per launcher: :meth:`TrainLauncher.start` refuses a second one while one is running.
* Stopping sends SIGTERM to the training process(es) only, never to the DataLoader workers (they would die
  under it and take the step with them); under torchrun to the ranks, not to torchrun, which would forward a
  second SIGTERM (the trainer's "stop now") and kill them after 30 s.
* ``<run>/launch.json`` records the request, the command and, once the process ended, the outcome: the runs
  table (:func:`list_runs`) and :meth:`TrainLauncher.resume` read it. Runs started from the command line (no
  ``launch.json``) are listed too, their state read from their checkpoints.
* A chained run (``chain=True``) starts phase N+1 with ``--init <run>/final.pt`` when phase N finished
  successfully (not when it failed or was stopped).

Every problem with a request raises :class:`LaunchError` (a ``ValueError``) or the phase loader's
:class:`~training.phases.ConfigError`, with a one-line message the app shows as it is.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from int_model.checkpoint import CheckpointError, server_checkpoint
from int_model.files import OutsideRootError, atomic_write, inside_root

from .data import DATABASE_DIR, SYNTHETIC_DIR, THREEDPW_DIR, batch_counts
from .phases import ConfigError, PhaseConfig, load_phase_config
from .trainer import FINAL, LAST, METRICS_FILE

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIGS = REPO_ROOT / "configs"
PHASES = (1, 2, 3)
#: The set of phase files at the top of ``configs/`` (the paper's configuration).
PAPER_SET = "paper"
LAUNCH_FILE = "launch.json"
LOG_FILE = "train.log"
CONFIG_FILE = "config.yaml"  # the resolved config the trainer writes into the run folder
CHECKPOINT_FILES = (FINAL, LAST)
#: What a run can be: ``running``; ``finished`` (final.pt); ``stopped`` (by a signal, resumable when it has
#: last.pt); ``failed`` (a non-zero exit status); ``incomplete`` (a folder without an outcome, e.g. the app
#: died while it ran).
STATES = ("running", "finished", "stopped", "failed", "incomplete")
DEFAULT_STOP_TIMEOUT = 120.0
LOG_TAIL_LINES = 40
SYNTHETIC_MANIFEST = "manifest.json"
_DATABASE_FILE = re.compile(r"^(?P<name>[a-z0-9]+)_(?P<split>train|val|test)_db\.pt$")
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PHASE_IN_NAME = re.compile(r"phase[\s_-]?([123])(?!\d)")
_EXIT_REASONS = {2: "a bad config or checkpoint", 3: "too many non-finite losses in a row"}


class LaunchError(ValueError):
    """A training request that cannot be started (or a stop / resume that cannot be done); one-line message."""


class RunBusyError(LaunchError):
    """A run is already running in this launcher."""


# -------------------------------------------------------------------------------------------- validation
def parse_phase(value: Any) -> int:
    """1, 2 or 3 from ``1``, ``"2"``, ``"phase 3"``, ``"phase2"``; LaunchError otherwise."""
    text = str(value).strip().lower().replace("phase", "").strip() if value is not None else ""
    if isinstance(value, bool) or text not in {str(p) for p in PHASES}:
        raise LaunchError(f"phase must be 1, 2 or 3, not {value!r}")
    return int(text)


def positive_int(value: Any, what: str, *, optional: bool = False) -> int | None:
    """``value`` as a positive int (whole floats and numeric strings accepted, as a UI number box sends them);
    None (or an empty string) is allowed when ``optional``."""
    if optional and (value is None or (isinstance(value, str) and not value.strip())):
        return None
    number: float | None = None
    if not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
    if number is None or not number.is_integer() or number < 1:
        raise LaunchError(f"{what} must be a positive whole number, not {value!r}")
    return int(number)


def config_sets(configs_root: str | os.PathLike = DEFAULT_CONFIGS) -> dict[str, Path]:
    """The sets of phase files: ``paper`` (``configs/phase{1,2,3}.yaml``) and every sub-folder of ``configs/``
    with phase files (``cpu-demo``, ``test``), each mapped to its folder."""
    root = Path(configs_root)
    found = {}
    if any((root / f"phase{p}.yaml").is_file() for p in PHASES):
        found[PAPER_SET] = root
    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            if any((folder / f"phase{p}.yaml").is_file() for p in PHASES):
                found[folder.name] = folder
    return found


def phase_config_path(config_set: str, phase: int, configs_root: str | os.PathLike = DEFAULT_CONFIGS) -> Path:
    """``configs/<set>/phase<N>.yaml`` (``configs/phase<N>.yaml`` for ``paper``); LaunchError naming the choices."""
    sets = config_sets(configs_root)
    if config_set not in sets:
        raise LaunchError(f"unknown config {config_set!r}; choose one of {', '.join(sets) or '(none found)'}")
    path = sets[config_set] / f"phase{phase}.yaml"
    if not path.is_file():
        raise LaunchError(f"config {config_set!r} has no phase {phase} ({path.name} not found)")
    return path


def inside(path: str | os.PathLike, root: Path, what: str) -> Path:
    """``path`` (relative: to ``root``) resolved (symlinks too), and required to lie inside the data root."""
    try:
        return inside_root(path, root, what=what, root_name="the data root")
    except OutsideRootError as exc:
        raise LaunchError(str(exc)) from None


def dataset_from_path(path: str | os.PathLike, data_root: Path) -> dict[str, Any]:
    """A phase's ``data.train`` entry for a real dataset under the data root: a generated synthetic dataset
    (``synthetic/<name>/`` with its manifest), a 3DPW folder (with ``sequenceFiles/``) or a VIBE / MAED / INT
    database file (``<name>_<split>_db.pt``)."""
    from .datasets import DATASETS

    root = data_root.resolve()
    resolved = inside(path, root, "dataset")
    shown = resolved.relative_to(root).as_posix() or "."
    if not resolved.exists():
        raise LaunchError(f"dataset {shown!r} not found under the data root {data_root}")
    if resolved.is_dir() and (resolved / SYNTHETIC_MANIFEST).is_file():
        if resolved.parent != root / SYNTHETIC_DIR:
            raise LaunchError(f"synthetic dataset {shown!r}: synthetic datasets live in "
                              f"{SYNTHETIC_DIR}/<name> under the data root")
        return {"kind": "synthetic", "name": resolved.name}
    if resolved.is_dir() and (resolved / "sequenceFiles").is_dir():
        return {"kind": "3dpw", "name": "3dpw", "split": "train", "path": shown}
    match = _DATABASE_FILE.match(resolved.name)
    if resolved.is_file() and match and match["name"] in DATASETS:
        if match["split"] != "train":
            raise LaunchError(f"dataset {shown!r} is the {match['split']} split: train on a *_train_db.pt file")
        return {"kind": "database", "name": match["name"], "split": "train", "path": shown}
    raise LaunchError(f"{shown!r} is not a dataset: expected a synthetic dataset folder (with {SYNTHETIC_MANIFEST}), "
                      "a 3DPW folder (with sequenceFiles/) or a database file (<name>_train_db.pt)")


def find_datasets(data_root: str | os.PathLike) -> list[str]:
    """The datasets found under the data root (paths relative to it), for the app's choice list."""
    root = Path(data_root)
    found: list[str] = []
    if (root / SYNTHETIC_DIR).is_dir():
        found += [f"{SYNTHETIC_DIR}/{p.name}" for p in sorted((root / SYNTHETIC_DIR).iterdir())
                  if (p / SYNTHETIC_MANIFEST).is_file()]
    if (root / DATABASE_DIR).is_dir():
        found += [f"{DATABASE_DIR}/{p.name}" for p in sorted((root / DATABASE_DIR).glob("*_train_db.pt"))]
    if (root / THREEDPW_DIR / "sequenceFiles").is_dir():
        found.append(THREEDPW_DIR)
    return found


def check_data(config: PhaseConfig, root: Path, *, source: str) -> None:
    """Every dataset the phase reads is there (or is a synthetic one the run generates), inside ``root``."""
    for where, specs in (("train", config.data.train), ("val", config.data.val)):
        for spec in specs:
            label = f"{source}: data.{where} {spec.kind} dataset {spec.name!r}"
            if spec.kind == "synthetic":
                if spec.clips is None or spec.frames is None:  # not generated by the run: must exist
                    folder = root / SYNTHETIC_DIR / spec.name
                    if not (folder / SYNTHETIC_MANIFEST).is_file():
                        raise LaunchError(f"{label}: not found at {folder} (generate synthetic clips instead)")
                continue
            default = (root / DATABASE_DIR / f"{spec.name}_{spec.split}_db.pt" if spec.kind == "database"
                       else root / THREEDPW_DIR)
            path = inside(spec.path, root, f"{label}: path") if spec.path else default
            if not path.exists():
                hint = ("the VIBE / MAED / INT database file" if spec.kind == "database" else "the 3DPW folder")
                raise LaunchError(f"{label}: {path} not found (put {hint} there, choose dataset folders, or "
                                  "generate synthetic clips)")


def _flow(value: Any) -> str:
    """A value in YAML flow style (JSON is YAML), for ``--set key=value``."""
    return json.dumps(value, separators=(", ", ": "))


# ------------------------------------------------------------------------------------------------ requests
@dataclass(frozen=True)
class SyntheticData:
    """Synthetic clips the run generates (and caches) under ``<data root>/synthetic/``, replacing the config's
    training datasets. ``size``: frame size in pixels (None: the config's synthetic size, else the model's crop
    size)."""

    clips: int
    frames: int
    seed: int = 1
    size: int | None = None


@dataclass(frozen=True)
class TrainRequest:
    """What to train.

    Attributes:
        phase: 1, 2 or 3.
        config_set: ``paper``, ``cpu-demo``, ``test`` (a set of phase files under ``configs/``).
        epochs: replaces ``train.epochs`` (None: the config's).
        batch_size: replaces ``data.batch_size``, clips per process and step (None: the config's).
        nproc: training processes (> 1: torchrun DDP; one per GPU, or gloo processes on a CPU).
        init: the checkpoint to start from (phases 2 and 3 need one: the previous phase's ``final.pt``).
        synthetic: generate synthetic training clips instead of the config's datasets.
        datasets: real dataset paths under the data root replacing the config's training datasets.
        chain: when this phase finishes, start the next one from its ``final.pt`` (up to phase 3).
        name: the run folder's name under the runs root (None: ``<set>-<time>-phase<N>``).
        max_steps: stop after this global step (``--max-steps``).
        device: ``auto``, ``cpu`` or ``cuda``.
    """

    phase: int | str = 1
    config_set: str = "cpu-demo"
    epochs: int | None = None
    batch_size: int | None = None
    nproc: int = 1
    init: str | None = None
    synthetic: SyntheticData | None = None
    datasets: tuple[str, ...] = ()
    chain: bool = False
    name: str | None = None
    max_steps: int | None = None
    device: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainRequest:
        values = dict(data)
        if values.get("synthetic") is not None:
            values["synthetic"] = SyntheticData(**values["synthetic"])
        values["datasets"] = tuple(values.get("datasets") or ())
        return cls(**values)


@dataclass(frozen=True)
class LaunchPlan:
    """A validated request: the run folder and the trainer's arguments."""

    name: str
    out: Path
    phase: int
    config_set: str
    config: Path
    nproc: int
    train_args: tuple[str, ...]
    init: Path | None
    request: TrainRequest
    resume: bool = False
    python: str = sys.executable

    @property
    def command(self) -> list[str]:
        return training_command(self.train_args, nproc=self.nproc, python=self.python)


def training_command(train_args: Sequence[str], *, nproc: int = 1, python: str = sys.executable) -> list[str]:
    """``python -m training.train ARGS`` for one process, under ``torch.distributed.run`` for several."""
    if nproc == 1:
        return [python, "-m", "training.train", *train_args]
    return [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
            "-m", "training.train", *train_args]


# ------------------------------------------------------------------------------------------------ metrics
@dataclass(frozen=True)
class Metrics:
    """A run's ``metrics.jsonl``: ``train`` (one record per step, with ``loss``; None on skipped steps),
    ``val`` (``"split": "val"`` records, one per evaluation and mode) and ``checkpoints`` (save events)."""

    train: tuple[dict[str, Any], ...] = ()
    val: tuple[dict[str, Any], ...] = ()
    checkpoints: tuple[dict[str, Any], ...] = ()

    @property
    def step(self) -> int:
        return max([int(r.get("step", 0)) for r in (*self.train, *self.val)] or [0])

    @property
    def epoch(self) -> int:
        return max([int(r.get("epoch", 0)) for r in (*self.train, *self.val)] or [0])

    def latest_val(self) -> dict[str, Any] | None:
        """The newest evaluation (its temporal record when the model has one)."""
        if not self.val:
            return None
        step = self.val[-1].get("step")
        latest = [r for r in self.val if r.get("step") == step]
        return next((r for r in latest if r.get("mode") == "temporal"), latest[-1])


def parse_metrics(lines: Sequence[str]) -> Metrics:
    """Records of ``metrics.jsonl`` lines (a line being written or otherwise broken is skipped)."""
    train, val, checkpoints = [], [], []
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        if record.get("split") == "val":
            val.append(record)
        elif record.get("event") == "checkpoint":
            checkpoints.append(record)
        elif "loss" in record:
            train.append(record)
    return Metrics(tuple(train), tuple(val), tuple(checkpoints))


class _MetricsFollower:
    """A ``metrics.jsonl`` parsed once: each call reads and parses only what was appended since the last one
    (everything again when the file was replaced or shrank: a resumed run rewinds it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._reset()

    def _reset(self, inode: int | None = None) -> None:
        self._offset, self._inode, self._metrics = 0, inode, Metrics()

    def read(self) -> Metrics:
        with self._lock:
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                self._reset()
                return self._metrics
            if stat.st_ino != self._inode or stat.st_size < self._offset:
                self._reset(stat.st_ino)
            if stat.st_size > self._offset:
                with open(self.path, "rb") as handle:
                    handle.seek(self._offset)
                    chunk = handle.read(stat.st_size - self._offset)
                complete = chunk.rfind(b"\n") + 1  # the last line may still be being written
                self._offset += complete
                new = parse_metrics(chunk[:complete].decode("utf-8", errors="replace").splitlines())
                old = self._metrics
                self._metrics = Metrics(old.train + new.train, old.val + new.val, old.checkpoints + new.checkpoints)
            return self._metrics


_FOLLOWERS: dict[Path, _MetricsFollower] = {}
_FOLLOWERS_LOCK = threading.Lock()


def read_metrics(run_dir: str | os.PathLike) -> Metrics:
    """The records of ``<run_dir>/metrics.jsonl`` (empty when there is none yet); a file read before is only
    read from where it was last time."""
    path = (Path(run_dir) / METRICS_FILE).resolve()
    with _FOLLOWERS_LOCK:
        follower = _FOLLOWERS.setdefault(path, _MetricsFollower(path))
    return follower.read()


def log_tail(path: str | os.PathLike, lines: int = LOG_TAIL_LINES, *, max_bytes: int = 256_000) -> str:
    """The last ``lines`` lines of a log (a progress bar's carriage-return updates: only the newest)."""
    path = Path(path)
    if not path.is_file():
        return ""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - max_bytes))
        text = handle.read().decode("utf-8", errors="replace")
    rows = [row.rsplit("\r", 1)[-1] if "\r" in row.rstrip("\r") else row.rstrip("\r") for row in text.split("\n")]
    rows = rows[1:] if size > max_bytes else rows  # the first one is cut
    while rows and not rows[-1].strip():
        rows.pop()
    rows = rows[-lines:]
    while rows and not rows[0].strip():
        rows.pop(0)
    return "\n".join(rows)


def _error_line(tail: str) -> str:
    """The line of a log tail that says what went wrong."""
    rows = [r.strip() for r in tail.splitlines() if r.strip()]
    for row in reversed(rows):
        if row.startswith("error:") or re.match(r"^[\w.]*(Error|Exception)\b", row) or " ERROR " in row:
            return row
    return rows[-1] if rows else "no output"


# ------------------------------------------------------------------------------------------------ run folders
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
    metrics: Metrics = Metrics()
    active: bool = False  # running, or about to start the next phase of a chain

    @property
    def state(self) -> str:
        return self.run.state if self.run else "idle"

    @property
    def name(self) -> str | None:
        return self.run.name if self.run else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(data, indent=1) + "\n").encode()))


def training_processes() -> dict[Path, int]:
    """The output folders of the ``training.train`` processes running on this machine (any user of it: the
    app, a terminal, ``make train-demo``), each with one process id; empty where there is no ``/proc``."""
    found: dict[Path, int] = {}
    try:
        entries = [e for e in Path("/proc").iterdir() if e.name.isdigit()]
    except OSError:
        return found
    for entry in entries:
        try:
            args = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if "training.train" not in args or "--out" not in args[:-1]:
                continue
            out = Path(args[args.index("--out") + 1])
            if not out.is_absolute():
                out = Path(os.readlink(entry / "cwd")) / out
        except (OSError, ValueError):
            continue
        found.setdefault(Path(os.path.normpath(out)), int(entry.name))
    return found


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
    :func:`training_processes`, read when not given), else the outcome in ``launch.json``, else what its
    checkpoints say."""
    path = Path(path)
    launch = _read_json(path / LAUNCH_FILE)
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
    first. A run folder holds a ``config.yaml``, a ``metrics.jsonl``, a ``launch.json`` or a checkpoint."""
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
            choices.append((f"{info.name}/{name} ({phase}, {info.state}, step {info.step}{val})", f"checkpoint:{path}"))
    return choices


# ------------------------------------------------------------------------------------------------ processes
def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc; empty elsewhere)."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(x) for x in (task / "children").read_text().split()]
        return found
    except OSError:
        pass
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:
        return []
    for entry in entries:
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class _Active:
    plan: LaunchPlan
    process: subprocess.Popen
    started: float
    done: threading.Event = field(default_factory=threading.Event)
    stop_requested: bool = False
    killed_after: float | None = None  # seconds stop() waited before it killed the run
    returncode: int | None = None
    state: str = "running"
    message: str = ""


class TrainLauncher:
    """Starts, follows and stops the app's training runs, one at a time.

    Args:
        runs_root: where run folders go (``<runs_root>/<name>``).
        data_root: the data folder every run reads (``--data-root``); dataset paths must lie inside it.
        configs_root: the phase files (``configs/``).
        python: the interpreter that runs the trainer.
        env: extra environment variables for the training processes.
        checkpoint_roots: folders besides the runs root that an init checkpoint may be taken from (a path
            elsewhere is refused, whether or not a file is there).
        stop_timeout: seconds :meth:`stop` waits for the run to save ``last.pt`` before killing it.
    """

    def __init__(self, runs_root: str | os.PathLike, data_root: str | os.PathLike, *,
                 configs_root: str | os.PathLike = DEFAULT_CONFIGS, python: str = sys.executable,
                 env: Mapping[str, str] | None = None, checkpoint_roots: Sequence[str | os.PathLike] = (),
                 stop_timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        self.runs_root = Path(runs_root).expanduser().resolve()
        self.checkpoint_roots = (self.runs_root, *(Path(r).expanduser().resolve() for r in checkpoint_roots))
        self.data_root = Path(data_root).expanduser().resolve()
        self.configs_root = Path(configs_root).resolve()
        self.python = python
        self.env = dict(env or {})
        self.stop_timeout = stop_timeout
        self._lock = threading.RLock()
        self._active: _Active | None = None
        self._last: _Active | None = None
        self._chain_note = ""

    # ------------------------------------------------------------------------------ planning
    def config_sets(self) -> dict[str, Path]:
        return config_sets(self.configs_root)

    def plan(self, request: TrainRequest, *, check_files: bool = True) -> LaunchPlan:
        """Validate ``request`` and build the run's arguments (nothing is started or written)."""
        phase = parse_phase(request.phase)
        config_path = phase_config_path(request.config_set, phase, self.configs_root)
        epochs = positive_int(request.epochs, "epochs", optional=True)
        batch = positive_int(request.batch_size, "batch size", optional=True)
        nproc = positive_int(request.nproc, "number of processes")
        max_steps = positive_int(request.max_steps, "max steps", optional=True)
        if request.device not in ("auto", "cpu") and not str(request.device).startswith("cuda"):
            raise LaunchError(f"device must be auto, cpu or cuda, not {request.device!r}")
        name = request.name.strip() if request.name and request.name.strip() else self._default_name(request, phase)
        if not _RUN_NAME.match(name):
            raise LaunchError(f"run name {name!r}: use letters, digits, '.', '_' and '-' only")
        out = self.runs_root / name
        if request.synthetic is not None and request.datasets:
            raise LaunchError("choose either synthetic clips or dataset folders, not both")

        base = load_phase_config(config_path)
        overrides: list[str] = []
        if epochs is not None:
            overrides.append(f"train.epochs={epochs}")
        if batch is not None:
            overrides.append(f"data.batch_size={batch}")
        if request.synthetic is not None:
            overrides += self._synthetic_overrides(base, request.synthetic)
        if request.datasets:
            specs = [dataset_from_path(p, self.data_root) for p in request.datasets]
            overrides.append(f"data.train={_flow(specs)}")
        config = load_phase_config(config_path, overrides=overrides)  # ConfigError names the file and field
        batch_counts([s.weight for s in config.data.train], config.data.batch_size,
                     names=[s.name for s in config.data.train])  # ValueError: a dataset that gets no clip
        if check_files:
            check_data(config, self.data_root, source=f"{request.config_set} phase {phase}")

        init = self._init_path(request, config, out, phase) if check_files else None
        args = ["--config", str(config_path), "--out", str(out), "--data-root", str(self.data_root),
                "--device", str(request.device), "--no-progress"]
        if init is not None:
            args += ["--init", str(init)]
        for assignment in overrides:
            args += ["--set", assignment]
        if max_steps is not None:
            args += ["--max-steps", str(max_steps)]
        return LaunchPlan(name=name, out=out, phase=phase, config_set=request.config_set, config=config_path,
                          nproc=nproc, train_args=tuple(args), init=init, python=self.python,
                          request=replace(request, phase=phase, name=name))

    def _default_name(self, request: TrainRequest, phase: int) -> str:
        base = f"{request.config_set}-{time.strftime('%Y%m%d-%H%M%S')}-phase{phase}"
        name, n = base, 2
        while (self.runs_root / name).exists():
            name, n = f"{base}-{n}", n + 1
        return name

    def _synthetic_overrides(self, config: PhaseConfig, synthetic: SyntheticData) -> list[str]:
        clips = positive_int(synthetic.clips, "synthetic clips")
        frames = positive_int(synthetic.frames, "frames per clip")
        seed = int(synthetic.seed)
        need = max(config.data.clip_len, config.data.val_clip_len if config.data.val else 1)
        if frames < need:
            raise LaunchError(f"frames per clip must be at least {need} for this phase (its clips are {need} "
                              f"frames long), not {frames}")
        existing = [s for s in (*config.data.train, *config.data.val) if s.kind == "synthetic"]
        size = positive_int(synthetic.size, "frame size", optional=True) or (
            existing[0].size if existing else config.model.int_config().img_size)
        workers = existing[0].workers if existing else 1
        train = {"kind": "synthetic", "name": f"studio-{clips}x{frames}-{size}px-seed{seed}", "clips": clips,
                 "frames": frames, "seed": seed, "size": size, "workers": workers}
        overrides = [f"data.train={_flow([train])}"]
        if not config.data.val or any(s.kind != "synthetic" for s in config.data.val):
            # Held-out synthetic clips instead of real evaluation data the user may not have.
            val_clips = max(2, min(16, clips // 8))
            val = {**train, "name": f"studio-val-{val_clips}x{frames}-{size}px-seed{seed + 1000}", "clips": val_clips,
                   "seed": seed + 1000}
            overrides.append(f"data.val={_flow([val])}")
        return overrides

    def _init_path(self, request: TrainRequest, config: PhaseConfig, out: Path, phase: int) -> Path | None:
        """``request.init`` (a path, relative: to the runs root, or a ModelCache ``checkpoint:`` key), else the
        config's own ``init`` (relative to the run folder) when that file exists; LaunchError when the phase
        needs one and there is none."""
        if request.init is not None and str(request.init).strip():
            text = str(request.init).strip().removeprefix("checkpoint:")
            try:
                return server_checkpoint(text, self.checkpoint_roots)
            except CheckpointError as exc:
                raise LaunchError(f"init checkpoint: {exc}") from None
        if config.init is None:
            return None
        default = Path(os.path.normpath(out / config.init))
        if default.is_file():
            return default
        raise LaunchError(f"phase {phase} starts from a phase {phase - 1} checkpoint: choose an init checkpoint "
                          f"(the final.pt of a finished phase {phase - 1} run)")

    # ------------------------------------------------------------------------------ running
    @property
    def running(self) -> str | None:
        """The name of the run in progress, or None."""
        with self._lock:
            return self._active.plan.name if self._active else None

    def start(self, request: TrainRequest) -> RunStatus:
        """Validate ``request`` and start it in the background; RunBusyError while another run is running."""
        with self._lock:
            self._ensure_idle()
            plan = self.plan(request)
            if (plan.out / LAST).is_file() or (plan.out / FINAL).is_file():
                raise LaunchError(f"run {plan.name!r} already exists ({plan.out}): resume it or choose another name")
            if request.chain and plan.phase < 3:
                self._check_chain(plan)
            self._chain_note = ""
            self._launch(plan)
        return self.status()

    def resume(self, name: str, *, epochs: int | None = None, max_steps: int | None = None,
               chain: bool | None = None, nproc: int | None = None) -> RunStatus:
        """Continue run ``name`` from its ``last.pt`` with the command it was started with (``--resume``);
        ``epochs`` extends it. A folder started from the command line (no launch.json) resumes from its
        config.yaml with ``nproc`` processes (default 1)."""
        with self._lock:
            self._ensure_idle()
            out = self._run_folder(name)
            writer = training_processes().get(out)
            if writer is not None:
                raise LaunchError(f"run {name!r} is being trained by another process (pid {writer}); stop that first")
            if not (out / LAST).is_file():
                raise LaunchError(f"run {name!r} has no {LAST} to resume from (it stopped before its first "
                                  "checkpoint): start it again")
            epochs = positive_int(epochs, "epochs", optional=True)
            max_steps = positive_int(max_steps, "max steps", optional=True)
            if (out / FINAL).is_file() and epochs is None and max_steps is None:
                raise LaunchError(f"run {name!r} is finished ({FINAL}): start the next phase, or resume it with "
                                  "more epochs")
            launch = _read_json(out / LAUNCH_FILE)
            if launch.get("train_args"):
                request = TrainRequest.from_dict(launch["request"])
                args = [a for a in launch["train_args"]]
                nproc = int(launch.get("nproc", 1))
            elif (out / CONFIG_FILE).is_file():
                info = run_info(out)
                request = TrainRequest(phase=info.phase or 1, config_set="?", name=out.name)
                args = ["--config", str(out / CONFIG_FILE), "--out", str(out), "--data-root", str(self.data_root),
                        "--no-progress"]
                nproc = positive_int(nproc or 1, "number of processes")
            else:
                raise LaunchError(f"run {name!r} has neither {LAUNCH_FILE} nor {CONFIG_FILE}: it cannot be resumed")
            args = _without_option(args, "--max-steps")
            if epochs is not None:
                args += ["--set", f"train.epochs={epochs}"]
            if max_steps is not None:
                args += ["--max-steps", str(max_steps)]
            request = replace(request, epochs=epochs or request.epochs, max_steps=max_steps,
                              chain=request.chain if chain is None else bool(chain))
            plan = LaunchPlan(name=out.name if out.parent == self.runs_root else name, out=out,
                              phase=parse_phase(request.phase), config_set=request.config_set,
                              config=Path(args[args.index("--config") + 1]), nproc=nproc,
                              train_args=tuple(args) + ("--resume",), init=None, request=request, resume=True,
                              python=self.python)
            self._chain_note = ""
            self._launch(plan)
        return self.status()

    def stop(self, timeout: float | None = None) -> RunStatus:
        """Ask the running run to stop (SIGTERM: it finishes the step, writes last.pt and exits); wait up to
        ``timeout`` seconds, then kill it. Returns its status; LaunchError when nothing is running."""
        timeout = self.stop_timeout if timeout is None else timeout
        with self._lock:
            active = self._active
            if active is None:
                raise LaunchError("nothing to stop: no training run is running")
            active.stop_requested = True
            pid = active.process.pid
            ranks = _children(pid) if active.plan.nproc > 1 else []
            for target in ranks or [pid]:
                _signal(target, signal.SIGTERM)
        if not active.done.wait(timeout):
            log.warning("run %s did not stop within %.0f s: killing it", active.plan.name, timeout)
            active.killed_after = timeout
            _signal_group(pid, signal.SIGKILL)
            active.done.wait(30)
        return self.status(active.plan.name)

    def wait(self, timeout: float | None = None) -> RunStatus:
        """Wait for the running run (and the phases a chain starts after it) to end; for scripts and tests."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                active = self._active
            if active is None:
                return self.status()
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"run {active.plan.name} still running after {timeout} s")
            active.done.wait(left)

    def close(self, timeout: float | None = None) -> None:
        """Stop the running run, if any (the app leaves runs going when it exits; tests call this)."""
        if self.running:
            try:
                self.stop(timeout)
            except LaunchError:
                pass

    def _ensure_idle(self) -> None:
        if self._active is not None:
            raise RunBusyError(f"a training run is already running: {self._active.plan.name}; stop it first")

    def _run_folder(self, name: str) -> Path:
        if not name or not str(name).strip():
            raise LaunchError("choose a run first")
        try:
            out = inside_root(str(name).strip(), self.runs_root, what="run", root_name="the runs root")
        except OutsideRootError as exc:
            raise LaunchError(str(exc)) from None
        if out == self.runs_root:
            raise LaunchError(f"run {name!r} is not a folder under the runs root {self.runs_root}")
        if not out.is_dir():
            raise LaunchError(f"no run {name!r} under {self.runs_root}")
        return out

    def _check_chain(self, plan: LaunchPlan) -> None:
        """The later phases of a chain must be startable with the same data (their init comes later)."""
        for phase in range(plan.phase + 1, 4):
            later = replace(plan.request, phase=phase, epochs=None, batch_size=None, init=None, name="chain-check")
            try:
                self.plan(later, check_files=False)
            except ValueError as exc:
                raise LaunchError(f"cannot chain to phase {phase}: {exc}") from exc

    def _launch(self, plan: LaunchPlan) -> None:
        plan.out.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(parents=True, exist_ok=True)  # synthetic datasets are generated into it
        command = plan.command
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with open(plan.out / LOG_FILE, "ab") as log_file:
            log_file.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} {'resumed' if plan.resume else 'started'}: "
                           f"{shlex.join(command)}\n".encode())
            log_file.flush()
            process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        active = _Active(plan=plan, process=process, started=time.time())
        launch = _read_json(plan.out / LAUNCH_FILE) if plan.resume else {}
        _write_json(plan.out / LAUNCH_FILE, {
            **launch, "name": plan.name, "phase": plan.phase, "config_set": plan.config_set,
            "config": str(plan.config), "nproc": plan.nproc, "data_root": str(self.data_root),
            "init": str(plan.init) if plan.init else launch.get("init"), "request": plan.request.to_dict(),
            "train_args": [a for a in plan.train_args if a != "--resume"], "command": command, "pid": process.pid,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "outcome": None,
        })
        log.info("started training run %s (pid %d): %s", plan.name, process.pid, shlex.join(command))
        self._active = active
        threading.Thread(target=self._watch, args=(active,), name=f"train-{plan.name}", daemon=True).start()

    def _watch(self, active: _Active) -> None:
        """Wait for the process; record its outcome; start the next phase of a chain."""
        returncode = active.process.wait()
        _signal_group(active.process.pid, signal.SIGTERM)  # leftovers (e.g. renderers of a killed generator)
        with self._lock:
            active.returncode = returncode
            active.state, active.message = self._outcome(active)
            launch = _read_json(active.plan.out / LAUNCH_FILE)
            launch["outcome"] = {"state": active.state, "exit_code": returncode, "message": active.message,
                                 "ended": time.strftime("%Y-%m-%dT%H:%M:%S")}
            try:
                _write_json(active.plan.out / LAUNCH_FILE, launch)
            except OSError as exc:  # e.g. the runs folder was removed under the run
                log.warning("could not record the outcome of %s: %s", active.plan.name, exc)
            log.info("training run %s: %s", active.plan.name, active.message)
            self._active, self._last = None, active
            self._chain_note = ""
            plan = active.plan
            if active.state == "finished" and plan.request.chain and plan.phase < 3:
                try:
                    next_request = self.next_request(plan.name)
                    self._launch(self.plan(next_request))
                    self._chain_note = f"chain: phase {plan.phase} finished, phase {plan.phase + 1} started"
                except (ValueError, OSError) as exc:
                    self._chain_note = f"the chain stopped after phase {plan.phase}: {exc}"
                    log.warning("%s", self._chain_note)
        active.done.set()

    def _outcome(self, active: _Active) -> tuple[str, str]:
        rc, out = active.returncode, active.plan.out
        step = read_metrics(out).step
        if active.stop_requested:
            if active.killed_after is not None:
                return "stopped", (f"stopped: killed after {active.killed_after:.0f} s without stopping by itself; "
                                   f"{LAST} may be older than step {step}")
            if (out / LAST).is_file():
                return "stopped", f"stopped at step {step}; {LAST} saved (Resume continues from it)"
            return "stopped", "stopped before its first checkpoint: nothing to resume"
        if rc == 0:
            final = out / FINAL
            if final.is_file() and final.stat().st_mtime >= active.started - 1:
                return "finished", f"finished at step {step}: {FINAL} written"
            return "stopped", f"stopped by a signal at step {step}; {LAST} saved"
        return "failed", f"failed ({_exit_reason(rc)}): {_error_line(log_tail(out / LOG_FILE, 60))}"

    # ------------------------------------------------------------------------------ following
    def status(self, name: str | None = None, *, tail: int = LOG_TAIL_LINES) -> RunStatus:
        """The run ``name`` (a folder under the runs root), else the running run, else the last one this
        launcher ran; an ``idle`` status when there is none."""
        with self._lock:
            active = self._active
            chosen = active or self._last
            note = self._chain_note
        if name and str(name).strip():
            out = self._run_folder(str(name))
            if chosen is None or chosen.plan.out != out:
                metrics = read_metrics(out)
                info = run_info(out, metrics=metrics)
                info = replace(info, name=out.relative_to(self.runs_root).as_posix())
                return RunStatus(run=info, message=self._describe(info), log=log_tail(out / LOG_FILE, tail),
                                 metrics=metrics, active=False)
        if chosen is None:
            return RunStatus(run=None, message="no training run yet: choose a phase and start one")
        out = chosen.plan.out
        metrics = read_metrics(out)
        running = chosen is active
        info = run_info(out, metrics=metrics, state="running" if running else chosen.state,
                        exit_code=None if running else chosen.returncode)
        info = replace(info, name=chosen.plan.name, message=chosen.message)
        message = self._describe(info, stopping=running and chosen.stop_requested)
        if note and not running:
            message += f" ({note})"
        return RunStatus(run=info, message=message, log=log_tail(out / LOG_FILE, tail), metrics=metrics,
                         active=running)

    @staticmethod
    def _describe(info: RunInfo, *, stopping: bool = False) -> str:
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

    def runs(self) -> list[RunInfo]:
        """:func:`list_runs` of the runs root, the running run marked as running."""
        running = self.running
        infos = list_runs(self.runs_root)
        return [replace(i, state="running") if i.name == running else i for i in infos]

    def checkpoints(self) -> list[tuple[str, str]]:
        return checkpoint_choices(self.runs_root)

    def datasets(self) -> list[str]:
        return find_datasets(self.data_root)

    def default_init(self, phase: int | str, config_set: str | None = None) -> str | None:
        """The newest finished run of the previous phase (of ``config_set`` when given): its final.pt."""
        phase = parse_phase(phase)
        if phase == 1:
            return None
        for info in self.runs():
            if info.phase == phase - 1 and info.state == "finished" and FINAL in info.checkpoints and (
                    config_set is None or info.config_set in (None, config_set)):
                return str(info.checkpoints[FINAL])
        return None

    def next_request(self, name: str) -> TrainRequest:
        """The request that continues finished run ``name`` with the next phase: same config set, data,
        processes and chain setting; ``--init <run>/final.pt``; the config's own epochs and batch size."""
        out = self._run_folder(name)
        info = run_info(out)
        if info.phase is None:
            raise LaunchError(f"run {name!r}: its phase is unknown")
        if info.phase >= 3:
            raise LaunchError(f"run {name!r} is phase 3, the last phase")
        if FINAL not in info.checkpoints:
            raise LaunchError(f"run {name!r} has not finished (no {FINAL}): finish or resume it first")
        launch = _read_json(out / LAUNCH_FILE)
        base = TrainRequest.from_dict(launch["request"]) if launch.get("request") else TrainRequest(
            config_set=info.config_set or "cpu-demo")
        next_phase = info.phase + 1
        stem = re.sub(r"phase[123]$", "", out.name)
        name = f"{stem}phase{next_phase}" if stem != out.name else f"{out.name}-phase{next_phase}"
        if (self.runs_root / name).exists():
            name = self._default_name(base, next_phase)
        return replace(base, phase=next_phase, init=str(info.checkpoints[FINAL]), epochs=None, batch_size=None,
                       name=name)


def _exit_reason(returncode: int) -> str:
    if returncode in _EXIT_REASONS:
        return _EXIT_REASONS[returncode]
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            pass
    return f"exit status {returncode}"


def _without_option(args: Sequence[str], option: str) -> list[str]:
    """``args`` without ``option`` and its value."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        else:
            out.append(arg)
    return out


__all__ = [
    "ConfigError",
    "LaunchError",
    "LaunchPlan",
    "Metrics",
    "RunBusyError",
    "RunInfo",
    "RunStatus",
    "SyntheticData",
    "TrainLauncher",
    "TrainRequest",
    "checkpoint_choices",
    "config_sets",
    "dataset_from_path",
    "find_datasets",
    "list_runs",
    "log_tail",
    "parse_metrics",
    "parse_phase",
    "phase_config_path",
    "positive_int",
    "read_metrics",
    "run_info",
    "training_command",
    "training_processes",
]
