"""Procedural human motion: periodic motions with a known period, and smooth non-periodic motion.

A motion is a function of continuous time ``t`` (seconds) giving, per SMPL joint, three **anatomical
angles** (degrees) in the joint's own Euler convention (:data:`int_model.joint_ranges.JOINT_RANGES`), from which the SMPL pose
(axis-angle, body frame) follows by :func:`angles_to_axis_angle`. Every angle stays inside its joint's range
(knees and elbows bend one way only, etc.): the periodic motions are written inside the ranges and clipped
to them (clipping keeps a periodic function periodic); the non-periodic motion is a convex combination of
random key poses drawn inside the ranges, so it cannot leave them.

Conventions
-----------
* The anatomical angles, their axes, signs and ranges: :mod:`int_model.joint_ranges`.
* The root (pelvis) angles are the motion's own sway (yaw, pitch, roll) in the person's heading frame;
  the scene composes them with the heading and the camera (:mod:`training.synthetic.scene`).
* :meth:`Motion.root_offset` is a translation of the pelvis in the heading frame (metres; x left, y up, z
  forward): forward travel of gaits and the flight of hops. Ground contact is made by the scene.

Periodic motions are functions of the phase ``phi = 2 pi t / period + phase0`` with per-clip random style
values drawn from :data:`STYLE_RANGES`; :attr:`Motion.period_s` is their exact period.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from int_model.constants import NUM_JOINTS, SMPL_JOINT_NAMES
from int_model.joint_ranges import HIGH, LOW, NEUTRAL, SPREAD, angles_to_axis_angle, clip_to_ranges

J = {name: index for index, name in enumerate(SMPL_JOINT_NAMES)}


# ----------------------------------------------------------------------------------------------
# Motions
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Motion:
    """A motion as a function of time.

    Attributes:
        name: one of :data:`MOTION_NAMES`.
        period_s: exact period in seconds (NaN for non-periodic motion).
        angles_fn: times (T,) seconds -> anatomical angles (T, 24, 3), degrees, inside the ranges.
        offset_fn: times (T,) -> root offset (T, 3) metres in the heading frame (x left, y up, z forward).
    """

    name: str
    period_s: float
    angles_fn: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    offset_fn: Callable[[np.ndarray], np.ndarray] = field(repr=False)

    @property
    def periodic(self) -> bool:
        return math.isfinite(self.period_s)

    def angles(self, times: np.ndarray) -> np.ndarray:
        """(T,) seconds -> (T, 24, 3) anatomical angles in degrees."""
        return self.angles_fn(np.asarray(times, dtype=np.float64))

    def pose(self, times: np.ndarray) -> np.ndarray:
        """(T,) seconds -> (T, 72) SMPL axis-angle in the body frame; the root holds the motion's own sway."""
        return angles_to_axis_angle(self.angles(times))

    def root_offset(self, times: np.ndarray) -> np.ndarray:
        """(T,) seconds -> (T, 3) pelvis offset in the heading frame (metres)."""
        return self.offset_fn(np.asarray(times, dtype=np.float64))

    def period_frames(self, fps: float) -> float:
        """The period in frames at ``fps`` (NaN for non-periodic motion)."""
        return self.period_s * fps if self.periodic else math.nan


PERIODIC_MOTIONS: tuple[str, ...] = ("walk", "run", "jumping_jacks", "squat", "arm_wave")
RANDOM_MOTION = "random"
MOTION_NAMES: tuple[str, ...] = (*PERIODIC_MOTIONS, RANDOM_MOTION)

#: Period range in seconds of each periodic motion (one full cycle: two steps of a gait).
PERIOD_RANGES_S: dict[str, tuple[float, float]] = {
    "walk": (0.9, 1.6),
    "run": (0.6, 0.85),
    "jumping_jacks": (0.7, 1.4),
    "squat": (1.2, 2.0),
    "arm_wave": (0.6, 1.6),
}

