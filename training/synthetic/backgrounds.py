"""Backgrounds: fast procedural images (numpy / OpenCV) and the user's own images.

Every function returns an (H, W, 3) uint8 RGB image and draws all its randomness from the numpy Generator it
is given, so a background is reproducible from the clip's seed.

Kinds (:data:`BACKGROUND_KINDS`): ``gradient`` (two colours at a random angle), ``noise`` (multi-octave value
noise mapped onto a random palette), ``stripes`` (soft or hard bands at a random angle and frequency),
``blobs`` (random blurred ellipses over a base colour) and ``room`` (a wall and a tiled floor seen by the
clip's own camera, so the floor's horizon and perspective match the people standing on it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

BACKGROUND_KINDS: tuple[str, ...] = ("gradient", "noise", "stripes", "blobs", "room")
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

# Colour sampling (HSV in [0, 1]) for backgrounds: muted more often than not.
BACKGROUND_SATURATION = (0.0, 0.7)
BACKGROUND_VALUE = (0.1, 0.95)
NOISE_OCTAVES = (2, 5)  # number of octaves of value noise
NOISE_BASE_CELLS = (2, 6)  # grid cells across the image at the coarsest octave
STRIPE_PERIOD = (0.04, 0.3)  # fraction of the image diagonal
BLOB_COUNT = (4, 20)
BLOB_SIZE = (0.05, 0.35)  # semi-axis as a fraction of the image side
ROOM_TILE_M = (0.3, 1.2)  # floor tile side in metres
ROOM_FOG_M = (8.0, 30.0)  # distance at which the floor pattern has faded by 1/e
ROOM_MIN_TILE_PX = 3.0  # floor tiles fade out below this many pixels (no aliasing at the horizon)
USER_CROP_FRACTION = (0.4, 1.0)  # side of the random crop of a user image, as a fraction of its shorter side
BLUR_SIGMA_PX = (0.0, 1.5)  # defocus of the background


def random_colour(rng: np.random.Generator, *, saturation: tuple[float, float] = BACKGROUND_SATURATION,
                  value: tuple[float, float] = BACKGROUND_VALUE) -> np.ndarray:
    """(3,) RGB float in [0, 1] from a uniform hue and the given saturation / value ranges."""
    h, s, v = rng.uniform(0.0, 1.0), rng.uniform(*saturation), rng.uniform(*value)
    return hsv_to_rgb(h, s, v)


def hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """HSV in [0, 1] -> (3,) RGB float in [0, 1]."""
    i = int(h * 6.0) % 6
    f = h * 6.0 - math.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i], dtype=np.float64)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def _coords(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates normalised by the larger side, centred: (H, W) each."""
    scale = float(max(height, width))
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    return (x - width / 2.0) / scale, (y - height / 2.0) / scale


