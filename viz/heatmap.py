"""Heat maps over pictures: a map in [0, 1] coloured and blended over an image (attention, attribution)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from analysis.attention import normalise_map

#: Heat-map opacity over the image where the map is at its maximum.
DEFAULT_OVERLAY_ALPHA = 0.6
#: OpenCV colour map for heat maps (perceptually ordered, dark = low).
DEFAULT_COLOURMAP = cv2.COLORMAP_INFERNO


def colourise(values: Any, *, colourmap: int = DEFAULT_COLOURMAP) -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8 RGB through an OpenCV colour map."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    bgr = cv2.applyColorMap(np.rint(v * 255.0).astype(np.uint8), colourmap)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def heatmap_overlay(image: np.ndarray, heat: Any, *, alpha: float = DEFAULT_OVERLAY_ALPHA,
                    colourmap: int = DEFAULT_COLOURMAP, normalise: bool = True) -> np.ndarray:
    """Blend a heat map over an image: (H, W, 3) uint8 and (H, W) -> a new (H, W, 3) uint8.

    The heat map (normalised to [0, 1] by its own range unless ``normalise`` is False) is coloured and laid
    over the image with opacity ``alpha * heat``, so cold regions show the image and hot ones the colour.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {img.shape} {img.dtype}")
    h = normalise_map(heat) if normalise else np.clip(np.asarray(heat, dtype=np.float64), 0.0, 1.0)
    if h.shape != img.shape[:2]:
        raise ValueError(f"heat map {h.shape} does not match the image {img.shape[:2]}")
    weight = (alpha * h)[..., None]
    blended = img.astype(np.float64) * (1.0 - weight) + colourise(h, colourmap=colourmap) * weight
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def marked_heatmap(image: np.ndarray, heat: Any, *, display_px: int, point: np.ndarray | None = None) -> np.ndarray:
    """A heat map over a small image (a crop), with a dot at ``point`` (pixels of ``image``; e.g. where the
    model puts the joint), enlarged to ``display_px`` square for reading."""
    out = heatmap_overlay(image, heat)
    if point is not None:
        x, y = np.round(np.asarray(point, dtype=np.float64)).astype(int)
        cv2.circle(out, (int(x), int(y)), max(2, image.shape[0] // 64), (0, 255, 255), -1, lineType=cv2.LINE_AA)
    return cv2.resize(out, (display_px, display_px), interpolation=cv2.INTER_LINEAR)
