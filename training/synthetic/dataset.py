"""Reading a generated synthetic dataset as samples of the training contract (:mod:`training.sample`).

:class:`SyntheticDataset` is a :class:`training.datasets.base.ClipDataset` over the shards' tracks (one person
in one clip): the same crops (box scale 1.3 with augmentation in training, 1.1 without in evaluation), clip
length and stride, deterministic augmentation, flips with label mirroring. Every label exists (pose, shape,
3D joints, H36M joints where the body model has the regressor); 2D joints are labels where they are visible
(inside the image and not covered by an occluder or another person), unless ``label_occluded_joints``.
``period`` is the motion's period in frames (NaN for non-periodic motion).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from int_model.crops import CropTransform

from ..augment import AugmentConfig
from ..datasets.base import ClipDataset, FrameTable
from ..sample import Sample
from .generate import decode_jpeg, read_manifest
from .camera import crop_camera, reference_depth

DATASET_NAME = "synthetic"
DEFAULT_MIN_VISIBLE_FRACTION = 0.02  # frames in which less of the person is seen are not valid


class _Shard:
    """One shard's labels (in memory) and frames (memory-mapped, opened on first use)."""

    def __init__(self, root: Path, name: str, frame_format: str, num_frames: int) -> None:
        self.frames_path = root / f"{name}.frames.npy"
        with np.load(root / f"{name}.npz") as data:
            self.labels = {key: data[key] for key in data.files}
        self.frame_format = frame_format
        self.num_frames = num_frames
        self._frames: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (e.g. for DataLoader workers) without the memory map; each process opens its own."""
        return {**self.__dict__, "_frames": None}

    @property
    def frames(self) -> np.ndarray:
        if self._frames is None:
            self._frames = np.load(self.frames_path, mmap_mode="r")
        return self._frames

    def image(self, clip: int, t: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB frame ``t`` of the shard's clip ``clip``."""
        if self.frame_format == "raw":
            return np.array(self.frames[clip, t])
        k = clip * self.num_frames + t
        offsets = self.labels["frame_offsets"]
        return decode_jpeg(self.frames[offsets[k]:offsets[k + 1]])


