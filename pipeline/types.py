"""The data that flows through the inference pipeline: media, detections, tracks.

Boxes are in image pixels as ``(x, y, w, h)`` (top-left corner, width, height) throughout, the same layout as
user-supplied box files (``frame, x, y, w, h[, id]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class MediaInfo:
    """What was read from an image, image folder or video.

    Attributes:
        source: the path given by the user.
        kind: "image", "folder" or "video".
        num_frames: frames that will be processed (after limits).
        fps: frames per second (videos: the container's average rate; images and folders: the user's choice,
            default 30 for folders and 1 for a single image).
        width, height: frame size in pixels (after any downscaling for processing).
        timestamps: (num_frames,) seconds of each frame (variable frame rate videos keep their real times).
        notes: human-readable notes about limits applied or repairs made (shown to the user).
    """

    source: str
    kind: str
    num_frames: int
    fps: float
    width: int
    height: int
    timestamps: np.ndarray
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Detection:
    """One person found in one frame: box (4,) as (x, y, w, h) pixels, score in [0, 1], and optionally an
    appearance descriptor (D,) (unit length; :func:`pipeline.tracking.appearance`) the tracker uses to
    tell people apart where their boxes cross."""

    frame: int
    box: np.ndarray
    score: float
    appearance: np.ndarray | None = None


@dataclass
class Track:
    """One person followed over time.

    Attributes:
        track_id: stable id (0, 1, ...).
        frames: (K,) int frame indices, increasing, consecutive after gap filling.
        boxes: (K, 4) float (x, y, w, h) pixels, smoothed over time.
        scores: (K,) detection scores (0 for frames filled in across a short miss).
    """

    track_id: int
    frames: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.frames)
