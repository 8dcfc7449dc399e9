"""Training processes: one started with its log, stopped by signals, its outcome read when it ends; and the
``cli.train`` processes running on this machine, whoever started them.

Stopping sends SIGTERM to the training process(es) only, never to the DataLoader workers (they would die under
it and take the step with them); under torchrun to the ranks, not to torchrun, which would forward a second
SIGTERM (the trainer's "stop now") and kill them after 30 s.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..trainer import FINAL, LAST
from .follow import LOG_FILE, error_line, log_tail, read_metrics
from .request import LaunchPlan
from .validation import REPO_ROOT

_EXIT_REASONS = {2: "a bad config or checkpoint", 3: "too many non-finite losses in a row"}


def training_processes() -> dict[Path, int]:
    """The output folders of the ``cli.train`` processes running on this machine (any user of it: the
    app, a terminal, ``make train-demo``), each with one process id; empty where there is no ``/proc``."""
    found: dict[Path, int] = {}
    try:
        entries = [e for e in Path("/proc").iterdir() if e.name.isdigit()]
    except OSError:
        return found
    for entry in entries:
        try:
            args = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if "cli.train" not in args or "--out" not in args[:-1]:
                continue
            out = Path(args[args.index("--out") + 1])
            if not out.is_absolute():
                out = Path(os.readlink(entry / "cwd")) / out
        except (OSError, ValueError):
            continue
        found.setdefault(Path(os.path.normpath(out)), int(entry.name))
    return found


def children(pid: int) -> list[int]:
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


def send_signal(pid: int, sig: int) -> None:
    """``sig`` to process ``pid``, if it still exists."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def signal_group(pgid: int, sig: int) -> None:
    """``sig`` to every process of group ``pgid``, if any is left."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def exit_reason(returncode: int) -> str:
    """What a trainer's non-zero exit status means, in words."""
    if returncode in _EXIT_REASONS:
        return _EXIT_REASONS[returncode]
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            pass
    return f"exit status {returncode}"


@dataclass
class TrainingProcess:
    """A plan's running trainer (one process, or torchrun and its ranks) and, once it ended, its outcome."""

    plan: LaunchPlan
    process: subprocess.Popen
    started: float
    done: threading.Event = field(default_factory=threading.Event)
    stop_requested: bool = False
    killed_after: float | None = None  # seconds the launcher waited for it to stop before it killed it
    returncode: int | None = None
    state: str = "running"
    message: str = ""

    @classmethod
    def start(cls, plan: LaunchPlan, *, env: Mapping[str, str]) -> TrainingProcess:
        """Start ``plan``'s command in its own session (the app's Ctrl-C leaves it alone), its output appended to
        ``<run>/train.log`` after a line that says when and what; ``env`` is added to this process's
        environment."""
        command = plan.command
        with open(plan.out / LOG_FILE, "ab") as log_file:
            log_file.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} {'resumed' if plan.resume else 'started'}: "
                           f"{shlex.join(command)}\n".encode())
            log_file.flush()
            process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                                       start_new_session=True)
        return cls(plan=plan, process=process, started=time.time())

    def request_stop(self) -> None:
        """SIGTERM to the trainer: to the ranks under torchrun, else to the process itself."""
        self.stop_requested = True
        pid = self.process.pid
        ranks = children(pid) if self.plan.nproc > 1 else []
        for target in ranks or [pid]:
            send_signal(target, signal.SIGTERM)

    def kill(self, *, waited: float) -> None:
        """SIGKILL to the whole session, after it did not stop within ``waited`` seconds."""
        self.killed_after = waited
        signal_group(self.process.pid, signal.SIGKILL)

    def wait_for_exit(self) -> int:
        """Wait for the process to end, then end what is left of its session (e.g. the renderers of a killed
        generator); its exit status."""
        returncode = self.process.wait()
        signal_group(self.process.pid, signal.SIGTERM)
        return returncode

    def finish(self, returncode: int) -> None:
        """Record the exit status and the outcome it means (:attr:`state`, :attr:`message`)."""
        self.returncode = returncode
        self.state, self.message = self._outcome()

    def _outcome(self) -> tuple[str, str]:
        rc, out = self.returncode, self.plan.out
        step = read_metrics(out).step
        if self.stop_requested:
            if self.killed_after is not None:
                return "stopped", (f"stopped: killed after {self.killed_after:.0f} s without stopping by itself; "
                                   f"{LAST} may be older than step {step}")
            if (out / LAST).is_file():
                return "stopped", f"stopped at step {step}; {LAST} saved (Resume continues from it)"
            return "stopped", "stopped before its first checkpoint: nothing to resume"
        if rc == 0:
            final = out / FINAL
            if final.is_file() and final.stat().st_mtime >= self.started - 1:
                return "finished", f"finished at step {step}: {FINAL} written"
            return "stopped", f"stopped by a signal at step {step}; {LAST} saved"
        return "failed", f"failed ({exit_reason(rc)}): {error_line(log_tail(out / LOG_FILE, 60))}"
