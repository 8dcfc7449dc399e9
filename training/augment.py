"""Augmentation of training clips: box jitter (at crop time), horizontal flip, colour jitter, random erasing.

Crops are cut by :mod:`int_model.crops` (the one crop geometry, shared with inference): normalised crop
coordinates put the square's edges at -1 and +1, so a horizontal flip of the crop is exactly ``u -> -u``.

**Augmentation** is drawn once per clip (:func:`sample_augmentation`, deterministic given a numpy Generator,
always consuming the same amount of randomness) and applied identically to every frame of the clip.
Flipping mirrors the labels too: 2D and 3D joints have x negated and left/right swapped
(``SMPL_FLIP_PERM``, ``H36M_FLIP_PERM``), and the pose swaps left/right joint rotations and negates the y and z
components of each axis-angle (a mirror about the y-z plane).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from int_model.constants import H36M_FLIP_PERM, NUM_JOINTS, SMPL_FLIP_PERM
from int_model.crops import INFERENCE_BBOX_SCALE, TRAIN_BBOX_SCALE

# Axis-angle components negated by a mirror about the y-z plane (x -> -x): y and z.
MIRROR_AXIS_ANGLE_SIGNS = np.array([1.0, -1.0, -1.0], dtype=np.float32)
# ITU-R BT.601 luma weights, for contrast and saturation jitter.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


# ------------------------------------------------------------------------------------------------------ flip
def flip_joints2d(joints: np.ndarray, perm: tuple[int, ...] | np.ndarray) -> np.ndarray:
    """Normalised 2D joints (..., J, 2) of a horizontally flipped crop: x negated, left/right swapped."""
    flipped = np.asarray(joints)[..., list(perm), :].copy()
    flipped[..., 0] *= -1
    return flipped


def flip_joints3d(joints: np.ndarray, perm: tuple[int, ...] | np.ndarray) -> np.ndarray:
    """Camera-frame 3D joints (..., J, 3) mirrored about the y-z plane: x negated, left/right swapped."""
    flipped = np.asarray(joints)[..., list(perm), :].copy()
    flipped[..., 0] *= -1
    return flipped


def flip_visibility(vis: np.ndarray, perm: tuple[int, ...] | np.ndarray) -> np.ndarray:
    """Per-joint masks (..., J) follow their joints through the left/right swap."""
    return np.asarray(vis)[..., list(perm)].copy()


def flip_pose(pose: np.ndarray) -> np.ndarray:
    """Mirror SMPL axis-angle poses (..., 72): swap left/right joint rotations, negate their y and z components.

    Exact for the global orientation too (mirroring R by diag(-1, 1, 1) on both sides negates y and z of its
    axis-angle), so the mirrored pose gives the x-mirrored body of a left/right symmetric body model.
    """
    pose = np.asarray(pose)
    joints = pose.reshape(*pose.shape[:-1], NUM_JOINTS, 3)[..., list(SMPL_FLIP_PERM), :]
    return (joints * MIRROR_AXIS_ANGLE_SIGNS.astype(pose.dtype)).reshape(pose.shape)


def flip_frames(frames: np.ndarray) -> np.ndarray:
    """Flip images horizontally: (T, 3, H, W) (or any (..., W)) along the last axis."""
    return np.ascontiguousarray(np.asarray(frames)[..., ::-1])


def flip_sample(sample: Mapping[str, Any]) -> dict[str, Any]:
    """A new sample (:mod:`training.sample`) whose frames are flipped horizontally, with every label mirrored."""
    out = dict(sample)
    out["frames"] = flip_frames(sample["frames"])
    out["joints2d"] = flip_joints2d(sample["joints2d"], SMPL_FLIP_PERM)
    out["joints2d_vis"] = flip_visibility(sample["joints2d_vis"], SMPL_FLIP_PERM)
    out["joints3d"] = flip_joints3d(sample["joints3d"], SMPL_FLIP_PERM)
    out["joints3d_vis"] = flip_visibility(sample["joints3d_vis"], SMPL_FLIP_PERM)
    out["joints3d_h36m"] = flip_joints3d(sample["joints3d_h36m"], H36M_FLIP_PERM)
    out["joints3d_h36m_vis"] = flip_visibility(sample["joints3d_h36m_vis"], H36M_FLIP_PERM)
    out["pose"] = flip_pose(sample["pose"])
    return out


# ------------------------------------------------------------------------------------------ random parameters
@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of each augmentation (defaults: training). :meth:`none` gives evaluation.

    Attributes:
        crop_scale: crop side over the box's larger side (1.3 train, 1.1 eval).
        flip_prob: probability of a horizontal flip.
        box_jitter_prob: probability of jittering the crop box (random crop / scale / translation).
        box_scale_range: multiplicative range of the crop side when jittered.
        box_shift: maximum shift of the crop centre, a fraction of the crop side, each axis.
        colour_prob: probability of colour jitter.
        brightness, contrast, saturation: each factor is uniform in [1 - x, 1 + x].
        erase_prob: probability of random erasing (one rectangle filled with a random colour).
        erase_area: range of the erased area, a fraction of the crop.
        erase_aspect: range of the erased rectangle's height / width (sampled log-uniformly).
    """

    crop_scale: float = TRAIN_BBOX_SCALE
    flip_prob: float = 0.5
    box_jitter_prob: float = 0.5
    box_scale_range: tuple[float, float] = (0.8, 1.2)
    box_shift: float = 0.1
    colour_prob: float = 0.5
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    erase_prob: float = 0.3
    erase_area: tuple[float, float] = (0.02, 0.2)
    erase_aspect: tuple[float, float] = (0.3, 3.3)

    @classmethod
    def none(cls, *, crop_scale: float = INFERENCE_BBOX_SCALE) -> "AugmentConfig":
        """No augmentation, crops at the evaluation scale."""
        return cls(crop_scale=crop_scale, flip_prob=0.0, box_jitter_prob=0.0, colour_prob=0.0, erase_prob=0.0)


