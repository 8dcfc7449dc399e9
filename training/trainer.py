"""The training loop (minGPT's ``Trainer`` in spirit): one phase, one process or one DDP rank.

:class:`Trainer` takes a built model, the phase config and the loaders, and runs :meth:`Trainer.fit`: for each
epoch, for each batch: forward (bf16 autocast optional), the INT loss (:mod:`training.losses`), backward, optimiser step; then
evaluation and a checkpoint. Everything else is small helpers below it:

* the run's state (step, epoch, batch within the epoch, non-finite counters) and its checkpoint ``extra``:
  optimiser, scheduler, every rank's RNG states, so that an interrupted and resumed run repeats the
  uninterrupted run exactly (given ``train.deterministic``);
* SIGINT / SIGTERM: the current step finishes, ``last.pt`` is written, :meth:`fit` returns ``"signal"``;
* a non-finite loss or gradient skips the step (no update); ``train.max_nonfinite`` in a row stop the run
  with its last good checkpoint left as it was;
* logs: ``metrics.jsonl`` (one JSON object per step, and ``"split": "val"`` records), TensorBoard when the
  ``tensorboard`` package is installed, a tqdm bar.

Files in the output folder: ``last.pt`` (model + training state, for ``--resume``), ``final.pt`` (model and
metadata, when the phase ends or reaches ``--max-steps``), ``metrics.jsonl``, ``config.yaml``, ``tensorboard/``.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import logging
import math
import os
import random
import re
import signal
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from int_model import IntModel, save_checkpoint
from int_model.precision import autocast_context, resolve_precision
from int_model.checkpoint import (
    FORMAT,
    CheckpointError,
    is_public_int_state_dict,
    read_checkpoint_file,
    remap_public_int_state_dict,
)

from .data import TrainData
from .evaluate import evaluate_model
from .losses import TERM_NAMES, LossWeights, compute_loss
from .phases import ConfigError, OptimConfig, PhaseConfig
from .sample import Batch

log = logging.getLogger(__name__)

LAST = "last.pt"
FINAL = "final.pt"
METRICS_FILE = "metrics.jsonl"
# Parameters that a phase-2 model has and a phase-1 checkpoint lacks: initialised fresh.
FRESH_PREFIXES = ("temporal_transformer.",)
# Config fields allowed to differ between an init checkpoint and the model (the temporal transformer's).
TEMPORAL_FIELDS = ("temporal_depth", "temporal_heads", "temporal_len", "temporal_mode")
# Label tensors moved to the device (the rest of a batch stays on the host).
ARRAY_KEYS = ("frames", "pose", "betas", "joints3d", "joints3d_h36m", "joints2d", "has_pose", "has_betas",
              "joints3d_vis", "joints3d_h36m_vis", "joints2d_vis", "valid")


class NonFiniteLossError(RuntimeError):
    """Too many non-finite losses in a row; the run stopped and left its last good checkpoint."""


# ------------------------------------------------------------------------------------------ distributed set-up
@dataclass(frozen=True)
class DistContext:
    """Where this process runs: its rank among ``world_size`` processes, and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def init_distributed(device: str = "auto") -> DistContext:
    """This process's :class:`DistContext` from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
    LOCAL_WORLD_SIZE; a plain run is rank 0 of 1), joining the process group when there are several processes:
    NCCL on CUDA, gloo on CPU. ``device``: ``auto`` (CUDA when available), ``cpu`` or ``cuda``."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("--device cuda, but CUDA is not available")
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    target = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(target)
    if world_size > 1 and not dist.is_initialized():
        if use_cuda:
            dist.init_process_group(backend="nccl", device_id=target)
        else:
            dist.init_process_group(backend="gloo")
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank,
                       local_world_size=local_world_size, device=target)


# -------------------------------------------------------------------------------------------------- RNG state
def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """This process's RNG states as checkpoint-safe types (tensors, ints, dicts, tuples)."""
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"]["key"] = torch.from_numpy(numpy_state["state"]["key"].astype(np.int64))
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`'s output."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = dict(state["numpy"])
    numpy_state["state"] = dict(numpy_state["state"])
    numpy_state["state"]["key"] = numpy_state["state"]["key"].numpy().astype(np.uint32)
    np.random.set_state(numpy_state)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------------------------------ initialisation
@dataclass(frozen=True)
class InitReport:
    """What :func:`initialise_from_checkpoint` did: tensors loaded, tensors left freshly initialised."""

    path: Path
    loaded: int
    fresh: tuple[str, ...]
    body_model: str | None


def initialise_from_checkpoint(model: IntModel, path: str | Path) -> InitReport:
    """Load an earlier phase's weights into ``model``: strictly for every tensor the checkpoint has.

    Every checkpoint tensor must exist in the model with the same shape; the only model tensors the checkpoint
    may lack are the temporal transformer's (phase 1 -> phase 2), which keep their fresh initialisation. An INT
    Studio checkpoint's config must equal the model's in every field but the temporal ones. Public INT
    checkpoints are remapped first. Raises :class:`CheckpointError` naming what does not fit.
    """
    path = Path(path)
    data = read_checkpoint_file(path)
    if data.get("format") == FORMAT:
        meta = data.get("meta", {})
        state, body, fingerprint = data["state_dict"], meta.get("body_model"), meta.get("body_model_fingerprint")
        theirs, ours = data.get("config", {}), model.config.to_dict()
        differ = sorted(k for k in set(theirs) | set(ours)
                        if k not in TEMPORAL_FIELDS and k != "variant" and theirs.get(k) != ours.get(k))
        if differ:
            details = ", ".join(f"{k}: checkpoint {theirs.get(k)!r} vs phase {ours.get(k)!r}" for k in differ)
            raise CheckpointError(f"{path} does not fit this phase's model ({details})")
    else:
        raw = data.get("state_dict", data.get("model", data))
        if not isinstance(raw, dict) or not is_public_int_state_dict(raw):
            raise CheckpointError(f"{path} is neither an INT Studio checkpoint nor a public INT checkpoint")
        state, body, fingerprint = remap_public_int_state_dict(raw), None, None
    own = model.state_dict()
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(state) & set(own)) if tuple(state[k].shape) != tuple(own[k].shape)]
    missing = sorted(set(own) - set(state))
    not_fresh = [k for k in missing if not k.startswith(FRESH_PREFIXES)]
    if unexpected or shapes or not_fresh:
        problems = [f"{title}: {', '.join(items[:6])}{' ...' if len(items) > 6 else ''}"
                    for title, items in (("unexpected", unexpected), ("shape mismatch", shapes),
                                         ("missing", not_fresh)) if items]
        raise CheckpointError(f"{path} does not fit the model: {'; '.join(problems)}")
    model.load_state_dict(state, strict=False)
    if not model.body_model.matches(body, fingerprint):
        log.warning("%s was trained with body model %s; this run uses %s", path, body, model.body_model.identity)
    return InitReport(path=path, loaded=len(state), fresh=tuple(missing), body_model=body)


# --------------------------------------------------------------------------------------------- the step
class TrainStep(nn.Module):
    """The model and the loss as one module, so that DDP sees one forward per step for every clip-length group.

    ``forward(groups)`` runs each group (a batch of one clip length) through the network under autocast and
    combines the groups' losses weighted by their number of clips. Returns the total loss (a scalar
    with gradients) and the unweighted terms (T,) detached, in :data:`training.losses.TERM_NAMES` order.
    """

    def __init__(self, model: IntModel, *, weights: LossWeights, precision: str) -> None:
        super().__init__()
        self.model = model
        self.weights = weights
        self.precision = precision

    def forward(self, groups: Sequence[Batch]) -> tuple[torch.Tensor, torch.Tensor]:
        clips = sum(int(g["frames"].shape[0]) for g in groups)
        total = None
        terms = torch.zeros(len(TERM_NAMES))
        for group in groups:
            frames = group["frames"]
            with autocast_context(frames.device, self.precision):
                output = self.model(frames)
            result = compute_loss(output, group, weights=self.weights)
            share = frames.shape[0] / clips
            total = result.total * share if total is None else total + result.total * share
            terms += share * torch.tensor([result.terms[name] for name in TERM_NAMES])
        return total, terms


class StepSchedule:
    """The learning-rate factor at a step: a linear warm-up over ``warmup_steps``, then ``gamma`` once per
    milestone passed. A plain object of lists and numbers, so that the scheduler's state loads weights-only."""

    def __init__(self, *, milestones: Sequence[int], gamma: float, warmup_steps: int = 0) -> None:
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = float(gamma)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: int) -> float:
        warm = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        return warm * self.gamma ** bisect.bisect_right(self.milestones, step)


def freeze_parameters(model: nn.Module, prefixes: Sequence[str]) -> int:
    """Stop the gradients of every parameter whose name starts with one of ``prefixes``; returns how many
    tensors were frozen. A prefix that names no parameter raises ConfigError (a typo would train everything)."""
    names = [name for name, _ in model.named_parameters()]
    unknown = [p for p in prefixes if not any(n.startswith(p) for n in names)]
    if unknown:
        raise ConfigError(f"train.freeze: {', '.join(map(repr, unknown))} names no parameter of the model "
                         f"(its parameters start with {', '.join(sorted({n.split('.')[0] + '.' for n in names}))})")
    frozen = 0
    for name, parameter in model.named_parameters():
        if any(name.startswith(p) for p in prefixes):
            parameter.requires_grad_(False)
            frozen += 1
    return frozen


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.name == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def weights_fingerprint(model: nn.Module) -> str:
    """SHA-256 of every parameter and persistent buffer, bit for bit (replicas of a DDP run must agree)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


# ------------------------------------------------------------------------------------------------ logging
class MetricsLog:
    """``metrics.jsonl`` (rank 0 only): one JSON object per line, flushed at once so the app can follow it."""

    def __init__(self, path: Path, *, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled
        self._file = open(path, "a", encoding="utf-8") if enabled else None  # noqa: SIM115 - closed in close()

    def write(self, record: dict[str, Any]) -> None:
        if self._file is not None:
            clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
            self._file.write(json.dumps(clean) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @staticmethod
    def rewind(path: Path, step: int) -> None:
        """Drop the records after ``step`` (written after the checkpoint a run resumes from)."""
        if not path.is_file():
            return
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
        if len(kept) != len(lines):
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
            tmp.replace(path)


class TensorBoard:
    """Scalars to TensorBoard when the ``tensorboard`` package is installed; otherwise a no-op (logged once)."""

    def __init__(self, folder: Path, *, enabled: bool) -> None:
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.info("TensorBoard logging is off: the 'tensorboard' package is not installed "
                     "(metrics.jsonl has every value)")
            return
        self.writer = SummaryWriter(log_dir=str(folder))

    def scalars(self, values: dict[str, Any], step: int, *, prefix: str) -> None:
        if self.writer is None:
            return
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


# ------------------------------------------------------------------------------------------------ trainer
@dataclass
class TrainState:
    """Where the run is: ``step`` optimisation steps taken (skipped ones included), inside ``epoch`` after
    ``batch`` of its batches; the non-finite counters; the latest evaluation."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    nonfinite_total: int = 0
    nonfinite_run: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)


class Trainer:
    """Runs one phase. Build it on every rank with the same arguments, then call :meth:`fit`.

    Args:
        config: the phase.
        model: the network, already initialised (or to be restored by ``resume``).
        data: the training loader and its sampler (:func:`training.data.build_train_data`).
        val_loader: held-out clips evaluated every ``train.eval_every`` epochs on rank 0 (None: no evaluation).
        out_dir: the run's output folder.
        ctx: this process's rank and device.
        max_steps: stop after this global step (a resumed run continues up to it).
        progress: show a tqdm bar on rank 0.
    """

    def __init__(self, *, config: PhaseConfig, model: IntModel, data: TrainData, val_loader: DataLoader | None,
                 out_dir: Path, ctx: DistContext = DistContext(), max_steps: int | None = None,
                 progress: bool = True) -> None:
        self.config, self.data, self.val_loader = config, data, val_loader
        self.out_dir, self.ctx, self.max_steps, self.progress = Path(out_dir), ctx, max_steps, progress
        self.model = model.to(ctx.device)
        freeze_parameters(self.model, config.train.freeze)
        if config.train.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.precision = resolve_precision(config.train.precision, ctx.device)
        if config.train.precision == "auto":
            log.info("precision auto: %s on this %s", self.precision, ctx.device.type)
        step_module = TrainStep(self.model, weights=config.loss, precision=self.precision)
        self.step_module: nn.Module = step_module
        if ctx.distributed:
            # The token parameters are (1, N, D): their gradients are slices whose stride on the size-1 axis
            # differs from the bucket's, which DDP reports although the layouts are the same.
            warnings.filterwarnings("ignore", message=re.escape("Grad strides do not match bucket view strides"))
            # No BatchNorm anywhere, and the body model's buffers are constants: nothing to broadcast per step.
            self.step_module = DistributedDataParallel(
                step_module, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
                forward_sync_buffers=False, gradient_as_bucket_view=True,
            )
        self.optimizer = build_optimizer(self.model, config.optim)
        self.total_steps = config.train.epochs * data.steps_per_epoch
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, StepSchedule(
            milestones=config.optim.milestone_steps(self.total_steps), gamma=config.optim.gamma,
            warmup_steps=config.optim.warmup_steps))
        self.state = TrainState()
        self._signal: int | None = None
        self._grad_norm: float | None = None
        self._stop_agreed = False
        self._saved: dict[str, int] = {}
        self._log: MetricsLog | None = None
        self._tb: TensorBoard | None = None
        self._bar: tqdm | None = None

    # --------------------------------------------------------------------------------- the loop
    def fit(self) -> str:
        """Train to the end of the phase; returns why it stopped: ``done``, ``max_steps`` or ``signal``.

        Raises :class:`NonFiniteLossError` after ``train.max_nonfinite`` non-finite losses in a row.
        """
        train = self.config.train
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._log = MetricsLog(self.out_dir / METRICS_FILE, enabled=self.ctx.is_main)
        self._tb = TensorBoard(self.out_dir / "tensorboard", enabled=self.ctx.is_main and train.tensorboard)
        target = min(self.total_steps, self.max_steps or self.total_steps)
        self._bar = tqdm(total=target, initial=min(self.state.step, target), unit="step", dynamic_ncols=True,
                         disable=not (self.progress and self.ctx.is_main) or None, desc=self.config.name)
        reason = None
        try:
            with self._signal_handlers():
                if self.max_steps is not None and self.state.step >= self.max_steps:
                    reason = "max_steps"
                while reason is None and self.state.epoch < train.epochs:
                    reason = self._train_epoch()
                    if self.state.batch == self.data.steps_per_epoch:  # the epoch is complete
                        self.state.epoch, self.state.batch = self.state.epoch + 1, 0
                        if train.eval_every and self.state.epoch % train.eval_every == 0:
                            self.evaluate()
                        self.save_checkpoint(LAST)
                        if reason is None and self.max_steps is not None and self.state.step >= self.max_steps:
                            reason = "max_steps"
                reason = reason or "done"
                if reason == "signal":
                    name = signal.Signals(self._signal).name if self._signal else "on another rank"
                    log.info("stopped by %s at step %d; resume with --resume", name, self.state.step)
                if reason in ("signal", "max_steps") and self._saved.get(LAST) != self.state.step:
                    self.save_checkpoint(LAST)
                if reason in ("done", "max_steps"):
                    self.save_checkpoint(FINAL, training_state=False)
        finally:
            self._bar.close()
            self._log.close()
            self._tb.close()
        return reason

    def _train_epoch(self) -> str | None:
        """The rest of the current epoch; None when it completed, else why it stopped early."""
        self.data.sampler.set_epoch(self.state.epoch, start_step=self.state.batch)
        batches: Iterator[list[Batch]] = iter(self.data.loader)
        while self.state.batch < self.data.steps_per_epoch:
            start = time.perf_counter()
            groups = next(batches)
            fetched = time.perf_counter()
            loss, terms, ok = self._optimisation_step(groups)
            elapsed = time.perf_counter() - start
            self.state.step += 1
            self.state.batch += 1
            self.state.nonfinite_run = 0 if ok else self.state.nonfinite_run + 1
            self.state.nonfinite_total += 0 if ok else 1
            self._log_step(groups, loss, terms, ok, elapsed=elapsed, waited=fetched - start)
            if self.state.nonfinite_run >= self.config.train.max_nonfinite:
                self._stop_nonfinite()
            if self._should_stop():
                return "signal"
            if self.max_steps is not None and self.state.step >= self.max_steps:
                return "max_steps"
            at_epoch_end = self.state.batch == self.data.steps_per_epoch  # saved after the evaluation
            if self.state.step % self.config.train.checkpoint_every == 0 and ok and not at_epoch_end:
                self.save_checkpoint(LAST)  # never in a run of non-finite steps: the last good one stays
        return None

    def _optimisation_step(self, groups: list[Batch]) -> tuple[float, list[float], bool]:
        """Forward, loss, backward and update on one batch; skipped (no update) when the loss or the gradient is
        not finite on any rank. Returns the loss and its terms averaged over ranks, and whether it was applied."""
        groups = [self._to_device(g) for g in groups]
        if self.state.step + 1 in self.config.debug.corrupt_steps:
            for group in groups:
                group["frames"] = torch.full_like(group["frames"], math.nan)
        total, terms = self.step_module(groups)
        local_ok = bool(torch.isfinite(total))
        flags = torch.tensor([float(not local_ok), float(self._signal is not None)])
        summary = torch.cat([total.detach().float().reshape(1).cpu(), terms, flags])
        if self.ctx.distributed:
            # One small all-reduce per step: the logged averages, whether any rank saw a non-finite loss, and
            # whether any rank was signalled (every rank then stops after this same step).
            summary = summary.to(self.ctx.device)
            dist.all_reduce(summary)
            summary = summary.cpu()
            summary[:-2] /= self.ctx.world_size
        ok = bool(summary[-2] == 0)
        self._stop_agreed = bool(summary[-1] > 0)
        self._grad_norm = None
        if ok:
            total.backward()
            clip = self.config.optim.grad_clip or math.inf
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            ok = bool(torch.isfinite(grad_norm))  # gradients are all-reduced: every rank agrees
            self._grad_norm = float(grad_norm) if ok else None  # before clipping: what optim.grad_clip bounds
            if ok:
                self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        with warnings.catch_warnings():  # the schedule follows the step count, skipped steps included
            warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()` before"))
            self.scheduler.step()
        return float(summary[0]), summary[1:-2].tolist(), ok

    def _to_device(self, batch: Batch) -> Batch:
        out = dict(batch)
        for key in ARRAY_KEYS:
            out[key] = batch[key].to(self.ctx.device, non_blocking=True)
        return out

    # ------------------------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[str, Any]:
        """Evaluate on the held-out clips (rank 0; the others wait), log it, keep it for the checkpoint meta."""
        metrics: dict[str, Any] = {}
        if self.ctx.is_main and self.val_loader is not None:
            started = time.perf_counter()
            metrics = evaluate_model(self.model, self.val_loader, device=self.ctx.device,
                                     precision=self.precision)
            metrics["seconds"] = round(time.perf_counter() - started, 2)
            self.state.metrics = {"step": self.state.step, "epoch": self.state.epoch, **metrics}
            for mode in ("image", "temporal"):
                if metrics.get(mode):
                    record = {"split": "val", "mode": mode, "step": self.state.step, "epoch": self.state.epoch,
                              **metrics[mode]}
                    self._log.write(record)
                    self._tb.scalars(metrics[mode], self.state.step, prefix=f"val_{mode}")
            summary = ", ".join(f"{k} {v:.1f}" for k, v in (metrics.get("temporal") or metrics["image"]).items()
                                if v is not None)
            log.info("epoch %d, step %d: val %s (mm)", self.state.epoch, self.state.step, summary)
        self.ctx.barrier()
        return metrics

    # ------------------------------------------------------------------------------ checkpoints
    def _meta(self) -> dict[str, Any]:
        return {"phase": self.config.name, "step": self.state.step, "epoch": self.state.epoch,
                "metrics": self.state.metrics, "train_config": self.config.to_dict()}

    def save_checkpoint(self, name: str, *, training_state: bool = True) -> Path | None:
        """Write ``name`` atomically on rank 0 (every rank must call it: RNG states and, under DDP, a check that
        the replicas hold identical weights are gathered). Returns the path on rank 0."""
        fingerprint = weights_fingerprint(self.model)
        rngs = [rng_state()]
        fingerprints = [fingerprint]
        if self.ctx.distributed:
            rngs = [None] * self.ctx.world_size
            fingerprints = [None] * self.ctx.world_size
            dist.all_gather_object(rngs, rng_state())
            dist.all_gather_object(fingerprints, fingerprint)
        path = None
        if self.ctx.is_main:
            extra = {}
            if training_state:
                scheduler = self.scheduler.state_dict()
                extra = {
                    "trainer": {**asdict(self.state), "world_size": self.ctx.world_size,
                                "batch_size": self.config.data.batch_size,
                                "steps_per_epoch": self.data.steps_per_epoch, "seed": self.config.train.seed},
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": scheduler,
                    "rng": rngs,
                }
            path = save_checkpoint(self.out_dir / name, self.model, meta=self._meta(), extra=extra)
            record = {"event": "checkpoint", "step": self.state.step, "epoch": self.state.epoch, "file": name,
                      "replica_fingerprints": fingerprints}
            self._log.write(record)
            if len(set(fingerprints)) > 1:
                raise RuntimeError(f"DDP replicas hold different weights at step {self.state.step}: {fingerprints}")
        self._saved[name] = self.state.step  # on every rank: it decides whether all ranks save again
        self.ctx.barrier()
        return path

    def restore(self, path: Path) -> None:
        """Resume from ``last.pt``: weights, optimiser, scheduler, this rank's RNG states and the data position."""
        data = read_checkpoint_file(path)
        extra = data.get("extra") or {}
        if "trainer" not in extra:
            raise CheckpointError(f"{path} holds no training state (final.pt? resume from {LAST})")
        saved = extra["trainer"]
        ours = self.model.config.to_dict()
        differ = sorted(k for k in ours if data["config"].get(k) != ours[k])
        if differ:
            raise CheckpointError(f"{path} was trained with another model config ({', '.join(differ)} differ)")
        expected = {"world_size": self.ctx.world_size, "batch_size": self.config.data.batch_size,
                    "steps_per_epoch": self.data.steps_per_epoch, "seed": self.config.train.seed}
        changed = [f"{k}: checkpoint {saved[k]} vs now {v}" for k, v in expected.items() if saved[k] != v]
        if changed:
            raise CheckpointError(f"cannot resume {path} exactly, the run changed ({'; '.join(changed)})")
        self.model.load_state_dict(data["state_dict"], strict=True)
        self.optimizer.load_state_dict(extra["optimizer"])
        self.scheduler.load_state_dict(extra["scheduler"])
        set_rng_state(extra["rng"][self.ctx.rank])
        self.state = TrainState(**{k: saved[k] for k in asdict(TrainState())})
        if self.ctx.is_main:
            MetricsLog.rewind(self.out_dir / METRICS_FILE, self.state.step)
        log.info("resumed %s at step %d (epoch %d, batch %d)", path, self.state.step, self.state.epoch,
                 self.state.batch)

    # ------------------------------------------------------------------------------ stopping and logs
    @contextlib.contextmanager
    def _signal_handlers(self):
        """SIGINT / SIGTERM set a flag that the loop checks after each step; a second signal aborts at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, _frame: Any) -> None:
            if self._signal is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self._signal = signum
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
            log.info("received %s: finishing this step, then saving %s", signal.Signals(signum).name, LAST)

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def _should_stop(self) -> bool:
        # Under DDP only the flag agreed in the step's all-reduce counts, so that every rank stops together.
        return self._stop_agreed if self.ctx.distributed else self._signal is not None

    def _stop_nonfinite(self) -> None:
        run, step = self.state.nonfinite_run, self.state.step
        last = self.out_dir / LAST
        kept = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint was written yet"
        message = (f"stopping: {run} non-finite losses in a row (steps {step - run + 1}..{step}; "
                   f"train.max_nonfinite = {self.config.train.max_nonfinite}); {kept}. Lower optim.lr, set "
                   "optim.grad_clip or check the data")
        log.error(message)
        raise NonFiniteLossError(message)

    def _log_step(self, groups: list[Batch], loss: float, terms: list[float], ok: bool, *, elapsed: float,
                  waited: float) -> None:
        clips = sum(int(g["frames"].shape[0]) for g in groups) * self.ctx.world_size
        frames = sum(int(g["frames"].shape[0] * g["frames"].shape[1]) for g in groups) * self.ctx.world_size
        record = {
            "step": self.state.step, "epoch": self.state.epoch, "loss": loss if ok else None,
            **{f"loss_{name}": value for name, value in zip(TERM_NAMES, terms)},
            "lr": self.optimizer.param_groups[0]["lr"], "grad_norm": self._grad_norm,
            "samples_per_sec": clips / elapsed, "frames_per_sec": frames / elapsed,
            "data_wait_frac": waited / elapsed, "step_time": elapsed,
        }
        if not ok:
            record.update(skipped=True, nonfinite_total=self.state.nonfinite_total)
        if self.ctx.is_main:
            self._log.write(record)
            self._tb.scalars({k: v for k, v in record.items() if k not in ("step", "epoch")}, self.state.step,
                             prefix="train")
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{loss:.4g}" if ok else "skip", sps=f"{clips / elapsed:.1f}",
                                  wait=f"{waited / elapsed:.0%}", refresh=False)
