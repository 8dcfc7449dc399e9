"""One pipeline run: media -> people (detection + tracking, or user boxes) -> crops -> windowed inference ->
results file, with per-frame results handed to frame sinks (overlay video, mesh files) as they are ready.

Two passes over the input:

1. **people**: frames are decoded (a reader thread) and searched for people (the calling thread); the
   tracker links the detections into tracks. User boxes skip this pass.
2. **inference**: a reader thread decodes frames again and cuts the tracks' crops; the calling thread runs
   the network (:class:`~int_model.pipeline.inference.WindowedInference`), turns predictions into image
   coordinates (``cam_t``, 2D joints in pixels) and assembles each frame's people as soon as all its rows are
   final; a sink thread passes finished frames to the sinks (rendering and video encoding), in frame order.
   Decoding and cropping run ahead of the model and rendering behind it, so the stages overlap.

The results file (:mod:`int_model.pipeline.results`) is written at the end; if the run fails part-way, the
rows finished so far are written with status "partial" and the error's message, the sinks are closed (a
video written so far stays playable), and the error is raised again. With no person found, a results file
with status "no_person" says so.

This module renders nothing itself: :mod:`int_model` imports neither ``viz`` nor ``training`` (DESIGN §2);
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from ..model import IntModel
from .boxes import load_boxes
from .crops import (
    INFERENCE_BBOX_SCALE,
    CropSettings,
    CropTransform,
    crop_camera_to_full,
    crop_people,
    default_focal_length,
    normalise_crops,
)
from .detection import DEFAULT_DETECTOR, get_detector
from .inference import DecodedRows, InferenceSettings, WindowedInference
from .media import MediaLimits, MediaReader, open_media
from .results import RESULTS_FILE_NAME, PipelineResults, save_results
from .tracking import TrackingParams, track
from .types import Detection, MediaInfo, Track

#: Progress callback: ``progress(stage, done, total)`` with stage one of :data:`STAGES`.
ProgressCallback = Callable[[str, int, int], None]
STAGES = ("people", "inference", "output")


class FrameSink(Protocol):
    """Receives every processed frame in order, on the pipeline's sink thread."""

    def write(self, frame: FrameResult) -> None:
        """Handle one frame (render it, export its meshes, ...)."""

    def close(self) -> None:
        """Finish (flush a video, ...); called once, also after a failure."""


@dataclass(frozen=True)
class RunSettings:
    """Everything a run can be told.

    Attributes:
        detector: detector backend name (see :func:`int_model.pipeline.detection.list_detectors`).
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


class PipelineError(RuntimeError):
    """A failure inside the run after the input was accepted; partial results were written."""


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
# Pass 1: people
# ----------------------------------------------------------------------------------------------


def find_people(reader: MediaReader, *, settings: RunSettings, timer: StageTimer,
                progress: ProgressCallback | None = None) -> tuple[list[Track], tuple[str, ...]]:
    """Tracks of the people in ``reader``'s frames, and notes: user boxes if given, else detection + tracking."""
    info = reader.info
    if settings.boxes is not None:
        with timer.measure("track"):
            boxes = load_boxes(settings.boxes, num_frames=info.num_frames, width=info.width, height=info.height,
                               scale=reader.scale, params=settings.tracking)
        return boxes.tracks, boxes.notes
    detector = get_detector(settings.detector)
    detections: list[list[Detection]] = []
    producer = _Producer(lambda: timer.timed("decode", reader), maxsize=settings.queue_frames, name="int-decode-1")
    try:
        for index, frame in producer:
            searched = index % settings.detect_every == 0 or index == info.num_frames - 1
            with timer.measure("detect"):
                detections.append(detector.detect(frame, frame_index=index) if searched else [])
            if progress is not None:
                progress("people", index + 1, info.num_frames)
    finally:
        producer.stop()
    with timer.measure("track"):
        return track(detections, num_frames=len(detections), params=settings.tracking), ()


# ----------------------------------------------------------------------------------------------
# Pass 2: inference
# ----------------------------------------------------------------------------------------------


