"""The procedural body's parts: every sweep of the body, placed along the skeleton by the proportions."""

from __future__ import annotations

import numpy as np

from ...constants import SMPL_FLIP_PERM
from .proportions import REST, BodyProportions
from .skeleton import J, head_centre_point, mirror, rest_joints, sole_y
from .sweeps import X_AXIS, Y_AXIS, Z_AXIS, Sweep, ellipsoid, sweep

THUMB_DIRECTION = np.array([0.75, -0.1, 0.65]) / np.linalg.norm([0.75, -0.1, 0.65])  # left thumb, T-pose


def key_points(p: BodyProportions) -> dict[str, np.ndarray]:
    """Named points of the left side and centre line (body parts and landmarks are built from them)."""
    j = rest_joints(p)
    v = np.array
    head_centre = head_centre_point(p, j)
    ankle, foot, wrist, hand = (j[J[f"left_{n}"]] for n in ("ankle", "foot", "wrist", "hand"))
    sole = sole_y(p, j)
    nose_root = head_centre + v([0.0, p.nose_root_drop, p.head_depth - p.nose_root_depth])
    ball = v([foot[0], sole + p.foot_half_height, foot[2]])
    thumb_base = wrist + v([p.thumb_base_out, -p.palm_thickness * 0.4, p.palm_width * 0.5])
    return {
        "head_centre": head_centre,
        "nose_root": nose_root,
        "nose_tip": nose_root + v([0.0, -p.nose_length, p.nose_length]),
        "eye": head_centre + v([p.eye_half_spacing, p.brow_rise - 2 * p.brow_height, p.head_depth]),
        "ear": head_centre + v([p.head_width - p.ear_thickness * 0.5, -p.ear_drop, -p.ear_back]),
        "heel": v([ankle[0], sole + p.heel_radius, ankle[2] - p.heel_back]),
        "ball": ball,
        "toe_tip": ball + v([p.toe_splay, p.toe_half_height - p.foot_half_height, p.toe_length]),
        "thumb_base": thumb_base,
        "thumb_tip": thumb_base + p.thumb_length * THUMB_DIRECTION,
        "finger_tip": hand + v([p.finger_length, 0.0, 0.0]),
    }


def body_parts(p: BodyProportions = REST) -> list[Sweep]:
    """All body parts (sweeps) for proportions ``p``: centre line, left side, and the mirrored right side.

    Each part is labelled with the SMPL joint whose rotation moves it (the joint at the start of its bone).
    All sizes and offsets come from the proportions; the few plain factors in the helpers below (such as a
    calf 0.95 times as wide as deep) only fix the aspect ratio of a part's cross-section.
    """
    j = rest_joints(p)
    key = key_points(p)
    sections = _torso_sections(p, j)
    centre = _torso(p, sections) + _neck_and_head(p, j, sections, key)
    ear = ellipsoid(J["head"], key["ear"], radii=(p.ear_thickness, p.ear_height, p.ear_depth))
    left = [
        ear,
        *_hip_and_leg(p, j, sections),
        *_foot(p, j, key),
        *_shoulder_and_arm(p, j, sections),
        *_hand(p, j, key),
    ]
    return centre + left + [_mirrored(s) for s in left]


def _torso_sections(p: BodyProportions, j: np.ndarray) -> dict[str, np.ndarray]:
    """Centres of the torso's cross-sections at the hip joints, spine1, spine2, spine3, the armpits and the neck.

    Each centre sits a fixed fraction of its section's depth in front of its spine joint, so a change of girth
    scales the section about the joint and the joints stay where the mesh puts them.
    """
    v = np.array
    pelvis, spine1, spine2, spine3, neck = (j[J[n]] for n in ("pelvis", "spine1", "spine2", "spine3", "neck"))
    upper_chest = v([0.0, spine3[1] + p.armpit_rise, spine3[2] + p.upper_chest_centre_forward * p.upper_chest_depth])
    return {
        "hips": v([0.0, j[J["left_hip"], 1], pelvis[2] + p.hip_centre_forward * p.hip_girth_depth]),
        "waist": v([0.0, spine1[1], spine1[2] + p.waist_centre_forward * p.waist_depth]),
        "lower_chest": v([0.0, spine2[1], spine2[2] + p.lower_chest_centre_forward * p.lower_chest_depth]),
        "mid_chest": v([0.0, spine3[1], spine3[2] + p.mid_chest_centre_forward * p.mid_chest_depth]),
        "upper_chest": upper_chest,
        "neck_base": v([0.0, upper_chest[1], neck[2]]),
    }


