"""Generation of the procedural body model: all SMPL arrays, built step by step from the proportions.

1. rest joints (:mod:`.skeleton`): the 24 SMPL joints as linear functions of the proportions
   (:mod:`.proportions`);
2. template mesh (:mod:`.meshing`): the zero level set of a smooth union of elliptic sweeps
   (:mod:`.parts`, :mod:`.sweeps`, :mod:`.surface`) meshed by surface nets;
3. shape directions ``shapedirs (V, 3, 10)`` (:mod:`.shape_directions`); the joints move exactly with the
   proportions;
4. skinning weights (:mod:`.skinning`), smooth across joints, rows summing to 1;
5. joint regressors for the 24 SMPL and 17 Human3.6M-style joints (:mod:`.regressors`);
6. pose correctives ``posedirs (V, 3, 207)``: all zeros, as the model is plain linear blend skinning;
7. landmark vertices for smplx's ``VertexJointSelector`` (:mod:`.landmarks`).
"""

from __future__ import annotations

import numpy as np

from ...constants import NUM_JOINTS, SMPL_PARENTS
from .landmarks import LANDMARK_NAMES, landmark_vertices
from .meshing import check_closed_surface, relax, surface_nets, triangulate
from .parts import body_parts
from .proportions import REST
from .regressors import joint_regressors
from .shape_directions import shape_directions
from .skeleton import rest_joints
from .skinning import skinning_weights
from .surface import part_distances
from .sweeps import PartArrays

NUM_POSE_BASIS = (NUM_JOINTS - 1) * 9  # 207, as SMPL


def generate_procedural_body() -> dict[str, np.ndarray]:
    """Generate the procedural body model arrays (deterministic; a few seconds on a CPU).

    Returns a dict with SMPL's keys and shapes (V vertices, F faces):
    ``v_template (V,3)``, ``f (F,3) int64``, ``shapedirs (V,3,10)``, ``posedirs (V,3,207)`` (zeros),
    ``J_regressor (24,V)``, ``J_regressor_h36m (17,V)``, ``weights (V,24)``, ``kintree_table (2,24)``,
    ``J (24,3)`` rest joints, plus ``J_shapedirs (24,3,10)`` (exact joint motion per beta),
    ``landmark_ids (21,)`` in the order of ``LANDMARK_NAMES``, ``part_labels (V,)``.
    """
    parts = PartArrays.from_parts(body_parts(REST))
    vertices, quads = surface_nets(parts, REST)
    vertices = relax(vertices, quads, parts)
    faces = triangulate(vertices, quads)
    check_closed_surface(vertices, faces)
    shapedirs, joint_dirs = shape_directions(vertices)
    labels = parts.label[np.argmin(part_distances(vertices, parts), axis=1)]
    weights = skinning_weights(vertices, faces, parts)
    j_regressor, j_regressor_h36m = joint_regressors(vertices, shapedirs, joint_dirs, labels)
    landmarks = landmark_vertices(vertices)
    kintree = np.stack([np.asarray(SMPL_PARENTS), np.arange(NUM_JOINTS)]).astype(np.int64)
    arrays = {
        "v_template": vertices,
        "f": faces,
        "shapedirs": shapedirs,
        "posedirs": np.zeros((len(vertices), 3, NUM_POSE_BASIS)),
        "J_regressor": j_regressor,
        "J_regressor_h36m": j_regressor_h36m,
        "weights": weights,
        "kintree_table": kintree,
        "J": rest_joints(REST),
        "J_shapedirs": joint_dirs,
        "landmark_ids": np.array([landmarks[name] for name in LANDMARK_NAMES], dtype=np.int64),
        "part_labels": labels.astype(np.int64),
    }
    return {k: (np.round(a, 7).astype(np.float32) if a.dtype.kind == "f" else a) for k, a in arrays.items()}
