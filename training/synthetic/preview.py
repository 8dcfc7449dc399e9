"""Contact sheets of synthetic clips: frames with the 2D joints, skeleton, boxes and occluder outlines drawn.

Left joints are blue, right joints red, centre joints grey (``SIDE_COLOURS``); a joint that is not visible
(outside the image or covered) is drawn as a hollow ring; each person's box has its track colour.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from int_model.constants import SIDE_COLOURS, SMPL_JOINT_NAMES, SMPL_PARENTS, TRACK_PALETTE, joint_side

from .dataset import SyntheticDataset
from .scene import RenderedClip

OCCLUDER_OUTLINE = (255, 230, 0)
JOINT_RADIUS = 2
TEXT_SCALE = 0.35
SHEET_GAP = 2


def draw_frame(
    frame: np.ndarray,
    *,
    joints2d: np.ndarray,
    visible: np.ndarray,
    bbox: np.ndarray | None = None,
    occluder_coverage: np.ndarray | None = None,
    text: str = "",
    scale: int = 1,
) -> np.ndarray:
    """A copy of ``frame`` (H, W, 3) uint8 RGB, upscaled by ``scale``, with labels drawn.

    Args:
        joints2d: (P, 24, 2) pixels of P people; visible: (P, 24) bool.
        bbox: (P, 4) (cx, cy, w, h) pixels, or None.
        occluder_coverage: (H, W) in [0, 1], outlined where it crosses 0.5, or None.
        text: a caption in the top-left corner.
    """
    image = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) if scale != 1 else frame.copy()
    image = np.ascontiguousarray(image)
    if occluder_coverage is not None and occluder_coverage.max() >= 0.5:
        mask = cv2.resize((occluder_coverage >= 0.5).astype(np.uint8), (image.shape[1], image.shape[0]),
                          interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(image, contours, -1, OCCLUDER_OUTLINE, 1)
    for person in range(joints2d.shape[0]):
        points = [(int(round((x + 0.5) * scale - 0.5)), int(round((y + 0.5) * scale - 0.5)))
                  for x, y in joints2d[person]]
        for child, parent in enumerate(SMPL_PARENTS):
            if parent >= 0:
                colour = SIDE_COLOURS[joint_side(SMPL_JOINT_NAMES[child])]
                cv2.line(image, points[parent], points[child], colour, 1, cv2.LINE_AA)
        for j, point in enumerate(points):
            colour = SIDE_COLOURS[joint_side(SMPL_JOINT_NAMES[j])]
            thickness = -1 if visible[person, j] else 1
            cv2.circle(image, point, JOINT_RADIUS * max(1, scale // 2) + (0 if visible[person, j] else 1), colour,
                       thickness, cv2.LINE_AA)
        if bbox is not None:
            cx, cy, w, h = (float(v) * scale for v in bbox[person])
            cv2.rectangle(image, (int(cx - w / 2), int(cy - h / 2)), (int(cx + w / 2), int(cy + h / 2)),
                          TRACK_PALETTE[person % len(TRACK_PALETTE)], 1)
    if text:
        cv2.putText(image, text, (3, 11), cv2.FONT_HERSHEY_SIMPLEX, TEXT_SCALE, (0, 0, 0), 2, cv2.LINE_AA)
        cv2.putText(image, text, (3, 11), cv2.FONT_HERSHEY_SIMPLEX, TEXT_SCALE, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def _grid(rows: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    width = max(sum(img.shape[1] + SHEET_GAP for img in row) for row in rows)
    lines = []
    for row in rows:
        line = np.full((max(img.shape[0] for img in row), width, 3), 255, np.uint8)
        x = 0
        for img in row:
            line[:img.shape[0], x:x + img.shape[1]] = img
            x += img.shape[1] + SHEET_GAP
        lines.append(line)
        lines.append(np.full((SHEET_GAP, width, 3), 255, np.uint8))
    return np.concatenate(lines[:-1], axis=0)


def _frame_indices(num_frames: int, count: int) -> list[int]:
    return sorted(set(np.linspace(0, num_frames - 1, min(count, num_frames)).round().astype(int).tolist()))


def dataset_sheet(root: str | os.PathLike, *, num_clips: int = 6, frames_per_clip: int = 6,
                  crop_size: int = 128) -> np.ndarray:
    """Rows of the first generated tracks (full frames with labels) followed by a row of training crops with
    their 2D joints (from :class:`SyntheticDataset`, augmented): (H, W, 3) uint8 RGB."""
    from int_model.crops import denormalise_frame

    data = SyntheticDataset(root, clip_len=1, train=False, img_size=crop_size)
    num_frames = data.num_frames
    rows = []
    table = data.table
    for track in range(min(num_clips, len(data.track_info["period"]))):
        period = float(data.track_info["period"][track])
        motion = str(data.track_info["motion"][track])
        caption = f"{motion} {period:.1f}f" if np.isfinite(period) else motion
        row = []
        for k, t in enumerate(_frame_indices(num_frames, frames_per_clip)):
            r = track * num_frames + t
            row.append(draw_frame(
                data.read_image(str(table.image_paths[r])), joints2d=table.joints2d[r][None],
                visible=table.joints2d_vis[r][None] > 0, bbox=table.bbox[r][None],
                text=f"t={t} {caption}" if k == 0 else f"t={t}",
            ))
        rows.append(row)
    train = SyntheticDataset(root, clip_len=1, train=True, img_size=crop_size, seed=1)
    crops = []
    for index in np.linspace(0, len(train) - 1, min(len(train), 2 * frames_per_clip)).round().astype(int):
        sample = train[int(index)]
        crop = denormalise_frame(sample["frames"][0])
        pixels = (sample["joints2d"][0] + 1.0) * crop_size / 2.0 - 0.5
        crops.append(draw_frame(crop, joints2d=pixels[None], visible=sample["joints2d_vis"][0][None] > 0,
                                text="flip" if _is_flipped(train, int(index)) else ""))
    rows.append(crops)
    return _grid(rows)


def _is_flipped(dataset: SyntheticDataset, index: int) -> bool:
    return dataset.augmentation(index).flip


def write_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an RGB image as PNG (creating the folder)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {out}")
    return out
