"""One pipeline run: media -> people (detection + streaming tracking, or user boxes) -> crops -> windowed
inference -> results file, with per-frame results handed to frame sinks (overlay video, mesh files) as they are
ready.

One pass over the input, three threads:

1. **people** (a reader thread): decodes each frame, searches it for people and feeds the detections to the
   :class:`~pipeline.tracking.StreamingTracker`, which hands out each track's rows as soon as they are
   final (a few frames later) and says which frames can gain no more people; the thread cuts those rows'
   crops from the frames it still holds. User boxes replace detection and tracking.
2. **model** (the calling thread): runs the network on the rows as they come
   (:class:`~pipeline.inference.WindowedInference` with open tracks: windows run as soon as their
   frames are in, the last one when the track ends), turns predictions into image coordinates (``cam_t``,
   2D joints in pixels) and assembles each frame's people once the frame is complete and all its rows are
   decoded;
3. **output** (a sink thread): passes finished frames to the sinks (rendering and video encoding), in order.

So decoding and detection run ahead of the model and rendering behind it, and all three overlap. The results
file (:mod:`pipeline.results`) is written at the end; if the run fails part-way, the rows finished so
far are written with status "partial" and the error's message, the sinks are closed (a video written so far
stays playable), and the error is raised again. With no person found, a results file with status "no_person"
says so, and no overlay is left behind.

This module renders nothing itself: :mod:`int_model` imports neither ``viz`` nor ``training`` (docs/architecture.md);
sinks are passed in by the caller (the CLI, the app).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from int_model.body_model import BodyModel
from int_model.constants import NUM_JOINTS
from int_model.model import IntModel
from .boxes import load_boxes
from int_model.crops import (
    INFERENCE_BBOX_SCALE,
    CropBatch,
    CropSettings,
    crop_camera_to_full,
    crop_people,
    default_focal_length,
    normalise_crops,
)
from .detection import DEFAULT_DETECTOR, get_detector
from .inference import DecodedRows, InferenceSettings, WindowedInference
from .keypoints import BlazePose
from .media import MediaLimits, MediaReader, open_media
from .refine import RefineParams, refine_to_keypoints
from .results import RESULTS_FILE_NAME, PipelineResults, save_results
from .tracking import StreamingTracker, TrackingParams, TrackRows, appearance
from .types import MediaInfo, Track

#: Progress callback: ``progress(stage, done, total)`` with stage one of :data:`STAGES`.
ProgressCallback = Callable[[str, int, int], None]
STAGES = ("people", "inference", "output")


class FrameSink(Protocol):
    """Receives every processed frame in order, on the pipeline's sink thread."""

    def write(self, frame: FrameResult) -> None:
        """Handle one frame (render it, export its meshes, ...)."""

    def close(self) -> None:
        """Finish (flush a video, ...); called once, also after a failure.

        A sink may also have ``discard()``: remove what it wrote, called after :meth:`close` when the run found
        nobody (frames are held back while nobody is found, so short clips never reach a sink at all)."""


@dataclass(frozen=True)
class RunSettings:
    """Everything a run can be told.

    Attributes:
        detector: detector backend name (see :func:`pipeline.detection.list_detectors`).
        detect_every: search every n-th frame only (and the last); the tracker fills the frames between by
            interpolation, as it does for short misses (at most ``tracking.max_missed_frames + 1``).
        boxes: a user box file (JSON or CSV of frame, x, y, w, h[, id]); replaces detection and tracking.
        limits: media limits (frames, duration, resolution).
        fps: frame rate for image folders / single images (videos carry their own).
        tracking: tracker settings.
        crop_scale: square crop side over the box's longer side.
        inference: :class:`InferenceSettings` (window, stride, precision, batches).
        focal_length: pixels for ``cam_t``; None: :func:`default_focal_length` of the frame size.
        queue_frames: frames buffered between the reader, the model and the sinks.
        refine: fit each body to the 2D keypoints BlazePose finds in its box (:mod:`pipeline.refine`,
            with ``refine_params``); off by default (the analysis views show the network's own output).
        refine_params: :class:`RefineParams`.
    """

    detector: str = DEFAULT_DETECTOR
    detect_every: int = 1
    boxes: str | None = None
    limits: MediaLimits = MediaLimits()
    fps: float | None = None
    tracking: TrackingParams = TrackingParams()
    crop_scale: float = INFERENCE_BBOX_SCALE
    inference: InferenceSettings = InferenceSettings()
    focal_length: float | None = None
    queue_frames: int = 16
    refine: bool = False
    refine_params: RefineParams = RefineParams()

    def __post_init__(self) -> None:
        longest = self.tracking.max_missed_frames + 1
        if not 1 <= self.detect_every <= longest:
            raise ValueError(f"detect_every must be in [1, {longest}] (tracking.max_missed_frames + 1), "
                             f"got {self.detect_every}")
        if self.queue_frames < 1:
            raise ValueError(f"queue_frames must be positive, got {self.queue_frames}")


