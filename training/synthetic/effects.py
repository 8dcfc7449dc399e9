"""What a real camera does to a frame that a clean render lacks: low resolution, motion blur, grey frames.

:func:`sample_effects` draws one :class:`ImageEffects` per clip (all off with :class:`SyntheticConfig`'s
defaults, which keeps the default data as it was); :func:`apply_effects` applies them to a frame, before the
sensor noise. Real footage of small people is mostly *low resolution* (a 60-pixel walker upscaled to the
network's crop), so the frame is shrunk and enlarged again; *motion blur* is a line kernel at a random angle
(camera shake, or a person walking past a slow shutter); *grey* frames are the luma of the colour frame, as
security cameras and old footage give them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .config import SyntheticConfig

__all__ = ["NO_EFFECTS", "ImageEffects", "apply_effects", "sample_effects"]


@dataclass(frozen=True)
class ImageEffects:
    """One clip's effects. low_res: shrink factor (1 = none); blur_px: motion blur length in pixels (0 = none),
    along ``blur_angle_deg``; grey: luma only."""

    low_res: float = 1.0
    blur_px: float = 0.0
    blur_angle_deg: float = 0.0
    grey: bool = False

    @property
    def any(self) -> bool:
        return self.low_res < 1.0 or self.blur_px >= 1.0 or self.grey


NO_EFFECTS = ImageEffects()


def sample_effects(rng: np.random.Generator, config: SyntheticConfig) -> ImageEffects:
    """The effects of one clip (each on with its probability in ``config``)."""
    low_res = float(rng.uniform(*config.low_res_scale)) if rng.uniform() < config.low_res_prob else 1.0
    blurred = rng.uniform() < config.motion_blur_prob
    blur = float(rng.uniform(*config.motion_blur_px)) if blurred else 0.0
    angle = float(rng.uniform(0.0, 180.0)) if blurred else 0.0
    grey = bool(rng.uniform() < config.grey_prob)
    return ImageEffects(low_res=low_res, blur_px=blur, blur_angle_deg=angle, grey=grey)


def _line_kernel(length: float, angle_deg: float) -> np.ndarray:
    size = int(math.ceil(length)) | 1
    kernel = np.zeros((size, size), np.float32)
    centre = size // 2
    dx, dy = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    for s in np.linspace(-(length - 1) / 2, (length - 1) / 2, max(int(round(length * 2)), 2)):
        kernel[int(round(centre + s * dy)), int(round(centre + s * dx))] += 1.0
    return kernel / kernel.sum()


def apply_effects(image: np.ndarray, effects: ImageEffects) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] -> the same with ``effects`` applied (a new array; the input is not changed)."""
    if not effects.any:
        return image
    out = np.ascontiguousarray(image, dtype=np.float32)
    height, width = out.shape[:2]
    if effects.low_res < 1.0:
        small = (max(1, round(width * effects.low_res)), max(1, round(height * effects.low_res)))
        out = cv2.resize(cv2.resize(out, small, interpolation=cv2.INTER_AREA), (width, height),
                         interpolation=cv2.INTER_LINEAR)
    if effects.blur_px >= 1.0:
        out = cv2.filter2D(out, -1, _line_kernel(effects.blur_px, effects.blur_angle_deg),
                           borderType=cv2.BORDER_REFLECT)
    if effects.grey:
        luma = out @ np.array([0.299, 0.587, 0.114], np.float32)
        out = np.repeat(luma[..., None], 3, axis=2)
    return out