#: Per periodic motion, the range of each style value drawn per clip (degrees unless the name says otherwise).
STYLE_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "walk": {
        "hip_swing": (18, 28), "hip_bias": (-8, -2), "knee_swing": (40, 60), "knee_stance": (5, 15),
        "ankle_swing": (5, 15), "arm_swing": (10, 30), "arm_down": (-84, -74), "elbow": (10, 35),
        "pelvis_yaw": (3, 8), "pelvis_roll": (1, 4), "lean": (0, 6), "head_pitch": (-5, 8),
        "stride_m": (1.1, 1.6),
    },
    "run": {
        "hip_swing": (28, 40), "hip_bias": (-18, -8), "knee_swing": (80, 110), "knee_stance": (15, 30),
        "ankle_swing": (10, 20), "arm_swing": (25, 45), "arm_down": (-80, -66), "elbow": (75, 100),
        "pelvis_yaw": (5, 10), "pelvis_roll": (2, 5), "lean": (6, 15), "head_pitch": (-8, 5),
        "stride_m": (2.0, 3.0), "flight_m": (0.02, 0.06),
    },
    "jumping_jacks": {
        "arm_up": (60, 82), "arm_down": (-84, -74), "leg_out": (18, 32), "elbow": (5, 25), "knee": (10, 30),
        "collar": (5, 15), "hop_m": (0.04, 0.10), "head_pitch": (-5, 8), "arm_twist": (-40, -20),
    },
    "squat": {
        "depth": (0.55, 1.0), "hip_flex": (95, 110), "knee_flex": (105, 125), "lean": (20, 35),
        "arm_forward": (60, 90), "arm_down": (-84, -74), "stance": (6, 14), "head_pitch": (-15, 0),
    },
    "arm_wave": {
        "raise": (5, 35), "twist": (-90, -70), "elbow": (55, 90), "wave": (15, 30), "overhead": (55, 80),
        "sway": (8, 18), "arm_down": (-84, -74), "torso_sway": (2, 6), "head_pitch": (-5, 8),
        "overhead_elbow": (8, 22),
    },
}
#: Arm-wave variants: one arm (left or right) waving hello, or both arms swaying overhead.
ARM_WAVE_VARIANTS: tuple[str, ...] = ("left", "right", "both")


def _bump(x: np.ndarray, power: float = 2.0) -> np.ndarray:
    """A smooth periodic bump in [0, 1], 1 at x = 0 (mod 2 pi): ((1 + cos x) / 2) ** power."""
    return ((1.0 + np.cos(x)) / 2.0) ** power


class _Pose:
    """Anatomical angles (T, 24, 3) built joint by joint (degrees), starting from a neutral pose."""

    def __init__(self, num_frames: int, neutral: np.ndarray) -> None:
        self.q = np.broadcast_to(neutral, (num_frames, NUM_JOINTS, 3)).copy()

    def set(self, joint: str, axis: int, values: np.ndarray | float, *, sides: str = "") -> None:
        """Set angle ``axis`` of ``joint``; with ``sides='both'`` a left joint's name sets both sides."""
        names = [joint] if sides != "both" else [joint, joint.replace("left_", "right_", 1)]
        for name in names:
            self.q[:, J[name], axis] = values

    def add(self, joint: str, axis: int, values: np.ndarray | float) -> None:
        self.q[:, J[joint], axis] += values


def _draw_style(name: str, rng: np.random.Generator) -> dict[str, float]:
    """One clip's style values: each uniform in its :data:`STYLE_RANGES` range (always in table order)."""
    ranges = STYLE_RANGES[name]
    values = rng.uniform(0.0, 1.0, size=len(ranges))
    return {key: lo + u * (hi - lo) for (key, (lo, hi)), u in zip(ranges.items(), values, strict=True)}


def _neutral_with_idle(rng: np.random.Generator, idle_deg: float) -> np.ndarray:
    """The neutral pose with a small constant random offset on every joint (a person's own posture)."""
    offset = rng.normal(0.0, idle_deg, size=(NUM_JOINTS, 3))
    offset[J["pelvis"]] = 0.0
    return clip_to_ranges(NEUTRAL + offset)