@dataclass(frozen=True)
class FrameResult:
    """The people of one frame, as sinks get them (n people, V vertices).

    Attributes:
        frame: frame index.
        image: (H, W, 3) uint8 RGB, the processed frame.
        track_id: (n,) int.
        bbox: (n, 4) (x, y, w, h) pixels.
        cam_t: (n, 3) translation in the full-image pinhole camera.
        joints2d: (n, 24, 2) image pixels.
        pose: (n, 72) axis-angle.
        betas: (n, 10).
        vertices: (n, V, 3) camera frame before ``cam_t``, or None when not kept.
        faces: (F, 3) mesh faces of the body model.
        focal_length: pixels; the principal point is the image centre.
    """

    frame: int
    image: np.ndarray
    track_id: np.ndarray
    bbox: np.ndarray
    cam_t: np.ndarray
    joints2d: np.ndarray
    pose: np.ndarray
    betas: np.ndarray
    vertices: np.ndarray | None
    faces: np.ndarray
    focal_length: float

    def __len__(self) -> int:
        return len(self.track_id)


@dataclass(frozen=True)
class RunOutcome:
    """What a run produced: the results (also in ``results_path``), stage timings in seconds (busy time of
    each stage on whichever thread ran it, plus ``wall``), the wall time of each pass (``people``,
    ``inference``) and the notes for the user."""

    results: PipelineResults
    results_path: Path
    timings: dict[str, float]
    notes: tuple[str, ...]
    passes: dict[str, float] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------
# Small machinery: stage timers and a producer thread that can be stopped
# ----------------------------------------------------------------------------------------------


class StageTimer:
    """Thread-safe busy time per stage (seconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.seconds[stage] += time.perf_counter() - start

    def timed(self, stage: str, items: Iterable[Any]) -> Iterator[Any]:
        """Iterate ``items`` counting the time spent producing each one to ``stage``."""
        iterator = iter(items)
        while True:
            with self.measure(stage):
                try:
                    item = next(iterator)
                except StopIteration:
                    return
            yield item


_END = object()
_POLL_S = 0.1


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Producer:
    """Runs ``produce()`` (an iterator) on a daemon thread into a bounded queue; iterate to consume.

    An exception in the thread is raised again in the consumer. :meth:`stop` makes the thread give up."""

    def __init__(self, produce: Callable[[], Iterable[Any]], *, maxsize: int, name: str) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(produce,), name=name, daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, produce: Callable[[], Iterable[Any]]) -> None:
        try:
            for item in produce():
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._put(_Failure(exc))

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class _SinkThread:
    """Passes frames to the sinks on one thread, in order; remembers the first error (later frames are
    dropped after one)."""

    def __init__(self, sinks: Sequence[FrameSink], *, maxsize: int, timer: StageTimer,
                 progress: Callable[[int], None]) -> None:
        self._sinks = list(sinks)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self._timer = timer
        self._progress = progress
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="int-sinks", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        done = 0
        while True:
            item = self._queue.get()
            if item is _END:
                break
            if self.error is not None:
                continue
            try:
                with self._timer.measure("output"):
                    for sink in self._sinks:
                        sink.write(item)
            except BaseException as exc:  # noqa: BLE001 - reported by close()
                self.error = exc
            done += 1
            self._progress(done)
        for sink in self._sinks:
            try:
                with self._timer.measure("output"):
                    sink.close()
            except BaseException as exc:  # noqa: BLE001
                self.error = self.error or exc

    def put(self, frame: FrameResult) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put(frame)

    def close(self) -> None:
        """Finish every sink (waits for the queue to drain); raises the first sink error."""
        self._queue.put(_END)
        self._thread.join()
        if self.error is not None:
            raise self.error


# ----------------------------------------------------------------------------------------------
# The stream: people found, crops cut, on the reader thread
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FrameIn:
    index: int
    image: np.ndarray


@dataclass(frozen=True)
class _RowsIn:
    """Final rows of one track: consecutive ``frames`` (K,), ``boxes`` (K, 4), normalised ``crops`` (K, 3, S, S);
    with refinement on, ``keypoints`` (K, 24, 2) image pixels at the SMPL joints and their confidence (K, 24)."""

    track_id: int
    frames: np.ndarray
    boxes: np.ndarray
    crops: torch.Tensor
    ended: bool
    keypoints: np.ndarray | None = None
    confidence: np.ndarray | None = None


@dataclass(frozen=True)
class _Complete:
    """Frames before ``before`` will get no more rows."""

    before: int


_Event = _FrameIn | _RowsIn | _Complete


def _crops_of(rows: TrackRows, images: dict[int, np.ndarray], crop: CropSettings) -> torch.Tensor:
    cut = [crop_people(images[int(f)], box[None], settings=crop)[0][0] for f, box in zip(rows.frames, rows.boxes,
                                                                                          strict=True)]
    return normalise_crops(np.stack(cut))


def _keypoints_of(estimator: BlazePose, frames: np.ndarray, boxes: np.ndarray,
                  images: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(K, 24, 2) image pixels at the SMPL joints and (K, 24) confidence (0 where BlazePose saw nobody)."""
    points, confidence = np.zeros((len(frames), NUM_JOINTS, 2)), np.zeros((len(frames), NUM_JOINTS))
    for k, (frame, box) in enumerate(zip(frames, boxes, strict=True)):
        image = images[int(frame)]
        (person,) = estimator.estimate(image, np.asarray(box)[None])
        if person is not None:
            points[k], confidence[k] = person.smpl_joints(head=True, frame_size=(image.shape[1], image.shape[0]))
    return points, confidence


