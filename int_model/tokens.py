"""The independent tokens: 24 joint-rotation tokens, one shape token and one camera token.

They are learnable parameters (truncated normal, std 0.02), carry NO position embedding, and are placed in
front of the cls and patch tokens: ``[joints(24), shape, cam, cls, patches]``.
"""

from __future__ import annotations

import torch
from torch import nn


class IndependentTokens(nn.Module):
    """Holds the prior tokens and prepends them to a token sequence."""

    def __init__(self, *, num_joints: int, embed_dim: int, init_std: float = 0.02) -> None:
        super().__init__()
        self.joints = nn.Parameter(torch.zeros(1, num_joints, embed_dim))
        self.shape = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.cam = nn.Parameter(torch.zeros(1, 1, embed_dim))
        for p in (self.joints, self.shape, self.cam):
            nn.init.trunc_normal_(p, std=init_std, a=-2 * init_std, b=2 * init_std)

    @property
    def num_tokens(self) -> int:
        return self.joints.shape[1] + 2

    def all(self) -> torch.Tensor:
        """(1, num_joints + 2, D): the tokens in sequence order (joints, shape, cam)."""
        return torch.cat((self.joints, self.shape, self.cam), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, L, D) -> (N, num_joints + 2 + L, D)."""
        return torch.cat((self.all().expand(x.shape[0], -1, -1), x), dim=1)