@dataclass
class _PendingFrame:
    image: np.ndarray
    expected: int
    rows: list[tuple[int, dict[str, np.ndarray]]] = field(default_factory=list)  # (track id, row fields)


class _RowCollector:
    """Turns decoded rows into result rows (image coordinates) and frames into FrameResults, in order."""

    def __init__(self, tracks: Sequence[Track], *, crop: CropSettings, image_size: tuple[int, int],
                 focal_length: float, faces: np.ndarray) -> None:
        self.tracks = {t.track_id: t for t in tracks}
        self.crop = crop
        self.image_size = image_size
        self.focal_length = focal_length
        self.faces = faces
        self.rows: dict[str, list[np.ndarray]] = defaultdict(list)
        self.pending: dict[int, _PendingFrame] = {}
        self.next_frame = 0

    def add_rows(self, decoded: DecodedRows) -> None:
        tracks = [self.tracks[int(t)] for t in decoded.track_id]
        frames = np.array([t.frames[i] for t, i in zip(tracks, decoded.index, strict=True)], dtype=np.int64)
        boxes = np.stack([t.boxes[i] for t, i in zip(tracks, decoded.index, strict=True)]).astype(np.float64)
        transforms = [CropTransform.from_box(b, settings=self.crop) for b in boxes]
        centres = np.array([t.centre for t in transforms])
        sides = np.array([t.side for t in transforms])
        joints2d = centres[:, None] + decoded.joints2d.astype(np.float64) * (sides[:, None, None] / 2.0)
        cam_t = crop_camera_to_full(decoded.cam, centres, sides, image_size=self.image_size,
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

    def add_frame(self, index: int, image: np.ndarray, expected: int) -> None:
        self.pending[index] = _PendingFrame(image=image, expected=expected)

    def ready_frames(self) -> Iterator[FrameResult]:
        """Frames whose rows are all final, in order, removed from the buffer."""
        while self.next_frame in self.pending:
            pending = self.pending[self.next_frame]
            if len(pending.rows) < pending.expected:
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


def _crop_stream(reader: MediaReader, by_frame: dict[int, list[tuple[int, np.ndarray]]], crop: CropSettings,
                 timer: StageTimer) -> Iterator[tuple[int, np.ndarray, list[int], torch.Tensor | None]]:
    """(index, frame, track ids, normalised crops (n, 3, S, S)) for every frame, on the reader thread."""
    for index, frame in timer.timed("decode", reader):
        people = by_frame.get(index, [])
        with timer.measure("crop"):
            if people:
                crops, _ = crop_people(frame, np.stack([box for _, box in people]), settings=crop)
                tensor = normalise_crops(crops)
            else:
                tensor = None
        yield index, frame, [track_id for track_id, _ in people], tensor


SinkFactory = Callable[[MediaInfo], Sequence[FrameSink]]


def run_pipeline(source: str | os.PathLike | MediaReader, out_dir: str | os.PathLike, *, model: IntModel,
                 checkpoint: str, settings: RunSettings = RunSettings(), sinks: Sequence[FrameSink] | SinkFactory = (),
                 progress: ProgressCallback | None = None) -> RunOutcome:
    """Run the whole pipeline on ``source`` and write ``out_dir/results.npz``.

    Args:
        source: image, image folder or video, or a reader already opened with :func:`open_media` (its limits
            apply; ``settings.limits`` and ``settings.fps`` are then not used).
        out_dir: output folder (created).
        model: the network in eval mode, on the device to use.
        checkpoint: what to record as the checkpoint (its path, or ``UNTRAINED_CHECKPOINT``).
        settings: :class:`RunSettings`.
        sinks: frame sinks (overlay video, mesh export), fed in frame order on a separate thread; or a function
            ``sinks(info)`` that makes them once the input is known (its frame rate, size), after the people
            pass and only when there are people.
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
    name = Path(info.source).name
    tracks, people_notes = find_people(reader, settings=settings, timer=timer, progress=progress)
    passes = {"people": time.perf_counter() - start}
    info = reader.info  # a damaged video found only while decoding updates its info
    tracks = [t for t in tracks if len(t)]
    image_size = (info.width, info.height)
    focal_length = settings.focal_length or default_focal_length(*image_size)
    body_model = model.body_model
    run_fields: dict[str, Any] = dict(
        fps=float(info.fps), image_size=image_size, num_frames=int(info.num_frames),
        timestamps=np.asarray(info.timestamps, dtype=np.float64), focal_length=float(focal_length),
        body_model=body_model.identity, checkpoint=checkpoint, source=str(info.source),
    )
    notes = list(info.notes) + list(people_notes)

    def finish(rows: dict[str, np.ndarray] | None, status: str, message: str) -> RunOutcome:
        results = PipelineResults.from_rows(rows, **run_fields, status=status, message=message)
        save_results(results_path, results)
        timings = dict(timer.seconds)
        timings["wall"] = time.perf_counter() - start
        if tracks:
            passes["inference"] = timings["wall"] - passes["people"]
        return RunOutcome(results=results, results_path=results_path, timings=timings, notes=tuple(notes),
                          passes=passes)

    if not tracks:
        where = "in the boxes file" if settings.boxes else f"by the {settings.detector!r} detector"
        message = (f"no person found in {info.num_frames} frame(s) of {name} {where}; "
                   f"try another detector (--detector), a boxes file (--boxes), or a clip where people are "
                   f"fully visible")
        return finish(None, "no_person", message)

    crop = CropSettings(size=model.img_size, scale=settings.crop_scale)
    by_frame: dict[int, list[tuple[int, np.ndarray]]] = defaultdict(list)
    for t in tracks:
        for frame, box in zip(t.frames, t.boxes, strict=True):
            by_frame[int(frame)].append((t.track_id, np.asarray(box, dtype=np.float64)))
    engine = WindowedInference(model, track_lengths={t.track_id: len(t) for t in tracks}, settings=settings.inference)
    collector = _RowCollector(tracks, crop=crop, image_size=image_size, focal_length=focal_length,
                              faces=body_model.faces)
    total = info.num_frames
    if callable(sinks):
        sinks = list(sinks(info))

    def output_progress(done: int) -> None:
        if progress is not None:
            progress("output", done, total)

    sink_thread = (_SinkThread(sinks, maxsize=settings.queue_frames, timer=timer, progress=output_progress)
                   if sinks else None)
    producer = _Producer(lambda: _crop_stream(reader, by_frame, crop, timer), maxsize=settings.queue_frames,
                         name="int-decode-2")
    frames_done = 0

    def deliver(decoded: list[DecodedRows]) -> None:
        nonlocal frames_done
        for part in decoded:
            collector.add_rows(part)
        for frame in collector.ready_frames():
            frames_done += 1
            if sink_thread is not None:
                sink_thread.put(frame)
            if progress is not None:
                progress("inference", frames_done, total)

    try:
        try:
            for index, image, track_ids, crops in producer:
                collector.add_frame(index, image, expected=len(track_ids))
                with timer.measure("model"):
                    decoded = engine.add(track_ids, crops) if track_ids else []
                    if not decoded and len(collector.pending) > _latency_frames(settings):
                        decoded = engine.flush()  # few people: do not let a partial batch hold frames back
                deliver(decoded)
            with timer.measure("model"):
                decoded = engine.finish()
            deliver(decoded)
        finally:
            producer.stop()
        if sink_thread is not None:
            sink_thread.close()
    except BaseException as exc:
        if sink_thread is not None:
            try:
                sink_thread.close()
            except BaseException:  # noqa: BLE001 - the first error is the one to report
                pass
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        finish(collector.arrays(), "partial", f"the run stopped after {frames_done} of {total} frames: {reason}")
        raise
    notes.extend(note for note in reader.info.notes if note not in notes)
    tracks_found = len(tracks)
    message = (f"{tracks_found} track(s), {sum(len(t) for t in tracks)} person-frames in {info.num_frames} "
               f"frame(s) of {name}")
    return finish(collector.arrays(), "ok", message)
