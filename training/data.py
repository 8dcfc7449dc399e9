"""Datasets of a phase: building them from the config, mixing them into batches, and loading them.

* :func:`build_dataset` turns a :class:`~training.phases.DatasetSpec` into a ``Dataset`` of samples
  (:mod:`training.sample`): synthetic shards (generated and cached under ``<root>/synthetic/<name>`` when
  missing), the VIBE / MAED / INT database files, or 3DPW.
* :class:`MixBatchSampler` gives every batch a fixed number of clips of each training dataset (the mixing
  ratios), in an order that is a pure function of ``(seed, epoch)``; a process of a DDP run takes its own
  rank's batches (the role of ``DistributedSampler``, which can neither mix nor resume mid-epoch). Starting an
  epoch at batch ``i`` reproduces the rest of that epoch exactly: the data position of a resumed run.
* :func:`collate_groups` batches samples by clip length: a phase-2 batch holds clips of T frames and single
  images (T = 1), which go through the network as two groups.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler, Subset

from .augment import AugmentConfig
from .phases import DataConfig, DatasetSpec
from .sample import Batch, collate_samples

log = logging.getLogger(__name__)

SYNTHETIC_DIR = "synthetic"
DATABASE_DIR = "database"
THREEDPW_DIR = "3dpw"

# (dataset number, clip number, epoch): what the batch sampler hands to the workers for one sample.
SampleKey = tuple[int, int, int]


# ------------------------------------------------------------------------------------------------- datasets
def synthetic_path(spec: DatasetSpec, root: Path) -> Path:
    return root / SYNTHETIC_DIR / spec.name


def ensure_synthetic(spec: DatasetSpec, *, root: Path, progress: bool = True) -> Path:
    """The synthetic dataset's folder, generated first when it is missing or was generated with other settings
    (the generator keeps complete shards and reuses a dataset whose manifest matches: a cache)."""
    from .synthetic import SyntheticConfig, ensure_dataset, read_manifest

    folder = synthetic_path(spec, root)
    if spec.clips is None or spec.frames is None:
        read_manifest(folder)  # FileNotFoundError naming the folder and the command that generates it
        return folder
    started = time.perf_counter()
    config = SyntheticConfig(image_size=spec.size)
    manifest = ensure_dataset(out_dir=folder, num_clips=spec.clips, num_frames=spec.frames, seed=spec.seed,
                              num_people=spec.people, config=config.realistic() if spec.look == "realistic" else config,
                              backgrounds=None if spec.backgrounds is None else _under(root, spec.backgrounds, root),
                              workers=spec.workers, progress=progress)
    if time.perf_counter() - started > 1.0 and manifest["run"]["clips_rendered"]:  # rendered now, not cached
        log.info("generated synthetic dataset %s: %d clips x %d frames at %d px in %s (%s frames/s)", spec.name,
                 spec.clips, spec.frames, spec.size, folder, manifest["run"]["frames_per_second"])
    return folder


def _under(root: Path, path: str | None, default: Path) -> Path:
    if path is None:
        return default
    return Path(path) if Path(path).is_absolute() else root / path


def is_image_dataset(spec: DatasetSpec) -> bool:
    """Whether the dataset holds single images (always T = 1): the image databases (COCO, MPII, LSPET)."""
    if spec.kind != "database":
        return False
    from .datasets import DATASETS

    return spec.name in DATASETS and not DATASETS[spec.name].video


def build_dataset(
    spec: DatasetSpec,
    *,
    root: Path,
    clip_len: int,
    stride: int,
    img_size: int,
    train: bool,
    augment: bool,
    seed: int,
) -> Dataset:
    """A dataset of samples of ``clip_len`` frames (1 for image datasets) every ``stride`` frames.

    ``train`` chooses the crop scale (1.3 / 1.1) and, with ``augment``, the training augmentation; evaluation
    datasets cover each sequence with non-overlapping clips.
    """
    if is_image_dataset(spec):
        clip_len, stride = 1, 1
    aug = (AugmentConfig() if augment else AugmentConfig.none(crop_scale=AugmentConfig().crop_scale)) if train \
        else AugmentConfig.none()
    if spec.kind == "synthetic":
        from .synthetic import SyntheticDataset

        return SyntheticDataset(synthetic_path(spec, root), clip_len=clip_len, stride=stride, img_size=img_size,
                                train=train, augment=aug, seed=seed, name=spec.name)
    if spec.kind == "database":
        from .datasets import DatabaseDataset

        path = _under(root, spec.path, root / DATABASE_DIR / f"{spec.name}_{spec.split}_db.pt")
        image_root = _under(root, spec.image_root, root / spec.name)
        if not path.is_file():
            from .datasets.database import get_spec

            raise FileNotFoundError(f"database file not found: {path}. {get_spec(spec.name).where_to_get()}")
        return DatabaseDataset(spec.name, path=path, image_root=image_root, split=spec.split, clip_len=clip_len,
                               stride=stride, img_size=img_size, train=train, augment=aug, seed=seed)
    if spec.kind == "3dpw":
        from .datasets import ThreeDPW

        folder = _under(root, spec.path, root / THREEDPW_DIR)
        return ThreeDPW(folder, split=spec.split, clip_len=clip_len, stride=stride, img_size=img_size,
                        train=train, augment=aug, seed=seed)
    raise ValueError(f"unknown dataset kind {spec.kind!r}")


def prepare_data(config: DataConfig, *, root: Path, progress: bool = True) -> None:
    """Generate every missing synthetic dataset the phase names (one process does this before the others read)."""
    for spec in (*config.train, *config.val):
        if spec.kind == "synthetic":
            ensure_synthetic(spec, root=root, progress=progress)


# -------------------------------------------------------------------------------------------------- mixing
def batch_counts(weights: Sequence[float], batch_size: int, *, names: Sequence[str] | None = None) -> list[int]:
    """Clips of each dataset in a batch of ``batch_size``: the weights' shares, rounded by largest remainder.

    Raises ValueError when a dataset would get no clip at all (its weight is too small for the batch).
    """
    total = float(sum(weights))
    exact = [w / total * batch_size for w in weights]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: batch_size - sum(counts)]:
        counts[i] += 1
    for i, c in enumerate(counts):
        if c == 0:
            name = names[i] if names else f"dataset {i}"
            raise ValueError(f"{name} gets no clip in a batch of {batch_size} with weights {list(weights)}: "
                             "raise its weight or the batch size")
    return counts


class MixBatchSampler(Sampler[list[SampleKey]]):
    """Batches of fixed composition (``counts[k]`` clips of dataset k), deterministic per ``(seed, epoch)``.

    Dataset k's clips are read in a stream of permutations drawn from ``(seed, epoch, k, cycle)``; step s of rank
    r takes stream positions ``[(s * world_size + r) * counts[k], ... + counts[k])``. Each item is a
    :data:`SampleKey` ``(k, clip, epoch)`` so that workers (also persistent ones) know the epoch's augmentation.

    Args:
        sizes: number of clips of each dataset.
        counts: clips of each dataset per batch of this process.
        steps_per_epoch: batches per epoch.
        seed: the run's seed.
        rank, world_size: this process among the DDP processes.
    """

    def __init__(self, *, sizes: Sequence[int], counts: Sequence[int], steps_per_epoch: int, seed: int,
                 rank: int = 0, world_size: int = 1) -> None:
        if len(sizes) != len(counts):
            raise ValueError("sizes and counts differ in length")
        empty = [k for k, n in enumerate(sizes) if n < 1]
        if empty:
            raise ValueError(f"dataset(s) {empty} hold no clips")
        self.sizes, self.counts = list(sizes), list(counts)
        self.steps_per_epoch, self.seed = steps_per_epoch, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start_step = 0, 0
        self._perms: dict[tuple[int, int], np.ndarray] = {}

    def set_epoch(self, epoch: int, *, start_step: int = 0) -> None:
        """Iterate epoch ``epoch`` from its batch ``start_step`` on."""
        if not 0 <= start_step <= self.steps_per_epoch:
            raise ValueError(f"start_step {start_step} is outside the epoch's {self.steps_per_epoch} steps")
        if epoch != self.epoch:
            self._perms.clear()
        self.epoch, self.start_step = epoch, start_step

    def _clip(self, k: int, position: int) -> int:
        cycle, offset = divmod(position, self.sizes[k])
        perm = self._perms.get((k, cycle))
        if perm is None:
            perm = np.random.default_rng((self.seed, self.epoch, k, cycle)).permutation(self.sizes[k])
            self._perms[(k, cycle)] = perm
        return int(perm[offset])

    def batch(self, step: int) -> list[SampleKey]:
        """The keys of this rank's batch ``step`` of the current epoch."""
        keys: list[SampleKey] = []
        for k, count in enumerate(self.counts):
            first = (step * self.world_size + self.rank) * count
            keys.extend((k, self._clip(k, p), self.epoch) for p in range(first, first + count))
        return keys

    def __len__(self) -> int:
        return self.steps_per_epoch - self.start_step

    def __iter__(self):
        for step in range(self.start_step, self.steps_per_epoch):
            yield self.batch(step)


