"""Image attention per token: which patches of a person crop each independent token looks at.

The spatial transformer's attention (``IntOutput.attention.spatial``) is (B, T, L, H, N, N) over the
N = 27 + P tokens ``[joints(24), shape, cam, cls, patches(P)]`` (query row, key column; rows sum to 1).
Functions here take one frame's (L, H, N, N) slice (``attention.spatial[b, t]``) as a numpy array or a
tensor and never modify it.

Three views of that attention, all (N, N) row-stochastic matrices:

* one layer and one head (:func:`select_spatial` with an index for both);
* one layer, mean over heads (``head="mean"``);
* **attention rollout** (Abnar & Zuidema 2020, :func:`attention_rollout`): every block adds its attention
  output to a residual stream, so a token's next state is partly itself. With ``A_l`` the head-mean
  attention of block l, ``w`` the residual weight and I the identity::

      A~_l = normalise_rows((1 - w) * A_l + w * I)        (w = 0.5 by default)
      R    = A~_k @ A~_{k-1} @ ... @ A~_1                  (k = the last block included)

  Row i of R is how much token i's state after block k draws on each *input* token, following the
  information through all blocks (for the independent tokens, which start without any image content,
  this is where their image evidence came from). Rows of R sum to 1.

A token's attention over the P patches is a (g, g) map on the patch grid (g = img_size / stride). It is
raw attention probability (the share of that token's attention that went to each patch; the rest went to
the other tokens); pictures normalise it per map.

Geometry: patch (r, c) covers crop pixels [c s, (c + 1) s) x [r s, (r + 1) s) with s = img_size / g;
:func:`upsample_map` puts the patch value at the patch centre and interpolates bilinearly between centres.
Crop pixels map into the full frame with the pipeline's :class:`~int_model.crops.CropTransform`
(integer coordinates are pixel centres; crop pixel u sits at image pixel ``origin + u * side / S``), and a
normalised crop coordinate x_n in [-1, 1] (the model's 2D joints) at crop pixel ``(x_n + 1) S / 2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np

from int_model import IntConfig
from int_model.constants import TOKEN_NAMES
from int_model.crops import CropTransform

__all__ = [
    "DEFAULT_RESIDUAL_WEIGHT",
    "MEAN",
    "ROLLOUT",
    "Selection",
    "TokenLayout",
    "attention_rollout",
    "map_to_frame",
    "normalise_map",
    "select_spatial",
    "spatial_view",
    "token_patch_maps",
    "upsample_map",
]

#: Pass as ``layer`` or ``head`` to average over all layers or heads.
MEAN: Literal["mean"] = "mean"
#: Pass as ``head`` to :func:`spatial_view` for attention rollout up to ``layer``.
ROLLOUT: Literal["rollout"] = "rollout"
Selection = int | Literal["mean"]

#: Weight of the residual (identity) path in attention rollout (Abnar & Zuidema's 0.5).
DEFAULT_RESIDUAL_WEIGHT = 0.5


@dataclass(frozen=True)
class TokenLayout:
    """Where each token sits in the spatial transformer's sequence, and the patch grid's geometry.

    Attributes:
        num_joints: joint tokens first (24).
        grid_size: g; the P = g * g patch tokens come last, row by row.
        img_size: crop side S in pixels.
        names: names of the ``num_joints + 2`` independent tokens (joints, "shape", "camera").
    """

    num_joints: int
    grid_size: int
    img_size: int
    names: tuple[str, ...] = TOKEN_NAMES

    @classmethod
    def from_config(cls, config: IntConfig) -> TokenLayout:
        return cls(num_joints=config.num_joints, grid_size=config.grid_size, img_size=config.img_size,
                   names=TOKEN_NAMES[: config.num_joints] + ("shape", "camera"))

    @property
    def num_independent(self) -> int:
        """Joint tokens + shape + camera (26)."""
        return self.num_joints + 2

    @property
    def patch_start(self) -> int:
        """Index of the first patch token (27 for 24 joints)."""
        return self.num_joints + 3

    @property
    def num_tokens(self) -> int:
        return self.patch_start + self.grid_size**2

    @property
    def patch_pixels(self) -> float:
        """Side of one patch in crop pixels."""
        return self.img_size / self.grid_size

    def index(self, token: int | str) -> int:
        """Sequence index of an independent token given by index (0..25) or name ("left_knee", "shape")."""
        if isinstance(token, str):
            if token not in self.names:
                raise ValueError(f"unknown token {token!r}; choose one of {', '.join(self.names)}")
            return self.names.index(token)
        if not 0 <= int(token) < self.num_independent:
            raise IndexError(f"token index {token} out of range for {self.num_independent} independent tokens")
        return int(token)


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _check_frame_attention(attention: Any) -> np.ndarray:
    a = _as_numpy(attention)
    if a.ndim != 4 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"expected one frame's spatial attention (L, H, N, N), got {a.shape}")
    return a


def select_spatial(attention: Any, *, layer: Selection, head: Selection = MEAN) -> np.ndarray:
    """One frame's spatial attention (L, H, N, N) -> (N, N) for a layer (or the layer mean) and a head (or
    the head mean). Rows sum to 1."""
    a = _check_frame_attention(attention)
    for axis, (value, what) in enumerate(((layer, "layer"), (head, "head"))):
        if isinstance(value, str) and value != MEAN:
            raise ValueError(f"{what} must be an index or {MEAN!r}, got {value!r}")
        if not isinstance(value, str) and not -a.shape[axis] <= int(value) < a.shape[axis]:
            raise IndexError(f"{what} {value} out of range for {a.shape[axis]} {what}s")
    a = a.mean(axis=1) if head == MEAN else a[:, int(head)]
    return a.mean(axis=0) if layer == MEAN else a[int(layer)]


def attention_rollout(
    attention: Any, *, residual_weight: float = DEFAULT_RESIDUAL_WEIGHT, through_layer: int | None = None
) -> np.ndarray:
    """Attention rollout (module docstring) of one frame's (L, H, N, N) attention -> (N, N).

    Args:
        residual_weight: w in ``normalise_rows((1 - w) A_l + w I)``; 0 multiplies the raw attention.
        through_layer: last block included (default all; negative counts from the end).
    """
    a = _check_frame_attention(attention)
    if not 0.0 <= residual_weight < 1.0:
        raise ValueError(f"residual_weight must be in [0, 1), got {residual_weight}")
    last = a.shape[0] - 1 if through_layer is None else range(a.shape[0])[through_layer]
    eye = np.eye(a.shape[-1])
    result = eye
    for layer in range(last + 1):
        step = (1.0 - residual_weight) * a[layer].mean(axis=0) + residual_weight * eye
        step = step / step.sum(axis=-1, keepdims=True)
        result = step @ result
    return result


def spatial_view(attention: Any, *, layer: Selection, head: Selection | Literal["rollout"] = MEAN,
                 residual_weight: float = DEFAULT_RESIDUAL_WEIGHT) -> np.ndarray:
    """(L, H, N, N) -> (N, N): :func:`select_spatial`, or with ``head="rollout"`` :func:`attention_rollout`
    through ``layer`` (``"mean"`` there meaning all layers)."""
    if head == ROLLOUT:
        through = None if layer == MEAN else int(layer)
        return attention_rollout(attention, residual_weight=residual_weight, through_layer=through)
    return select_spatial(attention, layer=layer, head=head)


def token_patch_maps(matrix: Any, *, layout: TokenLayout) -> np.ndarray:
    """Each independent token's attention over the patches: (N, N) -> (26, g, g), raw probabilities."""
    m = _as_numpy(matrix)
    if m.shape != (layout.num_tokens, layout.num_tokens):
        raise ValueError(f"expected a ({layout.num_tokens}, {layout.num_tokens}) matrix for this layout, got {m.shape}")
    rows = m[: layout.num_independent, layout.patch_start:]
    return rows.reshape(layout.num_independent, layout.grid_size, layout.grid_size)