def _detect_stream(reader: MediaReader, *, settings: RunSettings, crop: CropSettings, timer: StageTimer,
                   progress: ProgressCallback | None) -> Iterator[_Event]:
    """Decode, detect, track and crop, frame by frame (the reader thread). A frame's image is kept only until
    the tracker says it is complete, so memory stays bounded by the tracker's delay, not the clip."""
    info = reader.info
    detector = get_detector(settings.detector)
    tracker = StreamingTracker(num_frames=info.num_frames, params=settings.tracking)
    images: dict[int, np.ndarray] = {}
    estimator = BlazePose() if settings.refine else None

    def emit(released: list[TrackRows]) -> Iterator[_Event]:
        for rows in released:
            with timer.measure("crop"):
                crops = _crops_of(rows, images, crop)
            keypoints = confidence = None
            if estimator is not None:
                with timer.measure("keypoints"):
                    keypoints, confidence = _keypoints_of(estimator, rows.frames, rows.boxes, images)
            yield _RowsIn(rows.track_id, rows.frames, rows.boxes, crops, rows.ended, keypoints, confidence)

    for index, frame in timer.timed("decode", reader):
        images[index] = frame
        yield _FrameIn(index, frame)
        searched = index % settings.detect_every == 0 or index == info.num_frames - 1
        with timer.measure("detect"):
            found = detector.detect(frame, frame_index=index) if searched else []
        with timer.measure("track"):
            found = [replace(d, appearance=appearance(frame, d.box)) for d in found]
            released = tracker.update(index, found)
        yield from emit(released)
        before = tracker.complete_before
        for done in [k for k in images if k < before]:
            del images[done]
        yield _Complete(before)
        if progress is not None:
            progress("people", index + 1, info.num_frames)
    with timer.measure("track"):
        released = tracker.finish()
    yield from emit(released)
    yield _Complete(max(images, default=-1) + 1)


def _boxes_stream(reader: MediaReader, tracks: Sequence[Track], *, crop: CropSettings, timer: StageTimer,
                  refine: bool = False) -> Iterator[_Event]:
    """The same events for tracks known beforehand (user boxes)."""
    estimator = BlazePose() if refine else None
    by_frame: dict[int, list[tuple[Track, int]]] = defaultdict(list)
    for t in tracks:
        for i, frame in enumerate(t.frames):
            by_frame[int(frame)].append((t, i))
    for index, frame in timer.timed("decode", reader):
        yield _FrameIn(index, frame)
        for t, i in by_frame.get(index, []):
            with timer.measure("crop"):
                crops = normalise_crops(crop_people(frame, np.asarray(t.boxes[i])[None], settings=crop)[0])
            keypoints = confidence = None
            if estimator is not None:
                with timer.measure("keypoints"):
                    keypoints, confidence = _keypoints_of(estimator, t.frames[i:i + 1], np.asarray(t.boxes[i:i + 1]),
                                                          {index: frame})
            yield _RowsIn(t.track_id, t.frames[i:i + 1], np.asarray(t.boxes[i:i + 1]), crops, i == len(t) - 1,
                          keypoints, confidence)
        yield _Complete(index + 1)


