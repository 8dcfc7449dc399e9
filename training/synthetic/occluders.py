"""Occluders: flat textured shapes drawn over some frames of a clip, in front of everything.

An :class:`Occluder` is a pure description. Its geometry is in pixels, or, when ``anchor`` names a person
of the clip, relative to that person's bounding box in the middle frame (centre offset, size and velocity in
units of the box height), so that the occluder covers part of the person whatever the camera; the renderer
resolves it with :meth:`Occluder.resolve` once the people are placed. Texture and blob outline come from
``texture_seed``, so drawing is deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from .backgrounds import random_colour

OCCLUDER_SHAPES: tuple[str, ...] = ("rect", "ellipse", "blob")
OCCLUDER_TEXTURES: tuple[str, ...] = ("solid", "noise", "stripes")
EDGE_SOFTNESS_PX = 0.7  # Gaussian sigma of the anti-aliased edge
BLOB_THRESHOLD = 0.375  # level of (noise + cone) / 2 that outlines a blob
BLOB_CELLS = 4  # grid of the random field whose level set is a blob's outline


@dataclass(frozen=True)
class Occluder:
    """A flat shape over the frames ``[start, stop)``.

    Attributes:
        shape: ``'rect'``, ``'ellipse'`` or ``'blob'``.
        centre: (x, y) at frame ``start``: pixels, or (anchored) offset from the anchor's box centre in box heights.
        size: (width, height): pixels, or (anchored) box heights.
        velocity: (dx, dy) per frame: pixels, or (anchored) box heights.
        angle_deg: rotation of the shape.
        start, stop: frames in which it is drawn.
        texture: ``'solid'``, ``'noise'`` or ``'stripes'``.
        colours: two RGB colours in [0, 1] (the second for textures).
        texture_seed: seeds the texture and the blob outline.
        anchor: index of the person the geometry is relative to, or None for pixels.
    """

    shape: str
    centre: tuple[float, float]
    size: tuple[float, float]
    velocity: tuple[float, float]
    angle_deg: float
    start: int
    stop: int
    texture: str = "solid"
    colours: tuple[tuple[float, float, float], tuple[float, float, float]] = ((0.5, 0.5, 0.5), (0.2, 0.2, 0.2))
    texture_seed: int = 0
    anchor: int | None = None

    def resolve(self, bbox: np.ndarray) -> Occluder:
        """The same occluder in pixels, given the anchor's box ``(cx, cy, w, h)``; unanchored ones unchanged."""
        if self.anchor is None:
            return self
        cx, cy, _, box_h = (float(v) for v in bbox)
        return replace(
            self,
            centre=(cx + self.centre[0] * box_h, cy + self.centre[1] * box_h),
            size=(self.size[0] * box_h, self.size[1] * box_h),
            velocity=(self.velocity[0] * box_h, self.velocity[1] * box_h),
            anchor=None,
        )


def _texture(occluder: Occluder, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """(h, w, 3) float RGB in [0, 1]."""
    a, b = (np.asarray(c, dtype=np.float32) for c in occluder.colours)
    if occluder.texture == "solid":
        t = np.zeros((height, width, 1), np.float32)
    elif occluder.texture == "noise":
        grid = rng.uniform(0.0, 1.0, size=(6, 6)).astype(np.float32)
        t = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)[..., None]
    elif occluder.texture == "stripes":
        period = rng.uniform(4.0, 16.0)
        angle = rng.uniform(0.0, math.pi)
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        t = (np.sin(2 * math.pi * (x * math.cos(angle) + y * math.sin(angle)) / period) > 0)[..., None]
    else:
        raise ValueError(f"unknown occluder texture {occluder.texture!r}; known: {', '.join(OCCLUDER_TEXTURES)}")
    return a * (1 - t) + b * t


