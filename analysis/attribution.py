"""Pixel attributions with captum: which input pixels a chosen output of the network depends on.

Attention says where a token *looks*; an attribution says which pixels *change the output* read from it.
The two are shown side by side (:func:`viz.figures.attention.attribution_figure`).

Outputs (:class:`AttributionTarget`), one scalar per crop:

* ``joint_angle``: the rotation angle (degrees) of one joint's predicted rotation (relative to its parent;
  the root's is the global orientation), read from its 6D head output through Gram-Schmidt;
* ``joint_6d``: one of the six raw numbers of a joint's 6D rotation;
* ``shape``: one shape coefficient (beta);
* ``camera``: one of the weak-perspective camera's (s, tx, ty).

Method: **integrated gradients** (Sundararajan et al. 2017) from a **blurred baseline** (Sturmfels et al.
2020, "Visualizing the impact of feature attribution baselines"). Integrated gradients satisfies
completeness (the attributions sum to ``f(input) - f(baseline)``, so the map says how the output got from
the baseline's value to the input's, and ``delta`` measures how far the sum is from that) and, unlike a plain
gradient (saliency), it does not saturate. The baseline matters: a black image is far outside what the
network sees (ImageNet-normalised, a black crop is an extreme input) and attributes to everything dark; a
blurred copy of the crop keeps its colours and brightness and removes only the edges and shapes, so the
attribution shows which *structures* move the output. ``n_steps`` (Gauss-Legendre points) defaults to a
modest 16 for CPU use; ``delta`` tells whether more are needed. ``method="saliency"`` (the input gradient)
is offered as a one-pass alternative.

The model is used as it is (not switched to eval mode, no parameters changed); only the input gets gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from captum.attr import IntegratedGradients, Saliency
from torchvision.transforms.functional import gaussian_blur

from int_model import IntModel
from int_model.constants import SMPL_JOINT_NAMES
from int_model.crops import black_like
from int_model.geometry import rot6d_to_rotmat

__all__ = [
    "DEFAULT_N_STEPS",
    "TARGET_KINDS",
    "Attribution",
    "AttributionTarget",
    "attribute",
    "blurred_baseline",
    "map_agreement",
    "output_value",
    "pool_to_grid",
]

TargetKind = Literal["joint_angle", "joint_6d", "shape", "camera"]
TARGET_KINDS: tuple[str, ...] = ("joint_angle", "joint_6d", "shape", "camera")
CAMERA_COMPONENTS = ("s", "tx", "ty")
METHODS = ("integrated_gradients", "saliency")

#: Integration points of integrated gradients (Gauss-Legendre): modest for CPU; check ``delta``.
DEFAULT_N_STEPS = 16
#: Interpolated images per forward pass inside integrated gradients (memory vs speed).
DEFAULT_INTERNAL_BATCH = 8
#: Blur of the baseline: Gaussian sigma as a fraction of the crop side (removes limb-sized structure).
BASELINE_BLUR_FRACTION = 1.0 / 8.0
#: Added under the square root of the rotation angle's sine term so that its gradient exists at 0 degrees.
_ANGLE_EPS = 1e-8


@dataclass(frozen=True)
class AttributionTarget:
    """One scalar output of the network.

    Attributes:
        kind: "joint_angle", "joint_6d", "shape" or "camera".
        index: the joint (0..23) for joint kinds, the beta (0..9) for shape, 0/1/2 = s/tx/ty for camera.
        component: the 6D number (0..5) for ``joint_6d``.
    """

    kind: TargetKind
    index: int = 0
    component: int = 0

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            raise ValueError(f"kind must be one of {TARGET_KINDS}, got {self.kind!r}")
        if self.kind == "camera" and not 0 <= self.index < len(CAMERA_COMPONENTS):
            raise ValueError(f"camera index must be 0 (s), 1 (tx) or 2 (ty), got {self.index}")
        if self.kind == "joint_6d" and not 0 <= self.component < 6:
            raise ValueError(f"6D component must be in 0..5, got {self.component}")

    @property
    def token(self) -> int:
        """Index of the independent token the output is read from (joints 0..23, shape 24, camera 25)."""
        if self.kind in ("joint_angle", "joint_6d"):
            return self.index
        return len(SMPL_JOINT_NAMES) + (0 if self.kind == "shape" else 1)

    @property
    def label(self) -> str:
        if self.kind == "joint_angle":
            return f"{SMPL_JOINT_NAMES[self.index]} rotation angle (deg)"
        if self.kind == "joint_6d":
            return f"{SMPL_JOINT_NAMES[self.index]} 6D[{self.component}]"
        if self.kind == "shape":
            return f"shape beta[{self.index}]"
        return f"camera {CAMERA_COMPONENTS[self.index]}"


@dataclass(frozen=True)
class Attribution:
    """Attribution of one output over one crop.

    Attributes:
        target: what was attributed.
        pixels: (H, W) signed attribution per pixel, summed over the colour channels.
        value: the output for the crop.
        baseline_value: the output for the baseline (integrated gradients; NaN for saliency).
        delta: completeness error ``sum(attr) - (value - baseline_value)`` (0 for exact; NaN for saliency).
        method: "integrated_gradients" or "saliency".
    """

    target: AttributionTarget
    pixels: np.ndarray
    value: float
    baseline_value: float
    delta: float
    method: str

    @property
    def magnitude(self) -> np.ndarray:
        """(H, W) |attribution|."""
        return np.abs(self.pixels)


def _rotation_angle_deg(rotmat: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (...,) angle in degrees, ``atan2(|vee(R - R^T)| / 2, (tr R - 1) / 2)``, smooth at 0."""
    vee = torch.stack((rotmat[..., 2, 1] - rotmat[..., 1, 2], rotmat[..., 0, 2] - rotmat[..., 2, 0],
                       rotmat[..., 1, 0] - rotmat[..., 0, 1]), dim=-1)
    sine = 0.5 * torch.sqrt((vee**2).sum(-1) + _ANGLE_EPS)
    cosine = 0.5 * (rotmat.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0)
    return torch.rad2deg(torch.atan2(sine, cosine))


