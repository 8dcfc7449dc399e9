"""Person crops for the network, and the maps that carry its crop-space predictions back to the image.

A box ``(x, y, w, h)`` (image pixels) becomes a square around the box centre with side
``scale * max(w, h)`` (``scale`` = 1.1 at inference, DESIGN §1), resized to the model's ``img_size`` and
normalised with the ImageNet statistics. Parts of the square outside the image are black.

Pixel convention (the renderer's, :mod:`viz.renderer`): integer coordinates are pixel centres. A crop
pixel ``u`` (of ``S``) sits at image pixel ``x0 + u * side / S`` with ``x0 = centre - side / 2``; a
normalised crop coordinate ``x_n`` in ``[-1, 1]`` (the model's 2D joints, the weak-perspective camera)
sits at crop pixel ``(x_n + 1) * S / 2`` and so at image pixel ``centre + x_n * side / 2``.

The weak-perspective crop camera ``(s, tx, ty)`` turns into a translation ``cam_t`` in a pinhole camera
over the full image (:func:`crop_camera_to_full`, the ``cam_crop_to_full`` of SPIN / 4D-Humans): with focal
length ``f`` and principal point at the image centre ``(W / 2, H / 2)``, ::

    t_z = 2 f / (s * side),  t_x = tx + 2 (cx - W / 2) / (s * side),  t_y = ty + 2 (cy - H / 2) / (s * side)

so that a point at the body's depth projects where the crop camera put it. The default focal length is
long, :data:`FOCAL_LENGTH_PER_IMAGE_SIZE` times the image's longer side (SPIN's 5000 px for a 224 px
crop): the network was trained with a weak-perspective (orthographic) camera, and a long focal length keeps
the full-image projection within a pixel or two of it. Depths come out large (tens of metres) as a
consequence; their ratios between people are meaningful, their absolute scale is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..constants import IMAGE_MEAN, IMAGE_STD

#: Square crop side as a multiple of the box's longer side at inference (DESIGN §1).
INFERENCE_BBOX_SCALE = 1.1
#: SPIN's focal length (5000 px) over its crop size (224 px): the default full-image focal length is this
#: times the image's longer side (4D-Humans scales the same way).
FOCAL_LENGTH_PER_IMAGE_SIZE = 5000.0 / 224.0
#: Smallest square side in pixels (a degenerate box still gives a finite transform).
MIN_CROP_SIDE = 1.0
#: Smallest weak-perspective scale turned into a depth (an untrained or broken camera head can predict s <= 0).
MIN_CAMERA_SCALE = 1e-6
#: A square more than this many times the crop size is area-shrunk before the bilinear warp.
ANTI_ALIAS_RATIO = 2


@dataclass(frozen=True)
class CropSettings:
    """How person crops are cut: ``size`` (pixels, the model's ``img_size``) and ``scale`` (square side over
    the box's longer side)."""

    size: int
    scale: float = INFERENCE_BBOX_SCALE

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"crop size must be positive, got {self.size}")
        if self.scale <= 0:
            raise ValueError(f"crop scale must be positive, got {self.scale}")


@dataclass(frozen=True)
class CropTransform:
    """Where a square crop of ``size`` pixels came from: centre (cx, cy) and side, in image pixels."""

    centre: tuple[float, float]
    side: float
    size: int

    @classmethod
    def from_box(cls, box: np.ndarray, *, settings: CropSettings) -> CropTransform:
        """The square crop of a box (4,) ``(x, y, w, h)`` in pixels."""
        x, y, w, h = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
        side = max(settings.scale * max(w, h), MIN_CROP_SIDE)
        return cls(centre=(x + w / 2.0, y + h / 2.0), side=side, size=settings.size)

    @property
    def origin(self) -> np.ndarray:
        """(2,) image position of crop pixel (0, 0)."""
        return np.asarray(self.centre) - self.side / 2.0

    def image_to_crop_matrix(self) -> np.ndarray:
        """(2, 3) affine map from image pixels to crop pixels (for ``cv2.warpAffine``)."""
        k = self.size / self.side
        x0, y0 = self.origin
        return np.array([[k, 0.0, -k * x0], [0.0, k, -k * y0]])

    def crop_pixels_to_image(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) crop pixels -> (..., 2) image pixels."""
        return self.origin + np.asarray(points, dtype=np.float64) * (self.side / self.size)

    def normalised_to_image(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) normalised crop coordinates in [-1, 1] (x right, y down) -> (..., 2) image pixels."""
        return np.asarray(self.centre) + np.asarray(points, dtype=np.float64) * (self.side / 2.0)


