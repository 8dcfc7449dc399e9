"""The result file of one pipeline run: ``results.npz``, plain arrays only (loads with ``allow_pickle=False``).

One row per (track, frame), N rows, sorted by (frame, track_id)::

    track_id  (N,)        int64    stable track id
    frame     (N,)        int64    frame index in the input (0-based, after --max-frames)
    bbox      (N, 4)      float32  the (smoothed) person box, (x, y, w, h) image pixels
    pose      (N, 72)     float32  SMPL theta, axis-angle, global orientation first
    betas     (N, 10)     float32  SMPL shape
    cam       (N, 3)      float32  weak-perspective crop camera (s, tx, ty)
    cam_t     (N, 3)      float32  translation in the full image's pinhole camera (focal_length, centre
                                   principal point): joints3d + cam_t projects onto the image
    joints3d  (N, 24, 3)  float32  SMPL joints, camera frame (x right, y down, z forward), metres, before cam_t
    joints2d  (N, 24, 2)  float32  SMPL joints in image pixels (from the crop camera)

and per run::

    fps           ()    float64  frames per second of the input
    image_size    (2,)  int64    (W, H) of the processed frames
    num_frames    ()    int64    frames processed
    timestamps    (F,)  float64  seconds of each processed frame (variable frame rate kept)
    focal_length  ()    float64  pixels, of the camera cam_t belongs to
    body_model    ()    str      body model identity (e.g. "procedural-v1:..." or "smpl:...")
    checkpoint    ()    str      checkpoint path, or "none (untrained)"
    source        ()    str      the input path
    status        ()    str      "ok", "no_person" (no rows), or "partial" (the run failed part-way; the rows
                                 written are the ones finished before the failure)
    message       ()    str      one human-readable line about the run
    version       ()    int64    format version
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from int_model.constants import NUM_BETAS, NUM_JOINTS
from int_model.files import atomic_write

RESULTS_FILE_NAME = "results.npz"
RESULTS_VERSION = 1
STATUSES = ("ok", "no_person", "partial")
UNTRAINED_CHECKPOINT = "none (untrained)"
RESULTS_FILE_MODE = 0o644

# name -> (dtype, shape after N) of the per-row arrays.
ROW_FIELDS: dict[str, tuple[type, tuple[int, ...]]] = {
    "track_id": (np.int64, ()),
    "frame": (np.int64, ()),
    "bbox": (np.float32, (4,)),
    "pose": (np.float32, (NUM_JOINTS * 3,)),
    "betas": (np.float32, (NUM_BETAS,)),
    "cam": (np.float32, (3,)),
    "cam_t": (np.float32, (3,)),
    "joints3d": (np.float32, (NUM_JOINTS, 3)),
    "joints2d": (np.float32, (NUM_JOINTS, 2)),
}
_STRING_FIELDS = ("body_model", "checkpoint", "source", "status", "message")


class ResultsError(ValueError):
    """A results file that cannot be read; the message says why."""


@dataclass(frozen=True)
class PipelineResults:
    """The content of ``results.npz`` (see the module docstring for every field's meaning and shape)."""

    track_id: np.ndarray
    frame: np.ndarray
    bbox: np.ndarray
    pose: np.ndarray
    betas: np.ndarray
    cam: np.ndarray
    cam_t: np.ndarray
    joints3d: np.ndarray
    joints2d: np.ndarray
    fps: float
    image_size: tuple[int, int]
    num_frames: int
    timestamps: np.ndarray
    focal_length: float
    body_model: str
    checkpoint: str
    source: str
    status: str
    message: str
    version: int = RESULTS_VERSION

    def __post_init__(self) -> None:
        n = len(self.track_id)
        for name, (_, shape) in ROW_FIELDS.items():
            value = getattr(self, name)
            if value.shape != (n, *shape):
                raise ResultsError(f"{name} has shape {value.shape}, expected {(n, *shape)}")
        if self.status not in STATUSES:
            raise ResultsError(f"status must be one of {STATUSES}, got {self.status!r}")

    def __len__(self) -> int:
        return len(self.track_id)

    @property
    def track_ids(self) -> np.ndarray:
        """Sorted distinct track ids."""
        return np.unique(self.track_id)

    def rows_of_track(self, track_id: int) -> np.ndarray:
        """Row indices of one track, in frame order."""
        rows = np.flatnonzero(self.track_id == track_id)
        return rows[np.argsort(self.frame[rows], kind="stable")]

    def rows_of_frame(self, frame: int) -> np.ndarray:
        """Row indices of one frame, in track order."""
        rows = np.flatnonzero(self.frame == frame)
        return rows[np.argsort(self.track_id[rows], kind="stable")]

    @classmethod
    def from_rows(cls, rows: dict[str, np.ndarray] | None, **run: object) -> PipelineResults:
        """Build from per-row arrays (any order; sorted here by frame, then track) and the per-run fields.
        ``rows`` None (or empty) gives zero rows."""
        n = 0 if not rows else len(rows["track_id"])
        arrays = {name: (np.asarray(rows[name], dtype=dtype).reshape(n, *shape) if n
                         else np.zeros((0, *shape), dtype=dtype))
                  for name, (dtype, shape) in ROW_FIELDS.items()}
        if n:
            order = np.lexsort((arrays["track_id"], arrays["frame"]))
            arrays = {name: value[order] for name, value in arrays.items()}
        return cls(**arrays, **run)  # type: ignore[arg-type]


def save_results(path: str | os.PathLike, results: PipelineResults) -> Path:
    """Write ``results`` to ``path`` (an .npz) atomically: a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {name: getattr(results, name) for name in ROW_FIELDS}
    arrays.update(
        fps=np.float64(results.fps),
        image_size=np.asarray(results.image_size, dtype=np.int64),
        num_frames=np.int64(results.num_frames),
        timestamps=np.asarray(results.timestamps, dtype=np.float64),
        focal_length=np.float64(results.focal_length),
        version=np.int64(results.version),
        **{name: np.str_(getattr(results, name)) for name in _STRING_FIELDS},
    )
    return atomic_write(path, lambda handle: np.savez(handle, **arrays), mode=RESULTS_FILE_MODE)


def load_results(path: str | os.PathLike) -> PipelineResults:
    """Read a results file (a ``results.npz`` or the run folder holding one) without pickle.

    Raises:
        ResultsError: missing file, not an npz, a missing field, or a newer format version.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE_NAME
    if not path.is_file():
        raise ResultsError(f"no results file at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            content = {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path.name} is not a readable results file ({exc})") from exc
    names = {f.name for f in fields(PipelineResults)}
    missing = sorted(names - set(content))
    if missing:
        raise ResultsError(f"{path.name} lacks {', '.join(missing)}")
    version = int(content["version"])
    if version > RESULTS_VERSION:
        raise ResultsError(f"{path.name} has format version {version}; this INT Studio reads up to {RESULTS_VERSION}")
    return PipelineResults(
        **{name: content[name] for name in ROW_FIELDS},
        fps=float(content["fps"]),
        image_size=(int(content["image_size"][0]), int(content["image_size"][1])),
        num_frames=int(content["num_frames"]),
        timestamps=content["timestamps"],
        focal_length=float(content["focal_length"]),
        version=version,
        **{name: str(content[name]) for name in _STRING_FIELDS},
    )