#: Gait timing: phase (radians) at which each event peaks for one leg, whose thigh is furthest forward at pi / 2
#: (heel strike) and furthest back at 3 pi / 2 (toe-off); and the sharpness (power) of each peak.
GAIT_PEAKS: dict[str, tuple[float, float]] = {
    "knee_swing": (-0.45, 3.0),  # early swing: the knee folds to clear the floor
    "knee_stance": (2.4, 2.0),  # loading response after heel strike
    "ankle_dorsiflexion": (-0.3, 2.0),  # toes up in swing
    "ankle_push_off": (3.9, 2.0),  # toes down before toe-off
}
GAIT_ARM_BIAS = -5.0  # arms swing slightly more forward than back (degrees of shoulder flexion)
GAIT_ELBOW_SWING = 0.3  # extra elbow flexion when the arm is forward, as a fraction of the arm swing
GAIT_CHEST_COUNTER = 0.5  # the chest turns against the pelvis by this fraction of the pelvis yaw


def _peak(phase: np.ndarray, event: str) -> np.ndarray:
    centre, power = GAIT_PEAKS[event]
    return _bump(phase - centre, power)


def _gait(p: _Pose, phi: np.ndarray, s: Mapping[str, float]) -> None:
    """Walk / run: left leg at phase phi, right leg at phi + pi; arms swing against the legs."""
    for side, phase in (("left", phi), ("right", phi + math.pi)):
        swing = np.sin(phase)  # > 0: this thigh forward
        knee = s["knee_swing"] * _peak(phase, "knee_swing") + s["knee_stance"] * _peak(phase, "knee_stance")
        ankle = s["ankle_swing"] * (_peak(phase, "ankle_push_off") - _peak(phase, "ankle_dorsiflexion"))
        p.set(f"{side}_hip", 0, s["hip_bias"] - s["hip_swing"] * swing)
        p.set(f"{side}_knee", 0, NEUTRAL[J["left_knee"], 0] + knee)
        p.set(f"{side}_ankle", 0, ankle)
        p.set(f"{side}_shoulder", 0, s["arm_swing"] * swing + GAIT_ARM_BIAS)
        p.set(f"{side}_shoulder", 1, s["arm_down"])
        p.set(f"{side}_elbow", 0, -(s["elbow"] + GAIT_ELBOW_SWING * s["arm_swing"] * (1.0 - swing) / 2.0))
    p.set("pelvis", 0, -s["pelvis_yaw"] * np.sin(phi))
    p.set("pelvis", 2, s["pelvis_roll"] * np.sin(2.0 * phi))
    p.set("spine1", 0, s["lean"])
    p.set("spine3", 2, GAIT_CHEST_COUNTER * s["pelvis_yaw"] * np.sin(phi))  # twist: the y angle of "xzy"
    p.set("head", 0, s["head_pitch"])


def _walk(p: _Pose, phi: np.ndarray, s: Mapping[str, float]) -> None:
    _gait(p, phi, s)


def _run(p: _Pose, phi: np.ndarray, s: Mapping[str, float]) -> None:
    _gait(p, phi, s)
    p.set("spine2", 0, 0.5 * s["lean"])


def _jumping_jacks(p: _Pose, phi: np.ndarray, s: Mapping[str, float]) -> None:
    out = (1.0 - np.cos(phi)) / 2.0  # 0: feet together, arms down; 1: feet apart, arms up
    p.set("left_shoulder", 1, s["arm_down"] + (s["arm_up"] - s["arm_down"]) * out, sides="both")
    p.set("left_shoulder", 2, s["arm_twist"] * out, sides="both")  # external rotation as the arms rise
    p.set("left_collar", 1, s["collar"] * out, sides="both")
    p.set("left_elbow", 0, -s["elbow"] * (0.5 + 0.5 * out), sides="both")
    p.set("left_hip", 1, 3.0 + s["leg_out"] * out, sides="both")
    p.set("left_knee", 0, NEUTRAL[J["left_knee"], 0] + s["knee"] * np.cos(phi) ** 2, sides="both")  # bent at each landing
    p.set("left_ankle", 0, 0.5 * s["knee"] * np.sin(phi) ** 2, sides="both")  # toes point in the air
    p.set("left_ankle", 1, -0.5 * s["leg_out"] * out, sides="both")  # soles stay on the floor
    p.set("head", 0, s["head_pitch"])


