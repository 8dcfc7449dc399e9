"""The one crop geometry: how a person box becomes the network's input square, and how the network's crop-space
predictions go back to the image. Training, inference and the analysis views all cut and read crops here.

**Boxes.** Detections and tracks are ``(x, y, w, h)`` boxes (top-left corner and size, image pixels,
:meth:`CropTransform.from_box`); the preprocessed database files of VIBE / MAED store ``(cx, cy, w, h)``
(centre and size, :meth:`CropTransform.from_centre_box`). Either becomes a square around the box centre with
side ``scale * max(w, h)``: :data:`TRAIN_BBOX_SCALE` (1.3) in training, :data:`INFERENCE_BBOX_SCALE` (1.1) in
evaluation and at inference.

**Pixels.** Integer pixel coordinates are pixel centres, so an image of width ``W`` spans ``[-0.5, W - 0.5]``.
A crop of ``size`` pixels covers its square exactly: normalised crop coordinates ``u = (x - cx) / (side / 2)``
put the square's left (top) edge at ``u = -1`` and its right (bottom) edge at ``+1`` (x right, y down), and the
centre of crop pixel ``j`` lies at ``u = (j + 0.5) * 2 / size - 1``. A horizontal flip of the crop is then exactly
``u -> -u``, and the model's 2D joints and weak-perspective camera live in the same ``u``. Parts of the square
outside the image are black.

**Pixels in.** Crops are RGB uint8 normalised with the ImageNet statistics (:func:`normalise_crops` for a batch
as a tensor, :func:`normalise_image` for one image as an array).

**Crop camera to full image.** The weak-perspective crop camera ``(s, tx, ty)`` becomes a translation ``cam_t``
in a pinhole camera over the full image (:func:`crop_camera_to_full`, the ``cam_crop_to_full`` of SPIN /
4D-Humans): with focal length ``f`` and principal point at the image centre ``(W / 2, H / 2)``, ::

    t_z = 2 f / (s * side),  t_x = tx + 2 (cx - W / 2) / (s * side),  t_y = ty + 2 (cy - H / 2) / (s * side)

so that a point at the body's depth projects where the crop camera put it. The default focal length is long,
:data:`FOCAL_LENGTH_PER_IMAGE_SIZE` times the image's longer side (SPIN's 5000 px for a 224 px crop): the network
was trained with a weak-perspective (orthographic) camera, and a long focal length keeps the full-image
projection within a pixel or two of it. Depths come out large (tens of metres) as a consequence; their ratios
between people are meaningful, their absolute scale is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .constants import IMAGE_MEAN, IMAGE_STD

#: Square crop side over the box's longer side while training (the paper's 1.3) and at inference (1.1).
TRAIN_BBOX_SCALE = 1.3
INFERENCE_BBOX_SCALE = 1.1
#: SPIN's focal length (5000 px) over its crop size (224 px): the default full-image focal length is this
#: times the image's longer side (4D-Humans scales the same way).
FOCAL_LENGTH_PER_IMAGE_SIZE = 5000.0 / 224.0
#: Smallest square side in pixels (a degenerate detection still gives a finite transform).
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
    """Where a square crop of ``size`` pixels lies in its image: centre (cx, cy) and side, in image pixels."""

    centre: tuple[float, float]
    side: float
    size: int

    @classmethod
    def from_box(cls, box: np.ndarray, *, settings: CropSettings) -> CropTransform:
        """The square crop of an ``(x, y, w, h)`` box (4,) in pixels (a detection or a track); a degenerate box
        gives a square of :data:`MIN_CROP_SIDE`."""
        x, y, w, h = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
        side = max(settings.scale * max(w, h), MIN_CROP_SIDE)
        return cls(centre=(x + w / 2.0, y + h / 2.0), side=side, size=settings.size)

    @classmethod
    def from_centre_box(cls, box: np.ndarray | tuple[float, float, float, float], *, scale: float, size: int,
                        shift: tuple[float, float] = (0.0, 0.0)) -> CropTransform:
        """The square crop of a ``(cx, cy, w, h)`` box (a dataset label), its centre moved by ``shift``
        (fractions of the side, for box jitter); ValueError for a box with no positive size."""
        cx, cy, w, h = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
        side = scale * max(w, h)
        if not np.isfinite(side) or side <= 0:
            raise ValueError(f"box {box} has no positive size")
        return cls(centre=(cx + shift[0] * side, cy + shift[1] * side), side=side, size=int(size))

    @classmethod
    def around_image(cls, image_shape: tuple[int, ...], *, size: int, scale: float = 1.0,
                     shift: tuple[float, float] = (0.0, 0.0)) -> CropTransform:
        """The square that spans a whole image of shape (H, W, ...) (its longer side), scaled and shifted."""
        height, width = image_shape[:2]
        side = max(height, width) * scale
        return cls(centre=((width - 1) / 2.0 + shift[0] * side, (height - 1) / 2.0 + shift[1] * side),
                   side=side, size=int(size))

    @property
    def origin(self) -> np.ndarray:
        """(2,) image position of the square's top-left corner (the outer edge of crop pixel (0, 0))."""
        return np.asarray(self.centre) - self.side / 2.0

    def image_to_crop_matrix(self) -> np.ndarray:
        """(2, 3) affine map from image pixels to crop pixels (for ``cv2.warpAffine``)."""
        k = self.size / self.side
        cx, cy = self.centre
        offset = self.size / 2.0 - 0.5
        return np.array([[k, 0.0, offset - k * cx], [0.0, k, offset - k * cy]], dtype=np.float64)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) image pixels -> (..., 2) float32 normalised crop coordinates (the 2D labels)."""
        points = np.asarray(points, dtype=np.float64)
        return ((points - np.asarray(self.centre)) / (self.side / 2.0)).astype(np.float32)

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) normalised crop coordinates (x right, y down) -> (..., 2) float64 image pixels."""
        return np.asarray(self.centre) + np.asarray(points, dtype=np.float64) * (self.side / 2.0)

    def crop_pixels_to_image(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) crop pixels -> (..., 2) image pixels."""
        return self.origin + (np.asarray(points, dtype=np.float64) + 0.5) * (self.side / self.size)


@dataclass(frozen=True)
class CropBatch:
    """The squares of N boxes at once, for carrying (N, J, 2) points between image pixels and each row's normalised
    crop coordinates: ``centres`` (N, 2) and ``sides`` (N,) in image pixels (the same maps as
    :class:`CropTransform`'s ``to_crop`` / ``to_image``)."""

    centres: np.ndarray
    sides: np.ndarray

    @classmethod
    def from_boxes(cls, boxes: np.ndarray, *, settings: CropSettings) -> CropBatch:
        """The squares of (N, 4) ``(x, y, w, h)`` boxes."""
        transforms = [CropTransform.from_box(b, settings=settings) for b in np.asarray(boxes).reshape(-1, 4)]
        return cls(centres=np.array([t.centre for t in transforms], dtype=np.float64).reshape(-1, 2),
                   sides=np.array([t.side for t in transforms], dtype=np.float64))

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """(N, J, 2) image pixels -> (N, J, 2) float64 normalised crop coordinates of each row's square."""
        return (np.asarray(points, dtype=np.float64) - self.centres[:, None]) / (self.sides[:, None, None] / 2.0)

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """(N, J, 2) normalised crop coordinates -> (N, J, 2) float64 image pixels."""
        return self.centres[:, None] + np.asarray(points, dtype=np.float64) * (self.sides[:, None, None] / 2.0)


def normalised_to_crop_pixels(points: np.ndarray, *, size: int) -> np.ndarray:
    """(..., 2) normalised crop coordinates (the model's 2D joints) -> (..., 2) pixels of a ``size`` crop."""
    return (np.asarray(points, dtype=np.float64) + 1.0) * (size / 2.0) - 0.5


def cut_crop(frame: np.ndarray, transform: CropTransform) -> np.ndarray:
    """Cut one square crop: frame (H, W, C) -> (S, S, C) of the same dtype, bilinear, black outside the image.

    When the square is much larger than the crop (a big person), its region is first shrunk by an integer
    factor with area averaging, so that the bilinear warp does not alias."""
    size = transform.size
    matrix = transform.image_to_crop_matrix()
    shrink = int(transform.side // (ANTI_ALIAS_RATIO * size))
    if shrink < 2:
        return cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    height, width = frame.shape[:2]
    low = np.floor(transform.origin).astype(int) - 1
    high = np.ceil(transform.origin + transform.side).astype(int) + 1
    x0, y0 = max(low[0], 0), max(low[1], 0)
    x1, y1 = min(high[0], width), min(high[1], height)
    if x1 <= x0 or y1 <= y0:  # the square lies outside the image
        return np.zeros((size, size) + frame.shape[2:], frame.dtype)
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
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def crop_people(frame: np.ndarray, boxes: np.ndarray, *,
                settings: CropSettings) -> tuple[np.ndarray, list[CropTransform]]:
    """All people of one frame: frame (H, W, 3) uint8, boxes (K, 4) ``(x, y, w, h)`` ->
    crops (K, S, S, 3) uint8 and their K transforms."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    transforms = [CropTransform.from_box(box, settings=settings) for box in boxes]
    crops = np.stack([cut_crop(frame, t) for t in transforms]) if transforms else np.zeros(
        (0, settings.size, settings.size, 3), np.uint8)
    return crops, transforms


# ------------------------------------------------------------------------------------------- pixel values
def _statistics(device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(IMAGE_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD, device=device).view(1, 3, 1, 1)
    return mean, std


def normalise_crops(crops: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) uint8 RGB -> (N, 3, S, S) float32, ImageNet-normalised (the network's input)."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div_(255.0)
    mean, std = _statistics()
    return (x - mean) / std


def normalise_image(image: np.ndarray) -> np.ndarray:
    """RGB image (H, W, 3), uint8 or float in [0, 1] -> (3, H, W) float32 normalised with the ImageNet statistics."""
    pixels = image.astype(np.float32)
    if image.dtype == np.uint8:
        pixels /= 255.0
    mean = np.asarray(IMAGE_MEAN, dtype=np.float32)
    std = np.asarray(IMAGE_STD, dtype=np.float32)
    return np.ascontiguousarray(((pixels - mean) / std).transpose(2, 0, 1))


def denormalise_frame(frame: np.ndarray | torch.Tensor) -> np.ndarray:
    """Inverse of :func:`normalise_image` for viewing: (3, H, W) -> (H, W, 3) uint8 RGB."""
    values = frame.detach().cpu().numpy() if isinstance(frame, torch.Tensor) else np.asarray(frame)
    rgb = values.transpose(1, 2, 0) * np.asarray(IMAGE_STD) + np.asarray(IMAGE_MEAN)
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def black_like(x: torch.Tensor) -> torch.Tensor:
    """A black image in the network's normalised space, shaped like ``x`` (N, 3, S, S)."""
    mean, std = _statistics(x.device)
    return ((0.0 - mean) / std).expand_as(x).clone()


# -------------------------------------------------------------------------------- crop camera to full image
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
        (N, 3) ``cam_t``: add it to the camera-frame vertices / joints and project with :func:`project_pinhole`.
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
    the projection the renderer's pinhole camera draws with (principal point at (W / 2, H / 2))."""
    p = np.asarray(points, dtype=np.float64) + np.asarray(cam_t, dtype=np.float64)[..., None, :]
    width, height = image_size
    principal = np.array([width / 2.0, height / 2.0])
    return focal_length * p[..., :2] / p[..., 2:3] + principal
