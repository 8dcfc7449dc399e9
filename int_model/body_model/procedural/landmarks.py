"""Landmark vertices for smplx's extra joints: nose, eyes, ears, toes, heels and fingertips."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .parts import THUMB_DIRECTION, key_points
from .proportions import REST, BodyProportions
from .skeleton import mirror


def landmark_vertices(vertices: np.ndarray, p: BodyProportions = REST) -> dict[str, int]:
    """Vertex ids for smplx's extra joints (the keys of ``smplx.vertex_ids.vertex_ids['smplh']``) on this mesh.

    Each landmark is the vertex nearest to a point on the body's surface built from the key points.
    """
    key = key_points(p)
    v = np.array
    targets = {
        "nose": key["nose_tip"] + v([0.0, 0.0, p.nose_radius]),
        "leye": key["eye"],
        "lear": key["ear"] + v([p.ear_thickness, 0.0, 0.0]),
        "LBigToe": key["toe_tip"] + v([-0.5 * p.toe_half_width, -p.toe_half_height, p.toe_half_height]),
        "LSmallToe": key["toe_tip"] + v([0.7 * p.toe_half_width, -p.toe_half_height, 0.0]),
        "LHeel": key["heel"] + v([0.0, -p.heel_radius, -p.heel_radius]),
        "lthumb": key["thumb_tip"] + p.thumb_radius * THUMB_DIRECTION,
    }
    finger_tip = key["finger_tip"] + v([p.finger_thickness, 0.0, 0.0])
    for finger, across in zip(("index", "middle", "ring", "pinky"), (0.75, 0.25, -0.25, -0.75), strict=True):
        targets[f"l{finger}"] = finger_tip + v([0.0, 0.0, across * 0.72 * p.palm_width])  # index on the thumb side
    right_names = {"leye": "reye", "lear": "rear", "LBigToe": "RBigToe", "LSmallToe": "RSmallToe", "LHeel": "RHeel"}
    for name, point in list(targets.items()):
        if name != "nose":
            targets[right_names.get(name, "r" + name[1:])] = mirror(point)
    return {name: int(np.argmin(np.linalg.norm(vertices - target, axis=1))) for name, target in targets.items()}


LANDMARK_NAMES: tuple[str, ...] = (
    "nose",
    "reye",
    "leye",
    "rear",
    "lear",
    "rthumb",
    "rindex",
    "rmiddle",
    "rring",
    "rpinky",
    "lthumb",
    "lindex",
    "lmiddle",
    "lring",
    "lpinky",
    "LBigToe",
    "LSmallToe",
    "LHeel",
    "RBigToe",
    "RSmallToe",
    "RHeel",
)


def landmark_dict(arrays: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Landmark name -> vertex id, as smplx's ``vertex_ids`` argument wants it."""
    return {name: int(i) for name, i in zip(LANDMARK_NAMES, arrays["landmark_ids"], strict=True)}
