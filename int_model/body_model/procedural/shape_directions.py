"""Shape directions: how the template's vertices and joints move per unit beta.

For each shape component, the template vertices are carried with their body parts to the bodies at
beta = +-``SHAPE_STEP`` and projected onto those surfaces; central differences give the directions.
"""

from __future__ import annotations

import numpy as np

from ...constants import NUM_BETAS, NUM_JOINTS
from .parts import body_parts
from .proportions import REST, proportions_for_betas
from .skeleton import shaped_rest_joints
from .surface import field_and_gradient, memberships, project
from .sweeps import PartArrays, from_local, to_local

SHAPE_STEP = 0.5  # beta step of the central differences


def shape_directions(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertex and joint displacement per unit beta: shapedirs (V, 3, 10), joint_dirs (24, 3, 10).

    For beta = +-SHAPE_STEP along each component, every template vertex is carried with its body parts
    (fixed local sweep coordinates, blended by part membership) and projected onto the perturbed surface;
    central differences of the carried vertices give the shape directions.
    """
    base = PartArrays.from_parts(body_parts(REST))
    coords, dist = to_local(vertices, base)
    weights = memberships(dist)
    _, grad = field_and_gradient(vertices, base)
    shapedirs = np.zeros((len(vertices), 3, NUM_BETAS))
    joint_dirs = np.zeros((NUM_JOINTS, 3, NUM_BETAS))
    for i in range(NUM_BETAS):
        step = np.zeros(NUM_BETAS)
        step[i] = SHAPE_STEP
        carried = []
        for betas in (step, -step):
            parts = PartArrays.from_parts(body_parts(proportions_for_betas(betas)))
            moved = np.einsum("np,npk->nk", weights, from_local(coords, parts))
            carried.append(project(moved, parts, grad=grad))
        shapedirs[:, :, i] = (carried[0] - carried[1]) / (2 * SHAPE_STEP)
        joint_dirs[:, :, i] = (shaped_rest_joints(step) - shaped_rest_joints(-step)) / (2 * SHAPE_STEP)
    return shapedirs, joint_dirs
