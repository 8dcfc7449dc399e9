"""Anatomical joint angles: the one table of joint ranges and the conversion to and from SMPL rotations.

A joint's pose is three **anatomical angles** (degrees) in the joint's own Euler convention
(:data:`JOINT_RANGES`): ``R = R_a0(q0) @ R_a1(q1) @ R_a2(q2)`` where ``a`` is the joint's ``axes`` string
(e.g. ``"xzy"``). The table lists left and centre joints; a right joint uses its left mirror's table in
*anatomical* terms (e.g. "abduction > 0 is outward" on both sides): its y and z angles change sign when
converted to SMPL (the mirror about the y-z plane).

Body frame (SMPL rest pose): y up, the person faces +z, the body's left side is +x. A joint's rotation is
expressed in its parent's frame, which is aligned with the body frame in the rest pose.

Signs (left side): hip flexion (thigh forward) is x < 0, knee flexion x > 0, ankle plantar flexion x > 0,
spine flexion (bending forward) x > 0, shoulder elevation (arm up, from the T-pose) z > 0 and arm down
z = -90, shoulder flexion (arm forward, arm hanging) x < 0, shoulder twist (external rotation) x < 0,
elbow flexion y < 0. The root (pelvis) angles are yaw, pitch and roll in the person's heading frame.

The synthetic motions are written in these angles, and the token priors are judged by how far they leave
the ranges (:func:`range_excess`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from int_model.constants import NUM_JOINTS, SMPL_FLIP_PERM, SMPL_JOINT_NAMES

LEFT_RIGHT: tuple[tuple[int, int], ...] = tuple(
    (index, SMPL_FLIP_PERM[index]) for index, name in enumerate(SMPL_JOINT_NAMES) if name.startswith("left_")
)


# ----------------------------------------------------------------------------------------------
# The one table of joint ranges (degrees, anatomical convention, left / centre joints)
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JointRange:
    """The range of one joint: ``R = R_axes[0](q0) @ R_axes[1](q1) @ R_axes[2](q2)``, angles in degrees.

    Attributes:
        axes: three of ``'x'``, ``'y'``, ``'z'`` (repeats allowed, e.g. the shoulder's ``"xzx"``).
        low, high: limits of (q0, q1, q2).
        neutral: relaxed standing pose (inside the limits).
        spread: fraction of the distance from ``neutral`` to each limit that non-periodic motion samples.
    """

    axes: str
    low: tuple[float, float, float]
    high: tuple[float, float, float]
    neutral: tuple[float, float, float] = (0.0, 0.0, 0.0)
    spread: float = 0.4


_ROOT = JointRange("yxz", (-40, -10, -10), (40, 25, 10), spread=0.5)  # yaw, pitch (forward > 0), roll
_SPINE = {
    "spine1": JointRange("xzy", (-20, -20, -25), (40, 20, 25)),
    "spine2": JointRange("xzy", (-15, -15, -25), (30, 15, 25)),
    "spine3": JointRange("xzy", (-10, -10, -20), (20, 10, 20)),
    "neck": JointRange("xzy", (-25, -20, -40), (35, 20, 40)),
    "head": JointRange("xzy", (-25, -20, -45), (30, 20, 45)),
}
_LEFT = {
    # flexion (x < 0 forward), abduction (z > 0 outward), twist about the thigh (y)
    "left_hip": JointRange("xzy", (-110, -15, -35), (25, 45, 35), neutral=(0, 3, 0), spread=0.4),
    # flexion only (x > 0), small twist
    "left_knee": JointRange("xyz", (0, -8, -2), (140, 8, 2), neutral=(4, 0, 0), spread=0.35),
    # plantar flexion (x > 0), inversion (z), twist (y)
    "left_ankle": JointRange("xzy", (-25, -15, -15), (45, 15, 15), spread=0.3),
    # toes: extension (x < 0)
    "left_foot": JointRange("xyz", (-30, -2, -2), (10, 2, 2), spread=0.3),
    # protraction (y), elevation (z > 0 up), small x
    "left_collar": JointRange("yzx", (-12, -8, -5), (12, 20, 5), spread=0.3),
    # flexion about the body's x axis (forward < 0), elevation from the T-pose (z, -90 = arm down), twist
    # about the upper arm (x < 0 external rotation)
    "left_shoulder": JointRange("xzx", (-150, -85, -95), (50, 85, 70), neutral=(0, -78, 0), spread=0.55),
    # flexion (y < 0), forearm twist (x), small z
    "left_elbow": JointRange("yxz", (-145, -60, -3), (0, 60, 3), neutral=(-12, 0, 0), spread=0.5),
    # flexion / extension (z), deviation (y), twist (x)
    "left_wrist": JointRange("zyx", (-60, -20, -25), (60, 30, 25), spread=0.4),
    # fingers curl (z < 0)
    "left_hand": JointRange("zyx", (-45, -3, -3), (5, 3, 3), neutral=(-10, 0, 0), spread=0.4),
}


def _joint_ranges() -> tuple[JointRange, ...]:
    table: dict[str, JointRange] = {"pelvis": _ROOT, **_SPINE, **_LEFT}
    for name, value in _LEFT.items():
        table[name.replace("left_", "right_", 1)] = value
    return tuple(table[name] for name in SMPL_JOINT_NAMES)


#: Per SMPL joint (SMPL order), its range in the anatomical convention (right joints = their left mirror).
JOINT_RANGES: tuple[JointRange, ...] = _joint_ranges()
LOW = np.array([r.low for r in JOINT_RANGES], dtype=np.float64)  # (24, 3) degrees
HIGH = np.array([r.high for r in JOINT_RANGES], dtype=np.float64)
NEUTRAL = np.array([r.neutral for r in JOINT_RANGES], dtype=np.float64)
SPREAD = np.array([r.spread for r in JOINT_RANGES], dtype=np.float64)


def _mirror_signs() -> np.ndarray:
    """(24, 3) +-1: anatomical -> SMPL sign of each angle (right joints negate y and z angles)."""
    signs = np.ones((NUM_JOINTS, 3))
    for _, right in LEFT_RIGHT:
        for k, axis in enumerate(JOINT_RANGES[right].axes):
            if axis in "yz":
                signs[right, k] = -1.0
    return signs


MIRROR_SIGNS = _mirror_signs()


def _elemental(axis: str, radians: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations about a coordinate axis."""
    c, s = np.cos(radians), np.sin(radians)
    one, zero = np.ones_like(c), np.zeros_like(c)
    rows = {
        "x": ((one, zero, zero), (zero, c, -s), (zero, s, c)),
        "y": ((c, zero, s), (zero, one, zero), (-s, zero, c)),
        "z": ((c, -s, zero), (s, c, zero), (zero, zero, one)),
    }[axis]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def angles_to_rotmat(angles: np.ndarray) -> np.ndarray:
    """Anatomical joint angles (..., 24, 3) in degrees -> SMPL joint rotations (..., 24, 3, 3)."""
    radians = np.deg2rad(np.asarray(angles, dtype=np.float64) * MIRROR_SIGNS)
    out = np.empty((*radians.shape[:-1], 3, 3))
    for j, joint_range in enumerate(JOINT_RANGES):
        rot = _elemental(joint_range.axes[0], radians[..., j, 0])
        for k in (1, 2):
            rot = rot @ _elemental(joint_range.axes[k], radians[..., j, k])
        out[..., j, :, :] = rot
    return out


def angles_to_axis_angle(angles: np.ndarray) -> np.ndarray:
    """Anatomical joint angles (..., 24, 3) in degrees -> SMPL pose (..., 72) axis-angle (radians)."""
    rotmat = angles_to_rotmat(angles)
    rotvec = Rotation.from_matrix(rotmat.reshape(-1, 3, 3)).as_rotvec()
    return rotvec.reshape(*rotmat.shape[:-3], NUM_JOINTS * 3)


def clip_to_ranges(angles: np.ndarray) -> np.ndarray:
    """Angles (..., 24, 3) clipped into :data:`JOINT_RANGES`."""
    return np.clip(angles, LOW, HIGH)


def _wrap_deg(angles: np.ndarray) -> np.ndarray:
    return (angles + 180.0) % 360.0 - 180.0


def range_excess(angles: np.ndarray) -> np.ndarray:
    """Degrees by which anatomical angles (..., 24, 3) lie outside :data:`JOINT_RANGES` (0 inside)."""
    return np.maximum(LOW - angles, 0.0) + np.maximum(angles - HIGH, 0.0)


def rotmat_to_angles(rotmat: np.ndarray) -> np.ndarray:
    """SMPL joint rotations (..., 24, 3, 3) -> anatomical angles (..., 24, 3) in degrees: the inverse of
    :func:`angles_to_rotmat`.

    Three Euler angles have two solutions per rotation; of the two, the one nearer the joint's range (least
    :func:`range_excess`, then nearest its neutral pose) is returned, so a pose inside the ranges comes back
    as the angles that made it.
    """
    rotmat = np.asarray(rotmat, dtype=np.float64)
    lead = rotmat.shape[:-3]
    out = np.empty((*lead, NUM_JOINTS, 3))
    for j, joint_range in enumerate(JOINT_RANGES):
        axes = joint_range.axes
        with warnings.catch_warnings():  # gimbal lock (e.g. a shoulder at rest) has a solution all the same
            warnings.simplefilter("ignore", UserWarning)
            first = Rotation.from_matrix(rotmat[..., j, :, :].reshape(-1, 3, 3)).as_euler(axes.upper(), degrees=True)
        second = first.copy()
        second[:, 0] += 180.0
        second[:, 2] += 180.0
        # Proper Euler angles (first axis repeated) flip the middle angle's sign; Tait-Bryan mirror it about 90.
        second[:, 1] = -first[:, 1] if axes[0] == axes[2] else 180.0 - first[:, 1]
        candidates = np.stack([_wrap_deg(first), _wrap_deg(second)]) / MIRROR_SIGNS[j]  # (2, N, 3) anatomical
        excess = np.maximum(LOW[j] - candidates, 0.0) + np.maximum(candidates - HIGH[j], 0.0)
        distance = np.abs(candidates - NEUTRAL[j]).sum(-1)
        pick = np.lexsort((distance, excess.sum(-1)), axis=0)[0]  # (N,) 0 or 1
        chosen = candidates[pick, np.arange(candidates.shape[1])]
        if axes[0] == axes[2]:
            chosen = _rebalance_near_gimbal_lock(chosen, j)
        out[..., j, :] = chosen.reshape(*lead, 3)
    return out


#: Below this middle angle (degrees) a proper Euler set (the shoulder's x-z-x) is near gimbal lock: only the sum
#: of its outer angles is well defined, and the decomposition may split it into two large opposite angles.
GIMBAL_LOCK_DEG = 5.0


def _rebalance_near_gimbal_lock(angles: np.ndarray, joint: int) -> np.ndarray:
    """Anatomical angles (N, 3) of a proper-Euler joint; where the middle angle is within
    :data:`GIMBAL_LOCK_DEG` of 0 and the angles leave the joint's range, the outer angles' sum is split evenly
    about the neutral pose instead, when that leaves the range by less. The rotation then moves by at most
    about twice the middle angle (a shoulder 2 degrees from the T-pose is not 80 degrees twisted either way)."""
    low, high, neutral = LOW[joint], HIGH[joint], NEUTRAL[joint]
    excess = (np.maximum(low - angles, 0.0) + np.maximum(angles - high, 0.0)).sum(-1)
    near = (np.abs(angles[:, 1]) < GIMBAL_LOCK_DEG) & (excess > 0)
    if not near.any():
        return angles
    total = angles[near, 0] + angles[near, 2]
    centre = neutral[0] + neutral[2]
    total = centre + _wrap_deg(total - centre)
    balanced = angles[near].copy()
    balanced[:, 0] = neutral[0] + (total - centre) / 2
    balanced[:, 2] = total - balanced[:, 0]
    better = (np.maximum(low - balanced, 0.0) + np.maximum(balanced - high, 0.0)).sum(-1) < excess[near]
    out = angles.copy()
    rows = np.flatnonzero(near)[better]
    out[rows] = balanced[better]
    return out