def _torso(p: BodyProportions, sections: dict[str, np.ndarray]) -> list[Sweep]:
    """One sweep per spine segment between the torso's cross-sections, the shoulder girdle and the belly."""
    v = np.array
    hips, waist, lower_chest, mid_chest, upper_chest = (
        sections[n] for n in ("hips", "waist", "lower_chest", "mid_chest", "upper_chest")
    )
    belly_z = waist[2] + p.waist_depth - p.belly_depth + p.belly_forward
    return [
        sweep(
            J["pelvis"],
            hips,
            waist,
            radii_a=(p.hip_girth_width, p.hip_girth_depth),
            radii_b=(p.waist_width, p.waist_depth),
            ref=X_AXIS,
            caps=(p.crotch_cap, p.waist_depth),
        ),
        sweep(
            J["spine1"],
            waist,
            lower_chest,
            radii_a=(p.waist_width, p.waist_depth),
            radii_b=(p.lower_chest_width, p.lower_chest_depth),
            ref=X_AXIS,
        ),
        sweep(
            J["spine2"],
            lower_chest,
            mid_chest,
            radii_a=(p.lower_chest_width, p.lower_chest_depth),
            radii_b=(p.mid_chest_width, p.mid_chest_depth),
            ref=X_AXIS,
        ),
        sweep(
            J["spine3"],
            mid_chest,
            upper_chest,
            radii_a=(p.mid_chest_width, p.mid_chest_depth),
            radii_b=(p.upper_chest_width, p.upper_chest_depth),
            ref=X_AXIS,
            caps=(p.mid_chest_depth, p.shoulder_cap),
        ),
        ellipsoid(
            J["spine3"],
            upper_chest + v([0.0, p.shoulder_girdle_rise, 0.0]),
            radii=(p.shoulder_girdle_width, p.shoulder_girdle_height, p.shoulder_girdle_depth),
        ),
        ellipsoid(
            J["spine1"],
            v([0.0, waist[1] + p.belly_rise, belly_z]),
            radii=(p.belly_width, p.belly_height, p.belly_depth),
        ),
    ]


def _neck_and_head(
    p: BodyProportions, j: np.ndarray, sections: dict[str, np.ndarray], key: dict[str, np.ndarray]
) -> list[Sweep]:
    """The neck (a flared base and the neck proper), then the head: skull, cranium, brow, jaw and nose."""
    v = np.array
    neck, head = j[J["neck"]], j[J["head"]]
    head_centre = head_centre_point(p, j)
    flared = p.neck_radius + p.neck_flare
    return [
        sweep(
            J["spine3"],
            sections["neck_base"],
            neck,
            radii_a=(flared, flared),
            radii_b=(p.neck_radius, p.neck_radius),
            ref=X_AXIS,
        ),
        sweep(
            J["neck"],
            neck,
            head,
            radii_a=(p.neck_radius, p.neck_radius),
            radii_b=(p.neck_radius, p.neck_radius),
            ref=X_AXIS,
        ),
        ellipsoid(J["head"], head_centre, radii=(p.head_width, p.head_height, p.head_depth)),
        ellipsoid(
            J["head"],
            head_centre + v([0.0, p.cranium_rise, -p.cranium_back]),
            radii=(p.cranium_radius * 0.92, p.cranium_radius, p.cranium_radius),
        ),
        ellipsoid(
            J["head"],
            head_centre + v([0.0, p.brow_rise, p.head_depth + p.brow_protrusion - p.brow_depth]),
            radii=(p.brow_width, p.brow_height, p.brow_depth),
        ),
        ellipsoid(
            J["head"], head + v([0.0, p.jaw_rise, p.jaw_forward]), radii=(p.jaw_width, p.jaw_height, p.jaw_depth)
        ),
        sweep(
            J["head"],
            key["nose_root"],
            key["nose_tip"],
            radii_a=(p.nose_radius * 0.8, p.nose_radius * 0.6),
            radii_b=(p.nose_radius, p.nose_radius * 0.8),
            ref=X_AXIS,
        ),
    ]


def _hip_and_leg(p: BodyProportions, j: np.ndarray, sections: dict[str, np.ndarray]) -> list[Sweep]:
    """The left buttock, thigh, shin and calf."""
    v = np.array
    hip, knee, ankle = (j[J[f"left_{n}"]] for n in ("hip", "knee", "ankle"))
    buttock = v(
        [
            hip[0] - p.buttock_inset,
            hip[1] + p.buttock_rise,
            sections["hips"][2] - p.hip_girth_depth + p.buttock_radius - p.buttock_protrusion,
        ]
    )
    return [
        ellipsoid(J["pelvis"], buttock, radii=(p.buttock_radius, p.buttock_radius * 1.1, p.buttock_radius)),
        sweep(
            J["left_hip"],
            hip + v([0.0, p.thigh_top_rise, 0.0]),
            knee,
            radii_a=(p.thigh_radius, p.thigh_radius),
            radii_b=(p.knee_radius, p.knee_radius),
            ref=Z_AXIS,
        ),
        sweep(
            J["left_knee"],
            knee,
            ankle,
            radii_a=(p.knee_radius, p.knee_radius),
            radii_b=(p.ankle_radius, p.ankle_radius),
            ref=Z_AXIS,
        ),
        ellipsoid(
            J["left_knee"],
            knee + v([0.0, -p.calf_drop, -p.calf_back * p.calf_radius]),
            radii=(p.calf_radius * 0.95, p.calf_height, p.calf_radius),
        ),
    ]


