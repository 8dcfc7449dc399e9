"""From a request to a plan: the checks, the run folder, the config overrides and the trainer's arguments, for
a new run (:meth:`RunPlanner.plan`), a resumed one (:meth:`RunPlanner.resume_plan`) and the next phase of a
finished one (:meth:`RunPlanner.next_request`). Nothing here starts a process or writes a file."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from int_model.checkpoint import CheckpointError, server_checkpoint
from int_model.loading import ModelKey

from ..data import batch_counts
from ..phases import PhaseConfig, load_phase_config
from ..trainer import FINAL, LAST
from .processes import training_processes
from .request import LaunchPlan, SyntheticData, TrainRequest
from .runs import CONFIG_FILE, LAUNCH_FILE, read_json, run_folder, run_info
from .validation import LaunchError, check_data, dataset_from_path, parse_phase, phase_config_path, positive_int

_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _flow(value: Any) -> str:
    """A value in YAML flow style (JSON is YAML), for ``--set key=value``."""
    return json.dumps(value, separators=(", ", ": "))


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


@dataclass(frozen=True)
class RunPlanner:
    """Plans runs under ``runs_root`` that read ``data_root``, with the phase files of ``configs_root``, init
    checkpoints from ``checkpoint_roots`` only, and ``python`` as the trainer's interpreter."""

    runs_root: Path
    data_root: Path
    configs_root: Path
    checkpoint_roots: tuple[Path, ...]
    python: str

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
        name = request.name.strip() if request.name and request.name.strip() else self.default_name(request, phase)
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

    def default_name(self, request: TrainRequest, phase: int) -> str:
        """``<set>-<time>-phase<N>``, with a number added when that folder exists."""
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
            text = str(request.init).strip()
            text = ModelKey.parse(text).value if text.startswith("checkpoint:") else text
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

    def check_chain(self, plan: LaunchPlan) -> None:
        """The later phases of a chain must be startable with the same data (their init comes later)."""
        for phase in range(plan.phase + 1, 4):
            later = replace(plan.request, phase=phase, epochs=None, batch_size=None, init=None, name="chain-check")
            try:
                self.plan(later, check_files=False)
            except ValueError as exc:
                raise LaunchError(f"cannot chain to phase {phase}: {exc}") from exc

    def resume_plan(self, name: str, *, epochs: int | None = None, max_steps: int | None = None,
                    chain: bool | None = None, nproc: int | None = None) -> LaunchPlan:
        """Run ``name`` continued from its ``last.pt`` with the command it was started with (``--resume``);
        ``epochs`` extends it. A folder started from the command line (no launch.json) resumes from its
        config.yaml with ``nproc`` processes (default 1)."""
        out = run_folder(self.runs_root, name)
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
        request, args, nproc = self._recorded_command(out, name, nproc)
        args = _without_option(args, "--max-steps")
        if epochs is not None:
            args += ["--set", f"train.epochs={epochs}"]
        if max_steps is not None:
            args += ["--max-steps", str(max_steps)]
        request = replace(request, epochs=epochs or request.epochs, max_steps=max_steps,
                          chain=request.chain if chain is None else bool(chain))
        return LaunchPlan(name=out.name if out.parent == self.runs_root else name, out=out,
                          phase=parse_phase(request.phase), config_set=request.config_set,
                          config=Path(args[args.index("--config") + 1]), nproc=nproc,
                          train_args=tuple(args) + ("--resume",), init=None, request=request, resume=True,
                          python=self.python)

    def _recorded_command(self, out: Path, name: str, nproc: int | None) -> tuple[TrainRequest, list[str], int]:
        """The request, the trainer's arguments and the processes run ``out`` was started with: from its
        launch.json, else (a run started from the command line) from its config.yaml with ``nproc`` processes."""
        launch = read_json(out / LAUNCH_FILE)
        if launch.get("train_args"):
            return TrainRequest.from_dict(launch["request"]), list(launch["train_args"]), int(launch.get("nproc", 1))
        if (out / CONFIG_FILE).is_file():
            info = run_info(out)
            request = TrainRequest(phase=info.phase or 1, config_set="?", name=out.name)
            args = ["--config", str(out / CONFIG_FILE), "--out", str(out), "--data-root", str(self.data_root),
                    "--no-progress"]
            return request, args, positive_int(nproc or 1, "number of processes")
        raise LaunchError(f"run {name!r} has neither {LAUNCH_FILE} nor {CONFIG_FILE}: it cannot be resumed")

    def next_request(self, name: str) -> TrainRequest:
        """The request that continues finished run ``name`` with the next phase: same config set, data,
        processes and chain setting; ``--init <run>/final.pt``; the config's own epochs and batch size."""
        out = run_folder(self.runs_root, name)
        info = run_info(out)
        if info.phase is None:
            raise LaunchError(f"run {name!r}: its phase is unknown")
        if info.phase >= 3:
            raise LaunchError(f"run {name!r} is phase 3, the last phase")
        if FINAL not in info.checkpoints:
            raise LaunchError(f"run {name!r} has not finished (no {FINAL}): finish or resume it first")
        launch = read_json(out / LAUNCH_FILE)
        base = TrainRequest.from_dict(launch["request"]) if launch.get("request") else TrainRequest(
            config_set=info.config_set or "cpu-demo")
        next_phase = info.phase + 1
        stem = re.sub(r"phase[123]$", "", out.name)
        name = f"{stem}phase{next_phase}" if stem != out.name else f"{out.name}-phase{next_phase}"
        if (self.runs_root / name).exists():
            name = self.default_name(base, next_phase)
        return replace(base, phase=next_phase, init=str(info.checkpoints[FINAL]), epochs=None, batch_size=None,
                       name=name)