def _squat(p: _Pose, phi: np.ndarray, s: Mapping[str, float]) -> None:
    down = s["depth"] * (1.0 - np.cos(phi)) / 2.0  # 0 standing, depth at the bottom
    hip, knee = -s["hip_flex"] * down, s["knee_flex"] * down
    p.set("left_hip", 0, hip, sides="both")
    p.set("left_hip", 1, s["stance"], sides="both")
    p.set("left_knee", 0, NEUTRAL[J["left_knee"], 0] + knee, sides="both")
    p.set("left_ankle", 0, -(hip + knee), sides="both")  # feet stay flat (clipped at the ankle's range)
    p.set("spine1", 0, s["lean"] * down)
    p.set("spine2", 0, 0.3 * s["lean"] * down)
    p.set("left_shoulder", 0, -s["arm_forward"] * down / s["depth"], sides="both")
    p.set("left_shoulder", 1, s["arm_down"], sides="both")
    p.set("head", 0, s["head_pitch"] * down)


def _arm_wave_variant(variant: str) -> Callable[[_Pose, np.ndarray, Mapping[str, float]], None]:
    def wave(p: _Pose, phi: np.ndarray, s: Mapping[str, float]) -> None:
        if variant == "both":  # both arms up, swaying side to side together
            sway = np.sin(phi)
            p.set("left_shoulder", 1, s["overhead"] + s["sway"] * sway)
            p.set("right_shoulder", 1, s["overhead"] - s["sway"] * sway)
            p.set("left_elbow", 0, -s["overhead_elbow"], sides="both")
            p.set("spine2", 1, s["torso_sway"] * sway)  # lean with the arms (z of "xzy")
            p.set("pelvis", 2, 0.5 * s["torso_sway"] * sway)
        else:  # one arm up, forearm vertical, waving
            side = variant
            other = "right" if side == "left" else "left"
            p.set(f"{side}_shoulder", 1, s["raise"])
            p.set(f"{side}_shoulder", 2, s["twist"])
            p.set(f"{side}_elbow", 0, -(s["elbow"] + s["wave"] * np.sin(phi)))
            p.set(f"{side}_wrist", 0, 0.5 * s["wave"] * np.sin(phi - 0.6))
            p.set(f"{other}_shoulder", 1, s["arm_down"])
            p.set("head", 2, 0.3 * s["torso_sway"] * np.sin(phi))
        p.set("head", 0, s["head_pitch"])

    return wave


def _zero_offset(times: np.ndarray) -> np.ndarray:
    return np.zeros((times.shape[0], 3))


def periodic_motion(
    name: str,
    *,
    rng: np.random.Generator,
    period_s: float | None = None,
    travel: float = 0.0,
    idle_deg: float = 3.0,
    variant: str | None = None,
) -> Motion:
    """A periodic motion with random style, phase and (unless given) period.

    Args:
        name: one of :data:`PERIODIC_MOTIONS`.
        rng: the randomness (a fixed number of draws per call for a given name).
        period_s: the period in seconds; None draws it from :data:`PERIOD_RANGES_S`.
        travel: for walk / run, the fraction in [0, 1] of the natural forward speed (stride / period) at which
            the person moves forward (0: on the spot).
        idle_deg: standard deviation of the constant posture offset added to every joint.
        variant: arm_wave only, one of :data:`ARM_WAVE_VARIANTS` (None draws one).
    """
    if name not in PERIODIC_MOTIONS:
        raise ValueError(f"unknown periodic motion {name!r}; known: {', '.join(PERIODIC_MOTIONS)}")
    lo, hi = PERIOD_RANGES_S[name]
    drawn_period, phase0 = rng.uniform(lo, hi), rng.uniform(0.0, 2.0 * math.pi)
    period = float(drawn_period if period_s is None else period_s)
    if not period > 0:
        raise ValueError(f"period_s must be > 0, got {period}")
    style = _draw_style(name, rng)
    neutral = _neutral_with_idle(rng, idle_deg)
    drawn_variant = ARM_WAVE_VARIANTS[int(rng.integers(len(ARM_WAVE_VARIANTS)))]
    builders: dict[str, Callable[[_Pose, np.ndarray, Mapping[str, float]], None]] = {
        "walk": _walk, "run": _run, "jumping_jacks": _jumping_jacks, "squat": _squat,
        "arm_wave": _arm_wave_variant(variant or drawn_variant),
    }
    build = builders[name]

    def phase(times: np.ndarray) -> np.ndarray:
        return 2.0 * math.pi * times / period + phase0

    def angles(times: np.ndarray) -> np.ndarray:
        pose = _Pose(times.shape[0], neutral)
        build(pose, phase(times), style)
        return clip_to_ranges(pose.q)

    speed = float(np.clip(travel, 0.0, 1.0)) * style.get("stride_m", 0.0) / period

    def offset(times: np.ndarray) -> np.ndarray:
        out = _zero_offset(times)
        out[:, 2] = speed * times
        if name == "run":  # flight twice per cycle (each foot's push-off)
            out[:, 1] = style["flight_m"] * np.clip(np.sin(2.0 * phase(times) - 0.8), 0.0, None) ** 2
        elif name == "jumping_jacks":  # a hop at each change between in and out
            out[:, 1] = style["hop_m"] * np.sin(phase(times)) ** 4
        return out

    return Motion(name=name, period_s=period, angles_fn=angles, offset_fn=offset)


