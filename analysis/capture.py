"""The one capture of a window: a track's frames read again and cut into crops the way the pipeline cut them
(:func:`read_window`), and the model run once on them with the attention recorded (:func:`run_model`): the
image model (spatial attention of one frame, image-only poses) and the temporal transformer over the window
(temporal attention, temporal poses). The tabs, the report and the evaluation read their views from this.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from int_model import FrameTokens, IntModel
from int_model.attention import capture_attention
from int_model.crops import (
    INFERENCE_BBOX_SCALE,
    CropSettings,
    CropTransform,
    cut_crop,
    normalise_crops,
)
from pipeline.inference import DEFAULT_WINDOW
from pipeline.media import MediaLimits, open_media
from pipeline.results import PipelineResults

#: Crops per encode_frames call (memory).
ENCODE_BATCH = 16


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


def read_window(results: PipelineResults, *, crop_size: int, track: int | None = None, start: int = 0,
                length: int = DEFAULT_WINDOW, crop_scale: float = INFERENCE_BBOX_SCALE) -> ClipWindow:
    """Pick the track (None: the longest) and ``length`` frames of it from ``start`` (counted within the track),
    read those frames from ``results.source`` and cut their crops the way the pipeline cut them."""
    if len(results) == 0:
        raise ValueError(f"the results hold no person ({results.message})")
    ids = results.track_ids
    if track is None:
        track_id = int(max(ids, key=lambda i: len(results.rows_of_track(int(i)))))
    elif track in ids:
        track_id = track
    else:
        raise ValueError(f"no track {track}; the results have tracks {', '.join(map(str, ids))}")
    rows = results.rows_of_track(track_id)
    if not 0 <= start < len(rows):
        raise ValueError(f"start {start} is outside track {track_id}'s {len(rows)} frames")
    chosen = rows[start: start + length]
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
    crop_settings = CropSettings(size=crop_size, scale=crop_scale)
    transforms = [CropTransform.from_box(results.bbox[r], settings=crop_settings) for r in chosen]
    crops = np.stack([cut_crop(f, t) for f, t in zip(frames, transforms, strict=True)])
    return ClipWindow(frame_numbers=np.asarray(numbers), frames=np.stack(frames), crops=crops,
                      transforms=transforms, track_id=track_id, track_pose=results.pose[rows].astype(np.float64),
                      fps=results.fps)


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
