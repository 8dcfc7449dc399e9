"""Following people over time: per-frame detections -> tracks with stable ids.

The tracker is an online IoU + centre-distance tracker in the SORT family, without appearance features:

1. every live track predicts its box in the current frame with a constant-velocity model (centre and size,
   velocity smoothed over time);
2. detections are matched to the predictions with the Hungarian algorithm (:func:`scipy.optimize.
   linear_sum_assignment`) on a cost that mixes IoU and the centre distance (normalised by the predicted
   box height), after gating pairs that are too far apart or too different in size;
3. a track survives up to ``max_missed_frames`` frames without a detection; when it is found again the gap is
   filled by linear interpolation (score 0 for filled frames); a longer miss ends it (a later detection of the
   same person starts a new track);
4. tracks with fewer than ``min_track_length`` detections are dropped; a track gets its id (0, 1, ...) when it
   reaches that many detections (its *confirmation*; tracks confirmed on the same frame: by first appearance,
   then left to right); each track's box centre and size are smoothed with a Savitzky-Golay filter over its
   own frames (a track is one contiguous run after filling, so smoothing never crosses a gap).

:class:`StreamingTracker` does all of this online: frame by frame it hands out each confirmed track's boxes as
soon as they are final (a smoothed box is final once half a smoothing window of later frames has been
detected, or the track has ended) and says which frames can gain no more people, so that inference can start
long before the clip has been read to its end. :func:`track` runs it over a whole clip; both give exactly the
same tracks.

Boxes are ``(x, y, w, h)`` pixels, as everywhere in the pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.signal import savgol_filter

from .types import Detection, Track

__all__ = [
    "StreamingTracker",
    "TrackRows",
    "TrackingParams",
    "appearance",
    "box_iou",
    "cxcywh_to_xywh",
    "smooth_boxes",
    "track",
    "xywh_to_cxcywh",
]

# Cost given to gated-out pairs so that the assignment never prefers them (they are rejected afterwards anyway).
_FORBIDDEN_COST = 1e6


@dataclass(frozen=True)
class TrackingParams:
    """Settings of :func:`track`.

    Attributes:
        min_score: detections scoring below this are ignored.
        min_iou: a pair is allowed when IoU(prediction, detection) reaches this ...
        max_centre_distance: ... or when the centres are at most this many predicted box heights apart.
        max_size_ratio: pairs whose heights differ by more than this factor are never matched.
        centre_weight: matching cost = (1 - IoU) + centre_weight * centre distance / predicted height
            + appearance_weight * (1 - appearance similarity) where both sides have an appearance.
        appearance_weight: see centre_weight.
        min_similarity: pairs whose appearances are less similar than this (cosine) are never matched.
        appearance_memory: weight of the newest appearance in a track's running appearance (0..1).
        new_track_max_iou: an unmatched detection overlapping a matched one of the same frame by more than this
            starts no track (a detector's second box on one person; a person hidden that much behind another
            starts their track once they come out).
        max_missed_frames: a track lives through up to this many frames without a detection (the gap is filled
            by interpolation); after a longer miss it ends.
        min_track_length: tracks with fewer detections than this are dropped. The minimum is capped at the
            clip length, so a single image or a clip shorter than this keeps its people.
        velocity_smoothing: weight of the newest measured velocity in the running velocity estimate (0..1).
        smoothing_window: Savitzky-Golay window in frames (odd; 1 switches smoothing off). Shorter tracks use
            the longest odd window that fits.
        smoothing_order: polynomial order of the Savitzky-Golay filter (kept below the window).
    """

    min_score: float = 0.0
    min_iou: float = 0.1
    max_centre_distance: float = 0.75
    max_size_ratio: float = 1.5
    centre_weight: float = 0.5
    appearance_weight: float = 3.0
    min_similarity: float = 0.5
    appearance_memory: float = 0.2
    new_track_max_iou: float = 0.3
    max_missed_frames: int = 15
    min_track_length: int = 5
    velocity_smoothing: float = 0.5
    smoothing_window: int = 7
    smoothing_order: int = 2

    def __post_init__(self) -> None:
        if self.max_missed_frames < 0:
            raise ValueError(f"max_missed_frames must be >= 0, got {self.max_missed_frames}")
        if self.min_track_length < 1:
            raise ValueError(f"min_track_length must be >= 1, got {self.min_track_length}")
        if self.smoothing_window < 1 or self.smoothing_window % 2 == 0:
            raise ValueError(f"smoothing_window must be a positive odd number, got {self.smoothing_window}")
        if not 0.0 <= self.velocity_smoothing <= 1.0:
            raise ValueError(f"velocity_smoothing must be in [0, 1], got {self.velocity_smoothing}")
        if self.max_size_ratio < 1.0:
            raise ValueError(f"max_size_ratio must be >= 1, got {self.max_size_ratio}")


# ----------------------------------------------------------------------------------------------
# Box helpers
# ----------------------------------------------------------------------------------------------


def xywh_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) (x, y, w, h) -> (..., 4) (centre x, centre y, w, h)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.concatenate([boxes[..., :2] + boxes[..., 2:] / 2, boxes[..., 2:]], axis=-1)


def cxcywh_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) (centre x, centre y, w, h) -> (..., 4) (x, y, w, h)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.concatenate([boxes[..., :2] - boxes[..., 2:] / 2, boxes[..., 2:]], axis=-1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) (x, y, w, h) boxes -> (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    a0, a1 = a[:, None, :2], a[:, None, :2] + a[:, None, 2:]
    b0, b1 = b[None, :, :2], b[None, :, :2] + b[None, :, 2:]
    inter = np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0, None).prod(-1)
    union = a[:, None, 2:].prod(-1) + b[None, :, 2:].prod(-1) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


# Appearance: hue-saturation histograms of the upper and lower half of the box's middle (clothes, mostly),
# each 8 hue x 4 saturation bins, plus 4 brightness bins (grey footage has no hue).
_HUE_BINS, _SATURATION_BINS, _VALUE_BINS = 12, 4, 8
_CORE = (0.25, 0.1, 0.75, 0.95)
_SPREAD = np.array([0.25, 0.5, 0.25])  # the part of the box (x0, y0, x1, y1 fractions) whose colours are the person's


def appearance(frame: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """A unit-length colour descriptor of the person in an (x, y, w, h) box of an (H, W, 3) uint8 RGB frame; None
    when the box holds fewer than 4 pixels per half."""
    x, y, w, h = np.asarray(box, dtype=np.float64)
    x0, x1 = int(max(x + _CORE[0] * w, 0)), int(min(x + _CORE[2] * w, frame.shape[1]))
    y0, y1 = int(max(y + _CORE[1] * h, 0)), int(min(y + _CORE[3] * h, frame.shape[0]))
    middle = (y0 + y1) // 2
    if x1 - x0 < 2 or middle - y0 < 2 or y1 - middle < 2:
        return None
    parts = []
    for top, bottom in ((y0, middle), (middle, y1)):
        hsv = cv2.cvtColor(np.ascontiguousarray(frame[top:bottom, x0:x1]), cv2.COLOR_RGB2HSV)
        colour = cv2.calcHist([hsv], [0, 1], None, [_HUE_BINS, _SATURATION_BINS], [0, 180, 0, 256])
        value = cv2.calcHist([hsv], [2], None, [_VALUE_BINS], [0, 256]).ravel()
        # Spread each bin into its neighbours (hue wraps round), so that a colour near a bin edge still matches.
        colour = 0.5 * colour + 0.25 * (np.roll(colour, 1, axis=0) + np.roll(colour, -1, axis=0))
        colour = np.apply_along_axis(lambda row: np.convolve(row, _SPREAD, mode="same"), 1, colour).ravel()
        value = np.convolve(value, _SPREAD, mode="same")
        parts += [colour / max(colour.sum(), 1.0), value / max(value.sum(), 1.0)]
    descriptor = np.sqrt(np.concatenate(parts))  # Hellinger: cosine of square roots = Bhattacharyya coefficient
    return descriptor / max(float(np.linalg.norm(descriptor)), 1e-12)


# ----------------------------------------------------------------------------------------------
# Online association
# ----------------------------------------------------------------------------------------------


@dataclass
class _LiveTrack:
    """A track being built. Boxes are (cx, cy, w, h); velocity is per frame."""

    key: int
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    appearance: np.ndarray | None = None  # running mean of its detections' descriptors (unit length)
    track_id: int | None = None  # given at confirmation
    released: int = 0  # boxes handed out so far (a prefix of the gap-filled track)

    def predict(self, frame: int) -> np.ndarray:
        """(4,) predicted (cx, cy, w, h) at ``frame`` (constant velocity; size kept positive)."""
        steps = frame - self.frames[-1]
        box = self.boxes[-1] + self.velocity * steps
        box[2:] = np.maximum(box[2:], self.boxes[-1][2:] * 0.5)
        return box

    def add(self, frame: int, box: np.ndarray, score: float, *, velocity_smoothing: float,
            seen: np.ndarray | None = None, memory: float = 0.0) -> None:
        if seen is not None:
            mixed = seen if self.appearance is None else memory * seen + (1.0 - memory) * self.appearance
            self.appearance = mixed / max(float(np.linalg.norm(mixed)), 1e-12)
        if self.frames:
            steps = frame - self.frames[-1]
            measured = (box - self.boxes[-1]) / steps
            if len(self.frames) == 1:
                self.velocity = measured
            else:
                self.velocity = velocity_smoothing * measured + (1.0 - velocity_smoothing) * self.velocity
        self.frames.append(frame)
        self.boxes.append(box)
        self.scores.append(score)


def _match_cost(predicted: np.ndarray, detected: np.ndarray, params: TrackingParams,
                similarity: np.ndarray | None = None) -> np.ndarray:
    """(T, 4) predictions and (D, 4) detections, both (cx, cy, w, h), and their (T, D) appearance similarity (NaN
    where either has none) -> (T, D) cost, _FORBIDDEN_COST where gated."""
    iou = box_iou(cxcywh_to_xywh(predicted), cxcywh_to_xywh(detected))
    height = np.maximum(predicted[:, None, 3], 1e-6)
    distance = np.linalg.norm(predicted[:, None, :2] - detected[None, :, :2], axis=-1) / height
    ratio = np.maximum(predicted[:, None, 3], 1e-6) / np.maximum(detected[None, :, 3], 1e-6)
    similar_size = (ratio <= params.max_size_ratio) & (ratio >= 1.0 / params.max_size_ratio)
    allowed = similar_size & ((iou >= params.min_iou) | (distance <= params.max_centre_distance))
    cost = (1.0 - iou) + params.centre_weight * distance
    if similarity is not None:
        known = ~np.isnan(similarity)
        allowed &= ~known | (np.nan_to_num(similarity, nan=1.0) >= params.min_similarity)
        cost = cost + params.appearance_weight * np.where(known, 1.0 - np.nan_to_num(similarity), 0.0)
    return np.where(allowed, cost, _FORBIDDEN_COST)


def _similarity(live: list[_LiveTrack], seen: Sequence[np.ndarray | None]) -> np.ndarray | None:
    """(T, D) cosine similarity of track and detection appearances, NaN where either has none; None if none has."""
    if all(t.appearance is None for t in live) or all(a is None for a in seen):
        return None
    out = np.full((len(live), len(seen)), np.nan)
    for i, t in enumerate(live):
        for j, a in enumerate(seen):
            if t.appearance is not None and a is not None:
                out[i, j] = float(t.appearance @ a)
    return out


def _associate(live: list[_LiveTrack], frame: int, detected: np.ndarray, seen: Sequence[np.ndarray | None],
               params: TrackingParams) -> tuple[list[tuple[int, int]], list[int]]:
    """Match live tracks to this frame's detections. Returns ((track index, detection index) pairs, unmatched dets)."""
    if not live or len(detected) == 0:
        return [], list(range(len(detected)))
    predicted = np.stack([t.predict(frame) for t in live])
    cost = _match_cost(predicted, detected, params, _similarity(live, seen))
    rows, cols = linear_sum_assignment(cost)
    pairs = [(int(r), int(c)) for r, c in zip(rows, cols) if cost[r, c] < _FORBIDDEN_COST]
    matched = {c for _, c in pairs}
    return pairs, [d for d in range(len(detected)) if d not in matched]