def output_value(model: IntModel, crops: torch.Tensor, *, target: AttributionTarget) -> torch.Tensor:
    """The target output of the image model for each crop: (N, 3, S, S) normalised crops -> (N,).

    Runs :meth:`IntModel.encode_frames` and the heads only (no temporal transformer, no body model).
    """
    tokens = model.encode_frames(crops)
    rot6d, betas, camera = model.heads(tokens.joints, tokens.shape, tokens.cam)
    if target.kind == "joint_angle":
        return _rotation_angle_deg(rot6d_to_rotmat(rot6d[:, target.index].float()))
    if target.kind == "joint_6d":
        return rot6d[:, target.index, target.component]
    if target.kind == "shape":
        return betas[:, target.index]
    return camera[:, target.index]


def blurred_baseline(crop: torch.Tensor, *, sigma_fraction: float = BASELINE_BLUR_FRACTION) -> torch.Tensor:
    """A Gaussian-blurred copy of a (3, S, S) or (N, 3, S, S) crop, sigma = ``sigma_fraction * S``."""
    size = crop.shape[-1]
    sigma = max(sigma_fraction * size, 1e-3)
    kernel = min(2 * int(np.ceil(2.0 * sigma)) + 1, 2 * ((size - 1) // 2) + 1)
    return gaussian_blur(crop, kernel_size=[kernel, kernel], sigma=[sigma, sigma])


def attribute(
    model: IntModel,
    crop: torch.Tensor,
    *,
    target: AttributionTarget,
    method: str = "integrated_gradients",
    baseline: Literal["blur", "black"] | torch.Tensor = "blur",
    n_steps: int = DEFAULT_N_STEPS,
    internal_batch_size: int = DEFAULT_INTERNAL_BATCH,
) -> Attribution:
    """Attribute one output to the pixels of one crop.

    Args:
        model: an INT model (used as it is; eval mode expected).
        crop: (3, S, S) ImageNet-normalised crop (the network's input). Not modified.
        target: the output.
        method: "integrated_gradients" (default) or "saliency" (gradient of the output, one pass).
        baseline: "blur" (:func:`blurred_baseline`), "black" (a black crop, normalised), or a (3, S, S) tensor.
        n_steps: integration points for integrated gradients.
        internal_batch_size: interpolated crops per forward pass.

    Returns:
        :class:`Attribution` with a (S, S) map.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if crop.ndim != 3 or crop.shape[0] != 3:
        raise ValueError(f"crop must be (3, S, S), got {tuple(crop.shape)}")
    device = next(model.parameters()).device
    x = crop.detach().to(device=device, dtype=torch.float32)[None].clone()

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        return output_value(model, inputs, target=target)

    with torch.enable_grad():
        if method == "saliency":
            grads = Saliency(forward).attribute(x.requires_grad_(), abs=False)
            with torch.no_grad():
                value = float(forward(x)[0])
            pixels = grads[0].sum(0).detach().cpu().numpy()
            return Attribution(target=target, pixels=pixels.astype(np.float64), value=value,
                               baseline_value=float("nan"), delta=float("nan"), method=method)
        if isinstance(baseline, torch.Tensor):
            base = baseline.detach().to(device=device, dtype=torch.float32).reshape(1, *x.shape[1:])
        elif baseline == "blur":
            base = blurred_baseline(x)
        elif baseline == "black":
            base = black_like(x)
        else:
            raise ValueError(f"baseline must be 'blur', 'black' or a tensor, got {baseline!r}")
        attributions, delta = IntegratedGradients(forward).attribute(
            x, baselines=base, n_steps=n_steps, internal_batch_size=internal_batch_size,
            return_convergence_delta=True,
        )
    with torch.no_grad():
        value, base_value = (float(v) for v in forward(torch.cat([x, base])))
    pixels = attributions[0].sum(0).detach().cpu().numpy().astype(np.float64)
    return Attribution(target=target, pixels=pixels, value=value, baseline_value=base_value,
                       delta=float(delta.reshape(-1)[0]), method=method)


def pool_to_grid(pixels: np.ndarray, *, grid_size: int) -> np.ndarray:
    """Sum a (S, S) pixel map over each patch: -> (g, g) (S must be a multiple of g)."""
    p = np.asarray(pixels, dtype=np.float64)
    size = p.shape[0]
    if p.shape != (size, size) or size % grid_size:
        raise ValueError(f"expected a square map whose side is a multiple of {grid_size}, got {p.shape}")
    step = size // grid_size
    return p.reshape(grid_size, step, grid_size, step).sum(axis=(1, 3))


def map_agreement(first: np.ndarray, second: np.ndarray) -> float:
    """Pearson correlation of two maps of equal shape (e.g. a token's patch attention and its pooled
    |attribution|); NaN when either is constant."""
    a = np.asarray(first, dtype=np.float64).ravel()
    b = np.asarray(second, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"maps differ in size: {np.shape(first)} vs {np.shape(second)}")
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])
