"""Joint regressors: each joint as a sparse non-negative mix of the vertices around it, fitted by NNLS.

A fit reproduces its joint on the template and along every shape direction, so a shaped mesh regresses
to the shaped joints. The 24 SMPL joints and the 17 Human3.6M-style joints get one regressor each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from ...constants import H36M_JOINT_NAMES, NUM_BETAS, NUM_JOINTS, SMPL_PARENTS
from .proportions import REST, proportions_for_betas
from .shape_directions import SHAPE_STEP
from .skeleton import J, h36m_targets, rest_joints


@dataclass(frozen=True)
class RegressorSettings:
    """Joint regressor fit: candidate vertices around each joint and the weight of the shape rows."""

    slab: float = 0.035  # half thickness of the slab across the bone through the joint
    radius: float = 0.25
    max_candidates: int = 160
    shape_row_weight: float = 3.0
    sum_row_weight: float = 10.0
    min_weight: float = 1e-4


REGRESSOR = RegressorSettings()


def _fit_regressor(
    vertices: np.ndarray,
    shapedirs: np.ndarray,
    targets: np.ndarray,
    target_dirs: np.ndarray,
    axes: np.ndarray,
    allowed: list[np.ndarray],
) -> np.ndarray:
    """Non-negative sparse regressor (K, V), rows sum to 1, for targets (K,3) moving with target_dirs (K,3,10).

    ``axes (K, 3)``: the bone direction at each target (candidates lie in a slab across it);
    ``allowed``: per target, a boolean (V,) mask of the vertices it may use.
    """
    rows = np.zeros((len(targets), len(vertices)))
    for k, (target, axis) in enumerate(zip(targets, axes, strict=True)):
        offset = vertices - target
        along = np.abs(offset @ axis)
        dist = np.linalg.norm(offset, axis=1)
        cand = np.flatnonzero(allowed[k] & (along < REGRESSOR.slab) & (dist < REGRESSOR.radius))
        cand = cand[np.argsort(dist[cand])[: REGRESSOR.max_candidates]]
        if len(cand) == 0:
            raise RuntimeError(f"procedural body: no vertices around regressor target {k} at {target}")
        design = [vertices[cand].T] + [REGRESSOR.shape_row_weight * shapedirs[cand, :, i].T for i in range(NUM_BETAS)]
        rhs = [target] + [REGRESSOR.shape_row_weight * target_dirs[k, :, i] for i in range(NUM_BETAS)]
        design.append(REGRESSOR.sum_row_weight * np.ones((1, len(cand))))
        rhs.append(np.array([REGRESSOR.sum_row_weight]))
        w, _ = nnls(np.concatenate(design), np.concatenate(rhs), maxiter=50 * len(cand))
        w[w < REGRESSOR.min_weight] = 0.0
        rows[k, cand] = w / w.sum()
    return rows


def _bone_axes(joints: np.ndarray) -> np.ndarray:
    """A unit bone direction at each SMPL joint (towards its child, or from its parent at the leaves)."""
    axes = np.zeros((NUM_JOINTS, 3))
    children: dict[int, list[int]] = {}
    for child, parent in enumerate(SMPL_PARENTS):
        children.setdefault(parent, []).append(child)
    for j in range(NUM_JOINTS):
        kids = children.get(j, [])
        if j in (J["pelvis"], J["spine3"]):
            axes[j] = (0.0, 1.0, 0.0)
        elif kids:
            axes[j] = joints[kids[0]] - joints[j]
        else:
            axes[j] = joints[j] - joints[SMPL_PARENTS[j]]
    return axes / np.linalg.norm(axes, axis=1, keepdims=True)


def _neighbourhood(labels: np.ndarray, joint: int) -> np.ndarray:
    """Vertices whose part label is the joint, its parent or its children (V,) bool."""
    near = {joint, SMPL_PARENTS[joint]} | {c for c, p in enumerate(SMPL_PARENTS) if p == joint}
    return np.isin(labels, sorted(near - {-1}))


H36M_FROM_SMPL = {  # which SMPL joint's neighbourhood and bone axis each H36M joint uses
    "pelvis": "pelvis",
    "right_hip": "right_hip",
    "right_knee": "right_knee",
    "right_ankle": "right_ankle",
    "left_hip": "left_hip",
    "left_knee": "left_knee",
    "left_ankle": "left_ankle",
    "spine": "spine1",
    "thorax": "spine3",
    "neck_base": "head",
    "head": "head",
    "left_shoulder": "left_shoulder",
    "left_elbow": "left_elbow",
    "left_wrist": "left_wrist",
    "right_shoulder": "right_shoulder",
    "right_elbow": "right_elbow",
    "right_wrist": "right_wrist",
}


def joint_regressors(
    vertices: np.ndarray, shapedirs: np.ndarray, joint_dirs: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """SMPL (24, V) and H36M (17, V) joint regressors consistent with the shape directions."""
    joints = rest_joints(REST)
    axes = _bone_axes(joints)
    allowed = [_neighbourhood(labels, j) for j in range(NUM_JOINTS)]
    smpl = _fit_regressor(vertices, shapedirs, joints, joint_dirs, axes, allowed)
    h36m = h36m_targets(REST)
    step_dirs = np.zeros((len(h36m), 3, NUM_BETAS))
    for i in range(NUM_BETAS):
        step = np.zeros(NUM_BETAS)
        step[i] = SHAPE_STEP
        step_dirs[:, :, i] = (
            h36m_targets(proportions_for_betas(step)) - h36m_targets(proportions_for_betas(-step))
        ) / (2 * SHAPE_STEP)
    source = [J[H36M_FROM_SMPL[name]] for name in H36M_JOINT_NAMES]
    h36m_allowed = [
        np.ones(len(vertices), dtype=bool) if name in ("neck_base", "head") else allowed[j]
        for name, j in zip(H36M_JOINT_NAMES, source, strict=True)
    ]
    h36m_axes = axes[source]
    h36m_axes[[H36M_JOINT_NAMES.index("neck_base"), H36M_JOINT_NAMES.index("head")]] = (0.0, 1.0, 0.0)
    h36m_reg = _fit_regressor(vertices, shapedirs, h36m, step_dirs, h36m_axes, h36m_allowed)
    return smpl, h36m_reg