class MixedDataset(Dataset):
    """Several datasets behind one index: ``mixed[(k, clip, epoch)]`` is ``datasets[k][clip]`` with epoch
    ``epoch``'s augmentation (datasets with ``set_epoch`` draw it per epoch)."""

    def __init__(self, datasets: Sequence[Dataset]) -> None:
        self.datasets = list(datasets)

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)

    def __getitem__(self, key: SampleKey) -> dict[str, Any]:
        k, clip, epoch = key
        dataset = self.datasets[k]
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        return dataset[clip]


def to_channels_last(frames: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, H, W) frames laid out so that their (B*T, 3, H, W) view is channels-last (same values)."""
    return frames.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)


@dataclass(frozen=True)
class GroupCollate:
    """``collate_fn``: samples -> a list of batches, one per clip length (in order of first appearance).

    ``channels_last`` lays the frames out for a channels-last backbone (done in the worker, not the loop)."""

    channels_last: bool = False

    def __call__(self, samples: Sequence[dict[str, Any]]) -> list[Batch]:
        groups: dict[int, list[dict[str, Any]]] = {}
        for sample in samples:
            groups.setdefault(int(sample["frames"].shape[0]), []).append(sample)
        batches = [collate_samples(group) for group in groups.values()]
        if self.channels_last:
            for batch in batches:
                batch["frames"] = to_channels_last(batch["frames"])
        return batches


def collate_groups(samples: Sequence[dict[str, Any]]) -> list[Batch]:
    """Samples -> one batch per clip length (see :class:`GroupCollate`)."""
    return GroupCollate()(samples)


def _worker_init(_: int) -> None:
    # Ctrl-C (and a SIGTERM sent to the process group, e.g. by a job manager) reaches every process; the training
    # process decides when to stop (after the step, with a checkpoint), so the workers ignore both instead of
    # dying mid-step. They still end with it: the loader shuts them down, and they exit when their parent dies.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


# ------------------------------------------------------------------------------------------------- loaders
@dataclass
class TrainData:
    """The training loader and its sampler (``sampler.set_epoch`` before each epoch's ``iter(loader)``)."""

    loader: DataLoader
    sampler: MixBatchSampler
    names: list[str]
    counts: list[int]
    sizes: list[int]

    @property
    def steps_per_epoch(self) -> int:
        return self.sampler.steps_per_epoch


def _loader_options(*, workers: int, prefetch_factor: int, pin_memory: bool, seed: int) -> dict[str, Any]:
    """Workers that stay alive across epochs and load ahead; their seeds never consume the global torch RNG."""
    options: dict[str, Any] = {"num_workers": workers, "pin_memory": pin_memory,
                               "generator": torch.Generator().manual_seed(seed)}
    if workers > 0:
        options.update(persistent_workers=True, prefetch_factor=prefetch_factor, worker_init_fn=_worker_init)
    return options


def build_train_data(
    config: DataConfig,
    *,
    root: Path,
    img_size: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    channels_last: bool = False,
    pin_memory: bool = False,
    datasets: Sequence[Dataset] | None = None,
) -> TrainData:
    """The mixed training loader of a phase (``datasets`` replaces the built ones, e.g. in benchmarks)."""
    if datasets is None:
        datasets = [
            build_dataset(spec, root=root, clip_len=config.clip_len, stride=config.clip_stride, img_size=img_size,
                          train=True, augment=config.augment, seed=seed)
            for spec in config.train
        ]
    names = [f"data.train[{i}] ({spec.kind} {spec.name})" for i, spec in enumerate(config.train)]
    sizes = [len(d) for d in datasets]
    for name, size in zip(names, sizes):
        if size == 0:
            raise ValueError(f"{name} holds no clips of {config.clip_len} frames")
    counts = batch_counts([spec.weight for spec in config.train], config.batch_size, names=names)
    steps = config.steps_per_epoch or max(1, sum(sizes) // (config.batch_size * world_size))
    sampler = MixBatchSampler(sizes=sizes, counts=counts, steps_per_epoch=steps, seed=seed, rank=rank,
                              world_size=world_size)
    loader = DataLoader(
        MixedDataset(datasets), batch_sampler=sampler, collate_fn=GroupCollate(channels_last=channels_last),
        **_loader_options(workers=config.num_workers, prefetch_factor=config.prefetch_factor, pin_memory=pin_memory,
                          seed=seed),
    )
    return TrainData(loader=loader, sampler=sampler, names=names, counts=counts, sizes=sizes)


def build_val_loader(config: DataConfig, *, root: Path, img_size: int, seed: int = 0,
                     channels_last: bool = False, num_workers: int | None = None) -> DataLoader | None:
    """Evaluation clips of ``val_clip_len`` frames, non-overlapping, in a fixed order; None without val data."""
    if not config.val:
        return None
    datasets = [
        build_dataset(spec, root=root, clip_len=config.val_clip_len, stride=config.val_clip_len,
                      img_size=img_size, train=False, augment=False, seed=seed)
        for spec in config.val
    ]
    dataset: Dataset = ConcatDataset(datasets)
    if config.val_max_clips is not None and len(dataset) > config.val_max_clips:
        dataset = Subset(dataset, range(config.val_max_clips))
    workers = config.num_workers if num_workers is None else num_workers
    return DataLoader(dataset, batch_size=config.val_batch_size or config.batch_size, shuffle=False,
                      collate_fn=GroupCollate(channels_last=channels_last),
                      **_loader_options(workers=workers, prefetch_factor=config.prefetch_factor, pin_memory=False,
                                        seed=seed))
