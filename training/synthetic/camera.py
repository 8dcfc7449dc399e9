"""Cameras of the synthetic scenes: the pinhole camera that films them, and the crop camera of their labels.

The camera frame is the labels' frame (SPIN / VIBE and :mod:`viz.renderer`): x right, y down, z forward, with
``X_cam = R X_world + t`` and pixels ``u = f X / Z + cx``, ``v = f Y / Z + cy`` (principal point at the image
centre, integer coordinates at pixel centres). :func:`crop_camera` gives the weak-perspective camera of a square
crop around a person, exact at the depth of the trunk (:func:`reference_depth`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from int_model.constants import SMPL_JOINT_NAMES


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: ``X_cam = rotation @ X_world + translation``; principal point at the image centre.

    Attributes:
        rotation: (3, 3) world -> camera.
        translation: (3,).
        focal_length: pixels.
        width, height: image size in pixels.
    """

    rotation: np.ndarray
    translation: np.ndarray
    focal_length: float
    width: int
    height: int

    @property
    def principal_point(self) -> tuple[float, float]:
        return (self.width / 2.0, self.height / 2.0)

    @property
    def intrinsics(self) -> np.ndarray:
        """(3, 3) camera matrix."""
        cx, cy = self.principal_point
        return np.array([[self.focal_length, 0.0, cx], [0.0, self.focal_length, cy], [0.0, 0.0, 1.0]])

    @property
    def extrinsics(self) -> np.ndarray:
        """(3, 4) ``[R | t]`` world -> camera."""
        return np.concatenate([self.rotation, self.translation[:, None]], axis=1)

    @property
    def centre(self) -> np.ndarray:
        """(3,) the camera's position in the world."""
        return -self.rotation.T @ self.translation

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) -> camera frame (..., 3)."""
        return points @ self.rotation.T + self.translation

    def project(self, points: np.ndarray) -> np.ndarray:
        """Camera-frame points (..., 3) -> pixels (..., 2)."""
        cx, cy = self.principal_point
        z = points[..., 2:3]
        return self.focal_length * points[..., :2] / z + np.array([cx, cy])

    @classmethod
    def look_at(cls, *, target: np.ndarray, distance: float, elevation_deg: float, roll_deg: float,
                focal_length: float, width: int, height: int, azimuth_deg: float = 0.0) -> Camera:
        """A camera ``distance`` metres from ``target`` (world), raised by ``elevation_deg`` and turned by
        ``azimuth_deg`` about the vertical from the +z side, looking at the target, rolled by ``roll_deg``."""
        e, a = math.radians(elevation_deg), math.radians(azimuth_deg)
        direction = np.array([math.cos(e) * math.sin(a), math.sin(e), math.cos(e) * math.cos(a)])
        centre = np.asarray(target, dtype=np.float64) + distance * direction
        forward = -direction
        right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        rotation = _rot_z(math.radians(roll_deg)) @ np.stack([right, down, forward])
        return cls(rotation=rotation, translation=-rotation @ centre, focal_length=float(focal_length),
                   width=int(width), height=int(height))


def _rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def focal_for_fov(fov_deg: float, height: int) -> float:
    """Focal length in pixels for a vertical field of view."""
    return height / 2.0 / math.tan(math.radians(fov_deg) / 2.0)


#: Joints whose mean depth is the depth at which the crop camera is exact (the trunk: limbs reach toward or away
#: from the camera, the trunk stays at the body's distance).
TRUNK_JOINTS: tuple[int, ...] = tuple(SMPL_JOINT_NAMES.index(name) for name in (
    "pelvis", "left_hip", "right_hip", "spine1", "spine2", "spine3", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder"))


def reference_depth(joints3d: np.ndarray) -> np.ndarray:
    """(..., 24, 3) camera-frame joints -> (...,) the depth a crop camera is exact at: the trunk's mean depth."""
    return np.asarray(joints3d)[..., TRUNK_JOINTS, 2].mean(axis=-1)


def crop_camera(*, transl: np.ndarray, depth: np.ndarray, focal_length: float | np.ndarray,
                principal_point: np.ndarray | tuple[float, float], crop_centre: np.ndarray,
                crop_side: np.ndarray) -> np.ndarray:
    """The weak-perspective camera (s, tx, ty) of a square crop, for SMPL output without translation.

    Exact for points at depth ``depth``: ``s = 2 f / (depth * side)`` and ``(tx, ty) = transl[:2] + (c - crop_centre)
    * depth / f`` with ``c`` the principal point, so that ``s * (X[:2] + (tx, ty))`` is the crop coordinate (as
    :class:`int_model.crops.CropTransform`) of the pixel ``f (X + transl) / Z + c`` of a point X at that depth.

    Args:
        transl: (..., 3) camera-frame translation of the SMPL output.
        depth: (...,) reference depth (:func:`reference_depth`).
        focal_length: pixels, scalar or (...,); principal_point: (..., 2) or (2,) pixels.
        crop_centre: (..., 2) pixels; crop_side: (...,) pixels.
    Returns:
        (..., 3)
    """
    focal = np.asarray(focal_length, dtype=np.float64)
    principal = np.asarray(principal_point, dtype=np.float64)
    depth = np.asarray(depth, dtype=np.float64)
    scale = 2.0 * focal / (depth * crop_side)
    shift = np.asarray(transl, np.float64)[..., :2] + (principal - crop_centre) * (depth / focal)[..., None]
    return np.concatenate([scale[..., None], shift], axis=-1)


__all__ = [
    "TRUNK_JOINTS",
    "Camera",
    "crop_camera",
    "focal_for_fov",
    "reference_depth",
]
