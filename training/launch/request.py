"""What to train (:class:`TrainRequest`) and what will run for it (:class:`LaunchPlan`, its command line)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


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
    """``python -m cli.train ARGS`` for one process, under ``torch.distributed.run`` for several."""
    if nproc == 1:
        return [python, "-m", "cli.train", *train_args]
    return [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
            "-m", "cli.train", *train_args]