def gradient(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A linear gradient between two random colours at a random angle."""
    a, b = random_colour(rng), random_colour(rng)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    x, y = _coords(height, width)
    t = np.clip(0.5 + (x * math.cos(angle) + y * math.sin(angle)), 0.0, 1.0)[..., None]
    return _to_uint8(a * (1 - t) + b * t)


def value_noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Multi-octave value noise (bicubic upsampled random grids) mapped onto a random 3-colour palette."""
    octaves = int(rng.integers(NOISE_OCTAVES[0], NOISE_OCTAVES[1] + 1))
    cells = int(rng.integers(NOISE_BASE_CELLS[0], NOISE_BASE_CELLS[1] + 1))
    field = np.zeros((height, width), np.float32)
    amplitude, total = 1.0, 0.0
    for octave in range(octaves):
        n = cells * 2**octave
        grid = rng.uniform(0.0, 1.0, size=(n + 1, n + 1)).astype(np.float32)
        field += amplitude * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        total += amplitude
        amplitude *= 0.5
    field = (field / total - field.min() / total)
    field = field / max(float(field.max()), 1e-6)
    palette = np.stack([random_colour(rng) for _ in range(3)])
    t = field[..., None].astype(np.float64)
    image = np.where(t < 0.5, palette[0] * (1 - 2 * t) + palette[1] * 2 * t,
                     palette[1] * (2 - 2 * t) + palette[2] * (2 * t - 1))
    return _to_uint8(image)


def stripes(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Bands of two colours at a random angle and period, with soft or hard edges."""
    a, b = random_colour(rng), random_colour(rng)
    angle = rng.uniform(0.0, math.pi)
    period = rng.uniform(*STRIPE_PERIOD) * math.hypot(1.0, height / max(height, width))
    hardness = rng.uniform(1.0, 12.0)
    x, y = _coords(height, width)
    wave = np.sin(2 * math.pi * (x * math.cos(angle) + y * math.sin(angle)) / period)
    t = (0.5 + 0.5 * np.tanh(hardness * wave))[..., None]
    return _to_uint8(a * (1 - t) + b * t)


def blobs(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Random filled ellipses over a base colour, slightly blurred."""
    image = np.empty((height, width, 3), np.float32)
    image[:] = random_colour(rng)
    count = int(rng.integers(BLOB_COUNT[0], BLOB_COUNT[1] + 1))
    side = max(height, width)
    for _ in range(count):
        centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        axes = (max(1, int(rng.uniform(*BLOB_SIZE) * side)), max(1, int(rng.uniform(*BLOB_SIZE) * side)))
        colour = tuple(float(c) for c in random_colour(rng))
        cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
    return _to_uint8(cv2.GaussianBlur(image, (0, 0), 0.01 * side + 0.5))


def room(rng: np.random.Generator, height: int, width: int, *, intrinsics: np.ndarray,
         rotation: np.ndarray, camera_height: float) -> np.ndarray:
    """A wall and a tiled floor (the plane y = 0 of the world, y up) seen by a pinhole camera.

    Args:
        intrinsics: (3, 3) camera matrix (pixel centres at integer coordinates).
        rotation: (3, 3) world -> camera rotation.
        camera_height: height of the camera centre above the floor, metres.
    """
    wall_top, wall_bottom = random_colour(rng), random_colour(rng)
    floor_a, floor_b = random_colour(rng), random_colour(rng)
    tile = rng.uniform(*ROOM_TILE_M)
    fog = rng.uniform(*ROOM_FOG_M)
    offset = rng.uniform(0.0, tile, size=2)
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    pixels = np.stack([u, v, np.ones_like(u)], axis=-1)
    rays = pixels @ np.linalg.inv(intrinsics).T @ rotation  # world-frame directions, (H, W, 3)
    down = -rays[..., 1]
    floor = down > 1e-6
    distance = np.where(floor, camera_height / np.maximum(down, 1e-6), 0.0)
    gx, gz = distance * rays[..., 0] + offset[0], distance * rays[..., 2] + offset[1]
    checker = (np.floor(gx / tile) + np.floor(gz / tile)) % 2.0
    length = np.linalg.norm(rays, axis=-1)
    metres = distance * length
    # Tiles smaller than a few pixels (near the horizon) fade to their mean colour instead of aliasing.
    tile_px = tile * intrinsics[1, 1] * (down / length) / np.maximum(metres, 1e-6)
    contrast = np.clip((tile_px - ROOM_MIN_TILE_PX) / ROOM_MIN_TILE_PX, 0.0, 1.0)
    checker = (0.5 + (checker - 0.5) * contrast)[..., None]
    fade = np.exp(-metres / fog)[..., None]
    floor_colour = (floor_a * (1 - checker) + floor_b * checker) * fade + 0.5 * (floor_a + floor_b) * (1 - fade)
    elevation = np.clip(rays[..., 1] / np.linalg.norm(rays, axis=-1), 0.0, 1.0)[..., None]
    wall_colour = wall_bottom * (1 - elevation) + wall_top * elevation
    return _to_uint8(np.where(floor[..., None], floor_colour, wall_colour))


def user_image(path: str | Path, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random square-ish crop of the image at ``path`` (random scale and position, maybe mirrored),
    resized to (height, width)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"background image {path} cannot be read")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    img_h, img_w = image.shape[:2]
    aspect = width / height
    fraction, u, v, mirror = rng.uniform(*USER_CROP_FRACTION), rng.uniform(), rng.uniform(), rng.uniform() < 0.5
    crop_h = max(1, int(min(img_h, img_w / aspect) * fraction))
    crop_w = max(1, min(img_w, int(round(crop_h * aspect))))
    top, left = int(u * (img_h - crop_h)), int(v * (img_w - crop_w))
    crop = image[top:top + crop_h, left:left + crop_w]
    if mirror:
        crop = crop[:, ::-1]
    return cv2.resize(np.ascontiguousarray(crop), (width, height), interpolation=cv2.INTER_AREA)


def list_background_images(folder: str | Path) -> list[Path]:
    """Image files (by suffix) directly inside ``folder`` or below it, sorted; FileNotFoundError if none."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"background folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"background folder {root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def procedural_background(kind: str, rng: np.random.Generator, height: int, width: int, *,
                          intrinsics: np.ndarray | None = None, rotation: np.ndarray | None = None,
                          camera_height: float | None = None) -> np.ndarray:
    """A procedural background of the named kind (``room`` needs the camera arguments)."""
    if kind == "room":
        if intrinsics is None or rotation is None or camera_height is None:
            raise ValueError("the room background needs intrinsics, rotation and camera_height")
        return room(rng, height, width, intrinsics=intrinsics, rotation=rotation, camera_height=camera_height)
    makers = {"gradient": gradient, "noise": value_noise, "stripes": stripes, "blobs": blobs}
    if kind not in makers:
        raise ValueError(f"unknown background kind {kind!r}; known: {', '.join(BACKGROUND_KINDS)}")
    return makers[kind](rng, height, width)


def finish_background(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Defocus a background by a random Gaussian blur (sigma in :data:`BLUR_SIGMA_PX`)."""
    sigma = rng.uniform(*BLUR_SIGMA_PX)
    if sigma < 0.3:
        return image
    return cv2.GaussianBlur(image, (0, 0), sigma)


def choose(rng: np.random.Generator, options: Sequence[str], weights: Sequence[float]) -> str:
    """One of ``options`` with probabilities proportional to ``weights`` (one uniform draw)."""
    cumulative = np.cumsum(np.asarray(weights, dtype=np.float64))
    index = int(np.searchsorted(cumulative, rng.uniform() * cumulative[-1], side="right"))
    return options[min(index, len(options) - 1)]