# ----------------------------------------------------------------------------------------------
# The model side: rows in, frames out
# ----------------------------------------------------------------------------------------------


@dataclass
class _PendingFrame:
    image: np.ndarray
    expected: int | None = None  # known once the frame is complete
    rows: list[tuple[int, dict[str, np.ndarray]]] = field(default_factory=list)  # (track id, row fields)


@dataclass
class _TrackSoFar:
    """A track's rows as they arrive: frame and box of each row index."""

    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    keypoints: list[np.ndarray] = field(default_factory=list)  # (24, 2) image pixels, with refinement on
    confidence: list[np.ndarray] = field(default_factory=list)  # (24,)

    def __len__(self) -> int:
        return len(self.frames)


def _refine_rows(decoded: DecodedRows, keypoints: np.ndarray, confidence: np.ndarray, *, body_model: BodyModel,
                 params: RefineParams) -> DecodedRows:
    """Decoded rows fitted to their keypoints ((N, 24, 2) normalised crop coordinates, (N, 24) confidence)."""
    fit = refine_to_keypoints(body_model, torch.from_numpy(decoded.rotmat), torch.from_numpy(decoded.betas),
                              torch.from_numpy(decoded.cam), torch.from_numpy(keypoints), torch.from_numpy(confidence),
                              params=params)

    def numpy(t: torch.Tensor) -> np.ndarray:
        return t.detach().float().cpu().numpy()

    return replace(decoded, rotmat=numpy(fit.rotmat), pose=numpy(fit.pose), cam=numpy(fit.cam),
                   joints3d=numpy(fit.joints3d), joints2d=numpy(fit.joints2d),
                   vertices=None if decoded.vertices is None else numpy(fit.vertices))


