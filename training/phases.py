"""Training phases as data: one YAML file per phase, parsed into frozen dataclasses and validated.

A phase file names everything a run needs (Appendix C of the paper)::

    name: phase2
    init: ../phase1/final.pt          # relative paths: against the run's output folder (--init overrides)
    model: {variant: small, temporal: true, overrides: {}}
    data:
      root: data                      # relative paths: against the working directory (--data-root overrides)
      clip_len: 16                    # video datasets give clips of T frames every clip_stride frames
      clip_stride: 8                  # image datasets always give single frames
      batch_size: 8                   # clips per process and step
      train:
        - {kind: synthetic, name: cpu-demo-train, weight: 1.0, clips: 512, frames: 64, seed: 1}
        - {kind: database, name: h36m, weight: 0.5}
      val:
        - {kind: synthetic, name: cpu-demo-val, clips: 16, frames: 64, seed: 2}
    optim: {name: adam, lr: 1.0e-4, milestones: [0.6, 0.9]}   # milestones: fractions of the run's steps
    loss: {theta: 60, beta: 0.06, norm: 1.0, joints3d: 600, joints2d: 300, temporal: 0}
    train: {epochs: 100, precision: bf16, channels_last: true, checkpoint_every: 500}

**The image model (phase 1)** is built *without* a temporal transformer (``model.temporal: false`` builds
``temporal_depth=0``): it has exactly the paper's image-model parameters, the optimiser holds no parameter that
never gets a gradient, and DDP needs no ``find_unused_parameters``. Phase 2 sets ``temporal: true``; its
initialisation from the phase-1 checkpoint loads everything phase 1 had and leaves the temporal transformer
freshly initialised (:func:`training.trainer.initialise_from_checkpoint`).

:func:`load_phase_config` raises :class:`ConfigError` naming the file and the dotted path of the bad field.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from int_model.config import VARIANTS, IntConfig, get_config

from .losses import LossWeights

DATASET_KINDS = ("synthetic", "database", "3dpw")
PRECISIONS = ("fp32", "bf16", "auto")
OPTIMISERS = ("adam", "sgd")


class ConfigError(ValueError):
    """A phase configuration that cannot be used; the message names the file and the field."""


# ----------------------------------------------------------------------------------------------- the schema
@dataclass(frozen=True)
class ModelSpec:
    """Which network to train.

    Attributes:
        variant: a named variant of :data:`int_model.config.VARIANTS` (``paper``, ``small``, ``tiny``).
        temporal: build the video model (with the temporal transformer); False builds the image model
            (``temporal_depth=0``).
        overrides: IntConfig fields replaced on top of the variant (e.g. ``drop_path_rate: 0.1``).
    """

    variant: str = "small"
    temporal: bool = True
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant: unknown model variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        if "variant" in self.overrides:
            raise ValueError("overrides: set the variant with model.variant, not in overrides")
        config = self.int_config()
        if self.temporal and not config.has_temporal:
            raise ValueError("temporal: true, but overrides set temporal_depth to 0")

    def int_config(self) -> IntConfig:
        """The network's config: the variant, the overrides, and ``temporal_depth=0`` for the image model."""
        overrides = dict(self.overrides)
        if not self.temporal:
            overrides["temporal_depth"] = 0
        try:
            return get_config(self.variant, **overrides)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"overrides: {exc}") from exc


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of a phase and its share of each batch.

    Attributes:
        kind: ``synthetic`` (shards written by ``python -m cli.synthetic``; generated into
            ``<data.root>/synthetic/<name>`` when missing), ``database`` (a VIBE / MAED / INT database file, see
            :data:`training.datasets.DATASETS`) or ``3dpw`` (the 3DPW sequence files).
        name: the synthetic dataset's folder name, or the database name (``h36m``, ``coco``, ...).
        weight: share of each training batch (weights are normalised over the phase's training datasets).
        split: ``train`` / ``val`` / ``test`` for the real datasets.
        clips, frames, seed, size, people: what to generate when a synthetic dataset is missing (or was
            generated with other settings): clips of ``frames`` frames of ``size`` x ``size`` pixels with ``people``
            people each, from ``seed``.
        workers: rendering processes for that generation.
        look: ``plain`` (the generator's defaults) or ``realistic`` (the camera and sensor effects of real footage:
            low resolution, motion blur, grey frames, people cut by the frame edge, detector-like boxes; see
            :data:`training.synthetic.config.REALISTIC`).
        backgrounds: a folder of photographs (under ``data.root`` when relative) the generator draws backgrounds
            from (``user_background_prob`` of the clips); none: procedural backgrounds only.
        path: the database file or the 3DPW folder (default ``<root>/database/<name>_<split>_db.pt`` and
            ``<root>/3dpw``); relative paths are under ``data.root``.
        image_root: the folder a database file's image names are relative to (default ``<root>/<name>``).
    """

    kind: Literal["synthetic", "database", "3dpw"]
    name: str
    weight: float = 1.0
    split: str = "train"
    clips: int | None = None
    frames: int | None = None
    seed: int = 0
    size: int = 224
    people: int = 1
    workers: int = 1
    look: Literal["plain", "realistic"] = "plain"
    backgrounds: str | None = None
    path: str | None = None
    image_root: str | None = None

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise ValueError(f"name: must be a plain folder or dataset name, got {self.name!r}")
        if not self.weight > 0:
            raise ValueError(f"weight: must be > 0, got {self.weight}")
        for name in ("clips", "frames", "size", "people", "workers"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name}: must be >= 1, got {value}")
        if self.kind != "synthetic" and (self.clips is not None or self.frames is not None):
            raise ValueError(f"clips: only synthetic datasets are generated, not {self.kind} ones")
        if self.look not in ("plain", "realistic"):
            raise ValueError(f"look: must be plain or realistic, got {self.look!r}")
        if self.kind != "synthetic" and (self.look != "plain" or self.backgrounds is not None):
            raise ValueError(f"look, backgrounds: only for synthetic datasets, not {self.kind} ones")
        if self.kind == "synthetic" and (self.path is not None or self.image_root is not None):
            raise ValueError("path: a synthetic dataset lives in <data.root>/synthetic/<name>")


@dataclass(frozen=True)
class DataConfig:
    """The phase's data.

    Attributes:
        train: training datasets (mixed by ``weight``: every batch holds a fixed number of clips of each).
        val: held-out datasets evaluated every ``train.eval_every`` epochs (clips of ``val_clip_len``).
        root: the data folder; relative to the working directory.
        clip_len: T for video datasets (1: single frames); image datasets always give T = 1.
        clip_stride: frames between the starts of consecutive training clips.
        val_clip_len: T of the evaluation clips (the temporal model runs on them; the image model per frame).
        batch_size: clips per process and step.
        val_batch_size: clips per evaluation batch (default: ``batch_size``).
        steps_per_epoch: optimisation steps per epoch (default: every training clip once, on average).
        val_max_clips: evaluate at most this many clips (the first ones; None: all).
        num_workers: DataLoader worker processes (0: load in the training process).
        prefetch_factor: batches each worker loads ahead.
        augment: training augmentation (flip, crop, colour, erasing) on or off.
    """

    train: tuple[DatasetSpec, ...]
    val: tuple[DatasetSpec, ...] = ()
    root: str = "data"
    clip_len: int = 1
    clip_stride: int = 8
    val_clip_len: int = 16
    batch_size: int = 8
    val_batch_size: int | None = None
    steps_per_epoch: int | None = None
    val_max_clips: int | None = None
    num_workers: int = 2
    prefetch_factor: int = 2
    augment: bool = True

    def __post_init__(self) -> None:
        if not self.train:
            raise ValueError("train: list at least one training dataset")
        positive = ("clip_len", "clip_stride", "val_clip_len", "batch_size", "val_batch_size", "steps_per_epoch",
                    "val_max_clips", "prefetch_factor")
        for name in positive:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name}: must be >= 1, got {value}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers: must be >= 0, got {self.num_workers}")
        for i, spec in enumerate(self.val):
            if spec.kind == "database" and spec.split == "train":
                raise ValueError(f"val[{i}].split: evaluation on the training split of {spec.name}")


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and step schedule: ``lr`` is multiplied by ``gamma`` at each milestone.

    Attributes:
        name: ``adam`` or ``sgd``.
        lr: initial learning rate.
        weight_decay: L2 penalty (the public INT code: 1e-5).
        momentum: SGD momentum (Adam ignores it).
        milestones: fractions of the run's total steps (epochs x steps per epoch), increasing, in (0, 1).
        gamma: factor applied at each milestone.
        grad_clip: clip the global gradient norm to this value (None: no clipping).
        warmup_steps: the learning rate rises linearly from lr / warmup_steps to lr over the first steps
            (0: none; useful when a transformer is trained from scratch at a higher rate).
    """

    name: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    momentum: float = 0.9
    milestones: tuple[float, ...] = (0.6, 0.9)
    gamma: float = 0.1
    grad_clip: float | None = None
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps: must be >= 0, got {self.warmup_steps}")
        if not self.lr > 0:
            raise ValueError(f"lr: must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay: must be >= 0, got {self.weight_decay}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum: must be in [0, 1), got {self.momentum}")
        if any(not 0 < m < 1 for m in self.milestones) or list(self.milestones) != sorted(set(self.milestones)):
            raise ValueError(f"milestones: fractions of the run, increasing, in (0, 1); got {list(self.milestones)}")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma: must be in (0, 1], got {self.gamma}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip: must be > 0, got {self.grad_clip}")

    def milestone_steps(self, total_steps: int) -> list[int]:
        """The steps at which the learning rate drops (each at least 1)."""
        return sorted({max(1, round(m * total_steps)) for m in self.milestones})


@dataclass(frozen=True)
class TrainConfig:
    """The loop's settings.

    Attributes:
        epochs: number of epochs.
        precision: ``fp32``, ``bf16`` (autocast; the body model and the loss stay fp32) or ``auto`` (bf16 where
            the device computes it natively: CUDA, or a CPU with AVX-512 BF16 / AMX; fp32 elsewhere).
        channels_last: convolutional backbone in channels-last memory layout.
        checkpoint_every: save ``last.pt`` every this many steps (and at every epoch end).
        eval_every: evaluate on ``data.val`` every this many epochs (0: never).
        max_nonfinite: stop after this many non-finite losses in a row (each such step is skipped).
        seed: seeds python, numpy and torch; the data order and augmentation derive from it too.
        deterministic: ``torch.use_deterministic_algorithms(True)`` (exact resume on CPU).
        num_threads: intra-op threads per process (None: the CPU count divided by the local processes).
        tensorboard: also write TensorBoard event files (when the ``tensorboard`` package is installed).
        freeze: parameter name prefixes kept fixed (e.g. ``[patch_embed., blocks.]`` trains the temporal
            transformer and the heads on a fixed image encoder, which is what makes phase 2 affordable on a CPU:
            no backward pass through the encoder). Each prefix must name at least one parameter.
    """

    epochs: int
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    channels_last: bool = False
    checkpoint_every: int = 500
    eval_every: int = 1
    max_nonfinite: int = 5
    seed: int = 0
    deterministic: bool = False
    num_threads: int | None = None
    tensorboard: bool = True
    freeze: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("epochs", "checkpoint_every", "max_nonfinite", "num_threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name}: must be >= 1, got {value}")
        if self.eval_every < 0:
            raise ValueError(f"eval_every: must be >= 0, got {self.eval_every}")


@dataclass(frozen=True)
class DebugConfig:
    """Fault injection for tests of the trainer's guards.

    Attributes:
        corrupt_steps: global steps (1-based) whose batch frames are replaced by NaN before the forward pass.
    """

    corrupt_steps: tuple[int, ...] = ()


@dataclass(frozen=True)
class PhaseConfig:
    """One training phase; see the module docstring for the file format."""

    name: str
    model: ModelSpec
    data: DataConfig
    train: TrainConfig
    optim: OptimConfig = OptimConfig()
    loss: LossWeights = LossWeights()
    init: str | None = None
    description: str = ""
    debug: DebugConfig = DebugConfig()

    def __post_init__(self) -> None:
        for term in dataclasses.fields(self.loss):
            value = getattr(self.loss, term.name)
            if value is not None and value < 0:
                raise ValueError(f"loss.{term.name}: must be >= 0, got {value}")
        if self.model.temporal and self.data.clip_len < 2:
            raise ValueError("model.temporal: the temporal transformer needs clips (data.clip_len >= 2); "
                             "train the image model with temporal: false")
        if self.loss.temporal > 0 and self.data.clip_len < 2:
            raise ValueError("loss.temporal: the temporal loss needs clips (data.clip_len >= 2)")

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (for checkpoints and ``config.yaml`` in the output folder)."""
        return _plain(dataclasses.asdict(self))


# ----------------------------------------------------------------------------------------------- the loader
def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    if isinstance(tp, type):
        return {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false"}.get(
            tp.__name__, tp.__name__)
    return str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str) -> Any:
    """``value`` (parsed YAML) as type ``tp``, or ConfigError naming ``where``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else
                          f"{where}: expected {' or '.join(_type_name(o) for o in options)}, got {value!r}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: must be one of {', '.join(map(str, choices))}; got {value!r}")
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, where)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        # YAML 1.1 reads "1e-4" (no dot) as a string; accept numeric strings for convenience.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config field type {tp!r} at {where}")  # a schema bug, not a user error


