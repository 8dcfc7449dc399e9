"""3DPW from its published sequence files (von Marcard et al. 2018).

Layout of the download (``root``)::

    sequenceFiles/{train,validation,test}/<sequence>.pkl     Python 2 pickles (read with encoding latin1)
    imageFiles/<sequence>/image_00000.jpg, ...

Each pickle is a dict; the keys read here (lists have one entry per actor):

=================  =============================  ===============================================================
key                shape                          use
=================  =============================  ===============================================================
``sequence``       str                            sequence name (else the file name)
``poses``          list of (N, 72)                SMPL pose, world frame -> camera frame via ``cam_poses``
``betas``          list of (10,) or longer        shape; the first 10 are used
``jointPositions`` list of (N, 72)                SMPL-24 joints, world frame, metres
``poses2d``        list of (N, 3, 18)             OpenPose COCO-18 detections (x, y, confidence)
``campose_valid``  list of (N,)                   whether the camera pose is aligned for that actor and frame
``cam_poses``      (N, 4, 4)                      world -> camera extrinsics per frame
``cam_intrinsics`` (3, 3)                         K, pixels
=================  =============================  ===============================================================

``trans``, ``genders``, ``img_frame_ids`` and the 60 Hz fields are not needed (the gendered SMPL models are not
used: the betas are taken as labels for the body model in use). Each actor is its own sequence
``<sequence>_<actor>``. Where ``campose_valid`` holds, the camera-frame pose, betas and 3D joints are labels and
the 2D joints are the 3D joints projected with K (all 24 SMPL joints); elsewhere only the COCO-18 detections
(confidence > :data:`VISIBILITY_THRESHOLD`) give 2D limb joints. The box is the bounding box of the projected
joints (aligned frames) or of all confident detections, enlarged by :data:`BOX_MARGIN`; a frame with fewer than
:data:`MIN_BOX_JOINTS` such points takes its box from the actor's nearest frames.

Pickles are read with the restricted unpickler of :mod:`int_model.body_model` (numpy arrays and builtins only),
so a sequence file cannot run code.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from int_model.body_model import RefusedGlobalError, restricted_load
from int_model.constants import NUM_BETAS, NUM_JOINTS
from int_model.geometry import axis_angle_to_rotmat, rotmat_to_axis_angle

from ..augment import AugmentConfig
from .base import FULL_IMAGE_BOX, ClipDataset, DatasetFileError, FrameTable
from .joints import map_joints

SPLITS = ("train", "validation", "test")
WHERE_TO_GET = (
    "3DPW: download from the 3DPW website (virtualhumans.mpi-inf.mpg.de/3DPW) and point --data-root at the "
    "folder that holds sequenceFiles/ and imageFiles/"
)
IMAGE_PATTERN = "image_{:05d}.jpg"
# OpenPose detections with at most this confidence are not labels (VIBE's threshold for 3DPW).
VISIBILITY_THRESHOLD = 0.3
# The joints' bounding box is enlarged by this factor to hold the head, hands and feet.
BOX_MARGIN = 1.2
# A box from 2D points needs at least this many of them (VIBE keeps frames with more than 6 keypoints);
# frames with fewer take their box from the actor's nearest frames (linear interpolation in time).
MIN_BOX_JOINTS = 6


def sequence_files(root: str | os.PathLike, split: str) -> list[Path]:
    """The sorted sequence pickles of a split; FileNotFoundError saying where 3DPW comes from."""
    if split not in SPLITS:
        raise ValueError(f"3DPW split must be one of {', '.join(SPLITS)}, not {split!r}")
    folder = Path(root) / "sequenceFiles" / split
    if not folder.is_dir():
        raise FileNotFoundError(f"3DPW sequence folder {folder} not found. {WHERE_TO_GET}")
    # A sequence file that is a symlink out of the dataset folder is not read.
    files = sorted(p for p in folder.glob("*.pkl") if p.resolve().is_relative_to(Path(root).resolve()))
    if not files:
        raise FileNotFoundError(f"no 3DPW sequence files (*.pkl) in {folder}. {WHERE_TO_GET}")
    return files


def load_sequence_file(path: str | os.PathLike) -> dict[str, Any]:
    """One 3DPW sequence pickle as a dict (Python 2 pickles; numpy and builtins only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"3DPW sequence file {path} not found. {WHERE_TO_GET}")
    try:
        with path.open("rb") as handle:
            data = restricted_load(handle)
    except RefusedGlobalError as exc:
        raise DatasetFileError(f"{path} is not a plain 3DPW sequence file: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise DatasetFileError(f"{path} is not a readable 3DPW sequence file ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict, found {type(data).__name__}")
    missing = [k for k in ("poses", "betas", "jointPositions", "poses2d", "cam_poses", "cam_intrinsics",
                           "campose_valid") if k not in data]
    if missing:
        raise ValueError(f"{path}: not a 3DPW sequence file (missing {', '.join(missing)})")
    return data


def world_to_camera_pose(pose: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Rotate the global orientation of SMPL poses (N, 72) by world -> camera rotations (N, 3, 3)."""
    pose = np.asarray(pose, dtype=np.float64).copy()
    global_rot = axis_angle_to_rotmat(torch.from_numpy(pose[:, :3]))
    pose[:, :3] = rotmat_to_axis_angle(torch.from_numpy(rotation).double() @ global_rot).numpy()
    return pose.astype(np.float32)


def project(points: np.ndarray, intrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame points (N, J, 3) -> pixels (N, J, 2) with K (3, 3), and (N, J) bool in front of the camera."""
    in_front = points[..., 2] > 0
    depth = np.where(in_front, points[..., 2], 1.0)
    homogeneous = points @ np.asarray(intrinsics, dtype=np.float64).T
    return (homogeneous[..., :2] / depth[..., None]).astype(np.float32), in_front


def boxes_from_points(points: np.ndarray, visible: np.ndarray, *, margin: float = BOX_MARGIN) -> np.ndarray:
    """(N, J, 2) pixels and (N, J) visibility -> (N, 4) (cx, cy, w, h) of the visible points' bounding box times
    ``margin``; NaN rows where fewer than :data:`MIN_BOX_JOINTS` are visible."""
    boxes = np.tile(FULL_IMAGE_BOX, (points.shape[0], 1))
    for i in np.flatnonzero(visible.sum(axis=1) >= MIN_BOX_JOINTS):
        pts = points[i][visible[i]]
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        boxes[i] = (*((lo + hi) / 2.0), *((hi - lo) * margin))
    return boxes


def fill_missing_boxes(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) boxes of one actor with NaN rows -> NaN rows interpolated linearly in time from the known rows
    (the nearest known row at the ends); all NaN if no row is known."""
    known = np.flatnonzero(np.isfinite(boxes).all(axis=1))
    if known.size == 0 or known.size == len(boxes):
        return boxes
    frames = np.arange(len(boxes))
    return np.stack([np.interp(frames, known, boxes[known, k]) for k in range(4)], axis=1).astype(boxes.dtype)


def read_sequence(data: dict[str, Any], *, image_dir: Path, name: str) -> FrameTable:
    """All actors of one sequence dict as a :class:`FrameTable` (rows actor by actor, frame by frame)."""
    cam = np.asarray(data["cam_poses"], dtype=np.float64)
    intrinsics = np.asarray(data["cam_intrinsics"], dtype=np.float64)
    tables = []
    for actor, world_pose in enumerate(data["poses"]):
        n = len(world_pose)
        rotation, translation = cam[:n, :3, :3], cam[:n, :3, 3]
        table = FrameTable.empty(n)
        table.image_paths[:] = [str(image_dir / IMAGE_PATTERN.format(i)) for i in range(n)]
        table.sequence[:] = f"{name}_{actor}"
        labelled = np.asarray(data["campose_valid"][actor], dtype=bool).reshape(n)

        world_joints = np.asarray(data["jointPositions"][actor], dtype=np.float64).reshape(n, NUM_JOINTS, 3)
        joints = world_joints @ np.swapaxes(rotation, 1, 2) + translation[:, None]
        pixels, in_front = project(joints, intrinsics)
        projected_vis = in_front & labelled[:, None]

        detections = np.asarray(data["poses2d"][actor], dtype=np.float64).transpose(0, 2, 1)  # (N, 18, 3)
        detected, detected_vis = map_joints(
            detections[..., :2], detections[..., 2] > VISIBILITY_THRESHOLD, layout="coco18", target="smpl24"
        )
        use_projection = labelled[:, None, None]
        table.joints2d[:] = np.where(use_projection, pixels, detected)
        table.joints2d_vis[:] = np.where(labelled[:, None], projected_vis, detected_vis > 0)
        # The box: from the projected joints where the camera is aligned, else from every confident detection.
        boxes = boxes_from_points(pixels, projected_vis)
        detected_boxes = boxes_from_points(detections[..., :2].astype(np.float32),
                                           detections[..., 2] > VISIBILITY_THRESHOLD)
        table.bbox[:] = fill_missing_boxes(np.where(labelled[:, None], boxes, detected_boxes))
        table.valid[:] = np.isfinite(table.bbox).all(axis=1)

        table.joints3d[:] = np.where(labelled[:, None, None], joints, 0.0)
        table.joints3d_vis[:] = labelled[:, None]
        camera_pose = world_to_camera_pose(np.asarray(world_pose).reshape(n, -1), rotation)
        table.pose[:] = np.where(labelled[:, None], camera_pose, 0.0)
        table.has_pose[:] = labelled
        betas = np.asarray(data["betas"][actor], dtype=np.float32).reshape(-1)[:NUM_BETAS]
        table.betas[:, : betas.shape[0]] = np.where(labelled[:, None], betas, 0.0)
        table.has_betas[:] = labelled
        tables.append(table)
    return FrameTable.concatenate(tables)


def read_3dpw(root: str | os.PathLike, split: str) -> FrameTable:
    """Every sequence of a 3DPW split as one :class:`FrameTable`."""
    root = Path(root)
    tables = []
    for path in sequence_files(root, split):
        data = load_sequence_file(path)
        name = str(data.get("sequence") or path.stem)
        tables.append(read_sequence(data, image_dir=root / "imageFiles" / name, name=name))
    return FrameTable.concatenate(tables)


class ThreeDPW(ClipDataset):
    """3DPW clips (or frames, ``clip_len=1``) from the sequence files under ``root``; see :class:`ClipDataset`."""

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        split: str = "train",
        clip_len: int = 1,
        stride: int | None = None,
        img_size: int = 224,
        train: bool | None = None,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        cover_tail: bool = False,
    ) -> None:
        train = split == "train" if train is None else train
        super().__init__(
            table=read_3dpw(root, split), name="3dpw", clip_len=clip_len, stride=stride, img_size=img_size,
            augment=augment, train=train, seed=seed, missing_hint=WHERE_TO_GET, cover_tail=cover_tail,
        )
