"""Fitting INT's bodies to 2D keypoints: a few optimiser steps that start at the network's output.

The network's pose, shape and crop camera are the starting point; each joint's rotation gets a correction
``R = R_int @ exp(delta)`` and the camera an offset, found by Adam on

    sum_j c_j * rho(|x_j - k_j|) / sum_j c_j  +  prior_weight * mean_j |delta_j|^2

where ``x_j`` are the body's joints projected by the weak-perspective crop camera, ``k_j`` the keypoints
(normalised crop coordinates), ``c_j`` their confidence and ``rho`` the Geman-McClure robust error (scale
``robust_scale``, SMPLify's choice): keypoints far off the body count little. The second term keeps every
rotation near the network's, so the network's prior over bodies (learned from its tokens) regularises the fit:
joints with no keypoint (spine, neck, head, hands, feet) stay as predicted unless the fit must move them.
The shape is kept. Everything runs on the body model's device.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from int_model.body_model import BodyModel
from int_model.geometry import axis_angle_to_rotmat, rotmat_to_axis_angle, weak_perspective_project

__all__ = ["RefineParams", "Refined", "refine_to_keypoints"]


@dataclass(frozen=True)
class RefineParams:
    """Settings of :func:`refine_to_keypoints`.

    Attributes:
        steps: Adam steps.
        learning_rate: Adam's step size (radians for the rotations, crop units for the camera).
        prior_weight: weight of the squared rotation change (radians^2, mean over joints) against the keypoints.
        robust_scale: Geman-McClure scale in normalised crop units (1 = half the crop side).
        min_confidence: keypoints below this confidence are ignored.
        min_keypoints: rows with fewer usable keypoints are left as the network predicted them.
    """

    steps: int = 40
    learning_rate: float = 0.03
    prior_weight: float = 0.05
    robust_scale: float = 0.1
    min_confidence: float = 0.5
    min_keypoints: int = 6

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if self.learning_rate <= 0 or self.robust_scale <= 0 or self.prior_weight < 0:
            raise ValueError("learning_rate and robust_scale must be positive and prior_weight >= 0")


@dataclass(frozen=True)
class Refined:
    """Fitted rows (N of them): rotmat (N, 24, 3, 3), pose (N, 72) axis-angle, cam (N, 3), joints3d (N, 24, 3),
    joints2d (N, 24, 2) normalised crop coordinates, vertices (N, V, 3); fitted (N,) bool says which rows had
    enough keypoints to be fitted (the others are the network's output unchanged)."""

    rotmat: torch.Tensor
    pose: torch.Tensor
    cam: torch.Tensor
    joints3d: torch.Tensor
    joints2d: torch.Tensor
    vertices: torch.Tensor
    fitted: torch.Tensor


def _geman_mcclure(squared: torch.Tensor, scale: float) -> torch.Tensor:
    s2 = scale * scale
    return s2 * squared / (squared + s2)


def refine_to_keypoints(body_model: BodyModel, rotmat: torch.Tensor, betas: torch.Tensor, cam: torch.Tensor,
                        keypoints: torch.Tensor, confidence: torch.Tensor,
                        params: RefineParams = RefineParams()) -> Refined:
    """Fit N bodies to their 2D keypoints.

    Args:
        body_model: the body model the network decodes with.
        rotmat: (N, 24, 3, 3) the network's rotations; betas (N, 10); cam (N, 3) its crop camera (s, tx, ty).
        keypoints: (N, 24, 2) in normalised crop coordinates at the SMPL joints (any value where confidence is 0).
        confidence: (N, 24) in [0, 1].
        params: :class:`RefineParams`.
    """
    device = next(itertools.chain(body_model.parameters(), body_model.buffers())).device
    rotmat, betas, cam = (t.detach().to(device=device, dtype=torch.float32) for t in (rotmat, betas, cam))
    keypoints = keypoints.detach().to(device=device, dtype=torch.float32)
    weight = confidence.detach().to(device=device, dtype=torch.float32)
    weight = torch.where(weight >= params.min_confidence, weight, torch.zeros_like(weight))
    fitted = (weight > 0).sum(dim=1) >= params.min_keypoints
    delta = torch.zeros(rotmat.shape[:2] + (3,), device=device, requires_grad=True)
    cam_offset = torch.zeros_like(cam, requires_grad=True)
    mask = fitted.float()[:, None]

    def pose_of(d: torch.Tensor) -> torch.Tensor:
        return rotmat @ axis_angle_to_rotmat((d * mask[..., None]).reshape(-1, 3)).reshape(rotmat.shape)

    if params.steps and bool(fitted.any()):
        optimiser = torch.optim.Adam([delta, cam_offset], lr=params.learning_rate)
        total = weight.sum(dim=1).clamp_min(1e-6)
        for _ in range(params.steps):
            optimiser.zero_grad(set_to_none=True)
            joints = body_model(rotmat=pose_of(delta), betas=betas).joints
            projected = weak_perspective_project(joints, cam + cam_offset * mask)
            squared = (projected - keypoints).square().sum(dim=-1)
            data = (weight * _geman_mcclure(squared, params.robust_scale)).sum(dim=1) / total
            prior = delta.square().sum(dim=-1).mean(dim=1)
            loss = ((data / params.robust_scale ** 2 + params.prior_weight * prior) * fitted.float()).sum()
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        final = pose_of(delta)
        final_cam = cam + cam_offset * mask
        body = body_model(rotmat=final, betas=betas)
        return Refined(rotmat=final, pose=rotmat_to_axis_angle(final).reshape(len(final), -1), cam=final_cam,
                       joints3d=body.joints, joints2d=weak_perspective_project(body.joints, final_cam),
                       vertices=body.vertices, fitted=fitted)
