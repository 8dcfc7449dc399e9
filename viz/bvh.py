"""BVH motion files of the SMPL skeleton, one per track (Blender's BVH importer reads them).

Skeleton: the 24 SMPL joints with their kinematic tree; each joint's OFFSET is its rest position minus its
parent's, from the body model's rest joints for the track's (mean) shape, in the body model's y-up frame, so
the rest pose is SMPL's T-pose standing upright. Leaves (feet, head, hands) end in an ``End Site`` half a bone
beyond the joint, along the bone.

Motion: per frame, the root's position and every joint's local rotation as Euler angles in degrees,
channels ``Zrotation Yrotation Xrotation`` (``R = Rz Ry Rx``, the common BVH order) or ``X Y Z``. The
predictions live in the camera frame (x right, y down, z forward); with ``y_up`` (default) the root rotation
and position are turned 180 degrees about x into the y-up frame BVH viewers expect (the same rotation
:mod:`viz.export` applies to meshes), so an upright person stands upright in Blender. The root position is
``joints3d[pelvis] + cam_t`` in metres: the long focal length of ``cam_t`` (see
:mod:`int_model.crops`) puts people tens of metres from the origin.

Forward kinematics of the written channels reproduces the predicted joints (``joints3d + cam_t``, turned to
y-up) for a track of constant shape; the rounding of the written numbers is the only error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from int_model.body_model import BodyModel
from int_model.constants import NUM_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS
from int_model.geometry import axis_angle_to_rotmat
from pipeline.results import PipelineResults

__all__ = ["BVH_ORDERS", "BvhSettings", "continuous_euler", "rest_joints_for_betas", "track_bvh_name", "write_bvh",
           "write_results_bvh"]

#: Rotation orders: BVH channel names in file order; the rotation is their product in that order.
BVH_ORDERS: dict[str, tuple[str, str, str]] = {
    "ZYX": ("Zrotation", "Yrotation", "Xrotation"),
    "XYZ": ("Xrotation", "Yrotation", "Zrotation"),
}
POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")
#: Camera frame (y down, z forward) -> y-up viewer frame: 180 degrees about x.
CAMERA_TO_Y_UP = np.diag([1.0, -1.0, -1.0])
#: An End Site sits this fraction of the leaf's own bone beyond the leaf joint.
END_SITE_FRACTION = 0.5
#: Angles in degrees repeat every turn (see :func:`continuous_euler`).
FULL_TURN_DEG = 360.0


@dataclass(frozen=True)
class BvhSettings:
    """How BVH files are written: Euler ``order`` ("ZYX" or "XYZ"), ``y_up`` conversion, ``decimals``."""

    order: str = "ZYX"
    y_up: bool = True
    decimals: int = 6

    def __post_init__(self) -> None:
        if self.order not in BVH_ORDERS:
            raise ValueError(f"order must be one of {tuple(BVH_ORDERS)}, got {self.order!r}")


def _children(parents: Sequence[int]) -> list[list[int]]:
    kids: list[list[int]] = [[] for _ in parents]
    for joint, parent in enumerate(parents):
        if parent >= 0:
            kids[parent].append(joint)
    return kids


def _check_motion(rest_joints: np.ndarray, rotmats: np.ndarray, root_positions: np.ndarray, *, fps: float,
                  num_joints: int) -> None:
    """Raise ValueError, saying which, when the arrays of :func:`write_bvh` do not fit each other."""
    if rest_joints.shape != (num_joints, 3):
        raise ValueError(f"rest_joints must be ({num_joints}, 3), got {rest_joints.shape}")
    if rotmats.ndim != 4 or rotmats.shape[1:] != (num_joints, 3, 3):
        raise ValueError(f"rotmats must be (K, {num_joints}, 3, 3), got {rotmats.shape}")
    frames = rotmats.shape[0]
    if root_positions.shape != (frames, 3):
        raise ValueError(f"root_positions must be ({frames}, 3), got {root_positions.shape}")
    if frames < 1:
        raise ValueError("a BVH file needs at least one frame")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")


def write_bvh(path: str | os.PathLike, *, rest_joints: np.ndarray, rotmats: np.ndarray, root_positions: np.ndarray,
              fps: float, names: Sequence[str] = SMPL_JOINT_NAMES, parents: Sequence[int] = SMPL_PARENTS,
              settings: BvhSettings = BvhSettings()) -> Path:
    """Write one skeleton's motion.

    Args:
        path: the .bvh file to write.
        rest_joints: (J, 3) rest joint positions, body model frame (y up), metres.
        rotmats: (K, J, 3, 3) local joint rotations per frame (SMPL pose, root = global orientation in the
            camera frame).
        root_positions: (K, 3) root joint position per frame, camera frame, metres.
        fps: frames per second.
        names, parents: the kinematic tree (root first, parents before children).
        settings: :class:`BvhSettings`.

    Returns:
        the path written.
    """
    rest_joints = np.asarray(rest_joints, dtype=np.float64)
    rotmats = np.asarray(rotmats, dtype=np.float64)
    root_positions = np.asarray(root_positions, dtype=np.float64)
    _check_motion(rest_joints, rotmats, root_positions, fps=fps, num_joints=len(parents))
    num_joints, frames = len(parents), rotmats.shape[0]

    local = rotmats.copy()
    positions = root_positions.copy()
    if settings.y_up:
        local[:, 0] = CAMERA_TO_Y_UP @ local[:, 0]
        positions = positions @ CAMERA_TO_Y_UP.T
    axes = "".join(name[0] for name in BVH_ORDERS[settings.order])  # e.g. "ZYX", intrinsic
    euler = Rotation.from_matrix(local.reshape(-1, 3, 3)).as_euler(axes, degrees=True).reshape(frames, num_joints, 3)
    euler = continuous_euler(euler)

    fmt = f"{{:.{settings.decimals}f}}"
    kids = _children(parents)
    lines = ["HIERARCHY"]

    def emit(joint: int, depth: int) -> None:
        pad = "\t" * depth
        parent = parents[joint]
        offset = np.zeros(3) if parent < 0 else rest_joints[joint] - rest_joints[parent]
        keyword = "ROOT" if parent < 0 else "JOINT"
        channels = (POSITION_CHANNELS if parent < 0 else ()) + BVH_ORDERS[settings.order]
        lines.append(f"{pad}{keyword} {names[joint]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}\tOFFSET {' '.join(fmt.format(v) for v in offset)}")
        lines.append(f"{pad}\tCHANNELS {len(channels)} {' '.join(channels)}")
        if kids[joint]:
            for child in kids[joint]:
                emit(child, depth + 1)
        else:
            bone = rest_joints[joint] - (rest_joints[parent] if parent >= 0 else rest_joints[joint])
            end = END_SITE_FRACTION * bone
            lines.append(f"{pad}\tEnd Site")
            lines.append(f"{pad}\t{{")
            lines.append(f"{pad}\t\tOFFSET {' '.join(fmt.format(v) for v in end)}")
            lines.append(f"{pad}\t}}")
        lines.append(f"{pad}}}")

    order = _depth_first(parents)
    emit(order[0], 0)
    lines += ["MOTION", f"Frames: {frames}", f"Frame Time: {1.0 / fps:.8f}"]
    for k in range(frames):
        values = list(positions[k])
        for joint in order:
            values.extend(euler[k, joint])
        lines.append(" ".join(fmt.format(v) for v in values))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def _nearest_turn(angles: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``angles`` plus whole turns, each as close as possible to ``reference`` (degrees)."""
    return angles - FULL_TURN_DEG * np.round((angles - reference) / FULL_TURN_DEG)