def cut_crop(frame: np.ndarray, transform: CropTransform) -> np.ndarray:
    """Cut one square crop: frame (H, W, 3) uint8 RGB -> (S, S, 3) uint8, black outside the image.

    When the square is much larger than the crop (a big person), its region is first shrunk by an integer
    factor with area averaging, so that the bilinear warp does not alias."""
    size = transform.size
    matrix = transform.image_to_crop_matrix()
    shrink = int(transform.side // (ANTI_ALIAS_RATIO * size))
    if shrink < 2:
        return cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    height, width = frame.shape[:2]
    low = np.floor(transform.origin).astype(int) - 1
    high = np.ceil(transform.origin + transform.side).astype(int) + 1
    x0, y0 = max(low[0], 0), max(low[1], 0)
    x1, y1 = min(high[0], width), min(high[1], height)
    if x1 <= x0 or y1 <= y0:  # the square lies outside the image
        return np.zeros((size, size, 3), np.uint8)
    region = frame[y0:y1, x0:x1]
    small = cv2.resize(region, (max(1, -(-(x1 - x0) // shrink)), max(1, -(-(y1 - y0) // shrink))),
                       interpolation=cv2.INTER_AREA)
    # Small pixel p covers region pixels around (p + 0.5) * step - 0.5 (pixel centres), per axis.
    step = np.array([(x1 - x0) / small.shape[1], (y1 - y0) / small.shape[0]])
    offset = 0.5 * step - 0.5 + np.array([x0, y0])  # image position of small pixel 0
    k = matrix[0, 0]
    small_matrix = np.array([[k * step[0], 0.0, k * offset[0] + matrix[0, 2]],
                             [0.0, k * step[1], k * offset[1] + matrix[1, 2]]])
    return cv2.warpAffine(small, small_matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def normalise_crops(crops: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) uint8 RGB -> (N, 3, S, S) float32, ImageNet-normalised (the network's input)."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def crop_people(frame: np.ndarray, boxes: np.ndarray, *,
                settings: CropSettings) -> tuple[np.ndarray, list[CropTransform]]:
    """All people of one frame: frame (H, W, 3) uint8, boxes (K, 4) ``(x, y, w, h)`` ->
    crops (K, S, S, 3) uint8 and their K transforms."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    transforms = [CropTransform.from_box(box, settings=settings) for box in boxes]
    crops = np.stack([cut_crop(frame, t) for t in transforms]) if transforms else np.zeros(
        (0, settings.size, settings.size, 3), np.uint8)
    return crops, transforms


def default_focal_length(width: int, height: int) -> float:
    """The full-image focal length in pixels used for ``cam_t`` (see the module docstring)."""
    return FOCAL_LENGTH_PER_IMAGE_SIZE * max(width, height)


def crop_camera_to_full(cam: np.ndarray, centres: np.ndarray, sides: np.ndarray, *, image_size: tuple[int, int],
                        focal_length: float) -> np.ndarray:
    """Weak-perspective crop cameras -> translations in the full image's pinhole camera.

    Args:
        cam: (N, 3) ``(s, tx, ty)``.
        centres: (N, 2) crop centres in image pixels.
        sides: (N,) crop sides in image pixels.
        image_size: (W, H) of the full image; the principal point is its centre (W / 2, H / 2).
        focal_length: in pixels.

    Returns:
        (N, 3) ``cam_t``: add it to the camera-frame vertices / joints and project with ``PinholeCamera``.
    """
    cam = np.asarray(cam, dtype=np.float64).reshape(-1, 3)
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    sides = np.asarray(sides, dtype=np.float64).reshape(-1)
    width, height = image_size
    # A non-positive scale would put the body behind the camera; clamp to a tiny positive scale (far away).
    s = np.maximum(cam[:, 0], MIN_CAMERA_SCALE)
    half_scale = s * sides / 2.0  # pixels per metre at the body's depth
    principal = np.array([width / 2.0, height / 2.0])
    t_xy = cam[:, 1:] + (centres - principal) / half_scale[:, None]
    t_z = focal_length / half_scale
    return np.concatenate([t_xy, t_z[:, None]], axis=1)


def project_pinhole(points: np.ndarray, cam_t: np.ndarray, *, focal_length: float,
                    image_size: tuple[int, int]) -> np.ndarray:
    """Project camera-frame points (..., N, 3) translated by ``cam_t`` (..., 3) to image pixels (..., N, 2),
    the projection :class:`viz.renderer.PinholeCamera` renders with (principal point at (W / 2, H / 2))."""
    p = np.asarray(points, dtype=np.float64) + np.asarray(cam_t, dtype=np.float64)[..., None, :]
    width, height = image_size
    principal = np.array([width / 2.0, height / 2.0])
    return focal_length * p[..., :2] / p[..., 2:3] + principal