def build_dataclass(cls: type, data: Any, where: str = "") -> Any:
    """A frozen config dataclass from a parsed YAML mapping, strictly: unknown fields, missing fields, wrong
    types and values that the dataclass itself rejects raise :class:`ConfigError` naming the dotted field."""
    prefix = f"{where}." if where else ""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'the file'}: expected a mapping of fields, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known fields: {', '.join(known)}"
            raise ConfigError(f"{prefix}{key}: unknown field{hint}")
    kwargs = {}
    for name, spec in known.items():
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], f"{prefix}{name}")
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{prefix}{name}: required field is missing")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        message = str(exc)
        # The dataclasses' own checks start with the field name ("lr: must be > 0"); prefix the path.
        first = message.split(":", 1)[0]
        if first in known or first.split(".")[0].split("[")[0] in known or not where:
            raise ConfigError(f"{prefix}{message}") from exc
        raise ConfigError(f"{where}: {message}") from exc


def apply_overrides(data: dict[str, Any], assignments: Sequence[str]) -> dict[str, Any]:
    """A copy of ``data`` with dotted ``key=value`` assignments applied (values parsed as YAML), e.g.
    ``train.epochs=2`` or ``data.train[0].clips=8``."""
    out = yaml.safe_load(yaml.safe_dump(data))
    for assignment in assignments:
        if "=" not in assignment:
            raise ConfigError(f"override {assignment!r}: expected key=value")
        key, raw = assignment.split("=", 1)
        node: Any = out
        parts = key.strip().split(".")
        for i, part in enumerate(parts):
            name, _, index = part.partition("[")
            last = i == len(parts) - 1
            if index:
                node = node.setdefault(name, []) if isinstance(node, dict) else node
                position = int(index.rstrip("]"))
                if not isinstance(node, list) or position >= len(node):
                    raise ConfigError(f"override {assignment!r}: {name}[{position}] does not exist")
                if last:
                    node[position] = yaml.safe_load(raw)
                else:
                    node = node[position]
            elif last:
                node[name] = yaml.safe_load(raw)
            else:
                node = node.setdefault(name, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"override {assignment!r}: {name} is not a mapping")
    return out


def phase_config_from_dict(data: Mapping[str, Any], *, source: str = "<config>") -> PhaseConfig:
    """Validate a parsed phase file; errors read ``<source>: <dotted.field>: <problem>``."""
    try:
        return build_dataclass(PhaseConfig, data)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_phase_config(path: str | os.PathLike, *, overrides: Sequence[str] = ()) -> PhaseConfig:
    """Read and validate a phase YAML file, applying dotted ``key=value`` ``overrides`` first."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"phase config not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields at the top level")
    if overrides:
        data = apply_overrides(data, overrides)
    return phase_config_from_dict(data, source=str(path))
