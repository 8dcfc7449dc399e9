"""Helpers for the dataset fixtures: tiny images with bright marks where the labelled joints are."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

MARK_HALF = 2  # marks are (2 * MARK_HALF + 1) pixels wide
BACKGROUND = 20


def write_marked_image(path: Path, *, size: tuple[int, int], points: np.ndarray) -> None:
    """A dark (H, W) = size image with white squares centred on ``points`` (K, 2) pixels, written with cv2."""
    height, width = size
    image = np.full((height, width, 3), BACKGROUND, np.uint8)
    for x, y in np.round(points).astype(int):
        image[max(0, y - MARK_HALF): y + MARK_HALF + 1, max(0, x - MARK_HALF): x + MARK_HALF + 1] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


def brightness_at(frame_rgb: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Mean brightness of an (S, S, 3) crop at normalised coordinates uv (K, 2)."""
    size = frame_rgb.shape[0]
    cols_rows = np.clip(np.round((uv + 1.0) * size / 2.0 - 0.5).astype(int), 0, size - 1)
    return np.array([frame_rgb[r, c].mean() for c, r in cols_rows])


@pytest.fixture
def marked_image_writer():
    return write_marked_image


@pytest.fixture
def crop_brightness():
    return brightness_at
