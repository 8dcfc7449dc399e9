"""Images inside figures: RGB checks, PNG / JPEG data URIs, signed overlays and labelled montages.

Crops, frames and thumbnails are embedded in figures as data URIs, which keeps the HTML small.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import cv2
import numpy as np
import plotly.graph_objects as go

__all__ = ["check_rgb", "decode_data_uri", "image_data_uri", "image_trace", "labelled_montage", "signed_overlay"]

#: Positive / negative attribution colours (RGB) in :func:`signed_overlay`.
POSITIVE_RGB = (220, 40, 40)
NEGATIVE_RGB = (40, 90, 230)
#: Opacity of an attribution overlay where |attribution| is largest.
SIGNED_ALPHA = 0.8
#: Percentile of |attribution| mapped to full colour (robust to a few extreme pixels).
ATTRIBUTION_PERCENTILE = 99.0
#: JPEG quality of embedded thumbnails.
JPEG_QUALITY = 85


def check_rgb(image: np.ndarray) -> np.ndarray:
    """The image as an array, if it is (H, W, 3) uint8 RGB; a ValueError otherwise."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {img.shape} {img.dtype}")
    return img


def image_data_uri(image: np.ndarray, *, fmt: str = "png") -> str:
    """(H, W, 3) uint8 RGB -> a ``data:image/...;base64,`` URI (PNG, or JPEG for ``fmt="jpeg"``)."""
    img = check_rgb(image)
    bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if fmt == "png":
        ok, buf = cv2.imencode(".png", bgr)
    elif fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    else:
        raise ValueError(f"fmt must be 'png' or 'jpeg', got {fmt!r}")
    if not ok:
        raise ValueError("could not encode the image")
    return f"data:image/{fmt};base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def decode_data_uri(uri: str) -> np.ndarray:
    """A ``data:image/...;base64,`` URI -> (H, W, 3) uint8 RGB."""
    head, _, payload = uri.partition(",")
    if not head.startswith("data:image/") or ";base64" not in head:
        raise ValueError("not a base64 image data URI")
    buf = np.frombuffer(base64.b64decode(payload), dtype=np.uint8)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("the data URI does not hold a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def image_trace(image: np.ndarray, *, name: str = "", hover: bool = False) -> go.Image:
    """An image trace of an (H, W, 3) uint8 RGB image, embedded as a PNG data URI; no hover unless ``hover``."""
    return go.Image(source=image_data_uri(image), name=name, hoverinfo="skip" if not hover else None)


def signed_overlay(image: np.ndarray, values: np.ndarray, *, alpha: float = SIGNED_ALPHA,
                   percentile: float = ATTRIBUTION_PERCENTILE) -> np.ndarray:
    """Signed values over an image: red where positive, blue where negative, opacity by |value|.

    Args:
        image: (H, W, 3) uint8.
        values: (H, W) signed (e.g. an attribution); scaled by the ``percentile`` of |values|.

    Returns:
        A new (H, W, 3) uint8 image.
    """
    img = check_rgb(image)
    v = np.asarray(values, dtype=np.float64)
    if v.shape != img.shape[:2]:
        raise ValueError(f"values {v.shape} do not match the image {img.shape[:2]}")
    scale = float(np.percentile(np.abs(v), percentile)) if v.size else 0.0
    strength = np.clip(np.abs(v) / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(v)
    colour = np.where((v >= 0)[..., None], np.array(POSITIVE_RGB, float), np.array(NEGATIVE_RGB, float))
    grey = img.astype(np.float64).mean(axis=2, keepdims=True) * np.ones(3)  # the image in grey, for contrast
    weight = (alpha * strength)[..., None]
    return np.clip(np.rint(grey * (1.0 - weight) + colour * weight), 0, 255).astype(np.uint8)


def labelled_montage(images: Sequence[Sequence[np.ndarray]], *, row_labels: Sequence[str] = (),
                     column_labels: Sequence[str] = (), background: tuple[int, int, int] = (255, 255, 255),
                     label_px: int = 28) -> np.ndarray:
    """A grid of equally sized images with row labels on the left and column labels on top.

    Args:
        images: rows of (H, W, 3) uint8 images, all the same size.
        row_labels, column_labels: text per row / column (may be empty).
        background: RGB of the margins.
        label_px: height of the label band in pixels.

    Returns:
        (rows * H + top, cols * W + left, 3) uint8.
    """
    rows = [[check_rgb(img) for img in row] for row in images]
    if not rows or not rows[0]:
        raise ValueError("at least one image is needed")
    height, width = rows[0][0].shape[:2]
    cols = max(len(r) for r in rows)
    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, 1
    scale = label_px / 40.0
    left = 0
    if row_labels:
        left = max(cv2.getTextSize(t, font, scale, thickness)[0][0] for t in row_labels) + label_px // 2
    top = label_px if column_labels else 0
    canvas = np.empty((top + len(rows) * height, left + cols * width, 3), np.uint8)
    canvas[:] = np.asarray(background, np.uint8)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            if img.shape[:2] != (height, width):
                raise ValueError(f"image ({r}, {c}) is {img.shape[:2]}, expected {(height, width)}")
            canvas[top + r * height: top + (r + 1) * height, left + c * width: left + (c + 1) * width] = img
        if r < len(row_labels):
            y = top + r * height + height // 2 + label_px // 4
            cv2.putText(canvas, row_labels[r], (label_px // 4, y), font, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    for c, text in enumerate(column_labels[:cols]):
        tw = cv2.getTextSize(text, font, scale, thickness)[0][0]
        x = left + c * width + (width - tw) // 2
        cv2.putText(canvas, text, (x, int(label_px * 0.75)), font, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return canvas


#: Height in pixels of the frame thumbnails in the pairs strip and the hover panels.
THUMB_PX = 64


def thumbnails(images: np.ndarray, *, height: int = THUMB_PX) -> np.ndarray:
    """(T, H, W, 3) uint8 frames or crops -> the same at ``height`` pixels high (the pairs strip, hover panels)."""
    h, w = images.shape[1:3]
    width = max(1, round(w * height / h))
    return np.stack([cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA) for img in images])
