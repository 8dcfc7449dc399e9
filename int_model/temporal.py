"""Temporal transformer: each joint's token sequence over the clip, modelled separately.

For joint n, ``X_n`` of shape (T, D) gets a learnable temporal position embedding and passes through
pre-norm transformer blocks; the joints share the blocks' weights but never attend to each other. Shape and
camera tokens are not modelled over time. At clip lengths other than the stored embedding length the
embedding is linearly interpolated for that call only; the parameter itself never changes.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torch import nn


def interpolate_temporal_embedding(embedding: torch.Tensor, length: int) -> torch.Tensor:
    """(1, L, D) -> (1, length, D) by linear interpolation; returns ``embedding`` itself when L == length."""
    if embedding.shape[1] == length:
        return embedding
    resized = F.interpolate(embedding.transpose(1, 2), size=length, mode="linear", align_corners=False)
    return resized.transpose(1, 2)


class TemporalTransformer(nn.Module):
    """Per-joint temporal transformer: joint tokens (B, T, J, D) -> (B, T, J, D)."""

    def __init__(
        self,
        *,
        embed_dim: int,
        depth: int,
        num_heads: int,
        max_len: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        drop_path_rate: float = 0.0,
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, max_len, embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=init_std, a=-2 * init_std, b=2 * init_std)
        rates = torch.linspace(0, drop_path_rate, depth).tolist() if depth else []
        self.blocks = nn.ModuleList(
            Block(
                dim=embed_dim,
                num_heads=num_heads,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                drop_path=rate,
                norm_layer=partial(nn.LayerNorm, eps=norm_eps),
            )
            for rate in rates
        )

    def forward(self, joint_tokens: torch.Tensor) -> torch.Tensor:
        b, t, j, d = joint_tokens.shape
        x = joint_tokens.permute(0, 2, 1, 3).reshape(b * j, t, d)
        x = x + interpolate_temporal_embedding(self.pos_embed, t)
        for block in self.blocks:
            x = block(x)
        return x.reshape(b, j, t, d).permute(0, 2, 1, 3)