def continuous_euler(euler: np.ndarray) -> np.ndarray:
    """(K, J, 3) Tait-Bryan angles (degrees) made continuous over the K frames.

    Every rotation has two Tait-Bryan triplets, ``(a, b, c)`` and ``(a + 180, 180 - b, c + 180)``, and each angle
    is free up to whole turns. Frame by frame, the triplet nearest to the previous frame's is kept, so curves do
    not jump by 180 or 360 degrees where a decomposition switches branch (e.g. a turn past 90 degrees about the
    middle axis); interpolating between keyframes then turns the short way."""
    out = np.array(euler, dtype=np.float64)
    half = FULL_TURN_DEG / 2.0
    for k in range(1, len(out)):
        previous, current = out[k - 1], out[k]
        alternative = np.stack([current[:, 0] + half, half - current[:, 1], current[:, 2] + half], axis=-1)
        candidates = [_nearest_turn(c, previous) for c in (current, alternative)]
        distances = [np.abs(c - previous).sum(axis=-1) for c in candidates]
        out[k] = np.where((distances[1] < distances[0])[:, None], candidates[1], candidates[0])
    return out


def _depth_first(parents: Sequence[int]) -> list[int]:
    """Joints in the order the hierarchy lists them (depth first, children in index order): the order of the
    channels in each MOTION line."""
    kids = _children(parents)
    roots = [j for j, p in enumerate(parents) if p < 0]
    if len(roots) != 1:
        raise ValueError(f"the skeleton needs exactly one root, found {len(roots)}")
    out: list[int] = []
    stack = [roots[0]]
    while stack:
        joint = stack.pop()
        out.append(joint)
        stack.extend(reversed(kids[joint]))
    return out


def rest_joints_for_betas(body_model: BodyModel, betas: np.ndarray) -> np.ndarray:
    """(24, 3) rest joints (identity rotations, body model frame, y up) for one shape ``betas`` (10,)."""
    eye = torch.eye(3).expand(1, NUM_JOINTS, 3, 3).contiguous()
    with torch.no_grad():
        out = body_model(rotmat=eye, betas=torch.as_tensor(np.asarray(betas, dtype=np.float32)).reshape(1, -1))
    return out.joints[0].double().cpu().numpy()


def track_bvh_name(track_id: int) -> str:
    """File name of one track's motion."""
    return f"track_{int(track_id):03d}.bvh"


def write_results_bvh(results: PipelineResults, *, body_model: BodyModel, out_dir: str | os.PathLike,
                      settings: BvhSettings = BvhSettings()) -> list[Path]:
    """One BVH file per track of a run (frames from the track's first to its last); returns the paths.

    The rest skeleton uses the track's mean betas; rotations come from ``pose``, the root position from
    ``joints3d[:, 0] + cam_t``.
    """
    paths = []
    for track_id in results.track_ids:
        rows = results.rows_of_track(int(track_id))
        rest = rest_joints_for_betas(body_model, results.betas[rows].mean(axis=0))
        pose = torch.as_tensor(results.pose[rows], dtype=torch.float64).reshape(len(rows), NUM_JOINTS, 3)
        rotmats = axis_angle_to_rotmat(pose).numpy()
        root = results.joints3d[rows, 0].astype(np.float64) + results.cam_t[rows]
        paths.append(write_bvh(Path(out_dir) / track_bvh_name(int(track_id)), rest_joints=rest, rotmats=rotmats,
                               root_positions=root, fps=results.fps, settings=settings))
    return paths
