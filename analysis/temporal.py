"""Temporal attention per joint: T x T matrices, their profile over frame lag, the strongest frame pairs,
and joint rotation curves over time with their acceleration.

The model's temporal attention (``IntOutput.attention.temporal``) is (B, L_t, H_t, J, T, T): per temporal
block, head and joint, query frame (row) by key frame (column); every row sums to 1. Functions here take
one clip's (L_t, H_t, J, T, T) slice (``attention.temporal[b]``) as a numpy array or a tensor and never
modify it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from int_model.geometry import mean_rotations as _mean_rotations
from int_model.geometry import relative_rotation_vectors

__all__ = [
    "MEAN",
    "FramePair",
    "JointAngleCurves",
    "Selection",
    "attention_peak_distance",
    "joint_angle_curves",
    "lag_profile",
    "select_temporal",
    "strongest_pairs",
]

#: Pass as ``layer`` or ``head`` to average over all layers or heads.
MEAN: Literal["mean"] = "mean"
Selection = int | Literal["mean"]

#: Pairs closer than this many frames are the diagonal's neighbourhood, not a "pair" (the paper's lines join
#: distant frames).
DEFAULT_MIN_LAG = 2
#: Strongest pairs listed per joint by default.
DEFAULT_NUM_PAIRS = 5


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _pick(array: np.ndarray, axis: int, selection: Selection, what: str) -> np.ndarray:
    if isinstance(selection, str):
        if selection != MEAN:
            raise ValueError(f"{what} must be an index or {MEAN!r}, got {selection!r}")
        return array.mean(axis=axis)
    count = array.shape[axis]
    if not -count <= int(selection) < count:
        raise IndexError(f"{what} {selection} out of range for {count} {what}s")
    return np.take(array, int(selection), axis=axis)


def select_temporal(attention: Any, *, layer: Selection = MEAN, head: Selection = MEAN) -> np.ndarray:
    """One clip's temporal attention (L_t, H_t, J, T, T) -> (J, T, T) for a layer and head (or their means).

    Averages of row-stochastic matrices stay row-stochastic, so every row of the result sums to 1.
    """
    a = _as_numpy(attention)
    if a.ndim != 5 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"expected temporal attention (L_t, H_t, J, T, T), got {a.shape}")
    a = _pick(a, 1, head, "head")
    return _pick(a, 0, layer, "layer")


def lag_profile(matrix: Any) -> np.ndarray:
    """Mean attention as a function of frame distance: (T, T) -> (T,) with ``p[d]`` the mean of
    ``A[i, i + d]`` and ``A[i + d, i]`` over all i (``p[0]`` the diagonal's mean)."""
    a = _as_numpy(matrix)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"expected a (T, T) matrix, got {a.shape}")
    t = a.shape[0]
    out = np.empty(t)
    out[0] = np.diagonal(a).mean()
    for d in range(1, t):
        out[d] = 0.5 * (np.diagonal(a, d).mean() + np.diagonal(a, -d).mean())
    return out


@dataclass(frozen=True)
class FramePair:
    """One off-diagonal entry of a temporal attention matrix.

    Attributes:
        query: frame that attends (row).
        key: frame attended to (column).
        weight: attention probability ``A[query, key]``.
        lag: ``abs(key - query)`` in frames.
    """

    query: int
    key: int
    weight: float
    lag: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def strongest_pairs(matrix: Any, *, count: int = DEFAULT_NUM_PAIRS, min_lag: int = DEFAULT_MIN_LAG) -> list[FramePair]:
    """The ``count`` largest entries of a (T, T) attention matrix at least ``min_lag`` frames off the diagonal,
    strongest first (ties: smaller query, then key, first)."""
    a = _as_numpy(matrix)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"expected a (T, T) matrix, got {a.shape}")
    rows, cols = np.indices(a.shape)
    keep = np.abs(rows - cols) >= min_lag
    values, q, k = a[keep], rows[keep], cols[keep]
    order = np.lexsort((k, q, -values))[: max(count, 0)]
    return [FramePair(int(q[i]), int(k[i]), float(values[i]), int(abs(k[i] - q[i]))) for i in order]