@dataclass(frozen=True)
class AugmentParams:
    """The augmentation drawn for one clip.

    Attributes:
        flip: flip horizontally.
        box_scale: multiplies the crop side.
        box_shift: (dx, dy) shift of the crop centre, fractions of the crop side.
        colour: (brightness, contrast, saturation) factors, or None.
        erase: (x0, y0, w, h) of the erased rectangle as fractions of the crop, or None.
        erase_colour: (r, g, b) in [0, 1] used to fill it.
    """

    flip: bool = False
    box_scale: float = 1.0
    box_shift: tuple[float, float] = (0.0, 0.0)
    colour: tuple[float, float, float] | None = None
    erase: tuple[float, float, float, float] | None = None
    erase_colour: tuple[float, float, float] = (0.0, 0.0, 0.0)


def sample_augmentation(config: AugmentConfig, rng: np.random.Generator) -> AugmentParams:
    """Draw one clip's augmentation. Always consumes the same 17 uniforms, whichever options fire."""
    u = rng.random(17)
    jitter = u[1] < config.box_jitter_prob
    lo, hi = config.box_scale_range
    colour = u[5] < config.colour_prob
    erase = u[9] < config.erase_prob
    area = config.erase_area[0] + u[10] * (config.erase_area[1] - config.erase_area[0])
    log_lo, log_hi = np.log(config.erase_aspect[0]), np.log(config.erase_aspect[1])
    aspect = float(np.exp(log_lo + u[11] * (log_hi - log_lo)))
    height, width = min(np.sqrt(area * aspect), 1.0), min(np.sqrt(area / aspect), 1.0)

    def signed(x: float, amount: float) -> float:
        return float((2.0 * x - 1.0) * amount)

    return AugmentParams(
        flip=bool(u[0] < config.flip_prob),
        box_scale=float(lo + u[2] * (hi - lo)) if jitter else 1.0,
        box_shift=(signed(u[3], config.box_shift), signed(u[4], config.box_shift)) if jitter else (0.0, 0.0),
        colour=(
            1.0 + signed(u[6], config.brightness),
            1.0 + signed(u[7], config.contrast),
            1.0 + signed(u[8], config.saturation),
        ) if colour else None,
        erase=(float(u[12] * (1.0 - width)), float(u[13] * (1.0 - height)), float(width), float(height))
        if erase else None,
        erase_colour=(float(u[14]), float(u[15]), float(u[16])) if erase else (0.0, 0.0, 0.0),
    )


# ------------------------------------------------------------------------------------------------ photometric
def _as_float_image(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 or float -> float32 in [0, 1]."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return image.astype(np.float32, copy=True)


def _restore_dtype(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.uint8:
        return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.clip(image, 0.0, 1.0).astype(dtype)


def colour_jitter(image: np.ndarray, factors: tuple[float, float, float]) -> np.ndarray:
    """Brightness, contrast, saturation factors applied to an RGB image (H, W, 3), uint8 or float in [0, 1];
    returns the same shape and dtype."""
    brightness, contrast, saturation = factors
    x = _as_float_image(image) * brightness
    grey = x @ LUMA_WEIGHTS
    x = (x - grey.mean()) * contrast + grey.mean()
    grey = (x @ LUMA_WEIGHTS)[..., None]
    x = grey + (x - grey) * saturation
    return _restore_dtype(x, image.dtype)


def random_erase(
    image: np.ndarray, rect: tuple[float, float, float, float], colour: tuple[float, float, float]
) -> np.ndarray:
    """Fill ``rect`` = (x0, y0, w, h) (fractions of the image) with ``colour`` (RGB in [0, 1]); returns a new
    image of the same shape and dtype."""
    h_img, w_img = image.shape[:2]
    x0, y0, w, h = rect
    c0, r0 = int(round(x0 * w_img)), int(round(y0 * h_img))
    c1, r1 = min(w_img, c0 + max(1, int(round(w * w_img)))), min(h_img, r0 + max(1, int(round(h * h_img))))
    out = image.copy()
    fill = np.asarray(colour, dtype=np.float32)
    out[r0:r1, c0:c1] = (fill * 255.0 + 0.5).astype(np.uint8) if image.dtype == np.uint8 else fill.astype(image.dtype)
    return out


def apply_photometric(image: np.ndarray, params: AugmentParams) -> np.ndarray:
    """Colour jitter then random erasing of one crop (H, W, 3), as ``params`` say."""
    if params.colour is not None:
        image = colour_jitter(image, params.colour)
    if params.erase is not None:
        image = random_erase(image, params.erase, params.erase_colour)
    return image
