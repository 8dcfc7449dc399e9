"""The data contract between datasets, augmentation, losses and the trainer.

A **sample** is one clip of ``T`` frames of one person (``T = 1`` for image datasets): a plain dict of numpy
arrays (datasets return numpy; :func:`collate_samples` turns a list of them into a batch of tensors with a
leading batch dimension ``B``). Every key is always present; a label a dataset does not have is zeros with a
zero mask, so that the losses can apply each term exactly where its label exists.

Coordinate conventions (SPIN / VIBE, the ones the public INT checkpoints were trained with):

* 3D: the camera frame, x right, y down, z forward, metres. An upright person facing the camera has a global
  orientation of about 180 degrees about x.
* 2D: normalised crop coordinates, ``u = (x - cx) / (side / 2)``: -1 is the left (top) edge of the crop and +1
  the right (bottom) edge, y down (see :mod:`training.augment` for the crop geometry).

Keys, with shapes for one sample (a batch adds a leading ``B``):

=====================  ===============  =========  ============================================================
key                    shape            dtype      meaning
=====================  ===============  =========  ============================================================
``frames``             (T, 3, H, W)     float32    RGB crops, :func:`int_model.crops.normalise_image`
``pose``               (T, 72)          float32    SMPL theta, axis-angle, global orientation first, camera frame
``betas``              (T, 10)          float32    SMPL shape
``joints3d``           (T, 24, 3)       float32    SMPL-24 joints, metres, camera frame
``joints3d_h36m``      (T, 17, 3)       float32    Human3.6M-17 joints, metres, camera frame
``joints2d``           (T, 24, 2)       float32    SMPL-24 joints in normalised crop coordinates
``has_pose``           (T,)             float32    1 where ``pose`` is a label
``has_betas``          (T,)             float32    1 where ``betas`` is a label
``joints3d_vis``       (T, 24)          float32    1 where a ``joints3d`` joint is a label
``joints3d_h36m_vis``  (T, 17)          float32    1 where a ``joints3d_h36m`` joint is a label
``joints2d_vis``       (T, 24)          float32    1 where a ``joints2d`` joint is a label (visible)
``valid``              (T,)             float32    0 for padding / unusable frames: every loss term skips them
``frame_index``        (T,)             int64      frame number inside the sequence
``dataset``            --               str        dataset name
``sequence``           --               str        sequence (video / actor) name; the image name for images
``period``             --               float      motion period in frames, NaN when unknown
=====================  ===============  =========  ============================================================

Masks are float 0/1. Datasets whose joint sets differ from SMPL-24 / H36M-17 map what corresponds into those
slots and mark the rest invisible (:mod:`training.datasets.joints`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import numpy as np
import torch

from int_model.constants import NUM_BETAS, NUM_H36M_JOINTS, NUM_JOINTS

POSE_DIM = NUM_JOINTS * 3

# Array fields: name -> (shape after the frame axis, dtype). "H" and "W" are the crop size.
ARRAY_FIELDS: dict[str, tuple[tuple[int | str, ...], np.dtype]] = {
    "frames": ((3, "H", "W"), np.dtype(np.float32)),
    "pose": ((POSE_DIM,), np.dtype(np.float32)),
    "betas": ((NUM_BETAS,), np.dtype(np.float32)),
    "joints3d": ((NUM_JOINTS, 3), np.dtype(np.float32)),
    "joints3d_h36m": ((NUM_H36M_JOINTS, 3), np.dtype(np.float32)),
    "joints2d": ((NUM_JOINTS, 2), np.dtype(np.float32)),
    "has_pose": ((), np.dtype(np.float32)),
    "has_betas": ((), np.dtype(np.float32)),
    "joints3d_vis": ((NUM_JOINTS,), np.dtype(np.float32)),
    "joints3d_h36m_vis": ((NUM_H36M_JOINTS,), np.dtype(np.float32)),
    "joints2d_vis": ((NUM_JOINTS,), np.dtype(np.float32)),
    "valid": ((), np.dtype(np.float32)),
    "frame_index": ((), np.dtype(np.int64)),
}
MASK_FIELDS = ("has_pose", "has_betas", "joints3d_vis", "joints3d_h36m_vis", "joints2d_vis", "valid")
# Which mask says where each label exists.
LABEL_MASKS: dict[str, str] = {
    "pose": "has_pose",
    "betas": "has_betas",
    "joints3d": "joints3d_vis",
    "joints3d_h36m": "joints3d_h36m_vis",
    "joints2d": "joints2d_vis",
}
META_FIELDS = ("dataset", "sequence", "period")


class Sample(TypedDict):
    """One clip of T frames; see the module docstring for shapes and conventions."""

    frames: np.ndarray
    pose: np.ndarray
    betas: np.ndarray
    joints3d: np.ndarray
    joints3d_h36m: np.ndarray
    joints2d: np.ndarray
    has_pose: np.ndarray
    has_betas: np.ndarray
    joints3d_vis: np.ndarray
    joints3d_h36m_vis: np.ndarray
    joints2d_vis: np.ndarray
    valid: np.ndarray
    frame_index: np.ndarray
    dataset: str
    sequence: str
    period: float


class SampleError(ValueError):
    """A sample or batch that breaks the contract; the message names the key and what was expected."""


def empty_sample(
    *,
    num_frames: int,
    img_size: int,
    dataset: str,
    sequence: str,
    frame_index: Sequence[int] | np.ndarray | None = None,
    period: float = math.nan,
) -> Sample:
    """A sample with black (zero after normalisation) frames, every label zero and every label mask zero.

    ``valid`` is one for every frame; ``frame_index`` defaults to ``0 .. T-1``.
    """
    if num_frames < 1:
        raise SampleError(f"num_frames must be >= 1, got {num_frames}")
    sample: dict[str, Any] = {}
    for key, (shape, dtype) in ARRAY_FIELDS.items():
        concrete = tuple(img_size if dim in ("H", "W") else dim for dim in shape)
        sample[key] = np.zeros((num_frames, *concrete), dtype=dtype)
    sample["valid"][:] = 1.0
    sample["frame_index"][:] = np.arange(num_frames) if frame_index is None else np.asarray(frame_index)
    sample.update(dataset=dataset, sequence=sequence, period=float(period))
    return sample  # type: ignore[return-value]


def _shape_of(value: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in value.shape)


def _dtype_name(value: Any) -> str:
    return str(value.dtype).removeprefix("torch.")


def validate_sample(sample: Mapping[str, Any], *, batched: bool = False) -> None:
    """Raise :class:`SampleError` if ``sample`` breaks the contract (missing key, wrong shape or dtype, masks
    that are not 0/1). Accepts numpy arrays or tensors; ``batched=True`` expects a leading batch dimension and
    lists for ``dataset`` / ``sequence`` and a (B,) ``period``.
    """
    missing = [k for k in (*ARRAY_FIELDS, *META_FIELDS) if k not in sample]
    if missing:
        raise SampleError(f"sample is missing keys: {', '.join(missing)}")
    frames = sample["frames"]
    lead = 2 if batched else 1
    if len(frames.shape) != lead + 3:
        raise SampleError(
            f"frames must be {'(B, T, 3, H, W)' if batched else '(T, 3, H, W)'}, got {_shape_of(frames)}"
        )
    leading = _shape_of(frames)[:lead]
    height, width = _shape_of(frames)[-2:]
    for key, (shape, dtype) in ARRAY_FIELDS.items():
        value = sample[key]
        if not isinstance(value, (np.ndarray, torch.Tensor)):
            raise SampleError(f"{key} must be a numpy array or a tensor, got {type(value).__name__}")
        expected = leading + tuple(height if d == "H" else width if d == "W" else d for d in shape)
        if _shape_of(value) != expected:
            names = ("B", "T")[-lead:] if batched else ("T",)
            template = ", ".join((*names, *(str(d) for d in shape)))
            raise SampleError(f"{key} must have shape ({template}) = {expected}, got {_shape_of(value)}")
        if _dtype_name(value) != dtype.name:
            raise SampleError(f"{key} must be {dtype.name}, got {_dtype_name(value)}")
    for key in MASK_FIELDS:
        value = sample[key]
        values = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        if not np.isin(values, (0.0, 1.0)).all():
            raise SampleError(f"{key} is a mask and must hold only 0 and 1")
    if batched:
        batch = leading[0]
        for key in ("dataset", "sequence"):
            if not isinstance(sample[key], (list, tuple)) or len(sample[key]) != batch:
                raise SampleError(f"batched {key} must be a list of {batch} strings")
        if _shape_of(sample["period"]) != (batch,):
            raise SampleError(f"batched period must have shape ({batch},), got {_shape_of(sample['period'])}")
    else:
        for key in ("dataset", "sequence"):
            if not isinstance(sample[key], str):
                raise SampleError(f"{key} must be a str, got {type(sample[key]).__name__}")
        if not isinstance(sample["period"], (float, int)):
            raise SampleError(f"period must be a float (NaN when unknown), got {type(sample['period']).__name__}")


Batch = dict[str, Any]
"""A collated batch: every array field as a tensor with a leading (B,), ``dataset`` / ``sequence`` as lists of
str, ``period`` as a (B,) float32 tensor."""


def collate_samples(samples: Sequence[Mapping[str, Any]]) -> Batch:
    """Stack samples of equal T and crop size into a batch (a ``collate_fn`` for ``DataLoader``).

    Raises :class:`SampleError` when the samples do not share T or the crop size, naming the first that differs.
    """
    if not samples:
        raise SampleError("cannot collate an empty list of samples")
    first = _shape_of(samples[0]["frames"])
    for i, sample in enumerate(samples):
        if _shape_of(sample["frames"]) != first:
            raise SampleError(
                f"sample {i} has frames {_shape_of(sample['frames'])}, sample 0 has {first}: a batch needs one clip "
                "length and one crop size"
            )
    batch: Batch = {
        key: torch.stack([torch.as_tensor(np.asarray(s[key]) if not isinstance(s[key], torch.Tensor) else s[key])
                          for s in samples])
        for key in ARRAY_FIELDS
    }
    batch["dataset"] = [str(s["dataset"]) for s in samples]
    batch["sequence"] = [str(s["sequence"]) for s in samples]
    batch["period"] = torch.tensor([float(s["period"]) for s in samples], dtype=torch.float32)
    return batch
