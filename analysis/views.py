"""The views that the Image attention, Temporal attention and Token priors tabs, the report and ``make eval``
show, computed once here from a captured window (:mod:`analysis.capture`) or a model, and returned as
dataclasses that :mod:`viz.figures` draws.

* :func:`image_attention_view`: every token's attention over one crop for a block and head (or their mean,
  or rollout), the chosen token's map in the full frame, and the projected joints.
* :func:`attribution_view`: captum's attribution of one output beside its token's rollout attention, and how
  far the two agree.
* :func:`temporal_view`: per joint, the T x T temporal attention, its strongest frame pairs, lag profiles and
  periods from attention and from rotation, and the rotation curves of the image-only and temporal model.
* :func:`prior_view`: the token priors of several models as meshes, angles, plausibility and token
  similarity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from int_model import IntModel
from int_model.constants import SMPL_JOINT_NAMES
from int_model.crops import CropTransform, normalise_crops, normalised_to_crop_pixels
from int_model.geometry import relative_rotation_vectors

from . import attention as att
from .attribution import Attribution, AttributionTarget, attribute, map_agreement, pool_to_grid
from .capture import ClipWindow, ModelRun
from .periodicity import PeriodEstimate, period_from_attention, period_from_rotations
from .priors import PriorMesh, joint_token_similarity, prior_mesh, prior_plausibility
from .temporal import (
    MEAN,
    FramePair,
    JointAngleCurves,
    joint_angle_curves,
    lag_profile,
    select_temporal,
    strongest_pairs,
)

#: Joints whose rotation curves are drawn (hips, knees, shoulders: the large periodic movers of gaits).
CURVE_JOINTS = ("left_hip", "right_hip", "left_knee", "right_knee", "left_shoulder", "right_shoulder")
#: Joints whose strongest frame pairs are drawn as arcs (all 24 would hide each other).
PAIR_JOINTS = ("left_knee", "right_knee", "left_ankle", "right_ankle", "left_elbow", "right_elbow")
#: Strongest off-diagonal pairs kept per joint.
NUM_PAIRS = 5
#: Integrated-gradients steps of the attribution views.
ATTRIBUTION_STEPS = 16


# ----------------------------------------------------------------------------------------------
# Image attention
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageAttentionView:
    """One frame's image attention for one view (block and head, head mean, or rollout).

    Attributes:
        title: the view in words ("block 5, head 0", "attention rollout through block 5").
        frame_number: the frame's number in the input.
        crop: (S, S, 3) uint8 crop; frame: (H, W, 3) uint8 full frame; transform: the crop's transform.
        maps: (26, S, S) each independent token's attention over the crop, in crop pixels (raw probability).
        joints_px: (24, 2) the image model's joints in crop pixels.
        token_index: the chosen token; token_heat: (H, W) its map in the full frame, normalised to [0, 1].
        token_point: (2,) its joint in frame pixels (None for the shape and camera tokens).
    """

    title: str
    frame_number: int
    crop: np.ndarray
    frame: np.ndarray
    transform: CropTransform
    maps: np.ndarray
    joints_px: np.ndarray
    token_index: int
    token_heat: np.ndarray
    token_point: np.ndarray | None


def view_title(layer: int, head: int | str) -> str:
    """The words for a spatial view: a block and a head, their mean, or rollout through the block."""
    if head == att.ROLLOUT:
        return f"attention rollout through block {layer}"
    return f"block {layer}, {'mean of heads' if head == att.MEAN else f'head {head}'}"


def image_attention_view(run: ModelRun, window: ClipWindow, *, layout: att.TokenLayout, token: str | int,
                         layer: int, head: int | str | Literal["rollout"], shown: int = 0,
                         title: str | None = None) -> ImageAttentionView:
    """The view of ``run``'s spatial attention (frame ``shown`` of ``window``) for ``token``, ``layer`` and
    ``head`` (an index, ``"mean"`` or ``"rollout"``)."""
    token_index = layout.index(token)
    size = layout.img_size
    crop, frame, transform = window.crops[shown], window.frames[shown], window.transforms[shown]
    matrix = att.spatial_view(run.spatial_attention, layer=layer, head=head)
    maps = np.stack([att.upsample_map(g, size=size) for g in att.token_patch_maps(matrix, layout=layout)])
    heat = att.map_to_frame(att.normalise_map(maps[token_index]), transform=transform, frame_size=frame.shape[:2])
    point = transform.to_image(run.joints2d[token_index]) if token_index < layout.num_joints else None
    return ImageAttentionView(
        title=title or view_title(layer, head), frame_number=int(window.frame_numbers[shown]), crop=crop,
        frame=frame, transform=transform, maps=maps,
        joints_px=normalised_to_crop_pixels(run.joints2d, size=size), token_index=token_index, token_heat=heat,
        token_point=point)


# ----------------------------------------------------------------------------------------------
# Attribution
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AttributionView:
    """An output's attribution over a crop beside its token's rollout attention.

    Attributes:
        result: captum's attribution (pixels, value, baseline value, completeness error).
        rollout_px: (S, S) the token's rollout attention over the crop, in crop pixels.
        agreement: Spearman correlation of the two over the patch grid.
        steps: integrated-gradients steps.
    """

    result: Attribution
    rollout_px: np.ndarray
    agreement: float
    steps: int

    @property
    def target(self) -> AttributionTarget:
        return self.result.target


def token_target(token_index: int, num_joints: int) -> AttributionTarget:
    """The output a token is attributed through: a joint's rotation angle, beta 0, or the camera scale."""
    if token_index < num_joints:
        return AttributionTarget("joint_angle", index=token_index)
    return AttributionTarget("shape", index=0) if token_index == num_joints else AttributionTarget("camera", index=0)