def _foot(p: BodyProportions, j: np.ndarray, key: dict[str, np.ndarray]) -> list[Sweep]:
    """The left foot: heel to ball, ankle to instep, ball to toe tip."""
    v = np.array
    ankle = j[J["left_ankle"]]
    instep = v([ankle[0], sole_y(p, j) + p.foot_half_height * 2, ankle[2] + p.instep])
    return [
        sweep(
            J["left_ankle"],
            key["heel"],
            key["ball"],
            radii_a=(p.heel_radius, p.heel_radius),
            radii_b=(p.foot_half_width, p.foot_half_height),
            ref=X_AXIS,
            caps=(p.heel_radius, p.foot_half_height),
        ),
        sweep(
            J["left_ankle"],
            ankle,
            instep,
            radii_a=(p.ankle_radius, p.ankle_radius),
            radii_b=(p.foot_half_width, p.foot_half_height * 1.4),
            ref=X_AXIS,
        ),
        sweep(
            J["left_foot"],
            key["ball"],
            key["toe_tip"],
            radii_a=(p.foot_half_width, p.foot_half_height),
            radii_b=(p.toe_half_width, p.toe_half_height),
            ref=X_AXIS,
            caps=(p.foot_half_height, p.toe_half_height),
        ),
    ]


def _shoulder_and_arm(p: BodyProportions, j: np.ndarray, sections: dict[str, np.ndarray]) -> list[Sweep]:
    """The left trapezius, chest muscle and deltoid, then the upper arm and the forearm."""
    v = np.array
    neck = j[J["neck"]]
    collar, shoulder, elbow, wrist = (j[J[f"left_{n}"]] for n in ("collar", "shoulder", "elbow", "wrist"))
    trapezius_start = v([p.neck_radius * 0.5, sections["neck_base"][1] + p.trapezius_rise, neck[2] - p.trapezius_back])
    trapezius_end = shoulder + v([0.0, p.trapezius_end_rise * p.trapezius_height, 0.0])
    chest_muscle = v(
        [
            collar[0] + p.chest_muscle_out,
            collar[1] - p.chest_muscle_drop,
            sections["mid_chest"][2] + p.mid_chest_depth - p.chest_muscle_depth + p.chest_muscle_protrusion,
        ]
    )
    return [
        sweep(
            J["left_collar"],
            trapezius_start,
            trapezius_end,
            radii_a=(p.trapezius_height, p.trapezius_depth),
            radii_b=(p.trapezius_height * 0.8, p.trapezius_depth),
            ref=Y_AXIS,
        ),
        ellipsoid(
            J["spine3"],
            chest_muscle,
            radii=(p.chest_muscle_radius, p.chest_muscle_radius * 0.8, p.chest_muscle_depth),
        ),
        ellipsoid(
            J["left_shoulder"],
            shoulder + v([p.deltoid_out * p.deltoid_radius, 0.0, 0.0]),
            radii=(p.deltoid_radius * 1.15, p.deltoid_radius, p.deltoid_radius),
        ),
        sweep(
            J["left_shoulder"],
            shoulder,
            elbow,
            radii_a=(p.upper_arm_radius, p.upper_arm_radius),
            radii_b=(p.elbow_radius, p.elbow_radius * 1.1),
            ref=Y_AXIS,
        ),
        sweep(
            J["left_elbow"],
            elbow,
            wrist,
            radii_a=(p.elbow_radius, p.elbow_radius * 1.1),
            radii_b=(p.wrist_radius * 0.8, p.wrist_radius * 1.15),
            ref=Y_AXIS,
        ),
    ]


def _hand(p: BodyProportions, j: np.ndarray, key: dict[str, np.ndarray]) -> list[Sweep]:
    """The left hand: palm, the four fingers as one part, and the thumb."""
    wrist, hand = j[J["left_wrist"]], j[J["left_hand"]]
    return [
        sweep(
            J["left_wrist"],
            wrist,
            hand,
            radii_a=(p.palm_thickness, p.palm_width * 0.9),
            radii_b=(p.palm_thickness * 0.9, p.palm_width),
            ref=Y_AXIS,
            caps=(p.palm_thickness, p.palm_thickness),
        ),
        sweep(
            J["left_hand"],
            hand,
            key["finger_tip"],
            radii_a=(p.finger_thickness, p.palm_width * 0.92),
            radii_b=(p.finger_thickness * 0.85, p.palm_width * 0.72),
            ref=Y_AXIS,
            caps=(p.finger_thickness, p.finger_thickness),
        ),
        sweep(
            J["left_wrist"],
            key["thumb_base"],
            key["thumb_tip"],
            radii_a=(p.thumb_radius * 1.2, p.thumb_radius * 1.3),
            radii_b=(p.thumb_radius, p.thumb_radius),
            ref=Y_AXIS,
        ),
    ]


def _mirrored(s: Sweep) -> Sweep:
    """The right side's copy of a left-side part: mirrored across the mid-plane, labelled with the mirror joint."""
    return Sweep(
        int(SMPL_FLIP_PERM[s.label]),
        tuple(mirror(np.array(s.a))),
        tuple(mirror(np.array(s.b))),
        s.radii_a,
        s.radii_b,
        s.cap_a,
        s.cap_b,
        tuple(mirror(np.array(s.ref))),
    )
