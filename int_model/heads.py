"""SMPL heads: read the independent tokens out as rotations, shape and camera."""

from __future__ import annotations

import torch
from torch import nn

# 6D of the identity rotation in the head's (3x2 column) layout; the pose head starts there.
IDENTITY_6D = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
# Initial weak-perspective scale: a person filling most of the crop.
INITIAL_CAM_SCALE = 0.9


class SMPLHeads(nn.Module):
    """One shared Linear(D, 6) for every joint token, Linear(D, betas) for shape, Linear(D, 3) for camera.

    Weights start as truncated normal (std 0.02); biases start at the identity rotation and a camera of
    scale ``INITIAL_CAM_SCALE`` so that a fresh model predicts the rest pose rather than noise. This is
    an initialisation only; the layers are plain ``nn.Linear``.
    """

    def __init__(self, *, embed_dim: int, num_betas: int = 10, init_std: float = 0.02) -> None:
        super().__init__()
        self.pose = nn.Linear(embed_dim, 6)
        self.shape = nn.Linear(embed_dim, num_betas)
        self.cam = nn.Linear(embed_dim, 3)
        for layer in (self.pose, self.shape, self.cam):
            nn.init.trunc_normal_(layer.weight, std=init_std, a=-2 * init_std, b=2 * init_std)
            nn.init.zeros_(layer.bias)
        with torch.no_grad():
            self.pose.bias.copy_(torch.tensor(IDENTITY_6D))
            self.cam.bias[0] = INITIAL_CAM_SCALE

    def forward(
        self, joint_tokens: torch.Tensor, shape_token: torch.Tensor, cam_token: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(..., J, D), (..., D), (..., D) -> rot6d (..., J, 6), betas (..., B), cam (..., 3)."""
        return self.pose(joint_tokens), self.shape(shape_token), self.cam(cam_token)
