"""The app's training launcher: one run at a time, started in the background, followed, stopped, resumed, and
chained to the next phase when it finishes.

:class:`TrainLauncher` holds the running run; a :class:`~training.launch.planning.RunPlanner` turns requests into
plans, a :class:`~training.launch.processes.TrainingProcess` is the process, :mod:`training.launch.runs` reads and
records the run folders.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from ..trainer import FINAL, LAST
from .follow import LOG_FILE, LOG_TAIL_LINES, log_tail, read_metrics
from .planning import RunPlanner
from .processes import TrainingProcess
from .request import LaunchPlan, TrainRequest
from .runs import (
    RunInfo,
    RunStatus,
    checkpoint_choices,
    describe_run,
    list_runs,
    record_outcome,
    record_start,
    run_folder,
    run_info,
)
from .validation import DEFAULT_CONFIGS, LaunchError, config_sets, find_datasets, parse_phase

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT = 120.0


class RunBusyError(LaunchError):
    """A run is already running in this launcher."""


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
        self.planner = RunPlanner(runs_root=self.runs_root, data_root=self.data_root, configs_root=self.configs_root,
                                  checkpoint_roots=self.checkpoint_roots, python=python)
        self._lock = threading.RLock()
        self._active: TrainingProcess | None = None
        self._last: TrainingProcess | None = None
        self._chain_note = ""

    # ------------------------------------------------------------------------------ planning
    def config_sets(self) -> dict[str, Path]:
        return config_sets(self.configs_root)

    def plan(self, request: TrainRequest, *, check_files: bool = True) -> LaunchPlan:
        """Validate ``request`` and build the run's arguments (nothing is started or written)."""
        return self.planner.plan(request, check_files=check_files)

    def next_request(self, name: str) -> TrainRequest:
        """The request that continues finished run ``name`` with the next phase (:meth:`RunPlanner.next_request`)."""
        return self.planner.next_request(name)

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
                self.planner.check_chain(plan)
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
            plan = self.planner.resume_plan(name, epochs=epochs, max_steps=max_steps, chain=chain, nproc=nproc)
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
            active.request_stop()
        if not active.done.wait(timeout):
            log.warning("run %s did not stop within %.0f s: killing it", active.plan.name, timeout)
            active.kill(waited=timeout)
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

    def _launch(self, plan: LaunchPlan) -> None:
        plan.out.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(parents=True, exist_ok=True)  # synthetic datasets are generated into it
        active = TrainingProcess.start(plan, env=self.env)
        record_start(plan, pid=active.process.pid, data_root=self.data_root)
        log.info("started training run %s (pid %d): %s", plan.name, active.process.pid, shlex.join(plan.command))
        self._active = active
        threading.Thread(target=self._watch, args=(active,), name=f"train-{plan.name}", daemon=True).start()

    def _watch(self, active: TrainingProcess) -> None:
        """Wait for the process; record its outcome; start the next phase of a chain."""
        returncode = active.wait_for_exit()
        with self._lock:
            active.finish(returncode)
            try:
                record_outcome(active.plan.out, state=active.state, exit_code=returncode, message=active.message)
            except OSError as exc:  # e.g. the runs folder was removed under the run
                log.warning("could not record the outcome of %s: %s", active.plan.name, exc)
            log.info("training run %s: %s", active.plan.name, active.message)
            self._active, self._last = None, active
            self._chain_note = ""
            plan = active.plan
            if active.state == "finished" and plan.request.chain and plan.phase < 3:
                try:
                    self._launch(self.plan(self.next_request(plan.name)))
                    self._chain_note = f"chain: phase {plan.phase} finished, phase {plan.phase + 1} started"
                except (ValueError, OSError) as exc:
                    self._chain_note = f"the chain stopped after phase {plan.phase}: {exc}"
                    log.warning("%s", self._chain_note)
        active.done.set()

    # ------------------------------------------------------------------------------ following
    def status(self, name: str | None = None, *, tail: int = LOG_TAIL_LINES) -> RunStatus:
        """The run ``name`` (a folder under the runs root), else the running run, else the last one this
        launcher ran; an ``idle`` status when there is none."""
        with self._lock:
            active = self._active
            chosen = active or self._last
            note = self._chain_note
        if name and str(name).strip():
            out = run_folder(self.runs_root, str(name))
            if chosen is None or chosen.plan.out != out:
                metrics = read_metrics(out)
                info = run_info(out, metrics=metrics)
                info = replace(info, name=out.relative_to(self.runs_root).as_posix())
                return RunStatus(run=info, message=describe_run(info), log=log_tail(out / LOG_FILE, tail),
                                 metrics=metrics, active=False)
        if chosen is None:
            return RunStatus(run=None, message="no training run yet: choose a phase and start one")
        out = chosen.plan.out
        metrics = read_metrics(out)
        running = chosen is active
        info = run_info(out, metrics=metrics, state="running" if running else chosen.state,
                        exit_code=None if running else chosen.returncode)
        info = replace(info, name=chosen.plan.name, message=chosen.message)
        message = describe_run(info, stopping=running and chosen.stop_requested)
        if note and not running:
            message += f" ({note})"
        return RunStatus(run=info, message=message, log=log_tail(out / LOG_FILE, tail), metrics=metrics,
                         active=running)

    def runs(self) -> list[RunInfo]:
        """:func:`~training.launch.runs.list_runs` of the runs root, the running run marked as running."""
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