# ----------------------------------------------------------------------------------------------
# Post-processing
# ----------------------------------------------------------------------------------------------


def _fill_gaps(frames: np.ndarray, boxes: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation of (cx, cy, w, h) over missing frames; filled frames get score 0."""
    full = np.arange(frames[0], frames[-1] + 1)
    if len(full) == len(frames):
        return frames, boxes, scores
    filled = np.stack([np.interp(full, frames, boxes[:, k]) for k in range(4)], axis=1)
    full_scores = np.zeros(len(full))
    full_scores[frames - frames[0]] = scores
    return full, filled, full_scores


def smooth_boxes(boxes: np.ndarray, *, window: int, order: int) -> np.ndarray:
    """Savitzky-Golay smoothing of (K, 4) (x, y, w, h) boxes of consecutive frames, on centre and size.

    The window shrinks to the longest odd length that fits K (no smoothing below ``order + 2`` frames).
    Returns (K, 4) (x, y, w, h).
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    length = len(boxes)
    window = min(window, length if length % 2 == 1 else length - 1)
    if window <= order or window < 3:
        return boxes.copy()
    centre_size = xywh_to_cxcywh(boxes)
    smoothed = savgol_filter(centre_size, window_length=window, polyorder=order, axis=0, mode="interp")
    smoothed[:, 2:] = np.maximum(smoothed[:, 2:], 1.0)
    return cxcywh_to_xywh(smoothed)


# ----------------------------------------------------------------------------------------------
# Streaming
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackRows:
    """Final rows of one track handed out by :class:`StreamingTracker`: ``frames`` (K,) consecutive,
    ``boxes`` (K, 4) smoothed (x, y, w, h), ``scores`` (K,) (0 where a miss was filled); ``ended`` is True on
    the track's last rows."""

    track_id: int
    frames: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    ended: bool = False


class StreamingTracker:
    """The tracker of :func:`track`, one frame at a time.

    Usage::

        tracker = StreamingTracker(num_frames=len(clip))
        for frame, detections in enumerate(per_frame):
            for rows in tracker.update(frame, detections): ...   # TrackRows, final
            tracker.complete_before   # frames before this one will get no more rows
        for rows in tracker.finish(): ...

    Args:
        num_frames: the clip's length as far as it is known (caps ``min_track_length`` for short clips; the
            frames actually seen cap it again in :meth:`finish`).
        params: :class:`TrackingParams`.
    """

    def __init__(self, *, num_frames: int, params: TrackingParams = TrackingParams()) -> None:
        self.params = params
        self.num_frames = num_frames
        self._live: list[_LiveTrack] = []
        self._next_key = 0
        self._next_id = 0
        self._frame = -1  # the last frame seen

    @property
    def complete_before(self) -> int:
        """Frames before this index will get no more rows: every live track's next unreleased frame (its first
        frame while unconfirmed) lies at or after it."""
        pending = [t.frames[0] + t.released for t in self._live]
        return min(pending, default=self._frame + 1)

    def _min_length(self, frames_seen: int) -> int:
        return min(self.params.min_track_length, max(min(self.num_frames, frames_seen), 1))

    def update(self, frame: int, detections: Sequence[Detection]) -> list[TrackRows]:
        """Add one frame's detections (frames in order, none skipped); returns the rows that became final."""
        params = self.params
        if frame != self._frame + 1:
            raise ValueError(f"frames must come in order: got frame {frame} after {self._frame}")
        self._frame = frame
        kept = [d for d in detections if d.score >= params.min_score]
        for d in kept:
            if d.frame != frame:
                raise ValueError(f"detection for frame {d.frame} listed under frame {frame}")
        out: list[TrackRows] = []
        still: list[_LiveTrack] = []
        for t in self._live:  # retire tracks that have now missed too many frames
            if frame - t.frames[-1] - 1 <= params.max_missed_frames:
                still.append(t)
            else:
                out.extend(self._end(t))
        self._live = still
        detected = (xywh_to_cxcywh(np.stack([np.asarray(d.box, dtype=np.float64) for d in kept]))
                    if kept else np.zeros((0, 4)))
        seen = [d.appearance for d in kept]
        pairs, unmatched = _associate(self._live, frame, detected, seen, params)
        for ti, di in pairs:
            self._live[ti].add(frame, detected[di], float(kept[di].score), velocity_smoothing=params.velocity_smoothing,
                               seen=seen[di], memory=params.appearance_memory)
        if pairs and unmatched:
            taken = cxcywh_to_xywh(detected[[di for _, di in pairs]])
            overlap = box_iou(cxcywh_to_xywh(detected[unmatched]), taken).max(axis=1)
            unmatched = [di for di, o in zip(unmatched, overlap) if o <= params.new_track_max_iou]
        for di in sorted(unmatched, key=lambda i: detected[i, 0]):
            new = _LiveTrack(key=self._next_key)
            self._next_key += 1
            new.add(frame, detected[di], float(kept[di].score), velocity_smoothing=params.velocity_smoothing,
                    seen=seen[di], memory=params.appearance_memory)
            self._live.append(new)
        self._confirm(self._min_length(self.num_frames))
        for t in self._live:
            if t.track_id is not None:
                rows = self._release(t, final=False)
                if rows is not None:
                    out.append(rows)
        return out

    def finish(self) -> list[TrackRows]:
        """End every live track (the clip is over) and return their remaining rows."""
        self._confirm(self._min_length(self._frame + 1))
        out = [rows for t in self._live for rows in self._end(t)]
        self._live = []
        return out

    # -- internals ---------------------------------------------------------------------------------
    def _confirm(self, min_length: int) -> None:
        ready = [t for t in self._live if t.track_id is None and len(t.frames) >= min_length]
        for t in sorted(ready, key=lambda t: (t.frames[0], float(t.boxes[0][0]), t.key)):
            t.track_id = self._next_id
            self._next_id += 1

    def _end(self, t: _LiveTrack) -> list[TrackRows]:
        if t.track_id is None:
            return []  # too short: dropped
        rows = self._release(t, final=True)
        return [rows] if rows is not None else []

    def _release(self, t: _LiveTrack, *, final: bool) -> TrackRows | None:
        """The rows of ``t`` that are final now (all of them when ``final``), past those already released."""
        params = self.params
        frames, boxes, scores = _fill_gaps(np.asarray(t.frames), np.stack(t.boxes), np.asarray(t.scores))
        length = len(frames)
        if final:
            upto = length
        else:
            # A box is final when its smoothing window lies inside the frames detected so far and the track is
            # already longer than one window (shorter tracks smooth with a shorter window, known at the end).
            half = params.smoothing_window // 2
            upto = length - half if length >= params.smoothing_window else 0
        if upto <= t.released:
            return None
        # Smoothing a slice that starts half a window before the first new box gives the whole track's values.
        # (A track shorter than one window is smoothed whole, with its shorter window.)
        start = max(0, t.released - params.smoothing_window) if length >= params.smoothing_window else 0
        xywh = smooth_boxes(cxcywh_to_xywh(boxes[start:]), window=params.smoothing_window,
                            order=params.smoothing_order)
        lo, hi = t.released - start, upto - start
        rows = TrackRows(track_id=int(t.track_id), frames=frames[t.released:upto].astype(np.int64),
                         boxes=xywh[lo:hi], scores=scores[t.released:upto], ended=final)
        t.released = upto
        return rows


# ----------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------


def track(detections: Sequence[Sequence[Detection]], *, num_frames: int,
          params: TrackingParams = TrackingParams()) -> list[Track]:
    """Link per-frame detections into tracks (:class:`StreamingTracker` over the whole clip).

    Args:
        detections: ``detections[t]`` is the list of :class:`Detection` of frame ``t`` (their ``frame`` must be
            ``t``); ``len(detections) <= num_frames`` (missing trailing frames have no detections).
        num_frames: frames in the clip.
        params: :class:`TrackingParams`.

    Returns:
        Tracks by id 0, 1, ... (in order of confirmation, see the module docstring). Each has consecutive
        ``frames`` (K,), smoothed ``boxes`` (K, 4) (x, y, w, h) and ``scores`` (K,) (0 where a miss was filled).
    """
    if len(detections) > num_frames:
        raise ValueError(f"detections cover {len(detections)} frames, more than num_frames={num_frames}")
    tracker = StreamingTracker(num_frames=num_frames, params=params)
    parts: dict[int, list[TrackRows]] = {}
    for frame in range(num_frames):
        for rows in tracker.update(frame, detections[frame] if frame < len(detections) else ()):
            parts.setdefault(rows.track_id, []).append(rows)
    for rows in tracker.finish():
        parts.setdefault(rows.track_id, []).append(rows)
    return [Track(track_id=track_id, frames=np.concatenate([r.frames for r in rows]),
                  boxes=np.concatenate([r.boxes for r in rows]), scores=np.concatenate([r.scores for r in rows]))
            for track_id, rows in sorted(parts.items())]