def normalise_map(values: Any) -> np.ndarray:
    """Scale to [0, 1] by the map's own minimum and maximum (a constant map becomes zeros). Returns a copy."""
    v = _as_numpy(values)
    low, high = float(v.min()), float(v.max())
    if high - low <= 0.0:
        return np.zeros_like(v)
    return (v - low) / (high - low)


def upsample_map(grid: Any, *, size: int | tuple[int, int]) -> np.ndarray:
    """A (g, g) patch map -> (H, W) crop pixels, bilinear between patch centres (edge values held).

    ``size`` is an int (square) or (H, W). Each patch's value lands at its centre pixel(s).
    """
    g = _as_numpy(grid).astype(np.float32)
    if g.ndim != 2:
        raise ValueError(f"expected a (g, g) map, got {g.shape}")
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    return cv2.resize(g, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float64)


def map_to_frame(crop_map: Any, *, transform: CropTransform, frame_size: tuple[int, int]) -> np.ndarray:
    """Carry a crop-pixel map (S, S) back into the full frame of ``frame_size`` (H, W); 0 outside the crop.

    ``transform`` is the crop's :class:`~int_model.crops.CropTransform` (from its box).
    """
    m = _as_numpy(crop_map).astype(np.float32)
    if m.shape != (transform.size, transform.size):
        raise ValueError(f"expected a ({transform.size}, {transform.size}) crop map, got {m.shape}")
    height, width = frame_size
    matrix = transform.image_to_crop_matrix()
    return cv2.warpAffine(m, matrix, (int(width), int(height)), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0).astype(np.float64)
