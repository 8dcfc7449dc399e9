"""Image encoder: timm's hybrid ViT patch embedding (ResNetV2 without pre-activation + 1x1 projection).

The layout is timm's ``vit_base_r50_s16_224`` (and the public INT code's): a ResNetV2 with StdConv and
GroupNorm, a 'same' stem and three stages, stride 16, projected to ``embed_dim`` patch tokens. Nothing is
downloaded; an optional local weights file for the backbone can be loaded with :func:`load_backbone_weights`.
"""

from __future__ import annotations

import os
from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import GroupNormAct, HybridEmbed, StdConv2dSame
from timm.layers.padding import pad_same
from timm.models.resnetv2 import ResNetV2

# Weight-standardisation epsilon of the public INT / MAED hybrid backbone.
STD_CONV_EPS = 1e-5


class StdConv2dSameStd(StdConv2dSame):
    """timm's 'SAME'-padded weight-standardised conv, standardising as ``(w - mean) / (std + eps)``.

    This is the formula of the backbone the public INT checkpoints were trained with (timm's own class uses
    ``sqrt(var + eps)``), so that those checkpoints give the same outputs here.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std, mean = torch.std_mean(self.weight, dim=(1, 2, 3), keepdim=True, unbiased=False)
        weight = (self.weight - mean) / (std + self.eps)
        if self.same_pad:
            x = pad_same(x, self.kernel_size, self.stride, self.dilation)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


def build_patch_embed(
    *,
    img_size: int,
    layers: tuple[int, ...],
    channels: tuple[int, ...],
    stem_width: int,
    groups: int,
    embed_dim: int,
) -> HybridEmbed:
    """ResNetV2 (no pre-activation, 'same' stem, no head) followed by a 1x1 conv to ``embed_dim``.

    Input (N, 3, img_size, img_size) -> patch tokens (N, (img_size/16)^2, embed_dim).
    """
    backbone = ResNetV2(
        layers=list(layers),
        channels=tuple(channels),
        num_classes=0,
        global_pool="",
        in_chans=3,
        stem_chs=stem_width,
        stem_type="same",
        preact=False,
        conv_layer=partial(StdConv2dSameStd, eps=STD_CONV_EPS),
        norm_layer=partial(GroupNormAct, num_groups=groups),
    )
    return HybridEmbed(backbone, img_size=img_size, patch_size=1, in_chans=3, embed_dim=embed_dim)


def load_backbone_weights(patch_embed: HybridEmbed, path: str | os.PathLike) -> list[str]:
    """Load a local ResNetV2 backbone state dict (plain or with a ``patch_embed.backbone.`` prefix).

    Returns the backbone keys that the file did not provide. Raises ValueError on shape mismatches.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    prefix = "patch_embed.backbone."
    state = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}
    own = patch_embed.backbone.state_dict()
    wanted = {k: v for k, v in state.items() if k in own}
    bad = [f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in wanted.items() if v.shape != own[k].shape]
    if bad:
        raise ValueError("backbone weights do not fit: " + "; ".join(bad))
    if not wanted:
        raise ValueError(f"{path} holds no ResNetV2 backbone weights")
    patch_embed.backbone.load_state_dict(wanted, strict=False)
    return sorted(set(own) - set(wanted))
