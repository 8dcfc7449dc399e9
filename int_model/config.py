"""Model configuration: one frozen dataclass and a small table of named variants.

Only the builder (:func:`int_model.model.build_model`) reads a config; the modules it builds take explicit
keyword arguments. A checkpoint carries its config as a plain dict (:meth:`IntConfig.to_dict`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

#: ``per_joint``: INT, each joint's tokens over time separately; ``whole_pose``: the paper's baseline (Table 2),
#: all joint tokens of a frame concatenated and modelled as one sequence.
TEMPORAL_MODES = ("per_joint", "whole_pose")


@dataclass(frozen=True)
class IntConfig:
    """Every architectural choice of an INT network.

    The defaults are the paper configuration; ``small`` and ``tiny`` override a few fields.
    """

    variant: str = "paper"
    # Input crop, square, in pixels.
    img_size: int = 224
    # Hybrid backbone: ResNetV2 without pre-activation (StdConv + GroupNorm), 'same' stem, stride 16.
    backbone_layers: tuple[int, ...] = (3, 4, 9)
    backbone_channels: tuple[int, ...] = (256, 512, 1024)
    backbone_stem: int = 64
    backbone_groups: int = 32
    # Spatial transformer over [joints(24), shape, cam, cls, patches].
    embed_dim: int = 768
    depth: int = 6
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    drop_path_rate: float = 0.0
    # Temporal transformer over each joint token's sequence; depth 0 gives the image-only model.
    temporal_depth: int = 3
    temporal_heads: int = 12
    temporal_len: int = 16
    temporal_mode: str = "per_joint"
    # SMPL read-out.
    num_joints: int = 24
    num_betas: int = 10
    token_init_std: float = 0.02

    def __post_init__(self) -> None:
        if len(self.backbone_layers) != len(self.backbone_channels):
            raise ValueError("backbone_layers and backbone_channels must have the same length")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.temporal_depth and self.embed_dim % self.temporal_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by temporal_heads {self.temporal_heads}")
        if self.img_size % self.patch_stride:
            raise ValueError(f"img_size {self.img_size} must be a multiple of the backbone stride {self.patch_stride}")
        if self.temporal_mode not in TEMPORAL_MODES:
            raise ValueError(f"temporal_mode must be one of {TEMPORAL_MODES}, not {self.temporal_mode!r}")

    @property
    def patch_stride(self) -> int:
        """Stride of the backbone feature map: 4 for the stem, then x2 per stage after the first."""
        return 4 * 2 ** (len(self.backbone_layers) - 1)

    @property
    def grid_size(self) -> int:
        return self.img_size // self.patch_stride

    @property
    def num_patches(self) -> int:
        return self.grid_size**2

    @property
    def num_prefix_tokens(self) -> int:
        """Tokens in front of the patches: 24 joints, shape, camera, cls."""
        return self.num_joints + 3

    @property
    def has_temporal(self) -> bool:
        return self.temporal_depth > 0

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (lists for tuples), so a checkpoint loads with ``weights_only=True``."""
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IntConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown config fields: {', '.join(unknown)}")
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**fixed)


VARIANTS: dict[str, dict[str, Any]] = {
    # The paper: ~55 M parameters image model, ~77 M with the temporal transformer.
    "paper": {},
    # CPU training and the shipped demo model: 128 px crops, 8x8 patches, narrow and shallow.
    "small": dict(
        img_size=128, backbone_layers=(2, 2, 2), backbone_channels=(128, 256, 512), backbone_stem=32,
        embed_dim=256, depth=4, num_heads=8, temporal_depth=2, temporal_heads=8,
    ),
    # Unit tests: tiny and fast.
    "tiny": dict(
        img_size=64, backbone_layers=(1, 1, 1), backbone_channels=(32, 64, 128), backbone_stem=16,
        backbone_groups=8, embed_dim=64, depth=2, num_heads=4, temporal_depth=1, temporal_heads=4,
    ),
}


def get_config(variant: str = "paper", **overrides: Any) -> IntConfig:
    """The named variant's config with ``overrides`` applied (unknown names raise)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown model variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    values = {"variant": variant, **VARIANTS[variant], **overrides}
    return IntConfig.from_dict(values)
