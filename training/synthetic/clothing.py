"""Clothing: the body's parts, the colours of a person's skin, hair and clothes, and the mesh split by colour.

Every vertex belongs to one part of :data:`PART_NAMES` (its dominant skinning joint's, the head split into hair
and skin by the hair style); a :class:`Clothing` colours the parts, and :func:`colour_groups` cuts the posed mesh
into one sub-mesh per colour for the renderer.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse

from int_model.body_model import BodyModel
from int_model.constants import SMPL_JOINT_NAMES

from . import backgrounds as bg
from .config import SyntheticConfig

HEAD_JOINT = SMPL_JOINT_NAMES.index("head")

PART_NAMES: tuple[str, ...] = ("skin", "hair", "torso", "upper_arm", "forearm", "hips", "thigh", "shin", "shoes")
PART = {name: index for index, name in enumerate(PART_NAMES)}
#: The part of each vertex is the part of its dominant skinning joint (the head's is split into hair / skin).
JOINT_PARTS: dict[str, str] = {
    "pelvis": "hips", "left_hip": "thigh", "right_hip": "thigh", "spine1": "torso", "left_knee": "shin",
    "right_knee": "shin", "spine2": "torso", "left_ankle": "shoes", "right_ankle": "shoes", "spine3": "torso",
    "left_foot": "shoes", "right_foot": "shoes", "neck": "skin", "left_collar": "torso", "right_collar": "torso",
    "head": "skin", "left_shoulder": "upper_arm", "right_shoulder": "upper_arm", "left_elbow": "forearm",
    "right_elbow": "forearm", "left_wrist": "skin", "right_wrist": "skin", "left_hand": "skin", "right_hand": "skin",
}
HAIR_STYLES: tuple[str, ...] = ("bald", "short", "long")
#: Hair covers the head's vertices above a level (in units of the head's half height, from its centre) that
#: rises from the back of the head to the front: (level at the back, level at the face) per style.
HAIR_LEVELS: dict[str, tuple[float, float]] = {"bald": (2.0, 2.0), "short": (-0.1, 0.55), "long": (-0.9, 0.5)}
#: The hair level moves from its back to its face value between these depths (units of the head's half depth).
HAIRLINE_DEPTHS: tuple[float, float] = (-0.3, 0.6)
SKIN_TONES: tuple[tuple[int, int, int], ...] = (
    (255, 224, 196), (241, 194, 167), (224, 172, 138), (198, 134, 96), (161, 102, 68), (120, 75, 48), (80, 52, 36),
)
HAIR_COLOURS: tuple[tuple[int, int, int], ...] = (
    (28, 22, 20), (55, 38, 28), (95, 65, 42), (150, 110, 70), (205, 175, 115), (140, 62, 32), (165, 165, 165),
)
CLOTH_SATURATION, CLOTH_VALUE = (0.0, 0.85), (0.08, 0.95)
SHOE_SATURATION, SHOE_VALUE = (0.0, 0.5), (0.05, 0.7)


@dataclass(frozen=True)
class Clothing:
    """Colours of a person, RGB in [0, 1] per part of :data:`PART_NAMES` ((9, 3) float), and a hair style."""

    colours: np.ndarray
    hair: str = "short"


def _interpolate_table(table: Sequence[tuple[int, int, int]], u: float) -> np.ndarray:
    position = u * (len(table) - 1)
    i = min(int(position), len(table) - 2)
    f = position - i
    return (np.asarray(table[i]) * (1 - f) + np.asarray(table[i + 1]) * f) / 255.0


def sample_clothing(rng: np.random.Generator, config: SyntheticConfig) -> Clothing:
    """Random skin tone, hair colour and style, shirt / trousers / shoe colours, sleeve and leg lengths."""
    skin = _interpolate_table(SKIN_TONES, rng.uniform())
    hair_colour = np.asarray(HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))]) / 255.0
    shirt = bg.random_colour(rng, saturation=CLOTH_SATURATION, value=CLOTH_VALUE)
    trousers = bg.random_colour(rng, saturation=CLOTH_SATURATION, value=CLOTH_VALUE)
    shoes = bg.random_colour(rng, saturation=SHOE_SATURATION, value=SHOE_VALUE)
    u = rng.uniform(size=5)
    hair = "bald" if u[0] < config.bald_prob else "long" if u[1] < config.long_hair_prob else "short"
    colours = np.empty((len(PART_NAMES), 3))
    colours[PART["skin"]] = skin
    colours[PART["hair"]] = hair_colour
    colours[PART["torso"]] = shirt
    colours[PART["upper_arm"]] = skin if u[2] < config.sleeveless_prob else shirt
    colours[PART["forearm"]] = shirt if u[3] < config.long_sleeve_prob else skin
    colours[PART["hips"]] = trousers
    colours[PART["thigh"]] = trousers
    colours[PART["shin"]] = trousers if u[4] < config.long_trousers_prob else skin
    colours[PART["shoes"]] = shoes
    return Clothing(colours=colours, hair=hair)


PART_SMOOTHING_STEPS = 12  # rounds of neighbour averaging of the part labels (straighter clothing edges)


@functools.lru_cache(maxsize=8)
def vertex_parts(body_model: BodyModel, *, hair: str) -> np.ndarray:
    """(V,) int part index (:data:`PART_NAMES`) of each vertex: its dominant skinning joint's part, with the
    head split into hair and skin by :data:`HAIR_LEVELS` (in the rest template: y up, facing +z), then smoothed
    over the mesh (majority of the neighbourhood) so that clothing edges run straight rather than zig-zag."""
    weights = body_model.smpl.lbs_weights.detach().cpu().numpy()
    dominant = weights.argmax(axis=1)
    lookup = np.array([PART[JOINT_PARTS[name]] for name in SMPL_JOINT_NAMES])
    parts = lookup[dominant]
    head = dominant == HEAD_JOINT
    if head.any():
        template = body_model.smpl.v_template.detach().cpu().numpy()[head]
        low, high = template.min(axis=0), template.max(axis=0)
        centre, half = (low + high) / 2.0, np.maximum((high - low) / 2.0, 1e-6)
        y_rel, z_rel = (template[:, 1] - centre[1]) / half[1], (template[:, 2] - centre[2]) / half[2]
        back, front = HAIR_LEVELS[hair]
        back_z, face_z = HAIRLINE_DEPTHS
        towards_face = np.clip((z_rel - back_z) / (face_z - back_z), 0.0, 1.0)
        is_hair = y_rel > back + (front - back) * towards_face
        parts[head] = np.where(is_hair, PART["hair"], PART["skin"])
    faces = np.asarray(body_model.faces)
    num_vertices = parts.shape[0]
    rows = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2], faces[:, 1], faces[:, 2], faces[:, 0],
                           np.arange(num_vertices)])
    cols = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0], faces[:, 0], faces[:, 1], faces[:, 2],
                           np.arange(num_vertices)])
    adjacency = scipy.sparse.csr_matrix((np.ones(rows.shape[0]), (rows, cols)), shape=(num_vertices,) * 2)
    adjacency.data[:] = 1.0
    one_hot = np.eye(len(PART_NAMES))[parts]
    for _ in range(PART_SMOOTHING_STEPS):
        one_hot = adjacency @ one_hot
        one_hot /= one_hot.sum(axis=1, keepdims=True)
    smoothed = one_hot.argmax(axis=1)
    smoothed.setflags(write=False)
    return smoothed


@dataclass(frozen=True)
class MeshGroup:
    """The faces of one colour: ``vertex_ids`` (K,) into the full mesh, ``faces`` (F, 3) into those K vertices."""

    vertex_ids: np.ndarray
    faces: np.ndarray
    colour: tuple[float, float, float]


def colour_groups(faces: np.ndarray, vertex_colours: np.ndarray) -> list[MeshGroup]:
    """Split a mesh into sub-meshes of one colour each (a face takes the colour most of its vertices have).

    Args:
        faces: (F, 3) int.
        vertex_colours: (V, 3) float RGB in [0, 1].
    """
    palette, vertex_group = np.unique(np.round(vertex_colours, 6), axis=0, return_inverse=True)
    vertex_group = vertex_group.reshape(-1)
    g = vertex_group[faces]
    face_group = np.where((g[:, 0] == g[:, 1]) | (g[:, 0] == g[:, 2]), g[:, 0], np.where(g[:, 1] == g[:, 2], g[:, 1],
                                                                                          g[:, 0]))
    groups = []
    for index, colour in enumerate(palette):
        group_faces = faces[face_group == index]
        if len(group_faces) == 0:
            continue
        ids, local = np.unique(group_faces, return_inverse=True)
        groups.append(MeshGroup(vertex_ids=ids, faces=local.reshape(-1, 3).astype(np.int64),
                                colour=(float(colour[0]), float(colour[1]), float(colour[2]))))
    return groups


__all__ = [
    "PART_NAMES",
    "Clothing",
    "MeshGroup",
    "colour_groups",
    "sample_clothing",
    "vertex_parts",
]
