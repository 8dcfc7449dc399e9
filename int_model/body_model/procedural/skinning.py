"""Skinning weights: each vertex starts with its nearest part's joint, then the weights diffuse over the mesh."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...constants import NUM_JOINTS
from .meshing import vertex_adjacency
from .surface import part_distances
from .sweeps import PartArrays


@dataclass(frozen=True)
class SkinningSettings:
    """Diffusion of the part labels over the mesh (more iterations = wider blends across joints)."""

    iterations: int = 12
    keep: float = 0.5


SKINNING = SkinningSettings()


def skinning_weights(vertices: np.ndarray, faces: np.ndarray, parts: PartArrays) -> np.ndarray:
    """Smooth skinning weights (V, 24): nearest part's joint, diffused over the mesh."""
    distances = part_distances(vertices, parts)
    hard = np.zeros((len(vertices), NUM_JOINTS))
    hard[np.arange(len(vertices)), parts.label[np.argmin(distances, axis=1)]] = 1.0
    avg = vertex_adjacency(len(vertices), faces)
    weights = hard
    for _ in range(SKINNING.iterations):
        weights = SKINNING.keep * weights + (1.0 - SKINNING.keep) * (avg @ weights)
    weights[weights < 1e-4] = 0.0
    return weights / weights.sum(axis=1, keepdims=True)