class _RowCollector:
    """Turns decoded rows into result rows (image coordinates) and frames into FrameResults, in order."""

    def __init__(self, *, crop: CropSettings, image_size: tuple[int, int], focal_length: float,
                 faces: np.ndarray, refiner: Callable[[DecodedRows, np.ndarray, np.ndarray], DecodedRows] | None = None
                 ) -> None:
        self.refiner = refiner
        self.tracks: dict[int, _TrackSoFar] = defaultdict(_TrackSoFar)
        self.crop = crop
        self.image_size = image_size
        self.focal_length = focal_length
        self.faces = faces
        self.rows: dict[str, list[np.ndarray]] = defaultdict(list)
        self.pending: dict[int, _PendingFrame] = {}
        self.counts: dict[int, int] = defaultdict(int)  # rows announced per frame
        self.next_frame = 0

    def add_track_rows(self, track_id: int, frames: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray | None = None,
                       confidence: np.ndarray | None = None) -> None:
        track = self.tracks[track_id]
        for k, (frame, box) in enumerate(zip(frames, boxes, strict=True)):
            track.frames.append(int(frame))
            track.boxes.append(np.asarray(box, dtype=np.float64))
            if keypoints is not None and confidence is not None:
                track.keypoints.append(keypoints[k])
                track.confidence.append(confidence[k])
            self.counts[int(frame)] += 1

    def complete(self, before: int) -> None:
        for index in range(self.next_frame, before):
            pending = self.pending.get(index)
            if pending is not None and pending.expected is None:
                pending.expected = self.counts.pop(index, 0)

    def add_rows(self, decoded: DecodedRows) -> None:
        tracks = [self.tracks[int(t)] for t in decoded.track_id]
        frames = np.array([t.frames[i] for t, i in zip(tracks, decoded.index, strict=True)], dtype=np.int64)
        boxes = np.stack([t.boxes[i] for t, i in zip(tracks, decoded.index, strict=True)]).astype(np.float64)
        squares = CropBatch.from_boxes(boxes, settings=self.crop)
        if self.refiner is not None and all(t.keypoints for t in tracks):
            keypoints = np.stack([t.keypoints[i] for t, i in zip(tracks, decoded.index, strict=True)])
            confidence = np.stack([t.confidence[i] for t, i in zip(tracks, decoded.index, strict=True)])
            decoded = self.refiner(decoded, squares.to_crop(keypoints), confidence)
        joints2d = squares.to_image(decoded.joints2d)
        cam_t = crop_camera_to_full(decoded.cam, squares.centres, squares.sides, image_size=self.image_size,
                                    focal_length=self.focal_length)
        fields_ = dict(track_id=decoded.track_id, frame=frames, bbox=boxes, pose=decoded.pose, betas=decoded.betas,
                       cam=decoded.cam, cam_t=cam_t, joints3d=decoded.joints3d, joints2d=joints2d)
        for name, value in fields_.items():
            self.rows[name].append(np.asarray(value))
        for n, frame in enumerate(frames):
            row = {name: value[n] for name, value in fields_.items()}
            if decoded.vertices is not None:
                row["vertices"] = decoded.vertices[n]
            self.pending[int(frame)].rows.append((int(decoded.track_id[n]), row))

    def add_frame(self, index: int, image: np.ndarray) -> None:
        self.pending[index] = _PendingFrame(image=image)

    def ready_frames(self) -> Iterator[FrameResult]:
        """Frames that are complete and whose rows are all decoded, in order, removed from the buffer."""
        while self.next_frame in self.pending:
            pending = self.pending[self.next_frame]
            if pending.expected is None or len(pending.rows) < pending.expected:
                return
            del self.pending[self.next_frame]
            yield self._frame_result(self.next_frame, pending)
            self.next_frame += 1

    def _frame_result(self, index: int, pending: _PendingFrame) -> FrameResult:
        rows = [row for _, row in sorted(pending.rows, key=lambda item: item[0])]
        n = len(rows)

        def stack(name: str, shape: tuple[int, ...]) -> np.ndarray:
            return np.stack([r[name] for r in rows]) if n else np.zeros((0, *shape))

        vertices = np.stack([r["vertices"] for r in rows]) if n and "vertices" in rows[0] else None
        return FrameResult(
            frame=index, image=pending.image, track_id=stack("track_id", ()).astype(np.int64),
            bbox=stack("bbox", (4,)), cam_t=stack("cam_t", (3,)), joints2d=stack("joints2d", (24, 2)),
            pose=stack("pose", (72,)), betas=stack("betas", (10,)), vertices=vertices, faces=self.faces,
            focal_length=self.focal_length,
        )

    def arrays(self) -> dict[str, np.ndarray] | None:
        if not self.rows:
            return None
        return {name: np.concatenate(parts) for name, parts in self.rows.items()}


def _latency_frames(settings: RunSettings) -> int:
    """Frames a row may normally wait before it is final: one window, one encode batch, the queue."""
    return settings.inference.window + settings.inference.encode_batch + settings.queue_frames


class _LazySinks:
    """Creates the sinks only once somebody was found: frames finished before that are held (up to ``hold`` of
    them; beyond that the sinks are made anyway, and a sink's optional ``discard()`` removes its output if the
    run ends without a person)."""

    def __init__(self, make: Callable[[], Sequence[FrameSink]], *, settings: RunSettings, timer: StageTimer,
                 progress: Callable[[int], None], hold: int) -> None:
        self._make, self._settings, self._timer, self._progress = make, settings, timer, progress
        self._hold = hold
        self._started = False
        self.held: list[FrameResult] = []
        self.thread: _SinkThread | None = None
        self.sinks: list[FrameSink] = []

    def _start(self) -> None:
        self._started = True
        self.sinks = list(self._make())
        if self.sinks:
            self.thread = _SinkThread(self.sinks, maxsize=self._settings.queue_frames, timer=self._timer,
                                      progress=self._progress)
        held, self.held = self.held, []
        for frame in held if self.thread is not None else ():
            self.thread.put(frame)

    def put(self, frame: FrameResult, *, people_seen: bool) -> None:
        if not self._started:
            if not people_seen and len(self.held) < self._hold:
                self.held.append(frame)
                return
            self._start()
        if self.thread is not None:
            self.thread.put(frame)

    def close(self, *, people_found: bool) -> None:
        """Finish the sinks (raises the first sink error); without people, discard what they wrote."""
        if people_found and not self._started:
            self._start()
        self.held = []
        if self.thread is not None:
            self.thread.close()
        if not people_found:
            for sink in self.sinks:
                discard = getattr(sink, "discard", None)
                if discard is not None:
                    discard()

    def abort(self) -> None:
        """Close the sinks after a failure (what they wrote so far stays)."""
        self.held = []
        if self.thread is not None:
            try:
                self.thread.close()
            except BaseException:  # noqa: BLE001 - the first error is the one to report
                pass