def _shape_mask(occluder: Occluder, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """(h, w) float mask in [0, 1] of the unrotated shape filling its (h, w) box."""
    if occluder.shape == "rect":
        return np.ones((height, width), np.float32)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = (x + 0.5) / width * 2 - 1, (y + 0.5) / height * 2 - 1
    if occluder.shape == "ellipse":
        return (u**2 + v**2 <= 1.0).astype(np.float32)
    if occluder.shape == "blob":
        grid = rng.uniform(0.0, 1.0, size=(BLOB_CELLS, BLOB_CELLS)).astype(np.float32)
        field = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        field = 0.5 * field + 0.5 * (1.0 - np.sqrt(u**2 + v**2))  # a lumpy disc
        return (field > BLOB_THRESHOLD).astype(np.float32)
    raise ValueError(f"unknown occluder shape {occluder.shape!r}; known: {', '.join(OCCLUDER_SHAPES)}")


@dataclass(frozen=True)
class OccluderSprite:
    """A resolved occluder's premultiplied RGB (h, w, 3) and alpha (h, w) with its rotation baked in, centred."""

    rgb: np.ndarray
    alpha: np.ndarray


def make_sprite(occluder: Occluder) -> OccluderSprite:
    """Rasterise a resolved (pixel) occluder once; :func:`draw_occluders` moves it from frame to frame."""
    if occluder.anchor is not None:
        raise ValueError("resolve an anchored occluder before drawing it")
    rng = np.random.default_rng(occluder.texture_seed)
    width, height = (max(2, int(round(s))) for s in occluder.size)
    mask = _shape_mask(occluder, height, width, rng)
    texture = _texture(occluder, height, width, rng)
    side = int(math.ceil(math.hypot(width, height))) + 4  # room for any rotation and the soft edge
    canvas_rgb = np.zeros((side, side, 3), np.float32)
    canvas_alpha = np.zeros((side, side), np.float32)
    top, left = (side - height) // 2, (side - width) // 2
    canvas_rgb[top:top + height, left:left + width] = texture * mask[..., None]
    canvas_alpha[top:top + height, left:left + width] = mask
    rotation = cv2.getRotationMatrix2D(((side - 1) / 2.0, (side - 1) / 2.0), occluder.angle_deg, 1.0)
    rgb = cv2.warpAffine(canvas_rgb, rotation, (side, side), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(canvas_alpha, rotation, (side, side), flags=cv2.INTER_LINEAR)
    alpha = cv2.GaussianBlur(alpha, (0, 0), EDGE_SOFTNESS_PX)
    rgb = cv2.GaussianBlur(rgb, (0, 0), EDGE_SOFTNESS_PX)
    return OccluderSprite(rgb=rgb, alpha=np.clip(alpha, 0.0, 1.0))


def occluder_masks(occluders: list[Occluder], sprites: list[OccluderSprite], *, num_frames: int, height: int,
                   width: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the occluders' premultiplied colour (T, H, W, 3) and coverage (T, H, W), float32, later
    occluders over earlier ones."""
    colour = np.zeros((num_frames, height, width, 3), np.float32)
    coverage = np.zeros((num_frames, height, width), np.float32)
    for occluder, sprite in zip(occluders, sprites, strict=True):
        side = sprite.alpha.shape[0]
        for t in range(max(0, occluder.start), min(num_frames, occluder.stop)):
            steps = t - occluder.start
            cx = occluder.centre[0] + occluder.velocity[0] * steps
            cy = occluder.centre[1] + occluder.velocity[1] * steps
            left, top = int(round(cx - (side - 1) / 2.0)), int(round(cy - (side - 1) / 2.0))
            x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + side, width), min(top + side, height)
            if x0 >= x1 or y0 >= y1:
                continue
            a = sprite.alpha[y0 - top:y1 - top, x0 - left:x1 - left]
            rgb = sprite.rgb[y0 - top:y1 - top, x0 - left:x1 - left]
            colour[t, y0:y1, x0:x1] = colour[t, y0:y1, x0:x1] * (1 - a[..., None]) + rgb
            coverage[t, y0:y1, x0:x1] = coverage[t, y0:y1, x0:x1] * (1 - a) + a
    return colour, coverage


def random_occluder_colours(rng: np.random.Generator) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Two random RGB colours in [0, 1] for an occluder."""
    a, b = random_colour(rng), random_colour(rng)
    return (float(a[0]), float(a[1]), float(a[2])), (float(b[0]), float(b[1]), float(b[2]))
