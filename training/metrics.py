"""Evaluation metrics in millimetres, as plain functions (the field's definitions).

Inputs are in metres, numpy arrays or tensors (converted to float64 numpy), with any leading frame
dimensions: joints ``(..., J, 3)``, vertices ``(..., V, 3)``. Each function returns the mean over frames as a
float, or the per-frame values with ``reduction="none"``.

* :func:`mpjpe` — mean per-joint position error after aligning the pelvis: the mid-point of the hips for
  SMPL-24 (``joint_set="smpl24"``), joint 0 for Human3.6M-17 (``"h36m17"``). The joint set is inferred from J
  when not given.
* :func:`pa_mpjpe` — after a Procrustes (similarity) alignment of the prediction to the label: scale, rotation
  (a proper rotation: a reflection is never allowed) and translation, solved per frame.
* :func:`pve` — per-vertex error after aligning the pelvis: with ``pred_joints`` / ``gt_joints`` given, each
  mesh is moved by its own joint pelvis (as for MPJPE, the field's convention); without joints, by its vertex
  mean.
* :func:`accel_error` — the second finite difference of the (pelvis-aligned) joints, compared with the
  label's, in mm/frame^2, computed only on triplets of consecutive rows of the same sequence (and all valid).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from int_model.constants import H36M_PELVIS, NUM_H36M_JOINTS, NUM_JOINTS, SMPL_LEFT_HIP, SMPL_RIGHT_HIP

MM_PER_M = 1000.0
JointSet = Literal["smpl24", "h36m17"]
Reduction = Literal["mean", "none"]
# Joints whose mean is the pelvis of each joint set.
PELVIS_JOINTS: dict[str, tuple[int, ...]] = {
    "smpl24": (SMPL_LEFT_HIP, SMPL_RIGHT_HIP),
    "h36m17": (H36M_PELVIS,),
}
_JOINT_SET_BY_COUNT = {NUM_JOINTS: "smpl24", NUM_H36M_JOINTS: "h36m17"}


def _as_numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().to(torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _check_pair(pred: np.ndarray, gt: np.ndarray, what: str) -> None:
    if pred.shape != gt.shape:
        raise ValueError(f"{what}: prediction {pred.shape} and label {gt.shape} differ in shape")
    if pred.ndim < 2 or pred.shape[-1] != 3:
        raise ValueError(f"{what}: expected (..., N, 3) points, got {pred.shape}")


def _reduce(per_frame: np.ndarray, reduction: Reduction) -> float | np.ndarray:
    if reduction == "none":
        return per_frame
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', not {reduction!r}")
    return float(per_frame.mean()) if per_frame.size else float("nan")


def pelvis_of(joints: np.ndarray, joint_set: JointSet | None = None) -> np.ndarray:
    """(..., J, 3) -> (..., 1, 3) pelvis: mid-hip for SMPL-24, joint 0 for H36M-17 (inferred from J if None)."""
    if joint_set is None:
        joint_set = _JOINT_SET_BY_COUNT.get(joints.shape[-2])
        if joint_set is None:
            raise ValueError(
                f"cannot infer the joint set of {joints.shape[-2]} joints; pass joint_set='smpl24' or 'h36m17'"
            )
    if joint_set not in PELVIS_JOINTS:
        raise ValueError(f"joint_set must be one of {', '.join(PELVIS_JOINTS)}, not {joint_set!r}")
    return joints[..., list(PELVIS_JOINTS[joint_set]), :].mean(axis=-2, keepdims=True)


def align_pelvis(joints: np.ndarray | torch.Tensor, joint_set: JointSet | None = None) -> np.ndarray:
    """Joints (..., J, 3) minus their pelvis (see :func:`pelvis_of`)."""
    joints = _as_numpy(joints)
    return joints - pelvis_of(joints, joint_set)


def mpjpe(
    pred: np.ndarray | torch.Tensor,
    gt: np.ndarray | torch.Tensor,
    *,
    joint_set: JointSet | None = None,
    reduction: Reduction = "mean",
) -> float | np.ndarray:
    """Mean per-joint position error (mm) after aligning the pelvis. pred, gt (..., J, 3) in metres."""
    pred, gt = _as_numpy(pred), _as_numpy(gt)
    _check_pair(pred, gt, "mpjpe")
    error = np.linalg.norm(align_pelvis(pred, joint_set) - align_pelvis(gt, joint_set), axis=-1)
    return _reduce(error.mean(axis=-1) * MM_PER_M, reduction)


def procrustes_align(pred: np.ndarray | torch.Tensor, gt: np.ndarray | torch.Tensor) -> np.ndarray:
    """The similarity transform of ``pred`` (..., N, 3) that best fits ``gt`` in least squares, applied.

    ``s * R @ p + t`` with R a proper rotation (det +1; a reflection is corrected by flipping the sign of the
    smallest singular direction, Umeyama 1991), s > 0, solved independently per leading index.
    """
    pred, gt = _as_numpy(pred), _as_numpy(gt)
    _check_pair(pred, gt, "procrustes_align")
    mu_pred = pred.mean(axis=-2, keepdims=True)
    mu_gt = gt.mean(axis=-2, keepdims=True)
    x, y = pred - mu_pred, gt - mu_gt
    # Cross-covariance (..., 3, 3); y ~ R x  =>  R = U diag(1, 1, d) V^T from svd(y^T x).
    cov = np.swapaxes(y, -1, -2) @ x
    u, sing, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt))
    d = np.where(d == 0, 1.0, d)
    correction = np.ones_like(sing)
    correction[..., -1] = d
    rot = u @ (correction[..., :, None] * vt)
    var_x = (x**2).sum(axis=(-1, -2))
    scale = (sing * correction).sum(axis=-1) / np.maximum(var_x, np.finfo(np.float64).tiny)
    aligned = scale[..., None, None] * (x @ np.swapaxes(rot, -1, -2))
    return aligned + mu_gt


def pa_mpjpe(
    pred: np.ndarray | torch.Tensor,
    gt: np.ndarray | torch.Tensor,
    *,
    reduction: Reduction = "mean",
) -> float | np.ndarray:
    """MPJPE (mm) after Procrustes alignment (scale, rotation, translation) of each frame. pred, gt (..., J, 3)."""
    pred, gt = _as_numpy(pred), _as_numpy(gt)
    _check_pair(pred, gt, "pa_mpjpe")
    error = np.linalg.norm(procrustes_align(pred, gt) - gt, axis=-1)
    return _reduce(error.mean(axis=-1) * MM_PER_M, reduction)


def pve(
    pred_vertices: np.ndarray | torch.Tensor,
    gt_vertices: np.ndarray | torch.Tensor,
    *,
    pred_joints: np.ndarray | torch.Tensor | None = None,
    gt_joints: np.ndarray | torch.Tensor | None = None,
    joint_set: JointSet | None = None,
    reduction: Reduction = "mean",
) -> float | np.ndarray:
    """Per-vertex error (mm). Vertices (..., V, 3); optional joints (..., J, 3) give each mesh's pelvis.

    With joints, each mesh is moved by its own joint pelvis (mid-hip for SMPL-24, joint 0 for H36M-17); without,
    by its vertex mean. Give both joints or neither.
    """
    pred_v, gt_v = _as_numpy(pred_vertices), _as_numpy(gt_vertices)
    _check_pair(pred_v, gt_v, "pve")
    if (pred_joints is None) != (gt_joints is None):
        raise ValueError("pve: give both pred_joints and gt_joints, or neither")
    if pred_joints is None:
        pred_root = pred_v.mean(axis=-2, keepdims=True)
        gt_root = gt_v.mean(axis=-2, keepdims=True)
    else:
        pj, gj = _as_numpy(pred_joints), _as_numpy(gt_joints)
        _check_pair(pj, gj, "pve joints")
        pred_root, gt_root = pelvis_of(pj, joint_set), pelvis_of(gj, joint_set)
    error = np.linalg.norm((pred_v - pred_root) - (gt_v - gt_root), axis=-1)
    return _reduce(error.mean(axis=-1) * MM_PER_M, reduction)


def accel_error(
    pred: np.ndarray | torch.Tensor,
    gt: np.ndarray | torch.Tensor,
    *,
    sequence_ids: np.ndarray | list,
    valid: np.ndarray | torch.Tensor | None = None,
    joint_set: JointSet | None = None,
    align: bool = True,
    reduction: Reduction = "mean",
) -> float | np.ndarray:
    """Acceleration error (mm/frame^2): ``mean_j || a_pred - a_gt ||`` with ``a[i] = x[i-1] - 2 x[i] + x[i+1]``.

    Args:
        pred, gt: (N, J, 3) joints of N rows in temporal order within each sequence, metres.
        sequence_ids: (N,) an id per row; a second difference counts only when rows i-1, i, i+1 carry the same id
            (a jump between sequences never counts, even if an id comes back later).
        valid: optional (N,) 0/1; a triplet counts only when all three rows are valid.
        align: subtract each frame's pelvis first (``joint_set`` as for :func:`mpjpe`), as the field does.
    Returns:
        the mean over counted triplets (NaN when there is none), or with ``reduction="none"`` the (M,) values of
        the M counted triplets in row order.
    """
    pred, gt = _as_numpy(pred), _as_numpy(gt)
    _check_pair(pred, gt, "accel_error")
    if pred.ndim != 3:
        raise ValueError(f"accel_error expects (N, J, 3) joints, got {pred.shape}")
    ids = np.asarray(sequence_ids)
    if ids.shape != (pred.shape[0],):
        raise ValueError(f"sequence_ids must have shape ({pred.shape[0]},), got {ids.shape}")
    if align:
        pred, gt = align_pelvis(pred, joint_set), align_pelvis(gt, joint_set)
    if pred.shape[0] < 3:
        return _reduce(np.zeros(0), reduction)
    keep = (ids[:-2] == ids[1:-1]) & (ids[1:-1] == ids[2:])
    if valid is not None:
        ok = _as_numpy(valid).reshape(-1) > 0
        if ok.shape != ids.shape:
            raise ValueError(f"valid must have shape ({pred.shape[0]},), got {ok.shape}")
        keep &= ok[:-2] & ok[1:-1] & ok[2:]

    def second_difference(x: np.ndarray) -> np.ndarray:
        return x[:-2] - 2.0 * x[1:-1] + x[2:]

    error = np.linalg.norm(second_difference(pred) - second_difference(gt), axis=-1).mean(axis=-1)
    return _reduce(error[keep] * MM_PER_M, reduction)
