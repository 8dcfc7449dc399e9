"""The INT training loss, each term applied only where its label exists.

``L = w_theta*L_theta + w_beta*L_beta + w_norm*L_norm + w_3D*(L_3D + L_3D_h36m) + w_2D*L_2D + w_temp*L_temp``

Every ``||.||^2`` is a **mean of squared differences over the elements of the labelled entries** (the MSE
convention of SPIN / VIBE, which the paper's weights were tuned with), averaged over the labelled
entries only: a (sample, frame) for theta / beta, a (sample, frame, joint) for joints. A batch in which no
entry carries a term's label gives exactly 0 for that term (never NaN, also when the unlabelled entries
hold NaN).

* ``theta``: rotation matrices, ``mean((R - R_gt)^2)`` over the 24 x 9 elements, where ``has_pose``; the label
  axis-angle is turned into rotation matrices with :func:`int_model.geometry.axis_angle_to_rotmat`.
* ``beta``: ``mean((beta - beta_gt)^2)`` where ``has_betas``.
* ``norm``: ``mean(theta_body^2) + mean(beta^2)`` on the *predictions* of every valid frame (a prior, not a
  label term: it applies to every sample). ``theta_body`` is the axis-angle of the 23 body joints: the global
  orientation is left out because in the camera frame an upright person's is ~180 degrees about x, and pulling
  it to zero would bias every prediction towards upside-down.
* ``joints3d`` / ``joints3d_h36m``: after subtracting the pelvis from prediction and label (SMPL-24: the
  mid-point of the hips; H36M-17: its pelvis joint 0); a frame whose label lacks the pelvis joint(s) has no
  3D term. The H36M-17 term needs the model output ``joints3d_h36m``; both use weight ``joints3d`` unless
  ``joints3d_h36m`` is set.
* ``joints2d``: normalised crop coordinates, weighted by ``joints2d_vis``.
* ``temporal``: ``||(J[t+1] - J[t]) - (J_gt[t+1] - J_gt[t])||^2`` on the pelvis-aligned SMPL-24 joints, for
  each joint labelled (and the pelvis alignable) in both frames t and t+1; only when T > 1.

``valid`` (0 for padding frames) multiplies every mask.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import torch
from torch import nn

from int_model.constants import H36M_PELVIS, SMPL_LEFT_HIP, SMPL_RIGHT_HIP
from int_model.geometry import axis_angle_to_rotmat
from int_model.model import IntOutput

SMPL_PELVIS_JOINTS: tuple[int, ...] = (SMPL_LEFT_HIP, SMPL_RIGHT_HIP)
H36M_PELVIS_JOINTS: tuple[int, ...] = (H36M_PELVIS,)
TERM_NAMES: tuple[str, ...] = ("theta", "beta", "norm", "joints3d", "joints3d_h36m", "joints2d", "temporal")


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms (the paper's defaults; the phase configs set their own).

    ``joints3d_h36m`` weighs the 3D term on the H36M-17 joints; ``None`` means the same as ``joints3d``.
    """

    theta: float = 60.0
    beta: float = 0.06
    norm: float = 1.0
    joints3d: float = 600.0
    joints2d: float = 300.0
    temporal: float = 0.0
    joints3d_h36m: float | None = None

    def weight(self, term: str) -> float:
        """The weight of a named term (see :data:`TERM_NAMES`)."""
        if term == "joints3d_h36m" and self.joints3d_h36m is None:
            return self.joints3d
        value = getattr(self, term)
        return float(value)

    @classmethod
    def from_dict(cls, data: Mapping[str, float]) -> "LossWeights":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown loss weights: {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return cls(**data)


@dataclass(frozen=True)
class LossResult:
    """The total loss (a scalar tensor with gradients) and each unweighted term as a float for logging."""

    total: torch.Tensor
    terms: dict[str, float]


def masked_mean(squared: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``squared`` (M, E) over its E elements and over the entries where ``mask`` (M,) is 1.

    Unlabelled entries are replaced by 0 before summing, so that NaN or garbage there cannot leak; with no
    labelled entry the result is exactly 0.
    """
    mask = mask.to(squared.dtype)
    per_entry = torch.where(mask[..., None] > 0, squared, torch.zeros_like(squared)).mean(dim=-1)
    return (per_entry * mask).sum() / mask.sum().clamp_min(1.0)


def _align(joints: torch.Tensor, pelvis: tuple[int, ...]) -> torch.Tensor:
    """(..., J, 3) minus the mean of the ``pelvis`` joints."""
    return joints - joints[..., list(pelvis), :].mean(dim=-2, keepdim=True)


def _aligned_mask(vis: torch.Tensor, valid: torch.Tensor, pelvis: tuple[int, ...]) -> torch.Tensor:
    """(B, T, J) joint mask: labelled, in a valid frame, and the frame's label has every pelvis joint."""
    alignable = vis[..., list(pelvis)].prod(dim=-1, keepdim=True)
    return vis * alignable * valid[..., None]


def _safe(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero the entries of ``values`` (..., E) whose ``mask`` (...) is 0 (so that NaN labels cannot propagate)."""
    return torch.where(mask[..., None] > 0, values, torch.zeros_like(values))


def joints3d_loss(
    pred: torch.Tensor, gt: torch.Tensor, vis: torch.Tensor, valid: torch.Tensor, *, pelvis: tuple[int, ...]
) -> torch.Tensor:
    """Pelvis-aligned 3D joint term. pred, gt (B, T, J, 3); vis (B, T, J); valid (B, T) -> scalar."""
    mask = _aligned_mask(vis, valid, pelvis)
    gt = _safe(gt, vis)
    diff = _align(pred, pelvis) - _align(gt, pelvis)
    return masked_mean(diff.reshape(-1, 3) ** 2, mask.reshape(-1))


def temporal_loss(pred: torch.Tensor, gt: torch.Tensor, vis: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Velocity term on pelvis-aligned SMPL-24 joints. pred, gt (B, T, 24, 3); vis (B, T, 24); valid (B, T).

    Only pairs of consecutive frames of the same clip count, for joints labelled in both; 0 when T = 1.
    """
    if pred.shape[1] < 2:
        return pred.new_zeros(())
    mask = _aligned_mask(vis, valid, SMPL_PELVIS_JOINTS)
    gt = _safe(gt, vis)
    pred, gt = _align(pred, SMPL_PELVIS_JOINTS), _align(gt, SMPL_PELVIS_JOINTS)
    diff = (pred[:, 1:] - pred[:, :-1]) - (gt[:, 1:] - gt[:, :-1])
    pair_mask = mask[:, 1:] * mask[:, :-1]
    return masked_mean(diff.reshape(-1, 3) ** 2, pair_mask.reshape(-1))


def pose_loss(pred_rotmat: torch.Tensor, gt_pose: torch.Tensor, has_pose: torch.Tensor) -> torch.Tensor:
    """Rotation-matrix pose term. pred_rotmat (B, T, 24, 3, 3); gt_pose (B, T, 72) axis-angle; has_pose (B, T)."""
    b, t = gt_pose.shape[:2]
    gt_pose = _safe(gt_pose, has_pose)
    gt_rotmat = axis_angle_to_rotmat(gt_pose.reshape(b, t, -1, 3).to(pred_rotmat.dtype))
    diff = (pred_rotmat - gt_rotmat).reshape(b * t, -1)
    return masked_mean(diff**2, has_pose.reshape(-1))


def compute_loss(output: IntOutput, batch: Mapping[str, torch.Tensor], *, weights: LossWeights) -> LossResult:
    """The weighted INT loss of a batch.

    Args:
        output: the model's :class:`~int_model.model.IntOutput` for B clips of T frames.
        batch: a collated batch (:func:`training.sample.collate_samples`) on the same device.
        weights: the term weights; a zero weight still computes (and logs) its term.
    Returns:
        :class:`LossResult` with the total and the unweighted terms (floats, one device sync for all).
    """
    dtype = output.joints3d.dtype
    valid = batch["valid"].to(dtype)

    def label(key: str) -> torch.Tensor:
        return batch[key].to(dtype)

    terms: dict[str, torch.Tensor] = {
        "theta": pose_loss(output.rotmat, label("pose"), label("has_pose") * valid),
        "beta": masked_mean(
            (output.betas - _safe(label("betas"), label("has_betas"))).flatten(0, 1) ** 2,
            (label("has_betas") * valid).flatten(),
        ),
        "norm": masked_mean(output.pose[..., 3:].flatten(0, 1) ** 2, valid.flatten())
        + masked_mean(output.betas.flatten(0, 1) ** 2, valid.flatten()),
        "joints3d": joints3d_loss(
            output.joints3d, label("joints3d"), label("joints3d_vis"), valid, pelvis=SMPL_PELVIS_JOINTS
        ),
        "joints2d": masked_mean(
            (output.joints2d - _safe(label("joints2d"), label("joints2d_vis"))).reshape(-1, 2) ** 2,
            (label("joints2d_vis") * valid[..., None]).reshape(-1),
        ),
        "temporal": temporal_loss(output.joints3d, label("joints3d"), label("joints3d_vis"), valid),
    }
    h36m_vis = label("joints3d_h36m_vis")
    if output.joints3d_h36m is not None:
        terms["joints3d_h36m"] = joints3d_loss(
            output.joints3d_h36m, label("joints3d_h36m"), h36m_vis, valid, pelvis=H36M_PELVIS_JOINTS
        )
    elif bool((h36m_vis > 0).any()):
        raise ValueError("the batch has H36M-17 3D labels but the model output has no joints3d_h36m "
                         "(the body model lacks the Human3.6M regressor)")
    else:
        terms["joints3d_h36m"] = output.joints3d.new_zeros(())

    ordered = [terms[name] for name in TERM_NAMES]
    total = sum(weights.weight(name) * value for name, value in zip(TERM_NAMES, ordered))
    logged = torch.stack([v.detach().float() for v in ordered]).tolist()
    return LossResult(total=total, terms=dict(zip(TERM_NAMES, logged)))


class IntLoss(nn.Module):
    """:func:`compute_loss` as a module holding its weights: ``IntLoss(weights)(output, batch) -> LossResult``."""

    def __init__(self, weights: LossWeights | None = None) -> None:
        super().__init__()
        self.weights = weights or LossWeights()

    def forward(self, output: IntOutput, batch: Mapping[str, torch.Tensor]) -> LossResult:
        return compute_loss(output, batch, weights=self.weights)

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={self.weights.weight(name):g}" for name in TERM_NAMES)
