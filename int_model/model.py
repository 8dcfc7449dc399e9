"""The INT network: image encoder + independent tokens -> spatial transformer -> temporal transformer ->
SMPL heads -> body model.

The forward pass has three named stages (docs/architecture.md):

* :meth:`IntModel.encode_frames` — per frame, crops -> hybrid patch tokens -> ``[joints, shape, cam, cls,
  patches]`` -> spatial transformer -> the 26 independent tokens;
* :meth:`IntModel.temporal` — each joint token's sequence over the clip through the temporal transformer;
* :meth:`IntModel.decode` — heads -> 6D -> rotation matrices -> body model -> joints, projection.

The body model is attached but holds no persistent state, so it never enters a checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial

import torch
from timm.models.vision_transformer import Block
from torch import nn

from .attention import AttentionRecorder, capture_attention as record_attention
from .backbone import build_patch_embed, load_backbone_weights
from .body_model import BodyModel, load_body_model
from .config import IntConfig, get_config
from .geometry import rot6d_to_rotmat, rotmat_to_axis_angle, weak_perspective_project
from .heads import SMPLHeads
from .temporal import TemporalTransformer, WholePoseTemporalTransformer
from .tokens import IndependentTokens


@dataclass(frozen=True)
class AttentionMaps:
    """Attention probabilities captured on request.

    Attributes:
        spatial: (B, T, L, H, N, N) for the L spatial blocks and H heads, over the N = 27 + P tokens in the
            order ``[joints(24), shape, cam, cls, patches(P)]`` (query, key).
        temporal: (B, L_t, H_t, J, T, T) per temporal block, head and joint (query frame, key frame); None for
            the image model. The whole-pose baseline has one map for all joints, repeated over J.
    """

    spatial: torch.Tensor
    temporal: torch.Tensor | None


@dataclass(frozen=True)
class IntOutput:
    """What the network predicts for a batch of B clips of T frames (V vertices of the body model).

    Attributes:
        rot6d: (B, T, 24, 6) raw head output.
        rotmat: (B, T, 24, 3, 3) joint rotations, global orientation first.
        pose: (B, T, 72) the same as axis-angle (SMPL theta).
        betas: (B, T, 10) shape.
        cam: (B, T, 3) weak-perspective crop camera (s, tx, ty).
        vertices: (B, T, V, 3) in the camera frame of the body model (x right, y down, metres).
        joints3d: (B, T, 24, 3) SMPL joints.
        joints2d: (B, T, 24, 2) projected SMPL joints in normalised crop coordinates ([-1, 1], y down).
        joints3d_h36m: (B, T, 17, 3) Human3.6M evaluation joints, or None without that regressor.
        attention: captured attention, or None unless asked for.
    """

    rot6d: torch.Tensor
    rotmat: torch.Tensor
    pose: torch.Tensor
    betas: torch.Tensor
    cam: torch.Tensor
    vertices: torch.Tensor
    joints3d: torch.Tensor
    joints2d: torch.Tensor
    joints3d_h36m: torch.Tensor | None = None
    attention: AttentionMaps | None = None


@dataclass(frozen=True)
class FrameTokens:
    """Independent tokens after the spatial transformer: joints (..., 24, D), shape (..., D), camera (..., D).

    ``...`` is (N,) per crop as :meth:`IntModel.encode_frames` returns them, or (B, T) after :meth:`sequences`.
    """

    joints: torch.Tensor
    shape: torch.Tensor
    cam: torch.Tensor

    @staticmethod
    def cat(parts: Sequence[FrameTokens]) -> FrameTokens:
        """Crops encoded in batches, joined along the crop dimension."""
        return FrameTokens(*(torch.cat([getattr(p, name) for p in parts]) for name in ("joints", "shape", "cam")))

    def sequences(self, batch: int, frames: int) -> FrameTokens:
        """(B*T, ...) rows -> (B, T, ...) sequences."""
        return FrameTokens(joints=self.joints.reshape(batch, frames, *self.joints.shape[1:]),
                           shape=self.shape.reshape(batch, frames, -1), cam=self.cam.reshape(batch, frames, -1))


@contextmanager
def _recording(blocks: nn.ModuleList, enabled: bool) -> Iterator[AttentionRecorder | None]:
    """Record the attention of ``blocks`` while the body runs, or nothing when not ``enabled``."""
    if not enabled:
        yield None
        return
    with record_attention(blocks) as recorded:
        yield recorded


class IntModel(nn.Module):
    """INT with independent tokens. Input (B, T, 3, H, W) ImageNet-normalised RGB crops."""

    def __init__(self, config: IntConfig, body_model: BodyModel) -> None:
        super().__init__()
        c = config
        self.config = config
        self.img_size = c.img_size
        self.num_joints = c.num_joints
        self.patch_embed = build_patch_embed(
            img_size=c.img_size,
            layers=c.backbone_layers,
            channels=c.backbone_channels,
            stem_width=c.backbone_stem,
            groups=c.backbone_groups,
            embed_dim=c.embed_dim,
        )
        num_patches = self.patch_embed.num_patches
        # cls + patches carry a learnable position embedding; the independent tokens carry none.
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, c.embed_dim))
        self.tokens = IndependentTokens(num_joints=c.num_joints, embed_dim=c.embed_dim, init_std=c.token_init_std)
        norm_layer = partial(nn.LayerNorm, eps=c.norm_eps)
        rates = torch.linspace(0, c.drop_path_rate, c.depth).tolist()
        self.blocks = nn.ModuleList(
            Block(dim=c.embed_dim, num_heads=c.num_heads, mlp_ratio=c.mlp_ratio, qkv_bias=c.qkv_bias,
                  drop_path=rate, norm_layer=norm_layer)
            for rate in rates
        )
        self.norm = norm_layer(c.embed_dim)
        temporal_kwargs = dict(embed_dim=c.embed_dim, depth=c.temporal_depth, num_heads=c.temporal_heads,
                               max_len=c.temporal_len, mlp_ratio=c.mlp_ratio, qkv_bias=c.qkv_bias,
                               norm_eps=c.norm_eps, drop_path_rate=c.drop_path_rate, init_std=c.token_init_std)
        self.temporal_mode = c.temporal_mode
        if c.temporal_depth == 0:
            self.temporal_transformer = None
        elif c.temporal_mode == "whole_pose":
            self.temporal_transformer = WholePoseTemporalTransformer(num_joints=c.num_joints, **temporal_kwargs)
        else:
            self.temporal_transformer = TemporalTransformer(**temporal_kwargs)
        self.heads = SMPLHeads(embed_dim=c.embed_dim, num_betas=c.num_betas, init_std=c.token_init_std)
        self.body_model = body_model
        self._init_weights(c.token_init_std)

    def _init_weights(self, std: float) -> None:
        trunc = partial(nn.init.trunc_normal_, std=std, a=-2 * std, b=2 * std)
        trunc(self.cls_token)
        trunc(self.pos_embed)
        for module in list(self.blocks.modules()) + (
            list(self.temporal_transformer.blocks.modules()) if self.temporal_transformer else []
        ):
            if isinstance(module, nn.Linear):
                trunc(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    # ------------------------------------------------------------------ stages
    def encode_frames(self, frames: torch.Tensor) -> FrameTokens:
        """Crops (N, 3, H, W) -> the independent tokens after the spatial transformer, one row per crop."""
        patches = self.patch_embed(frames)
        cls = self.cls_token.expand(patches.shape[0], -1, -1)
        x = torch.cat((cls, patches), dim=1) + self.pos_embed
        x = self.tokens(x)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        j = self.num_joints
        return FrameTokens(joints=x[:, :j], shape=x[:, j], cam=x[:, j + 1])

    def temporal(self, joint_tokens: torch.Tensor) -> torch.Tensor:
        """Joint tokens (B, T, 24, D) -> (B, T, 24, D) through the temporal transformer (per joint, or the
        whole-pose baseline)."""
        if self.temporal_transformer is None:
            raise RuntimeError("this model has no temporal transformer (temporal_depth = 0)")
        return self.temporal_transformer(joint_tokens)

    def decode(self, joint_tokens: torch.Tensor, shape_token: torch.Tensor, cam_token: torch.Tensor) -> IntOutput:
        """Tokens (B, T, 24, D), (B, T, D), (B, T, D) -> :class:`IntOutput` through the heads and the body model."""
        b, t = joint_tokens.shape[:2]
        rot6d, betas, cam = self.heads(joint_tokens, shape_token, cam_token)
        rot6d, betas, cam = rot6d.float(), betas.float(), cam.float()
        rotmat = rot6d_to_rotmat(rot6d)
        body = self.body_model(rotmat=rotmat.reshape(b * t, -1, 3, 3), betas=betas.reshape(b * t, -1))
        joints3d = body.joints.reshape(b, t, -1, 3)
        return IntOutput(
            rot6d=rot6d,
            rotmat=rotmat,
            pose=rotmat_to_axis_angle(rotmat).reshape(b, t, -1),
            betas=betas,
            cam=cam,
            vertices=body.vertices.reshape(b, t, -1, 3),
            joints3d=joints3d,
            joints2d=weak_perspective_project(joints3d, cam),
            joints3d_h36m=None if body.joints_h36m is None else body.joints_h36m.reshape(b, t, -1, 3),
        )

    # ------------------------------------------------------------------ forward
    def uses_temporal(self, num_frames: int, temporal: bool | None = None) -> bool:
        """Whether a call on ``num_frames`` frames runs the temporal transformer (never for T = 1)."""
        wanted = self.temporal_transformer is not None if temporal is None else temporal
        if wanted and self.temporal_transformer is None:
            raise ValueError("temporal=True but this model has no temporal transformer")
        return wanted and num_frames > 1

    def forward(
        self, frames: torch.Tensor, *, temporal: bool | None = None, capture_attention: bool = False
    ) -> IntOutput:
        """Frames (B, T, 3, H, W) -> :class:`IntOutput`.

        Args:
            temporal: run the temporal transformer (default: when the model has one and T > 1). With it off,
                or at T = 1, this is the phase-1 image model.
            capture_attention: also return the attention probabilities (slower, more memory).
        """
        if frames.ndim != 5:
            raise ValueError(f"expected frames of shape (B, T, 3, H, W), got {tuple(frames.shape)}")
        b, t, c, h, w = frames.shape
        if (c, h, w) != (3, self.img_size, self.img_size):
            raise ValueError(
                f"this model takes 3 x {self.img_size} x {self.img_size} crops, got {c} x {h} x {w}"
            )
        use_temporal = self.uses_temporal(t, temporal)
        with _recording(self.blocks, capture_attention) as spatial:
            tokens = self.encode_frames(frames.reshape(b * t, c, h, w)).sequences(b, t)
        joints, temporal_maps = tokens.joints, None
        if use_temporal:
            with _recording(self.temporal_transformer.blocks, capture_attention) as recorded:
                joints = self.temporal(joints)
            if capture_attention:
                maps = recorded.stacked()  # (L, B*J, H, T, T); the whole-pose baseline: (L, B, H, T, T)
                sequences = maps.shape[1] // b
                temporal_maps = maps.reshape(maps.shape[0], b, sequences, *maps.shape[2:]).permute(1, 0, 3, 2, 4, 5)
                temporal_maps = temporal_maps.expand(-1, -1, -1, self.num_joints, -1, -1)
        out = self.decode(joints, tokens.shape, tokens.cam)
        if not capture_attention:
            return out
        spatial_maps = spatial.stacked()  # (L, B*T, H, N, N)
        spatial_maps = spatial_maps.reshape(spatial_maps.shape[0], b, t, *spatial_maps.shape[2:]).permute(1, 2, 0, 3, 4, 5)
        return replace(out, attention=AttentionMaps(spatial=spatial_maps, temporal=temporal_maps))

    @torch.no_grad()
    def decode_prior(self) -> IntOutput:
        """The prior pose, shape and camera: the learned token parameters themselves through the heads and the
        body model, before any image (B = T = 1)."""
        tokens = self.tokens
        return self.decode(tokens.joints[None], tokens.shape[:, 0][None], tokens.cam[:, 0][None])

    def num_parameters(self, *, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per part: backbone (hybrid embedding), spatial transformer (with cls and position
        embedding), independent tokens, temporal transformer, heads, and the total."""

        def count(*modules: nn.Module | None) -> int:
            return sum(p.numel() for m in modules if m is not None for p in m.parameters())

        counts = {
            "backbone": count(self.patch_embed),
            "spatial_transformer": count(self.blocks, self.norm) + self.cls_token.numel() + self.pos_embed.numel(),
            "tokens": count(self.tokens),
            "temporal_transformer": count(self.temporal_transformer),
            "heads": count(self.heads),
        }
        counts["total"] = self.num_parameters()
        return counts



def build_model(
    variant: str | IntConfig = "paper",
    *,
    body_model: BodyModel | None = None,
    smpl_dir: str | None = None,
    backbone_weights: str | None = None,
    **overrides,
) -> IntModel:
    """Build an INT network from a named variant (``paper``, ``small``, ``tiny``) or a config.

    ``overrides`` replace config fields (e.g. ``temporal_depth=0`` for the image model). The body model is
    ``body_model`` if given, else :func:`load_body_model` (``smpl_dir`` / ``INT_SMPL_DIR`` / procedural).
    ``backbone_weights`` is an optional local file of ResNetV2 weights for the hybrid backbone (e.g. the
    ImageNet-21k hybrid ViT's, converted by the user); nothing is ever downloaded.
    """
    if isinstance(variant, IntConfig):
        config = replace(variant, **{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
    else:
        config = get_config(variant, **overrides)
    model = IntModel(config, body_model if body_model is not None else load_body_model(smpl_dir))
    if backbone_weights is not None:
        load_backbone_weights(model.patch_embed, backbone_weights)
    return model
