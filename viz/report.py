"""``python -m viz.report INPUT --out DIR [--checkpoint C]``: every analysis figure for one clip, in batch.

INPUT is a pipeline results folder (or its ``results.npz``), or a video / image folder / image, which is first
run through the pipeline (:func:`pipeline.run.run_pipeline`, results in ``DIR/pipeline``). For
one track (the longest unless ``--track``) and an analysis window of ``--window`` consecutive frames from
``--start``, the frames are read again, cut into crops the way the pipeline cut them, and the model runs once
more on them with attention captured: the image model (spatial attention, image-only poses) and the
temporal transformer over the window (temporal attention, temporal poses).

Written to DIR (each figure as ``NAME.html``, interactive, and ``NAME.png``):

* ``prior_renders.png`` (front and side renders; rows: fresh tokens, learned tokens[, ``--compare``
  checkpoint]), ``prior_<label>.glb``, ``prior_meshes`` (3D), ``prior_angles``, ``token_similarity``;
* ``attention_tokens_<view>`` for the views ``layer<L>_head<H>``, ``layer<L>_mean`` and ``rollout`` (all 26
  tokens over the crop, joints marked) and ``attention_frame_<view>`` (``--token``'s map in the full frame);
* ``attribution_<target>`` (captum integrated gradients of ``--token``'s rotation angle, of beta 0 and of
  the camera scale, beside the token's rollout attention);
* ``temporal_joints`` (24 matrices), ``temporal_<token>`` (one joint, hover shows the frames),
  ``temporal_pairs`` (the strongest frame pairs as arcs), ``lag_profiles``, ``periods``;
* ``rotation_curves`` and ``jitter`` (image-only vs temporal model);
* ``analysis.json``: periods per joint from attention and from rotation (window and whole track), attention
  peak distances, strongest pairs, prior pose angles, jitter, attribution numbers, the settings and files.

Without ``--checkpoint`` (and no checkpoint recorded in the results) the bundled demo model is used, or with
``--variant`` an untrained model of that variant:
the figures' layout is real, their content is noise, and ``analysis.json`` says ``"untrained": true``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from int_model import FrameTokens, IntModel, build_model, demo_checkpoint, load_checkpoint
from int_model.attention import capture_attention
from int_model.constants import SMPL_JOINT_NAMES, TOKEN_NAMES
from int_model.crops import (
    INFERENCE_BBOX_SCALE,
    CropSettings,
    CropTransform,
    cut_crop,
    normalise_crops,
    normalised_to_crop_pixels,
)
from pipeline.inference import DEFAULT_WINDOW, InferenceSettings
from pipeline.media import MediaLimits, open_media
from pipeline.results import RESULTS_FILE_NAME, UNTRAINED_CHECKPOINT, PipelineResults, load_results
from pipeline.run import RunSettings, run_pipeline
from viz import attention as att
from viz.attribution import AttributionTarget, attribute, map_agreement, pool_to_grid
from viz.export import export_mesh
from viz.figures.attention import attribution_figure, frame_attention_figure, token_grid_figure
from viz.figures.export import FigureFile, save_figures, save_image
from viz.figures.images import labelled_montage
from viz.figures.priors import prior_angles_figure, prior_mesh_figure, similarity_figure
from viz.figures.temporal import (
    frame_pairs_figure,
    jitter_figure,
    lag_profile_figure,
    periodicity_figure,
    rotation_curves_figure,
    temporal_grid_figure,
    temporal_matrix_figure,
)
from viz.periodicity import PeriodEstimate, period_from_attention, period_from_rotations, relative_rotation_vectors
from viz.priors import PriorMesh, fresh_model, joint_token_similarity, prior_angles, prior_mesh, render_prior
from viz.temporal import (
    MEAN,
    JointAngleCurves,
    attention_peak_distance,
    joint_angle_curves,
    lag_profile,
    select_temporal,
    strongest_pairs,
)

log = logging.getLogger("viz.report")

DEFAULT_VARIANT = "small"
DEFAULT_TOKEN = "left_knee"
#: Joints whose rotation curves are drawn (hips, knees, shoulders: the large periodic movers of gaits).
DEFAULT_CURVE_JOINTS = ("left_hip", "right_hip", "left_knee", "right_knee", "left_shoulder", "right_shoulder")
#: Joints whose strongest frame pairs are drawn as arcs (all 24 would hide each other).
DEFAULT_PAIR_JOINTS = ("left_knee", "right_knee", "left_ankle", "right_ankle", "left_elbow", "right_elbow")
#: Strongest off-diagonal pairs kept per joint.
DEFAULT_NUM_PAIRS = 5
#: Crops per encode_frames call (memory).
ENCODE_BATCH = 16
#: Height in pixels of the frame thumbnails in the pairs strip and the hover panels.
THUMB_PX = 64
ANALYSIS_FILE = "analysis.json"


@dataclass(frozen=True)
class ReportSettings:
    """What the report analyses and how.

    Attributes:
        track: track id (None: the longest track).
        start: first frame of the analysis window, counted within the track.
        window: frames in the analysis window (the temporal transformer sees them all at once).
        frame: frame of the window whose image attention is shown (None: the middle one).
        token: the token shown in the full frame, in one temporal matrix and in the attributions.
        layer: spatial block of the single-layer views (negative counts from the end).
        head: head of the single-head view.
        temporal_layer, temporal_head: the temporal attention view (index or "mean").
        attribution_steps: integrated-gradients steps.
        num_pairs: strongest pairs per joint.
        crop_scale: crop side over box side (the pipeline's, 1.1).
        known_period: true period in frames (synthetic clips), drawn and stored; None if unknown.
        png_backend: "auto", "kaleido" or "matplotlib".
    """

    track: int | None = None
    start: int = 0
    window: int = DEFAULT_WINDOW
    frame: int | None = None
    token: str = DEFAULT_TOKEN
    layer: int = -1
    head: int = 0
    temporal_layer: int | str = -1
    temporal_head: int | str = MEAN
    attribution_steps: int = 16
    num_pairs: int = DEFAULT_NUM_PAIRS
    crop_scale: float = INFERENCE_BBOX_SCALE
    known_period: float | None = None
    png_backend: str = "auto"


@dataclass
class ClipWindow:
    """The analysed frames of one track.

    Attributes:
        frame_numbers: (T,) frame indices in the input.
        frames: (T, H, W, 3) uint8 full frames.
        crops: (T, S, S, 3) uint8 crops.
        transforms: T crop transforms.
        track_id: the track.
        track_pose: (K, 72) the pipeline's poses for the whole track (K >= T).
        fps: frames per second.
    """

    frame_numbers: np.ndarray
    frames: np.ndarray
    crops: np.ndarray
    transforms: list[CropTransform]
    track_id: int
    track_pose: np.ndarray
    fps: float


@dataclass
class ModelRun:
    """The model's outputs on a window (T frames, J joints).

    Attributes:
        image_pose: (T, 72) image-only model.
        temporal_pose: (T, 72) with the temporal transformer, or None without one.
        temporal_attention: (L_t, H_t, J, T, T), or None.
        spatial_attention: (L, H, N, N) of the shown frame.
        joints2d: (24, 2) normalised crop coordinates of the shown frame (image model).
    """

    image_pose: np.ndarray
    temporal_pose: np.ndarray | None
    temporal_attention: np.ndarray | None
    spatial_attention: np.ndarray
    joints2d: np.ndarray


# ----------------------------------------------------------------------------------------------
# Input
# ----------------------------------------------------------------------------------------------
def _results_path(path: Path) -> Path | None:
    if path.is_dir() and (path / RESULTS_FILE_NAME).is_file():
        return path / RESULTS_FILE_NAME
    if path.is_file() and path.name.endswith(".npz"):
        return path
    return None


def read_window(results: PipelineResults, *, settings: ReportSettings, crop_size: int) -> ClipWindow:
    """Pick the track and window, read those frames from ``results.source`` and cut their crops."""
    if len(results) == 0:
        raise ValueError(f"the results hold no person ({results.message})")
    ids = results.track_ids
    if settings.track is None:
        track_id = int(max(ids, key=lambda i: len(results.rows_of_track(int(i)))))
    elif settings.track in ids:
        track_id = settings.track
    else:
        raise ValueError(f"no track {settings.track}; the results have tracks {', '.join(map(str, ids))}")
    rows = results.rows_of_track(track_id)
    if not 0 <= settings.start < len(rows):
        raise ValueError(f"--start {settings.start} is outside track {track_id}'s {len(rows)} frames")
    chosen = rows[settings.start: settings.start + settings.window]
    numbers = results.frame[chosen]
    wanted = {int(n): i for i, n in enumerate(numbers)}
    limits = MediaLimits(max_frames=results.num_frames, max_duration_s=None, max_side=max(results.image_size))
    frames: list[np.ndarray | None] = [None] * len(chosen)
    with open_media(results.source, limits=limits, fps=results.fps) as reader:
        for index, frame in reader:
            if index in wanted:
                frames[wanted[index]] = frame
            if index >= numbers[-1]:
                break
    if any(f is None for f in frames):
        raise ValueError(f"could not read frames {numbers[0]}..{numbers[-1]} of {results.source}")
    size = (frames[0].shape[1], frames[0].shape[0])
    if size != tuple(results.image_size):
        raise ValueError(f"{results.source} reads as {size[0]}x{size[1]}, the results are for "
                         f"{results.image_size[0]}x{results.image_size[1]}")
    crop_settings = CropSettings(size=crop_size, scale=settings.crop_scale)
    transforms = [CropTransform.from_box(results.bbox[r], settings=crop_settings) for r in chosen]
    crops = np.stack([cut_crop(f, t) for f, t in zip(frames, transforms, strict=True)])
    return ClipWindow(frame_numbers=np.asarray(numbers), frames=np.stack(frames), crops=crops,
                      transforms=transforms, track_id=track_id, track_pose=results.pose[rows].astype(np.float64),
                      fps=results.fps)


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def run_model(model: IntModel, crops: np.ndarray, *, shown_frame: int) -> ModelRun:
    """Image model and temporal transformer over one window of crops (T, S, S, 3) uint8."""
    device = next(model.parameters()).device
    x = normalise_crops(crops).to(device)
    tokens = FrameTokens.cat([model.encode_frames(x[i: i + ENCODE_BATCH]) for i in range(0, len(x), ENCODE_BATCH)])
    tokens = tokens.sequences(1, len(x))
    joints, shape, cam = tokens.joints, tokens.shape, tokens.cam
    image_out = model.decode(joints, shape, cam)
    temporal_pose = temporal_attention = None
    if model.temporal_transformer is not None and len(x) > 1:
        with capture_attention(model.temporal_transformer.blocks) as recorded:
            joints_t = model.temporal(joints)
        maps = recorded.stacked()  # (L_t, B * J, H_t, T, T) with B = 1; the whole-pose baseline: (L_t, 1, H_t, T, T)
        # The whole-pose baseline attends once for all joints: the same map stands for each of them.
        maps = maps.expand(-1, model.num_joints, -1, -1, -1)
        temporal_attention = maps.permute(0, 2, 1, 3, 4).float().cpu().numpy()
        temporal_pose = model.decode(joints_t, shape, cam).pose[0].cpu().numpy().astype(np.float64)
    single = model(x[shown_frame][None, None], temporal=False, capture_attention=True)
    return ModelRun(
        image_pose=image_out.pose[0].cpu().numpy().astype(np.float64),
        temporal_pose=temporal_pose,
        temporal_attention=temporal_attention,
        spatial_attention=single.attention.spatial[0, 0].float().cpu().numpy(),
        joints2d=single.joints2d[0, 0].cpu().numpy().astype(np.float64),
    )


def load_model(*, checkpoint: str | None, variant: str | None, device: str) -> tuple[IntModel, str, bool]:
    """(model in eval mode, label, untrained?): ``checkpoint``, else an untrained ``variant`` when one is named,
    else the bundled demo model (an untrained ``small`` one where this copy has none)."""
    if not checkpoint and variant is None and demo_checkpoint() is not None:
        checkpoint = str(demo_checkpoint())
    variant = variant or DEFAULT_VARIANT
    if checkpoint:
        loaded = load_checkpoint(checkpoint, device=device)
        for warning in loaded.warnings:
            log.warning(warning)
        return loaded.model, Path(checkpoint).name, False
    torch.manual_seed(0)
    return build_model(variant).to(device).eval(), f"untrained {variant}", True


# ----------------------------------------------------------------------------------------------
# The report
# ----------------------------------------------------------------------------------------------
def thumbnails(images: np.ndarray, *, height: int = THUMB_PX) -> np.ndarray:
    """(T, H, W, 3) uint8 frames or crops -> the same at ``height`` pixels high (the pairs strip, hover panels)."""
    h, w = images.shape[1:3]
    width = max(1, round(w * height / h))
    return np.stack([cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA) for img in images])


@dataclass
class Report:
    """What a report run produced: the numbers (``analysis``), the files, and the PNG backend used."""

    analysis: dict[str, Any]
    files: dict[str, dict[str, str]] = field(default_factory=dict)
    png_backend: str | None = None


class _Stopwatch:
    """Seconds taken by each step of a report (``analysis.json``'s ``timings_s``), logged as they pass."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._clock = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self._clock, 3)
        self._clock = now
        log.info("%s: %.1f s", name, self.timings[name])


class _Outputs:
    """The report's files: figures queued for one :func:`save_figures` call at the end (``add``), and ``files``,
    every file written by name (the prior renders and meshes as they are made, the figures once saved)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.items: list[FigureFile] = []
        self.files: dict[str, dict[str, str]] = {}

    def add(self, name: str, figure: Any, **kwargs: Any) -> None:
        self.items.append(FigureFile(figure=figure, stem=self.out_dir / name, **kwargs))

    def save(self, *, png_backend: str) -> str:
        """Write the queued figures (HTML and PNG); returns the PNG backend used."""
        backend = save_figures(self.items, png_backend=png_backend)
        for item in self.items:
            self.files[item.stem.name] = {k: str(v) for k, v in item.written.items()}
        return backend


@dataclass
class _Priors:
    """The token priors shown: their meshes by row label, and the joint-token similarity of the model."""

    meshes: dict[str, PriorMesh]
    similarity: np.ndarray


@dataclass
class _ShownFrame:
    """The shown frame's image attention, which the attributions are drawn beside.

    Attributes:
        label: the frame's number in the input.
        crop: (S, S, 3) uint8 crop.
        joints_px: (24, 2) joints in crop pixels (image model).
        rollout: (N, N) attention rollout through all blocks.
        rollout_maps: (N, S, S) each token's rollout over the crop, in pixels.
    """

    label: int
    crop: np.ndarray
    joints_px: np.ndarray
    rollout: np.ndarray
    rollout_maps: np.ndarray


@dataclass
class _Temporal:
    """What the temporal section found.

    Attributes:
        periods: per joint, the period estimates (``attention`` with a temporal transformer, ``rotation`` over
            the window, ``rotation_whole_track``).
        curves: rotation curves by model (``image-only``[, ``temporal``]).
        analysis: the attention view, peak distances and strongest pairs (empty without a temporal transformer).
    """

    periods: dict[str, dict[str, Any]]
    curves: dict[str, JointAngleCurves]
    analysis: dict[str, Any]


def _shown_frame_index(settings: ReportSettings, num_frames: int) -> int:
    shown = num_frames // 2 if settings.frame is None else settings.frame
    if not 0 <= shown < num_frames:
        raise ValueError(f"--frame {settings.frame} is outside the window of {num_frames} frames")
    return shown


def _prior_figures(model: IntModel, outputs: _Outputs, *, model_label: str,
                   compare: tuple[str, IntModel] | None) -> _Priors:
    """Fresh and learned token priors (and ``compare``'s): renders, GLB meshes, 3D meshes, angles, similarity."""
    out_dir = outputs.out_dir
    priors = {"fresh tokens": prior_mesh(fresh_model(model), keep_orientation=False),
              f"learned ({model_label})": prior_mesh(model, keep_orientation=False)}
    if compare is not None:
        priors[f"learned ({compare[0]})"] = prior_mesh(compare[1], keep_orientation=False)
    renders = {label: render_prior(p) for label, p in priors.items()}
    montage = labelled_montage([[r.front, r.side] for r in renders.values()], row_labels=list(renders),
                               column_labels=["front", "side"])
    outputs.files["prior_renders"] = {"png": str(save_image(out_dir / "prior_renders.png", montage))}
    for index, (label, p) in enumerate(priors.items()):
        name = ["fresh", "learned", "compare"][index]
        outputs.files[f"prior_{name}"] = {"glb": str(export_mesh(out_dir / f"prior_{name}.glb", p.vertices,
                                                                 p.faces))}
    outputs.add("prior_meshes", prior_mesh_figure({label: (p.vertices, p.faces) for label, p in priors.items()}))
    outputs.add("prior_angles", prior_angles_figure({label: p.joint_angles_deg for label, p in priors.items()}))
    similarity = joint_token_similarity(model)
    outputs.add("token_similarity",
                similarity_figure(similarity, title=f"Joint-token cosine similarity ({model_label})"))
    return _Priors(meshes=priors, similarity=similarity)


def _spatial_views(spatial_attention: np.ndarray, *, depth: int,
                   settings: ReportSettings) -> dict[str, tuple[np.ndarray, str]]:
    """The image attention views drawn, by file name suffix: (N, N) matrix and title words."""
    layer = range(depth)[settings.layer]
    return {
        f"layer{layer}_head{settings.head}": (
            att.spatial_view(spatial_attention, layer=layer, head=settings.head),
            f"block {layer}, head {settings.head}"),
        f"layer{layer}_mean": (att.spatial_view(spatial_attention, layer=layer, head=att.MEAN),
                               f"block {layer}, mean of heads"),
        "rollout": (att.attention_rollout(spatial_attention), "attention rollout through all blocks"),
    }


def _image_attention_figures(run: ModelRun, window: ClipWindow, outputs: _Outputs, *, model: IntModel,
                             settings: ReportSettings, layout: att.TokenLayout, shown: int) -> _ShownFrame:
    """Per view: every token's attention over the shown crop, and ``settings.token``'s in the full frame."""
    size = model.config.img_size
    crop = window.crops[shown]
    frame = window.frames[shown]
    transform = window.transforms[shown]
    token_index = layout.index(settings.token)
    joints_px = normalised_to_crop_pixels(run.joints2d, size=size)
    views = _spatial_views(run.spatial_attention, depth=model.config.depth, settings=settings)
    frame_label = int(window.frame_numbers[shown])
    pixel_maps: dict[str, np.ndarray] = {}
    for name, (matrix, view_title) in views.items():
        grids = att.token_patch_maps(matrix, layout=layout)
        maps = np.stack([att.upsample_map(g, size=size) for g in grids])
        pixel_maps[name] = maps
        outputs.add(f"attention_tokens_{name}",
                    token_grid_figure(crop, maps, joints_px=joints_px, names=layout.names,
                                      title=f"Image attention per token, {view_title} (frame {frame_label})"))
        heat = att.map_to_frame(att.normalise_map(maps[token_index]), transform=transform,
                                frame_size=frame.shape[:2])
        point = (transform.to_image(run.joints2d[token_index]) if token_index < layout.num_joints
                 else None)
        outputs.add(f"attention_frame_{name}",
                    frame_attention_figure(frame, heat, transform=transform, point=point,
                                           title=f"{settings.token}: {view_title}, in frame {frame_label}"))
    return _ShownFrame(label=frame_label, crop=crop, joints_px=joints_px, rollout=views["rollout"][0],
                       rollout_maps=pixel_maps["rollout"])


def _attribution_figures(model: IntModel, shown: _ShownFrame, outputs: _Outputs, *, settings: ReportSettings,
                         layout: att.TokenLayout) -> list[dict[str, Any]]:
    """Integrated gradients of ``settings.token``'s angle (a joint's only), beta 0 and the camera scale, each
    beside its token's rollout attention; returns the numbers of each."""
    token_index = layout.index(settings.token)
    crop_tensor = normalise_crops(shown.crop[None])[0]
    targets = [AttributionTarget("joint_angle", index=token_index)] if token_index < layout.num_joints else []
    targets += [AttributionTarget("shape", index=0), AttributionTarget("camera", index=0)]
    numbers = []
    rollout_grids = att.token_patch_maps(shown.rollout, layout=layout)
    for target in targets:
        result = attribute(model, crop_tensor, target=target, n_steps=settings.attribution_steps)
        agreement = map_agreement(rollout_grids[target.token],
                                  pool_to_grid(result.magnitude, grid_size=layout.grid_size))
        name = {"joint_angle": f"angle_{settings.token}", "shape": "shape_beta0", "camera": "camera_scale"}[target.kind]
        joint = shown.joints_px[target.token] if target.token < layout.num_joints else None
        outputs.add(f"attribution_{name}",
                    attribution_figure(shown.crop, attention_map=shown.rollout_maps[target.token],
                                       attribution=result, joint_px=joint,
                                       title=f"{target.label} = {result.value:.3g} (frame {shown.label}); "
                                             f"attention: rollout of token '{TOKEN_NAMES[target.token]}'"))
        numbers.append(dict(target=target.label, token=TOKEN_NAMES[target.token], value=result.value,
                            baseline_value=result.baseline_value, delta=result.delta, method=result.method,
                            n_steps=settings.attribution_steps, attention_agreement=agreement))
    return numbers


def _temporal_attention_figures(run: ModelRun, window: ClipWindow, outputs: _Outputs, *, settings: ReportSettings,
                                layout: att.TokenLayout) -> tuple[list[PeriodEstimate], dict[str, Any]]:
    """The temporal transformer's attention: all joints, ``settings.token``'s joint, the strongest pairs, lag
    profiles. Returns each joint's period from its attention and the numbers for ``analysis.json``."""
    joint_names = list(SMPL_JOINT_NAMES)
    token_index = layout.index(settings.token)
    matrices = select_temporal(run.temporal_attention, layer=settings.temporal_layer, head=settings.temporal_head)
    pairs = [strongest_pairs(m, count=settings.num_pairs) for m in matrices]
    thumbs = thumbnails(window.crops)
    hover = {int(n): thumbs[i] for i, n in enumerate(window.frame_numbers)}
    depth = run.temporal_attention.shape[0]
    shown_layer = (settings.temporal_layer if settings.temporal_layer == MEAN
                   else range(depth)[int(settings.temporal_layer)])
    view = f"temporal block {shown_layer}, head {settings.temporal_head}"
    outputs.add("temporal_joints", temporal_grid_figure(matrices, pairs=pairs, frame_numbers=window.frame_numbers,
                                                        title=f"Temporal attention per joint ({view})"),
                hover_frames=hover)
    joint = token_index if token_index < layout.num_joints else 0
    outputs.add(f"temporal_{joint_names[joint]}",
                temporal_matrix_figure(matrices[joint], pairs=pairs[joint], frame_numbers=window.frame_numbers,
                                       title=f"Temporal attention of {joint_names[joint]} ({view})"),
                hover_frames=hover)
    pair_joints = [j for j in DEFAULT_PAIR_JOINTS if j in joint_names]
    outputs.add("temporal_pairs", frame_pairs_figure(thumbs, {j: pairs[joint_names.index(j)] for j in pair_joints},
                                                     frame_numbers=window.frame_numbers))
    from_attention = [period_from_attention(m) for m in matrices]
    profiles = np.stack([lag_profile(m) for m in matrices])
    outputs.add("lag_profiles", lag_profile_figure(profiles, periods=[e.period for e in from_attention]))
    analysis = {
        "view": {"layer": settings.temporal_layer, "head": settings.temporal_head},
        "attention_peak_distance": {name: attention_peak_distance(matrices[j]) for j, name in enumerate(joint_names)},
        "strongest_pairs": {name: [p.to_dict() for p in pairs[j]] for j, name in enumerate(joint_names)},
    }
    return from_attention, analysis


def _temporal_figures(run: ModelRun, window: ClipWindow, outputs: _Outputs, *, settings: ReportSettings,
                      layout: att.TokenLayout) -> _Temporal:
    """Temporal attention (with a temporal transformer), periods per joint, rotation curves and jitter."""
    joint_names = list(SMPL_JOINT_NAMES)
    periods: dict[str, dict[str, Any]] = {name: {} for name in joint_names}
    if run.temporal_attention is not None:
        from_attention, analysis = _temporal_attention_figures(run, window, outputs, settings=settings,
                                                               layout=layout)
        temporal = joint_angle_curves(run.temporal_pose)
        # The image-only curves in the temporal ones' terms, so that the two compare.
        curves = {"image-only": joint_angle_curves(run.image_pose, like=temporal), "temporal": temporal}
        rotvecs_window = relative_rotation_vectors(run.temporal_pose)
        for j, name in enumerate(joint_names):
            periods[name]["attention"] = from_attention[j].to_dict()
    else:
        from_attention, analysis = None, {}
        curves = {"image-only": joint_angle_curves(run.image_pose)}
        rotvecs_window = relative_rotation_vectors(run.image_pose)
    from_rotation = [period_from_rotations(rotvecs_window[:, j]) for j in range(len(joint_names))]
    track_rotvecs = relative_rotation_vectors(window.track_pose)
    from_track = [period_from_rotations(track_rotvecs[:, j]) for j in range(len(joint_names))]
    for j, name in enumerate(joint_names):
        periods[name]["rotation"] = from_rotation[j].to_dict()
        periods[name]["rotation_whole_track"] = from_track[j].to_dict()
    if from_attention is not None:
        outputs.add("periods", periodicity_figure(from_attention, from_rotation, known_period=settings.known_period,
                                                  title=f"Dominant period per joint, frames "
                                                        f"{window.frame_numbers[0]}-{window.frame_numbers[-1]}"))
    curve_joints = [joint_names.index(j) for j in DEFAULT_CURVE_JOINTS]
    outputs.add("rotation_curves", rotation_curves_figure(curves, joints=curve_joints,
                                                          frame_numbers=window.frame_numbers))
    outputs.add("jitter", jitter_figure(curves))
    return _Temporal(periods=periods, curves=curves, analysis=analysis)


def _analysis(model: IntModel, window: ClipWindow, *, settings: ReportSettings, model_label: str, untrained: bool,
              extra: dict[str, Any] | None, shown: _ShownFrame, priors: _Priors, temporal: _Temporal,
              attributions: list[dict[str, Any]], png_backend: str, files: dict[str, dict[str, str]],
              timings: dict[str, float]) -> dict[str, Any]:
    """The contents of ``analysis.json``: the settings, the numbers of every section and the files."""
    joint_names = list(SMPL_JOINT_NAMES)
    return {
        **(extra or {}),
        "model": model_label,
        "variant": model.config.variant,
        "untrained": untrained,
        "body_model": model.body_model.description,
        "track": window.track_id,
        "frames": [int(window.frame_numbers[0]), int(window.frame_numbers[-1])],
        "num_frames": len(window.crops),
        "track_frames": int(len(window.track_pose)),
        "fps": window.fps,
        "shown_frame": shown.label,
        "token": settings.token,
        "known_period_frames": settings.known_period,
        "settings": asdict(settings),
        "periods": temporal.periods,
        **temporal.analysis,
        "prior_angles_deg": {label: prior_angles(p) for label, p in priors.meshes.items()},
        "prior_betas": {label: p.betas.tolist() for label, p in priors.meshes.items()},
        "token_similarity": priors.similarity.round(4).tolist(),
        "jitter_deg_per_frame2": {label: dict(zip(joint_names, c.mean_abs_acceleration.round(4).tolist()))
                                  for label, c in temporal.curves.items()},
        "attributions": attributions,
        "png_backend": png_backend,
        "files": files,
        "timings_s": timings,
    }


def write_report(model: IntModel, window: ClipWindow, out_dir: Path, *, settings: ReportSettings,
                 model_label: str, untrained: bool, compare: tuple[str, IntModel] | None = None,
                 extra: dict[str, Any] | None = None) -> Report:
    """Compute everything for one window and write every figure and ``analysis.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    watch = _Stopwatch()
    layout = att.TokenLayout.from_config(model.config)
    layout.index(settings.token)  # an unknown token fails before any work
    shown_index = _shown_frame_index(settings, len(window.crops))
    outputs = _Outputs(out_dir)

    priors = _prior_figures(model, outputs, model_label=model_label, compare=compare)
    watch.lap("priors")
    run = run_model(model, window.crops, shown_frame=shown_index)
    watch.lap("model")
    shown = _image_attention_figures(run, window, outputs, model=model, settings=settings, layout=layout,
                                     shown=shown_index)
    watch.lap("image attention")
    attributions = _attribution_figures(model, shown, outputs, settings=settings, layout=layout)
    watch.lap("attributions")
    temporal = _temporal_figures(run, window, outputs, settings=settings, layout=layout)
    watch.lap("temporal")
    backend = outputs.save(png_backend=settings.png_backend)
    watch.lap("writing figures")

    analysis = _analysis(model, window, settings=settings, model_label=model_label, untrained=untrained,
                         extra=extra, shown=shown, priors=priors, temporal=temporal, attributions=attributions,
                         png_backend=backend, files=outputs.files, timings=watch.timings)
    (out_dir / ANALYSIS_FILE).write_text(json.dumps(_jsonable(analysis), indent=2))
    return Report(analysis=analysis, files=outputs.files, png_backend=backend)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
def _selection(text: str) -> int | str:
    return text if text == MEAN else int(text)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m viz.report", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="results folder / results.npz, or a video, image folder or image")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--checkpoint", help="model checkpoint (INT Studio or public INT)")
    parser.add_argument("--compare", help="a second checkpoint whose prior is shown beside (e.g. phase 1 vs 3)")
    parser.add_argument("--variant", default=None,
                        help="analyse an UNTRAINED model of this variant (default: the checkpoint, else the demo model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--detector", default=None, help="pipeline detector (for a media INPUT)")
    parser.add_argument("--track", type=int)
    parser.add_argument("--start", type=int, default=0, help="first frame of the window within the track")
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOW, help="frames analysed together")
    parser.add_argument("--frame", type=int, help="frame of the window for image attention (default: middle)")
    parser.add_argument("--token", default=DEFAULT_TOKEN, choices=TOKEN_NAMES)
    parser.add_argument("--layer", type=int, default=-1, help="spatial block of the single-layer views")
    parser.add_argument("--head", type=int, default=0, help="head of the single-head view")
    parser.add_argument("--temporal-layer", type=_selection, default=-1, help="index or 'mean'")
    parser.add_argument("--temporal-head", type=_selection, default=MEAN, help="index or 'mean'")
    parser.add_argument("--ig-steps", type=int, default=16, help="integrated-gradients steps")
    parser.add_argument("--known-period", type=float, help="true period in frames (synthetic clips)")
    parser.add_argument("--png-backend", default="auto", choices=("auto", "kaleido", "matplotlib"))
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    out_dir = Path(args.out)
    source = Path(args.input)
    results_file = _results_path(source)
    checkpoint = args.checkpoint
    if results_file is not None and checkpoint is None:
        recorded = load_results(results_file).checkpoint
        if recorded != UNTRAINED_CHECKPOINT and Path(recorded).is_file():
            checkpoint = recorded
    model, label, untrained = load_model(checkpoint=checkpoint, variant=args.variant, device=args.device)
    if untrained:
        log.warning("no checkpoint: using an untrained %s model (layout only; the content is noise)", label)
    settings = ReportSettings(
        track=args.track, start=args.start, window=args.window, frame=args.frame, token=args.token,
        layer=args.layer, head=args.head, temporal_layer=args.temporal_layer, temporal_head=args.temporal_head,
        attribution_steps=args.ig_steps, known_period=args.known_period, png_backend=args.png_backend,
    )
    if results_file is None:
        log.info("running the pipeline on %s", source)
        run_settings = RunSettings(inference=InferenceSettings(window=max(2, args.window)),
                                   **({"detector": args.detector} if args.detector else {}))
        outcome = run_pipeline(source, out_dir / "pipeline", model=model,
                               checkpoint=checkpoint or UNTRAINED_CHECKPOINT, settings=run_settings)
        results = outcome.results
        results_file = outcome.results_path
    else:
        results = load_results(results_file)
    window = read_window(results, settings=settings, crop_size=model.config.img_size)
    compare = None
    if args.compare:
        compare = (Path(args.compare).name, load_checkpoint(args.compare, device=args.device).model)
    report = write_report(model, window, out_dir, settings=settings, model_label=label, untrained=untrained,
                          compare=compare, extra={"input": str(source), "results": str(results_file)})
    print(f"wrote {len(report.files)} figures and {ANALYSIS_FILE} to {out_dir} (PNG via {report.png_backend})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