def attribution_view(model: IntModel, crop: np.ndarray, spatial_attention: np.ndarray, *,
                     target: AttributionTarget, layout: att.TokenLayout,
                     steps: int = ATTRIBUTION_STEPS) -> AttributionView:
    """Integrated gradients of ``target`` over one (S, S, 3) uint8 crop, and its agreement with the rollout
    attention (all blocks) of the target's token in the same frame's ``spatial_attention`` (L, H, N, N)."""
    result = attribute(model, normalise_crops(crop[None])[0], target=target, n_steps=steps)
    rollout = att.token_patch_maps(att.attention_rollout(spatial_attention), layout=layout)[target.token]
    agreement = map_agreement(rollout, pool_to_grid(result.magnitude, grid_size=layout.grid_size))
    return AttributionView(result=result, rollout_px=att.upsample_map(rollout, size=layout.img_size),
                           agreement=agreement, steps=steps)


# ----------------------------------------------------------------------------------------------
# Temporal attention, periods and jitter
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TemporalView:
    """What the temporal transformer did over a window (J joints, T frames).

    Attributes:
        title: the attention view in words ("temporal block 1, head mean"); empty without attention.
        frame_numbers: (T,) the window's frames in the input.
        matrices: (J, T, T) each joint's attention for the view; None for an image model.
        pairs: per joint, the strongest off-diagonal frame pairs (empty lists without attention).
        lag_profiles: (J, T) mean attention per frame distance; None without attention.
        from_attention: per joint, the period from its attention (None without attention).
        from_rotation: per joint, the period from the predicted rotation over the window (the temporal
            model's where there is one).
        curves: rotation curves by model: ``image-only`` and, with a temporal transformer, ``temporal``
            (in the temporal curves' terms, so that they compare).
    """

    title: str
    frame_numbers: np.ndarray
    matrices: np.ndarray | None
    pairs: list[list[FramePair]]
    lag_profiles: np.ndarray | None
    from_attention: list[PeriodEstimate] | None
    from_rotation: list[PeriodEstimate]
    curves: dict[str, JointAngleCurves]

    def jitter(self, joint: int) -> dict[str, float]:
        """Mean absolute angle acceleration of one joint (degrees per frame^2) per model."""
        return {name: float(c.mean_abs_acceleration[joint]) for name, c in self.curves.items()}


def periods_from_rotation(pose: np.ndarray) -> list[PeriodEstimate]:
    """Each joint's period from its rotation over a clip of (T, 72) poses."""
    rotvecs = relative_rotation_vectors(pose)
    return [period_from_rotations(rotvecs[:, j]) for j in range(rotvecs.shape[1])]


def temporal_view(run: ModelRun, window: ClipWindow, *, layer: int | str = MEAN, head: int | str = MEAN,
                  num_pairs: int = NUM_PAIRS) -> TemporalView:
    """The temporal view of a captured window for a temporal block and head (an index or ``"mean"``); an image
    model (no temporal attention) gets its rotation periods and image-only curves only."""
    numbers = window.frame_numbers
    if run.temporal_attention is None:
        return TemporalView(title="", frame_numbers=numbers, matrices=None, pairs=[[] for _ in SMPL_JOINT_NAMES],
                            lag_profiles=None, from_attention=None, from_rotation=periods_from_rotation(run.image_pose),
                            curves={"image-only": joint_angle_curves(run.image_pose)})
    depth = run.temporal_attention.shape[0]
    shown_layer = layer if layer == MEAN else range(depth)[int(layer)]
    matrices = select_temporal(run.temporal_attention, layer=layer, head=head)
    temporal = joint_angle_curves(run.temporal_pose)
    return TemporalView(
        title=f"temporal block {shown_layer}, head {head}", frame_numbers=numbers, matrices=matrices,
        pairs=[strongest_pairs(m, count=num_pairs) for m in matrices],
        lag_profiles=np.stack([lag_profile(m) for m in matrices]),
        from_attention=[period_from_attention(m) for m in matrices],
        from_rotation=periods_from_rotation(run.temporal_pose),
        curves={"image-only": joint_angle_curves(run.image_pose, like=temporal), "temporal": temporal})


# ----------------------------------------------------------------------------------------------
# Token priors
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PriorView:
    """The token priors of several models, by label.

    Attributes:
        meshes: the prior decoded as a mesh (global orientation kept or set upright, as asked).
        upright: the same with the orientation upright and facing the camera (for renders).
        plausibility: joint angles and their excess over the anatomical ranges
            (:func:`analysis.priors.prior_plausibility`).
        similarity: (24, 24) joint-token cosine similarity.
    """

    meshes: dict[str, PriorMesh]
    upright: dict[str, PriorMesh]
    plausibility: dict[str, dict[str, Any]]
    similarity: dict[str, np.ndarray]


def prior_view(models: dict[str, IntModel], *, keep_orientation: bool = False) -> PriorView:
    """Decode each model's learned tokens (no image) into the numbers and meshes the prior views show."""
    upright = {label: prior_mesh(m, keep_orientation=False) for label, m in models.items()}
    meshes = upright if not keep_orientation else {label: prior_mesh(m) for label, m in models.items()}
    return PriorView(meshes=meshes, upright=upright,
                     plausibility={label: prior_plausibility(m) for label, m in models.items()},
                     similarity={label: joint_token_similarity(m) for label, m in models.items()})