#: Non-periodic motion: seconds between random key poses, and the kernel width as a fraction of that gap.
KEY_INTERVAL_S: tuple[float, float] = (0.35, 0.9)
KERNEL_FRACTION = 0.6
#: Per joint group, the range of the activity factor (scales the joints' ``spread``) drawn per clip.
ACTIVITY_RANGES: dict[str, tuple[float, float]] = {"legs": (0.2, 1.0), "torso": (0.3, 1.0), "arms": (0.3, 1.0)}
JOINT_GROUPS: dict[str, tuple[str, ...]] = {
    "legs": ("hip", "knee", "ankle", "foot"),
    "torso": ("pelvis", "spine", "neck", "head", "collar"),
    "arms": ("shoulder", "elbow", "wrist", "hand"),
}


def _group_of(name: str) -> str:
    for group, parts in JOINT_GROUPS.items():
        if any(part in name for part in parts):
            return group
    raise KeyError(name)


def random_motion(*, rng: np.random.Generator, duration_s: float, idle_deg: float = 3.0) -> Motion:
    """Smooth non-periodic motion over ``[0, duration_s]``: random key poses inside the joint ranges (shrunk
    toward the neutral pose by each joint's ``spread`` and a per-clip activity per joint group), blended with
    Gaussian weights (a convex combination, so every angle stays inside its range; smooth in time).

    Left and right joints get independent key poses. Defined (and smooth) for any time; key poses cover
    ``[-2 gaps, duration + 2 gaps]``.
    """
    gap = rng.uniform(*KEY_INTERVAL_S)
    neutral = _neutral_with_idle(rng, idle_deg)
    activity = {group: rng.uniform(lo, hi) for group, (lo, hi) in ACTIVITY_RANGES.items()}
    scale = np.array([activity[_group_of(name)] for name in SMPL_JOINT_NAMES])[:, None] * SPREAD[:, None]
    low = neutral - scale * (neutral - LOW)
    high = neutral + scale * (HIGH - neutral)
    num_keys = int(math.ceil(duration_s / gap)) + 5
    key_times = (np.arange(num_keys) - 2.0) * gap + rng.uniform(-0.25, 0.25, size=num_keys) * gap
    keys = low + rng.uniform(0.0, 1.0, size=(num_keys, NUM_JOINTS, 3)) * (high - low)
    width = KERNEL_FRACTION * gap

    def angles(times: np.ndarray) -> np.ndarray:
        logits = -0.5 * ((times[:, None] - key_times[None, :]) / width) ** 2
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        return clip_to_ranges(np.einsum("tk,kjc->tjc", weights, keys))

    return Motion(name=RANDOM_MOTION, period_s=math.nan, angles_fn=angles, offset_fn=_zero_offset)
