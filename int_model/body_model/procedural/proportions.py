"""Body proportions of the procedural body and its 10 shape components.

Everything about the procedural body follows from two tables: the named body proportions
(:class:`BodyProportions`, metres, given for the left side; the right side mirrors it) and the shape
components (:data:`SHAPE_COMPONENTS`, additive changes of those proportions per unit beta).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ...constants import NUM_BETAS


@dataclass(frozen=True)
class BodyProportions:
    """Named body proportions in metres (beta = 0 values), the left side (the right side mirrors it).

    Skeleton offsets are steps between joints; girths are half widths (x), half depths (z) or radii.
    """

    # skeleton: root and legs
    pelvis_y: float = -0.22
    pelvis_z: float = 0.025
    hip_joint_fraction: float = 0.425  # hip joints' x as a fraction of the hips' half width
    hip_drop: float = 0.09
    hip_z: float = -0.005
    thigh_length: float = 0.385
    knee_forward: float = 0.005
    knee_splay: float = 0.036
    shin_length: float = 0.395
    ankle_splay: float = -0.012
    ankle_back: float = 0.045
    ankle_height: float = 0.08  # ankle joint above the sole
    foot_forward: float = 0.125  # ankle -> ball of the foot (SMPL 'foot' joint)
    foot_drop: float = 0.055
    foot_splay: float = 0.028
    # skeleton: spine, neck, head
    spine1_rise: float = 0.11
    spine1_back: float = 0.03
    spine2_rise: float = 0.135
    spine2_forward: float = 0.005
    spine3_rise: float = 0.055
    spine3_forward: float = 0.025
    neck_rise: float = 0.21
    neck_back: float = 0.04
    head_rise: float = 0.07
    head_forward: float = 0.045
    # skeleton: arms (T-pose, along +x)
    collar_fraction: float = 0.48  # collar joints' x as a fraction of the upper chest's half width
    collar_rise: float = 0.11
    collar_back: float = 0.03
    shoulder_out: float = 0.10
    shoulder_rise: float = 0.04
    shoulder_back: float = 0.015
    upper_arm_length: float = 0.25
    elbow_drop: float = 0.015
    elbow_back: float = 0.02
    forearm_length: float = 0.255
    wrist_rise: float = 0.005
    wrist_back: float = 0.005
    hand_length: float = 0.085  # wrist -> knuckles (SMPL 'hand' joint)
    hand_drop: float = 0.008
    hand_back: float = 0.01
    finger_length: float = 0.085
    # torso cross-sections (at the hip joints, spine1, spine2, spine3 and the armpits)
    hip_centre_forward: float = -0.2  # fractions of the section depth
    hip_girth_width: float = 0.160
    hip_girth_depth: float = 0.100
    crotch_cap: float = 0.09
    waist_centre_forward: float = 0.38
    waist_width: float = 0.134
    waist_depth: float = 0.092
    lower_chest_centre_forward: float = 0.3
    lower_chest_width: float = 0.142
    lower_chest_depth: float = 0.098
    mid_chest_centre_forward: float = 0.05
    mid_chest_width: float = 0.150
    mid_chest_depth: float = 0.100
    armpit_rise: float = 0.10
    upper_chest_centre_forward: float = -0.06
    upper_chest_width: float = 0.155
    upper_chest_depth: float = 0.090
    shoulder_cap: float = 0.06
    shoulder_girdle_rise: float = 0.045
    shoulder_girdle_width: float = 0.15
    shoulder_girdle_height: float = 0.05
    shoulder_girdle_depth: float = 0.075
    belly_rise: float = 0.01
    belly_forward: float = 0.02  # how far the belly stands out of the waist
    belly_width: float = 0.11
    belly_height: float = 0.10
    belly_depth: float = 0.06
    buttock_radius: float = 0.066
    buttock_inset: float = 0.008
    buttock_rise: float = 0.045
    buttock_protrusion: float = 0.012
    chest_muscle_radius: float = 0.07
    chest_muscle_depth: float = 0.03
    chest_muscle_out: float = 0.01
    chest_muscle_drop: float = 0.05
    chest_muscle_protrusion: float = -0.01
    trapezius_rise: float = 0.09
    trapezius_back: float = 0.015
    trapezius_end_rise: float = 0.43  # fraction of the trapezius height
    trapezius_height: float = 0.035
    trapezius_depth: float = 0.05
    # neck and head
    neck_radius: float = 0.052
    neck_flare: float = 0.012
    head_centre_rise: float = 0.08
    head_centre_forward: float = 0.005
    head_width: float = 0.076
    head_height: float = 0.104
    head_depth: float = 0.098
    jaw_rise: float = -0.005
    jaw_forward: float = 0.05
    jaw_width: float = 0.05
    jaw_height: float = 0.045
    jaw_depth: float = 0.055
    cranium_back: float = 0.02
    cranium_rise: float = 0.02
    cranium_radius: float = 0.08
    brow_rise: float = 0.012
    brow_width: float = 0.05
    brow_height: float = 0.016
    brow_depth: float = 0.03
    brow_protrusion: float = 0.006
    eye_half_spacing: float = 0.032
    ear_height: float = 0.028
    ear_depth: float = 0.018
    ear_thickness: float = 0.012
    ear_drop: float = 0.012
    ear_back: float = 0.012
    nose_root_drop: float = -0.02
    nose_root_depth: float = 0.01
    nose_length: float = 0.022
    nose_radius: float = 0.012
    # arms and hands
    deltoid_radius: float = 0.052
    deltoid_out: float = 0.3  # fraction of the deltoid radius
    upper_arm_radius: float = 0.046
    elbow_radius: float = 0.037
    wrist_radius: float = 0.028
    palm_width: float = 0.042
    palm_thickness: float = 0.016
    finger_thickness: float = 0.013
    thumb_base_out: float = 0.02
    thumb_radius: float = 0.011
    thumb_length: float = 0.055
    # legs and feet
    thigh_top_rise: float = 0.03
    thigh_radius: float = 0.082
    knee_radius: float = 0.05
    calf_drop: float = 0.12
    calf_back: float = 0.5  # fraction of the calf radius
    calf_radius: float = 0.05
    calf_height: float = 0.10
    ankle_radius: float = 0.034
    instep: float = 0.04
    heel_radius: float = 0.035
    heel_back: float = 0.045
    foot_half_width: float = 0.045
    foot_half_height: float = 0.026
    toe_length: float = 0.045
    toe_splay: float = 0.006
    toe_half_width: float = 0.038
    toe_half_height: float = 0.016


REST = BodyProportions()
ROOT_FIELDS = ("pelvis_y", "pelvis_z")  # where the skeleton is; everything else is a size
FRACTION_FIELDS = (
    "hip_joint_fraction",
    "collar_fraction",
    "trapezius_end_rise",
    "deltoid_out",
    "calf_back",
    "hip_centre_forward",
    "waist_centre_forward",
    "lower_chest_centre_forward",
    "mid_chest_centre_forward",
    "upper_chest_centre_forward",
)
SIZE_FIELDS = tuple(f.name for f in dataclasses.fields(BodyProportions) if f.name not in ROOT_FIELDS + FRACTION_FIELDS)
GIRTH_FIELDS = (
    "hip_girth_width",
    "hip_girth_depth",
    "waist_width",
    "waist_depth",
    "lower_chest_width",
    "lower_chest_depth",
    "mid_chest_width",
    "mid_chest_depth",
    "upper_chest_width",
    "upper_chest_depth",
    "belly_width",
    "belly_depth",
    "buttock_radius",
    "chest_muscle_radius",
    "chest_muscle_depth",
    "trapezius_height",
    "trapezius_depth",
    "neck_radius",
    "shoulder_girdle_width",
    "shoulder_girdle_depth",
    "deltoid_radius",
    "upper_arm_radius",
    "elbow_radius",
    "wrist_radius",
    "thigh_radius",
    "knee_radius",
    "calf_radius",
    "ankle_radius",
)
# vertical steps above spine1: a longer torso stretches them all alike
TORSO_RISE_FIELDS = (
    "spine2_rise",
    "spine3_rise",
    "neck_rise",
    "collar_rise",
    "armpit_rise",
    "shoulder_rise",
    "trapezius_rise",
    "shoulder_girdle_rise",
    "chest_muscle_drop",
)
HEAD_FIELDS = (
    "head_width",
    "head_height",
    "head_depth",
    "head_centre_rise",
    "jaw_width",
    "jaw_height",
    "jaw_depth",
    "jaw_forward",
    "nose_length",
    "nose_radius",
    "ear_height",
    "ear_depth",
    "ear_thickness",
    "cranium_back",
    "cranium_rise",
    "cranium_radius",
    "brow_rise",
    "brow_width",
    "brow_height",
    "brow_depth",
)
ARM_GIRTH_FIELDS = ("upper_arm_radius", "elbow_radius", "wrist_radius", "deltoid_radius")
ARM_LENGTH_FIELDS = ("upper_arm_length", "forearm_length", "hand_length", "finger_length")


def _scaled(fields: tuple[str, ...], fraction: float) -> dict[str, float]:
    return {name: fraction * getattr(REST, name) for name in fields}


# The 10 shape components: additive proportion changes per unit beta (beta in [-3, 3] stays human).
SHAPE_COMPONENTS: tuple[tuple[str, dict[str, float]], ...] = (
    ("height", _scaled(SIZE_FIELDS, 0.035)),  # the whole body scaled about the pelvis
    ("girth", _scaled(GIRTH_FIELDS, 0.07)),
    ("arm length", _scaled(ARM_LENGTH_FIELDS, 0.04)),
    (
        "shoulder width",
        {
            "upper_chest_width": 0.014,
            "shoulder_girdle_width": 0.018,
            "mid_chest_width": 0.007,
            "deltoid_radius": 0.005,
            "trapezius_depth": 0.003,
        },
    ),
    ("hip width", {"hip_girth_width": 0.016, "buttock_radius": 0.005, "thigh_radius": 0.003}),
    (
        "belly",
        {
            "belly_forward": 0.007,
            "belly_depth": 0.005,
            "belly_width": 0.008,
            "waist_depth": 0.004,
            "waist_width": 0.005,
        },
    ),
    ("arm thickness", _scaled(ARM_GIRTH_FIELDS, 0.1)),
    ("leg length", _scaled(("thigh_length", "shin_length"), 0.035)),
    ("head size", _scaled(HEAD_FIELDS, 0.05)),
    ("torso length", _scaled(TORSO_RISE_FIELDS, 0.06)),
)
SHAPE_NAMES: tuple[str, ...] = tuple(name for name, _ in SHAPE_COMPONENTS)
assert len(SHAPE_COMPONENTS) == NUM_BETAS


def proportions_for_betas(betas: np.ndarray | None = None) -> BodyProportions:
    """Body proportions for shape coefficients ``betas (10,)`` (linear in beta)."""
    if betas is None:
        return REST
    betas = np.asarray(betas, dtype=np.float64).reshape(NUM_BETAS)
    values = dataclasses.asdict(REST)
    for beta, (_, deltas) in zip(betas, SHAPE_COMPONENTS, strict=True):
        for key, delta in deltas.items():
            values[key] += float(beta) * delta
    return BodyProportions(**values)
