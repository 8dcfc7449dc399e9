"""Rotations and cameras: 6D <-> rotation matrix <-> axis-angle, weak-perspective projection, and the numpy
rotation maths of the analyses (a clip's mean rotation per joint, rotations relative to it).

The torch functions are batched over leading dimensions and differentiable where it matters. The numpy ones
work on whole clips in float64 through scipy's :class:`~scipy.spatial.transform.Rotation`. The anatomical
joint angles and their ranges are in :mod:`int_model.joint_ranges`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

_EPS = 1e-8


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """6D rotation (Zhou et al. 2019) to rotation matrix by Gram-Schmidt.

    The 6 numbers are read as a 3x2 matrix whose columns a1, a2 span the first two columns of the result
    (the layout of the SPIN / VIBE / INT heads, so that their checkpoints mean the same here).

    Args:
        x: (..., 6)
    Returns:
        (..., 3, 3) rotation matrices (orthonormal, det +1).
    """
    a = x.reshape(*x.shape[:-1], 3, 2)
    a1, a2 = a[..., 0], a[..., 1]
    b1 = F.normalize(a1, dim=-1, eps=_EPS)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1, eps=_EPS)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1)


def rotmat_to_rot6d(rotmat: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rot6d_to_rotmat` for rotation matrices: (..., 3, 3) -> (..., 6)."""
    return rotmat[..., :, :2].reshape(*rotmat.shape[:-2], 6)


def axis_angle_to_rotmat(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: (..., 3) axis-angle (radians) -> (..., 3, 3)."""
    angle = axis_angle.norm(dim=-1, keepdim=True).clamp_min(_EPS)
    axis = axis_angle / angle
    cos, sin = torch.cos(angle)[..., None], torch.sin(angle)[..., None]
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack((zero, -z, y, z, zero, -x, -y, x, zero), dim=-1).reshape(*axis.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand_as(skew)
    outer = axis[..., :, None] * axis[..., None, :]
    return cos * eye + sin * skew + (1 - cos) * outer


def rotmat_to_quaternion(rotmat: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 4) unit quaternion (w, x, y, z) with w >= 0, stable for every angle."""
    m = rotmat
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # Four candidate solutions; pick per element the one with the largest (best-conditioned) denominator.
    q_abs = torch.sqrt(
        torch.stack(
            (1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22), dim=-1
        ).clamp_min(0)
    )
    m21_12, m02_20, m10_01 = m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]
    m10p01, m02p20, m21p12 = m[..., 1, 0] + m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] + m[..., 1, 2]
    candidates = torch.stack(
        (
            torch.stack((q_abs[..., 0] ** 2, m21_12, m02_20, m10_01), dim=-1),
            torch.stack((m21_12, q_abs[..., 1] ** 2, m10p01, m02p20), dim=-1),
            torch.stack((m02_20, m10p01, q_abs[..., 2] ** 2, m21p12), dim=-1),
            torch.stack((m10_01, m02p20, m21p12, q_abs[..., 3] ** 2), dim=-1),
        ),
        dim=-2,
    ) / (2.0 * q_abs[..., :, None].clamp_min(0.1))
    best = q_abs.argmax(dim=-1)
    quat = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    quat = F.normalize(quat, dim=-1)
    return torch.where(quat[..., :1] < 0, -quat, quat)


def quaternion_to_axis_angle(quat: torch.Tensor) -> torch.Tensor:
    """(..., 4) quaternion (w, x, y, z) -> (..., 3) axis-angle with angle in [0, pi]."""
    quat = torch.where(quat[..., :1] < 0, -quat, quat)
    xyz = quat[..., 1:]
    sin_half = xyz.norm(dim=-1, keepdim=True)
    half = torch.atan2(sin_half, quat[..., :1])
    angle = 2 * half
    # angle / sin(angle/2), with its limit 2 near zero.
    small = sin_half < 1e-6
    factor = torch.where(small, 2.0 + angle**2 / 12, angle / sin_half.clamp_min(1e-6))
    return xyz * factor


def rotmat_to_axis_angle(rotmat: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 3) axis-angle, robust at 0 and pi (through quaternions)."""
    return quaternion_to_axis_angle(rotmat_to_quaternion(rotmat))


def weak_perspective_project(points: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """Project 3D points into normalised crop coordinates ([-1, 1]) with a weak-perspective camera.

    ``x_2d = s * (X[:2] + (tx, ty))`` (the VIBE / SPIN convention): x right, y down, in units of half the
    crop size.

    Args:
        points: (..., N, 3) in the camera frame of the body model.
        cam: (..., 3) as (s, tx, ty).
    Returns:
        (..., N, 2)
    """
    scale, trans = cam[..., None, :1], cam[..., None, 1:]
    return scale * (points[..., :2] + trans)


# ----------------------------------------------------------------------------------------------
# numpy: clips of poses
# ----------------------------------------------------------------------------------------------
def pose_rotmats(pose: np.ndarray) -> np.ndarray:
    """(T, 3J) or (T, J, 3) axis-angle, or (T, J, 3, 3) rotation matrices -> (T, J, 3, 3) float64."""
    from scipy.spatial.transform import Rotation

    p = np.asarray(pose, dtype=np.float64)
    if p.ndim == 4 and p.shape[-2:] == (3, 3):
        return p
    if p.ndim == 2:
        if p.shape[1] % 3:
            raise ValueError(f"flat pose must have 3 * J columns, got {p.shape}")
        p = p.reshape(p.shape[0], -1, 3)
    if p.ndim != 3 or p.shape[-1] != 3:
        raise ValueError(f"pose must be (T, 3J), (T, J, 3) or (T, J, 3, 3), got {np.shape(pose)}")
    return Rotation.from_rotvec(p.reshape(-1, 3)).as_matrix().reshape(*p.shape, 3)


def mean_rotations(pose: np.ndarray) -> np.ndarray:
    """Each joint's chordal mean rotation over a clip (the rotation nearest the arithmetic mean of its
    matrices): pose as in :func:`pose_rotmats` -> (J, 3, 3)."""
    from scipy.spatial.transform import Rotation

    rot = pose_rotmats(pose)
    return np.stack([Rotation.from_matrix(rot[:, j]).mean().as_matrix() for j in range(rot.shape[1])])


def relative_rotation_vectors(pose: np.ndarray, *, reference: np.ndarray | None = None) -> np.ndarray:
    """Each joint's rotation relative to a reference rotation (default its mean over the clip), as rotation
    vectors.

    Args:
        pose: (T, 24 * 3) or (T, J, 3) axis-angle (SMPL theta), or (T, J, 3, 3) rotation matrices. Not modified.
        reference: (J, 3, 3) reference rotations; None for :func:`mean_rotations` of ``pose``.

    Returns:
        (T, J, 3) radians: ``log(R_ref_j^T R_j(t))``; small and continuous for a joint moving about a pose,
        free of the axis-angle wrap at pi.
    """
    from scipy.spatial.transform import Rotation

    rot = pose_rotmats(pose)
    mean = mean_rotations(rot) if reference is None else np.asarray(reference, dtype=np.float64)
    if mean.shape != (rot.shape[1], 3, 3):
        raise ValueError(f"reference must be ({rot.shape[1]}, 3, 3), got {mean.shape}")
    relative = np.einsum("jba,tjbc->tjac", mean, rot)
    return Rotation.from_matrix(relative.reshape(-1, 3, 3)).as_rotvec().reshape(*relative.shape[:-2], 3)