SinkFactory = Callable[[MediaInfo], Sequence[FrameSink]]


def run_pipeline(source: str | os.PathLike | MediaReader, out_dir: str | os.PathLike, *, model: IntModel,
                 checkpoint: str, settings: RunSettings = RunSettings(), sinks: Sequence[FrameSink] | SinkFactory = (),
                 progress: ProgressCallback | None = None) -> RunOutcome:
    """Run the whole pipeline on ``source`` and write ``out_dir/results.npz``.

    One pass over the input: a reader thread decodes each frame, finds its people (detector and streaming
    tracker, or the user's boxes) and cuts the crops of the rows the tracker has made final; the calling
    thread runs the network on them as they come; a sink thread renders and encodes finished frames. So
    detection, the model and the output overlap instead of queuing behind each other.

    Args:
        source: image, image folder or video, or a reader already opened with :func:`open_media` (its limits
            apply; ``settings.limits`` and ``settings.fps`` are then not used).
        out_dir: output folder (created).
        model: the network in eval mode, on the device to use.
        checkpoint: what to record as the checkpoint (its path, or ``UNTRAINED_CHECKPOINT``).
        settings: :class:`RunSettings`.
        sinks: frame sinks (overlay video, mesh export), fed in frame order on a separate thread; or a function
            ``sinks(info)`` that makes them once the first person is found (or after a few frames without
            anyone; a sink's optional ``discard()`` then removes its output if the run finds nobody).
        progress: ``progress(stage, done, total)``.

    Raises:
        MediaError: the input cannot be read (nothing is written).
        ValueError / DetectorUnavailable: bad settings (nothing is written).
        Any error after the input was accepted is raised again after partial results were written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / RESULTS_FILE_NAME
    timer = StageTimer()
    start = time.perf_counter()
    if isinstance(source, MediaReader):
        reader = source
    else:
        with timer.measure("open"):
            reader = open_media(source, limits=settings.limits, fps=settings.fps)
    info = reader.info
    crop = CropSettings(size=model.img_size, scale=settings.crop_scale)
    notes = list(info.notes)
    produce = _people_source(reader, settings=settings, crop=crop, timer=timer, progress=progress, notes=notes)

    image_size = (info.width, info.height)
    focal_length = settings.focal_length or default_focal_length(*image_size)
    body_model = model.body_model
    run_fields: dict[str, Any] = dict(
        fps=float(info.fps), image_size=image_size, num_frames=int(info.num_frames),
        timestamps=np.asarray(info.timestamps, dtype=np.float64), focal_length=float(focal_length),
        body_model=body_model.identity, checkpoint=checkpoint, source=str(info.source),
    )
    engine = WindowedInference(model, settings=settings.inference)
    refiner = partial(_refine_rows, body_model=body_model, params=settings.refine_params) if settings.refine else None
    collector = _RowCollector(crop=crop, image_size=image_size, focal_length=focal_length, faces=body_model.faces,
                              refiner=refiner)

    def finish(rows: dict[str, np.ndarray] | None, status: str, message: str) -> RunOutcome:
        info_now = reader.info  # a damaged video found only while decoding updates its info
        fields_ = {**run_fields, "num_frames": int(info_now.num_frames),
                   "timestamps": np.asarray(info_now.timestamps, dtype=np.float64)}
        results = PipelineResults.from_rows(rows, **fields_, status=status, message=message)
        save_results(results_path, results)
        timings = dict(timer.seconds)
        timings["wall"] = time.perf_counter() - start
        return RunOutcome(results=results, results_path=results_path, timings=timings, notes=tuple(notes),
                          passes={"stream": timings["wall"]})

    def output_progress(done: int) -> None:
        if progress is not None:
            progress("output", done, reader.info.num_frames)

    def make_sinks() -> Sequence[FrameSink]:
        return list(sinks(reader.info)) if callable(sinks) else list(sinks)

    output = _LazySinks(make_sinks, settings=settings, timer=timer, progress=output_progress,
                        hold=2 * settings.queue_frames)
    delivery = _Delivery(collector, output, total=lambda: reader.info.num_frames, progress=progress)
    producer = _Producer(produce, maxsize=settings.queue_frames, name="int-people")
    try:
        try:
            _consume(producer, collector=collector, engine=engine, deliver=delivery, settings=settings, timer=timer)
            with timer.measure("model"):
                decoded = engine.finish()
            collector.complete(reader.info.num_frames)
            delivery(decoded)
        finally:
            producer.stop()
        output.close(people_found=bool(collector.tracks))
    except BaseException as exc:
        output.abort()
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        finish(collector.arrays(), "partial",
               f"the run stopped after {delivery.frames_done} of {reader.info.num_frames} frames: {reason}")
        raise
    notes.extend(note for note in reader.info.notes if note not in notes)
    if not collector.tracks:
        return finish(None, "no_person", _nobody_message(settings, reader.info))
    person_frames = sum(len(t) for t in collector.tracks.values())
    message = (f"{len(collector.tracks)} track(s), {person_frames} person-frames in {reader.info.num_frames} "
               f"frame(s) of {Path(info.source).name}")
    return finish(collector.arrays(), "ok", message)


def _people_source(reader: MediaReader, *, settings: RunSettings, crop: CropSettings, timer: StageTimer,
                   progress: ProgressCallback | None, notes: list[str]) -> Callable[[], Iterable[_Event]]:
    """The producer of frame and crop events: the user's boxes (their notes go to ``notes``) or the detector.

    Checks the boxes file and the detector here, so that a bad one fails before anything is written.
    """
    info = reader.info
    if settings.boxes is not None:
        with timer.measure("track"):
            boxes = load_boxes(settings.boxes, num_frames=info.num_frames, width=info.width, height=info.height,
                               scale=reader.scale, params=settings.tracking)
        notes.extend(boxes.notes)
        known = [t for t in boxes.tracks if len(t)]
        return lambda: _boxes_stream(reader, known, crop=crop, timer=timer, refine=settings.refine)
    get_detector(settings.detector)  # an unknown or unavailable detector fails before anything is written
    return lambda: _detect_stream(reader, settings=settings, crop=crop, timer=timer, progress=progress)


class _Delivery:
    """Hands decoded rows to the collector and every frame it completes to the sinks, counting the frames."""

    def __init__(self, collector: _RowCollector, output: _LazySinks, *, total: Callable[[], int],
                 progress: ProgressCallback | None) -> None:
        self._collector, self._output, self._total, self._progress = collector, output, total, progress
        self.frames_done = 0

    def __call__(self, decoded: list[DecodedRows]) -> None:
        for part in decoded:
            self._collector.add_rows(part)
        for frame in self._collector.ready_frames():
            self.frames_done += 1
            self._output.put(frame, people_seen=bool(self._collector.tracks))
            if self._progress is not None:
                self._progress("inference", self.frames_done, self._total())


def _consume(events: Iterable[_Event], *, collector: _RowCollector, engine: WindowedInference,
             deliver: _Delivery, settings: RunSettings, timer: StageTimer) -> None:
    """Feed the producer's events through the network as they come: frames to the collector, crops to the model,
    and each "frames before N are complete" mark to the output (flushing a partial batch if rows wait too long)."""
    for event in events:
        if isinstance(event, _FrameIn):
            collector.add_frame(event.index, event.image)
            continue
        if isinstance(event, _RowsIn):
            collector.add_track_rows(event.track_id, event.frames, event.boxes, event.keypoints, event.confidence)
            with timer.measure("model"):
                decoded = engine.add([event.track_id] * len(event.frames), event.crops)
                if event.ended:
                    engine.end_track(event.track_id)
            deliver(decoded)
            continue
        collector.complete(event.before)
        decoded = []
        if len(collector.pending) > _latency_frames(settings):
            with timer.measure("model"):
                decoded = engine.flush()  # few people: do not let a partial batch hold frames back
        deliver(decoded)


def _nobody_message(settings: RunSettings, info: MediaInfo) -> str:
    where = "in the boxes file" if settings.boxes else f"by the {settings.detector!r} detector"
    return (f"no person found in {info.num_frames} frame(s) of {Path(info.source).name} {where}; "
            f"try another detector (--detector), a boxes file (--boxes), or a clip where people are "
            f"fully visible")
