"""The implicit body surface: a smooth union of the parts' distances, and projection onto its zero level set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sweeps import PartArrays, to_local


@dataclass(frozen=True)
class MeshingSettings:
    """Grid and surface settings (metres)."""

    blend: float = 0.013  # smooth-union softness
    spacing: float = 0.021  # grid step
    fine_spacing: float = 0.0105  # grid step in the bands around the hands (x, y) and the feet (y)
    padding: float = 0.05
    filled_value: float = 1e-4  # field value given to grid corners whose side was changed to resolve ambiguities
    hand_band: float = 0.045  # fine grid this far around the wrists' height, and from the wrists outwards
    foot_band: float = 0.1  # fine grid from the soles up to this height
    cull_margin: float = 0.12  # about 9 blends
    relax_iterations: int = 4
    relax_step: float = 0.5
    chunk: int = 100_000  # points per field evaluation (bounds memory)


MESHING = MeshingSettings()


FAR = 1.0  # distance (m) reported for a part far from a point; it no longer affects the smooth union


def part_distances(points: np.ndarray, parts: PartArrays) -> np.ndarray:
    """Approximate signed distance (N, P) of points (N, 3) to each part; FAR where a part cannot matter.

    Each part is evaluated only inside its bounding box grown by ``MESHING.cull_margin``, beyond which its
    smooth-union contribution is below a micrometre.
    """
    out = np.full((len(points), len(parts.label)), FAR)
    ends = parts.a + parts.e0 * parts.length[:, None]
    reach = np.maximum(np.maximum(parts.r1.max(1), parts.r2.max(1)), parts.caps.max(1)) + MESHING.cull_margin
    lo = np.minimum(parts.a, ends) - reach[:, None]
    hi = np.maximum(parts.a, ends) + reach[:, None]
    for k in range(len(parts.label)):
        near = np.flatnonzero(np.all((points >= lo[k]) & (points <= hi[k]), axis=1))
        if len(near):
            out[near, k] = to_local(points[near], parts.take(k))[1][:, 0]
    return out


def _smooth_union(distances: np.ndarray, blend: float = MESHING.blend) -> np.ndarray:
    """Exponential smooth minimum over parts: (N, P) -> (N,)."""
    m = distances.min(axis=1)
    return m - blend * np.log(np.exp(-(distances - m[:, None]) / blend).sum(axis=1))


def body_field(points: np.ndarray, parts: PartArrays) -> np.ndarray:
    """Implicit body function (N,) at points (N, 3): negative inside, about the distance near the surface."""
    step = MESHING.chunk
    return np.concatenate(
        [_smooth_union(part_distances(points[i : i + step], parts)) for i in range(0, max(len(points), 1), step)]
    )


def memberships(distances: np.ndarray, blend: float = MESHING.blend) -> np.ndarray:
    """Soft assignment of points to parts (N, P), rows sum to 1."""
    z = -(distances - distances.min(axis=1, keepdims=True)) / blend
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def field_and_gradient(points: np.ndarray, parts: PartArrays, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Field (N,) and its gradient (N, 3) by forward differences."""
    f = body_field(points, parts)
    grad = np.stack([(body_field(points + o, parts) - f) / eps for o in np.eye(3) * eps], axis=1)
    return f, grad


def project(points: np.ndarray, parts: PartArrays, steps: int = 2, grad: np.ndarray | None = None) -> np.ndarray:
    """Chord-Newton steps onto the zero level set along the gradient at the start points (or ``grad``)."""
    if grad is None:
        f, grad = field_and_gradient(points, parts)
    else:
        f = body_field(points, parts)
    step = grad / np.maximum(np.sum(grad * grad, axis=1), 1e-6)[:, None]
    x = points - f[:, None] * step
    for _ in range(steps - 1):
        x = x - body_field(x, parts)[:, None] * step
    return x
