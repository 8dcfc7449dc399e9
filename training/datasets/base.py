"""The shared base of the dataset readers: a table of labelled frames, clips over it, and a Dataset.

A reader turns a dataset's files into a :class:`FrameTable` (one row per frame of one person: image path, box,
labels in image pixels / metres). :class:`ClipDataset` cuts it into clips of T frames that never cross a
sequence boundary (:func:`split_into_clips`) and returns each as a sample of the contract in
:mod:`training.sample`: crops at the box (scale 1.3 in training, 1.1 in evaluation), 2D joints in normalised
crop coordinates, augmentation drawn deterministically from ``(seed, epoch, index)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import cv2
import numpy as np
from torch.utils.data import Dataset

from int_model.constants import NUM_BETAS, NUM_H36M_JOINTS, NUM_JOINTS
from int_model.crops import CropTransform, cut_crop, normalise_image

from ..augment import AugmentConfig, AugmentParams, apply_photometric, flip_sample, sample_augmentation
from ..sample import POSE_DIM, Sample, empty_sample

# A box of NaNs means "the whole image is the person crop" (datasets whose images are crops already).
FULL_IMAGE_BOX = np.full(4, np.nan, dtype=np.float32)


class DatasetFileError(ValueError):
    """A dataset file that cannot be read: damaged, of another kind, or a pickle naming forbidden globals."""


@dataclass
class FrameTable:
    """Labels of N frames, one row per frame of one person (numpy arrays, N first).

    Attributes:
        image_paths: (N,) str, each frame's image: a path, or a name the dataset's ``resolve_path`` turns into one.
        bbox: (N, 4) float32 (cx, cy, w, h) in pixels; a row of NaN means the whole image.
        sequence: (N,) str, the sequence (video and person) a frame belongs to.
        frame_index: (N,) int64, frame number inside its sequence.
        joints2d: (N, 24, 2) float32 SMPL-24 joints in image pixels; joints2d_vis (N, 24) float32 0/1.
        joints3d: (N, 24, 3) float32 metres; joints3d_vis (N, 24).
        joints3d_h36m: (N, 17, 3) float32 metres; joints3d_h36m_vis (N, 17).
        pose: (N, 72) float32 axis-angle, camera frame; has_pose (N,).
        betas: (N, 10) float32; has_betas (N,).
        valid: (N,) float32, 0 for a frame that must not be used (no image or no box).
    """

    image_paths: np.ndarray
    bbox: np.ndarray
    sequence: np.ndarray
    frame_index: np.ndarray
    joints2d: np.ndarray
    joints2d_vis: np.ndarray
    joints3d: np.ndarray
    joints3d_vis: np.ndarray
    joints3d_h36m: np.ndarray
    joints3d_h36m_vis: np.ndarray
    pose: np.ndarray
    has_pose: np.ndarray
    betas: np.ndarray
    has_betas: np.ndarray
    valid: np.ndarray

    @classmethod
    def empty(cls, num_frames: int) -> "FrameTable":
        """N rows with no labels (zeros, zero masks), valid frames, empty paths and full-image boxes."""
        n = num_frames

        def zeros(*shape: int) -> np.ndarray:
            return np.zeros((n, *shape), dtype=np.float32)

        return cls(
            image_paths=np.full(n, "", dtype=object), bbox=np.tile(FULL_IMAGE_BOX, (n, 1)),
            sequence=np.full(n, "", dtype=object), frame_index=np.arange(n, dtype=np.int64),
            joints2d=zeros(NUM_JOINTS, 2), joints2d_vis=zeros(NUM_JOINTS),
            joints3d=zeros(NUM_JOINTS, 3), joints3d_vis=zeros(NUM_JOINTS),
            joints3d_h36m=zeros(NUM_H36M_JOINTS, 3), joints3d_h36m_vis=zeros(NUM_H36M_JOINTS),
            pose=zeros(POSE_DIM), has_pose=zeros(), betas=zeros(NUM_BETAS), has_betas=zeros(),
            valid=np.ones(n, dtype=np.float32),
        )

    def __len__(self) -> int:
        return int(self.image_paths.shape[0])

    def check(self) -> None:
        """Raise ValueError if a column does not have N rows and its documented shape."""
        n = len(self)
        expected = {
            "image_paths": (n,), "bbox": (n, 4), "sequence": (n,), "frame_index": (n,),
            "joints2d": (n, NUM_JOINTS, 2), "joints2d_vis": (n, NUM_JOINTS),
            "joints3d": (n, NUM_JOINTS, 3), "joints3d_vis": (n, NUM_JOINTS),
            "joints3d_h36m": (n, NUM_H36M_JOINTS, 3), "joints3d_h36m_vis": (n, NUM_H36M_JOINTS),
            "pose": (n, POSE_DIM), "has_pose": (n,), "betas": (n, NUM_BETAS), "has_betas": (n,), "valid": (n,),
        }
        for name, shape in expected.items():
            value = getattr(self, name)
            if value.shape != shape:
                raise ValueError(f"FrameTable.{name} must have shape {shape}, got {value.shape}")

    @classmethod
    def concatenate(cls, tables: list["FrameTable"]) -> "FrameTable":
        """Rows of several tables, in order."""
        if not tables:
            return cls.empty(0)
        return cls(**{f.name: np.concatenate([getattr(t, f.name) for t in tables]) for f in fields(cls)})


@dataclass(frozen=True)
class ClipIndex:
    """Clips over a table: ``rows`` (C, T) int64 row numbers, ``padded`` (C, T) bool where a clip repeats its
    last frame because its sequence is shorter than T."""

    rows: np.ndarray
    padded: np.ndarray

    def __len__(self) -> int:
        return int(self.rows.shape[0])


def sequence_segments(sequence: np.ndarray, frame_index: np.ndarray) -> list[np.ndarray]:
    """Row numbers of each run of consecutive rows of one sequence with increasing frame numbers."""
    n = len(sequence)
    if n == 0:
        return []
    cut = np.flatnonzero((sequence[1:] != sequence[:-1]) | (np.diff(frame_index) <= 0)) + 1
    bounds = np.concatenate(([0], cut, [n]))
    return [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def split_into_clips(
    sequence: np.ndarray,
    frame_index: np.ndarray,
    *,
    clip_len: int,
    stride: int,
    pad_short: bool = True,
    cover_tail: bool = False,
) -> ClipIndex:
    """Clips of ``clip_len`` rows every ``stride`` rows, inside each sequence run (:func:`sequence_segments`).

    Args:
        pad_short: a run shorter than ``clip_len`` gives one clip padded by repeating its last row (padded frames
            are marked); otherwise it gives none.
        cover_tail: add a last clip ending at the run's end when the stride does not reach it (evaluation).
    """
    if clip_len < 1 or stride < 1:
        raise ValueError(f"clip_len and stride must be >= 1, got {clip_len} and {stride}")
    rows: list[np.ndarray] = []
    padded: list[np.ndarray] = []
    for run in sequence_segments(sequence, frame_index):
        if len(run) < clip_len:
            if pad_short:
                rows.append(np.concatenate((run, np.full(clip_len - len(run), run[-1]))))
                padded.append(np.arange(clip_len) >= len(run))
            continue
        starts = list(range(0, len(run) - clip_len + 1, stride))
        if cover_tail and starts[-1] != len(run) - clip_len:
            starts.append(len(run) - clip_len)
        for s in starts:
            rows.append(run[s:s + clip_len])
            padded.append(np.zeros(clip_len, dtype=bool))
    if not rows:
        return ClipIndex(rows=np.zeros((0, clip_len), dtype=np.int64), padded=np.zeros((0, clip_len), dtype=bool))
    return ClipIndex(rows=np.stack(rows).astype(np.int64), padded=np.stack(padded))


def read_rgb(path: str | Path, *, missing_hint: str) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB; FileNotFoundError naming the file and ``missing_hint``."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        state = "cannot be decoded" if Path(path).is_file() else "not found"
        raise FileNotFoundError(f"image {path} {state}. {missing_hint}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _has_box(bbox: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(bbox)) and bbox[2] > 0 and bbox[3] > 0)


class ClipDataset(Dataset):
    """A ``torch.utils.data.Dataset`` of clips over a :class:`FrameTable`; ``dataset[i]`` is a sample dict.

    Args:
        table: the frames and labels.
        name: dataset name written into each sample.
        clip_len: T; 1 for single frames.
        stride: rows between clip starts (default: ``clip_len``, no overlap).
        img_size: crop side in pixels.
        augment: augmentation (its ``crop_scale`` is the box scale); default: training augmentation if ``train``,
            else none at the evaluation scale.
        train: only chooses the default ``augment``.
        seed: augmentation of clip i in epoch e is drawn from ``numpy.random.default_rng((seed, e, i))``.
        missing_hint: appended to the error when an image file is missing (where the dataset comes from).
        pad_short, cover_tail: see :func:`split_into_clips`.
        resolve_path: maps the table's image names to files when an image is read (None: they are paths).
    """

    def __init__(
        self,
        *,
        table: FrameTable,
        name: str,
        clip_len: int = 1,
        stride: int | None = None,
        img_size: int = 224,
        augment: AugmentConfig | None = None,
        train: bool = True,
        seed: int = 0,
        missing_hint: str = "",
        pad_short: bool = True,
        cover_tail: bool = False,
        resolve_path: Callable[[str], str] | None = None,
    ) -> None:
        table.check()
        self.table = table
        self.name = name
        self.clip_len = clip_len
        self.img_size = img_size
        self.augment = augment if augment is not None else (AugmentConfig() if train else AugmentConfig.none())
        self.seed = seed
        self.epoch = 0
        self.missing_hint = missing_hint
        self.clips = split_into_clips(
            table.sequence, table.frame_index, clip_len=clip_len, stride=stride or clip_len,
            pad_short=pad_short, cover_tail=cover_tail,
        )
        self.resolve_path = resolve_path

    def read_image(self, name: str) -> np.ndarray:
        """The (H, W, 3) uint8 RGB image a table row names (resolved with ``resolve_path``)."""
        path = self.resolve_path(name) if self.resolve_path is not None else name
        return read_rgb(path, missing_hint=self.missing_hint)

    def __len__(self) -> int:
        return len(self.clips)

    def set_epoch(self, epoch: int) -> None:
        """Draw a different (still deterministic) augmentation per epoch."""
        self.epoch = int(epoch)

    def augmentation(self, index: int) -> AugmentParams:
        """The augmentation of clip ``index`` in the current epoch."""
        rng = np.random.default_rng((self.seed, self.epoch, int(index)))
        return sample_augmentation(self.augment, rng)

    def _transform(self, row: int, image: np.ndarray, params: AugmentParams) -> CropTransform:
        box = self.table.bbox[row]
        scale = self.augment.crop_scale * params.box_scale
        if _has_box(box):
            return CropTransform.from_centre_box(box, scale=scale, size=self.img_size, shift=params.box_shift)
        return CropTransform.around_image(image.shape, size=self.img_size, scale=params.box_scale,
                                          shift=params.box_shift)

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self):
            raise IndexError(f"clip {index} out of range for {self.name} with {len(self)} clips")
        rows, padded = self.clips.rows[index], self.clips.padded[index]
        t = self.table
        params = self.augmentation(index)
        sample = empty_sample(
            num_frames=self.clip_len, img_size=self.img_size, dataset=self.name, sequence=str(t.sequence[rows[0]]),
            frame_index=t.frame_index[rows], period=math.nan,
        )
        for i, row in enumerate(rows):
            image = self.read_image(str(t.image_paths[row]))
            transform = self._transform(row, image, params)
            crop = cut_crop(image, transform)
            sample["frames"][i] = normalise_image(apply_photometric(crop, params))
            sample["joints2d"][i] = transform.to_crop(t.joints2d[row])
        for key in ("joints2d_vis", "joints3d", "joints3d_vis", "joints3d_h36m", "joints3d_h36m_vis", "pose",
                    "has_pose", "betas", "has_betas"):
            sample[key][:] = getattr(t, key)[rows]
        sample["joints2d"] *= sample["joints2d_vis"][..., None]
        sample["valid"][:] = t.valid[rows] * ~padded
        if params.flip:
            sample = flip_sample(sample)  # type: ignore[assignment]
        return sample
