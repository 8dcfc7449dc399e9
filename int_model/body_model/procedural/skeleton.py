"""Skeleton of the procedural body: the 24 SMPL rest joints and 17 Human3.6M-style joints.

Every joint is a linear function of the body proportions, laid out as SMPL's T-pose: y up, the person
faces +z, the body's left side at +x, the pelvis about 0.22 m below the origin.
"""

from __future__ import annotations

import numpy as np

from ...constants import H36M_JOINT_NAMES, SMPL_JOINT_NAMES
from .proportions import REST, BodyProportions, proportions_for_betas

J = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}  # SMPL joint name -> index


def mirror(point: np.ndarray) -> np.ndarray:
    """The point mirrored across the body's mid-plane (x -> -x): left side to right side."""
    return point * np.array([-1.0, 1.0, 1.0])


def rest_joints(p: BodyProportions = REST) -> np.ndarray:
    """The 24 SMPL rest joints (24, 3) in metres for proportions ``p``."""
    v = np.array
    pelvis = v([0.0, p.pelvis_y, p.pelvis_z])
    joints = {"pelvis": pelvis}
    hip = pelvis + v([p.hip_joint_fraction * p.hip_girth_width, -p.hip_drop, p.hip_z])
    knee = hip + v([p.knee_splay, -p.thigh_length, p.knee_forward])
    ankle = knee + v([p.ankle_splay, -p.shin_length, -p.ankle_back])
    foot = ankle + v([p.foot_splay, -p.foot_drop, p.foot_forward])
    spine1 = pelvis + v([0.0, p.spine1_rise, -p.spine1_back])
    spine2 = spine1 + v([0.0, p.spine2_rise, p.spine2_forward])
    spine3 = spine2 + v([0.0, p.spine3_rise, p.spine3_forward])
    neck = spine3 + v([0.0, p.neck_rise, -p.neck_back])
    head = neck + v([0.0, p.head_rise, p.head_forward])
    collar = spine3 + v([p.collar_fraction * p.upper_chest_width, p.collar_rise, -p.collar_back])
    shoulder = collar + v([p.shoulder_out, p.shoulder_rise, -p.shoulder_back])
    elbow = shoulder + v([p.upper_arm_length, -p.elbow_drop, -p.elbow_back])
    wrist = elbow + v([p.forearm_length, p.wrist_rise, -p.wrist_back])
    hand = wrist + v([p.hand_length, -p.hand_drop, -p.hand_back])
    joints.update(spine1=spine1, spine2=spine2, spine3=spine3, neck=neck, head=head)
    for side, flip in (("left", lambda x: x), ("right", mirror)):
        for name, point in (
            ("hip", hip),
            ("knee", knee),
            ("ankle", ankle),
            ("foot", foot),
            ("collar", collar),
            ("shoulder", shoulder),
            ("elbow", elbow),
            ("wrist", wrist),
            ("hand", hand),
        ):
            joints[f"{side}_{name}"] = flip(point)
    return np.stack([joints[name] for name in SMPL_JOINT_NAMES])


def sole_y(p: BodyProportions, joints: np.ndarray) -> float:
    return float(joints[J["left_ankle"], 1] - p.ankle_height)


def head_centre_point(p: BodyProportions, joints: np.ndarray) -> np.ndarray:
    return joints[J["head"]] + np.array([0.0, p.head_centre_rise, p.head_centre_forward])


def h36m_targets(p: BodyProportions = REST) -> np.ndarray:
    """The 17 Human3.6M-style joints (17, 3) for proportions ``p`` (linear in the proportions)."""
    j = rest_joints(p)
    head_centre = head_centre_point(p, j)
    pelvis = 0.5 * (j[J["left_hip"]] + j[J["right_hip"]])
    thorax = 0.3 * j[J["spine3"]] + 0.7 * j[J["neck"]]
    named = {
        "pelvis": pelvis,
        "spine": 0.5 * (j[J["spine1"]] + j[J["spine2"]]),
        "thorax": thorax,
        "neck_base": j[J["head"]] + np.array([0.0, 0.5 * p.head_centre_rise, 0.5 * p.head_depth]),
        "head": head_centre + np.array([0.0, 0.8 * p.head_height, 0.0]),
    }
    for side in ("left", "right"):
        for name in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist"):
            named[f"{side}_{name}"] = j[J[f"{side}_{name}"]]
    return np.stack([named[name] for name in H36M_JOINT_NAMES])


def shaped_rest_joints(betas: np.ndarray) -> np.ndarray:
    """The intended rest joints (24, 3) of the body with shape ``betas (10,)`` (exact, from the proportions)."""
    return rest_joints(proportions_for_betas(betas))