def attention_peak_distance(matrix: Any, *, min_lag: int = DEFAULT_MIN_LAG) -> int | None:
    """The frame distance at which the lag profile (:func:`lag_profile`) is highest beyond ``min_lag - 1``
    frames: where, on average, a joint looks furthest back or ahead most strongly. None for T <= min_lag."""
    profile = lag_profile(matrix)
    if len(profile) <= min_lag:
        return None
    return int(min_lag + np.argmax(profile[min_lag:]))


@dataclass(frozen=True)
class JointAngleCurves:
    """Each joint's rotation over a clip as one signed angle, with its frame-to-frame acceleration.

    Attributes:
        angle_deg: (T, J) rotation relative to the joint's reference rotation, projected on its main axis of
            motion, degrees.
        acceleration_deg: (T - 2, J) magnitude of the second difference of the relative rotation vectors,
            ``|r(t+1) - 2 r(t) + r(t-1)|``, degrees per frame^2, for frames 1 .. T-2.
        axes: (J, 3) each joint's main axis of motion (unit; its largest component positive).
        reference: (J, 3, 3) each joint's reference rotation (the clip's mean rotation unless given).
    """

    angle_deg: np.ndarray
    acceleration_deg: np.ndarray
    axes: np.ndarray
    reference: np.ndarray

    @property
    def mean_abs_acceleration(self) -> np.ndarray:
        """(J,) mean acceleration magnitude per joint, degrees per frame^2: a jitter number."""
        if len(self.acceleration_deg) == 0:
            return np.zeros(self.acceleration_deg.shape[1])
        return self.acceleration_deg.mean(axis=0)


def _main_axes(rotvecs: np.ndarray) -> np.ndarray:
    """(T, J, 3) -> (J, 3) first principal direction of each joint's rotation vectors (x axis if static)."""
    t, j, _ = rotvecs.shape
    axes = np.tile(np.array([1.0, 0.0, 0.0]), (j, 1))
    for joint in range(j):
        r = rotvecs[:, joint]
        centred = r - r.mean(axis=0)
        if t > 1 and np.abs(centred).max() > 0:
            axis = np.linalg.svd(centred, full_matrices=False)[2][0]
            axes[joint] = axis if axis[np.argmax(np.abs(axis))] > 0 else -axis
    return axes


def joint_angle_curves(pose: Any, *, like: JointAngleCurves | None = None) -> JointAngleCurves:
    """Rotation curves of all joints over a clip.

    Args:
        pose: (T, 72) SMPL axis-angle, (T, J, 3) axis-angle or (T, J, 3, 3) rotation matrices, consecutive
            frames. Not modified.
        like: curves of another prediction of the same clip (e.g. the temporal model's) whose reference
            rotations and axes are reused, so that both sets of curves are in the same terms.

    Returns:
        :class:`JointAngleCurves`. The acceleration uses the full 3D rotation vectors, so jitter about any
        axis shows; the angle curve shows the motion about the main axis only.
    """
    reference = None if like is None else like.reference
    rotvecs = relative_rotation_vectors(_as_numpy(pose), reference=reference)  # (T, J, 3)
    if reference is None:
        reference = _mean_rotations(_as_numpy(pose))
    axes = _main_axes(rotvecs) if like is None else like.axes
    angles = np.einsum("tjc,jc->tj", rotvecs, axes)
    t = rotvecs.shape[0]
    accel = (np.linalg.norm(rotvecs[2:] - 2 * rotvecs[1:-1] + rotvecs[:-2], axis=-1) if t >= 3
             else np.zeros((0, rotvecs.shape[1])))
    return JointAngleCurves(angle_deg=np.rad2deg(angles), acceleration_deg=np.rad2deg(accel), axes=axes,
                            reference=reference)
