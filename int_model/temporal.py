"""Temporal transformer: each joint's token sequence over the clip, modelled separately.

:class:`TemporalTransformer` is INT's per-joint model; :class:`WholePoseTemporalTransformer` is the paper's
whole-pose baseline (Table 2), kept as a config option (``temporal_mode: whole_pose``) so that the two can be
trained the same way and compared.

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


class WholePoseTemporalTransformer(nn.Module):
    """Whole-pose temporal baseline: joint tokens (B, T, J, D) -> (B, T, J, D).

    Each frame's J joint tokens are concatenated (J * D), projected to D and modelled as ONE sequence over the
    clip (the way VIBE-style models follow a single per-frame feature); the output is projected back to J * D
    and added to the input tokens. The output projection starts at zero, so a fresh baseline begins as the
    image model. Same blocks, heads and position embedding as the per-joint model; the attention map is one
    (T, T) matrix per head for all joints.
    """

    def __init__(self, *, embed_dim: int, depth: int, num_heads: int, max_len: int, num_joints: int,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, norm_eps: float = 1e-6,
                 drop_path_rate: float = 0.0, init_std: float = 0.02) -> None:
        super().__init__()
        self.num_joints = num_joints
        self.proj_in = nn.Linear(num_joints * embed_dim, embed_dim)
        self.sequence = TemporalTransformer(embed_dim=embed_dim, depth=depth, num_heads=num_heads, max_len=max_len,
                                            mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, norm_eps=norm_eps,
                                            drop_path_rate=drop_path_rate, init_std=init_std)
        self.proj_out = nn.Linear(embed_dim, num_joints * embed_dim)
        nn.init.trunc_normal_(self.proj_in.weight, std=init_std, a=-2 * init_std, b=2 * init_std)
        nn.init.zeros_(self.proj_in.bias)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    @property
    def blocks(self) -> nn.ModuleList:
        return self.sequence.blocks

    @property
    def pos_embed(self) -> nn.Parameter:
        return self.sequence.pos_embed

    def forward(self, joint_tokens: torch.Tensor) -> torch.Tensor:
        b, t, j, d = joint_tokens.shape
        pose = self.proj_in(joint_tokens.reshape(b, t, 1, j * d))  # (B, T, 1, D): one "joint", the whole pose
        pose = self.sequence(pose)
        return joint_tokens + self.proj_out(pose).reshape(b, t, j, d)