class SyntheticDataset(ClipDataset):
    """Clips of one person from a dataset written by :func:`training.synthetic.generate.generate_dataset`.

    Args:
        root: the dataset folder (with ``manifest.json``).
        clip_len: T of the samples (1 for image-style samples); at most the generated clip length.
        stride: frames between clip starts inside a generated clip (default ``clip_len``).
        img_size: crop side in pixels.
        train: training augmentation and crops at scale 1.3, else none at 1.1 (when ``augment`` is None).
        augment: explicit augmentation (its ``crop_scale`` is the box scale).
        seed: augmentation seed (see :class:`ClipDataset`).
        clips: only these generated clip numbers (e.g. ``range(900, 1000)`` for a held-out part).
        min_visible_fraction: frames where less of the person is seen are marked invalid.
        label_occluded_joints: 2D joints covered by occluders / other people stay labels (the image gives no
            evidence for them, time does).
        with_camera: add ``cam`` (T, 3), the weak-perspective camera of each frame's actual crop (after box
            jitter and flip), and ``transl`` (T, 3): ``s * (J_smpl[:2] + (tx, ty))`` ~ ``joints2d`` with
            ``J_smpl = joints3d - transl`` the SMPL joints without translation. (Extra keys: ``collate_samples``
            leaves them out.)
        name: dataset name written into the samples.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        clip_len: int = 1,
        stride: int | None = None,
        img_size: int = 224,
        train: bool = True,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        clips: Sequence[int] | range | None = None,
        min_visible_fraction: float = DEFAULT_MIN_VISIBLE_FRACTION,
        label_occluded_joints: bool = False,
        with_camera: bool = False,
        name: str = DATASET_NAME,
    ) -> None:
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        request = self.manifest["request"]
        self.num_frames = int(request["num_frames"])
        if clip_len > self.num_frames:
            raise ValueError(f"clip_len {clip_len} is longer than the generated clips ({self.num_frames} frames)")
        self.shards = [_Shard(self.root, entry["name"], request["frame_format"], self.num_frames)
                       for entry in self.manifest["shards"]]
        wanted = None if clips is None else set(int(c) for c in clips)
        table, track_info = self._table(wanted, min_visible_fraction, label_occluded_joints)
        self.track_info = track_info
        self.with_camera = with_camera
        super().__init__(
            table=table, name=name, clip_len=clip_len, stride=stride, img_size=img_size, augment=augment,
            train=train, seed=seed, missing_hint=f"the synthetic dataset in {self.root} is incomplete: regenerate it",
            pad_short=False,
        )
        self._row_track = np.repeat(np.arange(len(track_info["period"])), self.num_frames)

    # -- building the frame table -------------------------------------------------------------
    def _table(self, wanted: set[int] | None, min_visible: float,
               label_occluded: bool) -> tuple[FrameTable, dict[str, np.ndarray]]:
        tables: list[FrameTable] = []
        info: dict[str, list[np.ndarray]] = {k: [] for k in ("period", "motion", "shard", "clip", "focal",
                                                              "principal", "transl", "depth")}
        t_count = self.num_frames
        for shard_number, shard in enumerate(self.shards):
            lab = shard.labels
            keep = np.ones(lab["track_clip"].shape[0], dtype=bool)
            clip_numbers = lab["clip_index"][lab["track_clip"]]
            if wanted is not None:
                keep = np.isin(clip_numbers, list(wanted))
            tracks = np.flatnonzero(keep)
            if tracks.size == 0:
                continue
            n = tracks.size
            table = FrameTable.empty(n * t_count)

            def rows(key: str, tracks: np.ndarray = tracks) -> np.ndarray:
                value = lab[key][tracks]
                return value.reshape(n * t_count, *value.shape[2:])

            local_clip = lab["track_clip"][tracks]
            table.image_paths = np.array(
                [f"{shard_number}:{c}:{t}" for c in local_clip for t in range(t_count)], dtype=object)
            table.sequence = np.repeat(
                np.array([f"clip{clip_numbers[i]:06d}/person{lab['track_person'][i]}" for i in tracks], dtype=object),
                t_count)
            table.frame_index = np.tile(np.arange(t_count, dtype=np.int64), n)
            table.bbox = rows("bbox").astype(np.float32)
            visible = rows("in_image") & (label_occluded | ~rows("occluded"))
            table.joints2d = rows("joints2d").astype(np.float32)
            table.joints2d_vis = visible.astype(np.float32)
            table.joints3d = rows("joints3d").astype(np.float32)
            table.joints3d_vis[:] = 1.0
            table.joints3d_h36m = rows("joints3d_h36m").astype(np.float32)
            table.joints3d_h36m_vis[:] = np.repeat(lab["has_h36m"][tracks].astype(np.float32), t_count)[:, None]
            table.pose = rows("pose").astype(np.float32)
            table.has_pose[:] = 1.0
            table.betas = np.repeat(lab["betas"][tracks].astype(np.float32), t_count, axis=0)
            table.has_betas[:] = 1.0
            table.valid = (rows("visible_fraction") >= min_visible).astype(np.float32)
            tables.append(table)
            info["period"].append(lab["period"][tracks])
            info["motion"].append(lab["motion"][tracks])
            info["shard"].append(np.full(n, shard_number))
            info["clip"].append(local_clip)
            info["focal"].append(lab["intrinsics"][local_clip, 0, 0])
            info["principal"].append(lab["intrinsics"][local_clip, :2, 2])
            info["transl"].append(lab["transl"][tracks])
            info["depth"].append(reference_depth(lab["joints3d"][tracks]))
        for shard in self.shards:  # the labels now live in the table; keep only what reading frames needs
            shard.labels = {key: shard.labels[key] for key in ("frame_offsets",) if key in shard.labels}
        if not tables:
            raise ValueError(f"no clips of {self.root} selected")
        return FrameTable.concatenate(tables), {k: np.concatenate(v) for k, v in info.items()}

    # -- reading ------------------------------------------------------------------------------
    def read_image(self, name: str) -> np.ndarray:
        """The frame a table row names (``'shard:clip:t'``), decoded from its shard."""
        shard, clip, t = (int(v) for v in name.split(":"))
        return self.shards[shard].image(clip, t)

    def track_of(self, index: int) -> int:
        """The track (row of :attr:`track_info`) clip ``index`` comes from."""
        return int(self._row_track[self.clips.rows[index][0]])

    def __getitem__(self, index: int) -> Sample:
        sample = super().__getitem__(index)
        track = self.track_of(index)
        period = float(self.track_info["period"][track])
        sample["period"] = period if math.isfinite(period) else math.nan
        if self.with_camera:
            cam, transl = self._cameras(index, track)
            sample["cam"] = cam  # type: ignore[typeddict-unknown-key]
            sample["transl"] = transl  # type: ignore[typeddict-unknown-key]
        return sample

    def _cameras(self, index: int, track: int) -> tuple[np.ndarray, np.ndarray]:
        """(T, 3) weak-perspective cameras of the clip's crops as :meth:`ClipDataset.__getitem__` cut them, and
        (T, 3) SMPL translations (both mirrored with the sample when it is flipped)."""
        params = self.augmentation(index)
        rows = self.clips.rows[index]
        frames = rows - track * self.num_frames
        info = self.track_info
        out = np.zeros((len(rows), 3), np.float32)
        for i, (row, t) in enumerate(zip(rows, frames, strict=True)):
            crop = CropTransform.from_centre_box(self.table.bbox[row], scale=self.augment.crop_scale * params.box_scale,
                                                size=self.img_size, shift=params.box_shift)
            out[i] = crop_camera(transl=info["transl"][track, t], depth=info["depth"][track, t],
                                 focal_length=info["focal"][track], principal_point=info["principal"][track],
                                 crop_centre=np.asarray(crop.centre), crop_side=np.asarray(crop.side))
        transl = info["transl"][track, frames].astype(np.float32)
        if params.flip:
            out[:, 1] *= -1.0
            transl[:, 0] *= -1.0
        return out, transl


def dataset_summary(root: str | os.PathLike) -> dict[str, Any]:
    """Counts of a generated dataset (clips, tracks, frames, motions) from its manifest and shard labels."""
    manifest = read_manifest(root)
    motions: dict[str, int] = {}
    for entry in manifest["shards"]:
        with np.load(Path(root) / f"{entry['name']}.npz") as data:
            for motion in data["motion"].tolist():
                motions[motion] = motions.get(motion, 0) + 1
    return {**manifest["counts"], "motions": motions, "image_size": manifest["image_size"], "fps": manifest["fps"]}
