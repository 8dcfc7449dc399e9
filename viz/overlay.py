"""Overlays of a pipeline run: meshes drawn over the frames (one colour per track), an optional side view,
streamed into a video that Chromium plays; and per-frame mesh files.

Each frame's people are rendered in the full image's pinhole camera (``focal_length``, principal point at
the image centre) with their ``cam_t`` (see :mod:`int_model.crops`), one soft colour per track id
(:func:`viz.renderer.soft_colour`, from ``TRACK_PALETTE``), with the track id written at the box corner.

Side view: the frame's meshes seen from the camera's right (:func:`viz.renderer.side_view_meshes`) on a
panel to the right of the frame. ``cam_t`` uses a long focal length, which puts people tens of metres away
and exaggerates their distances in depth; the panel lays people out as a normal lens would see them
(depth scaled by ``image diagonal / focal_length``, see :data:`SIDE_VIEW_FOCAL_PER_DIAGONAL`): the depth
order and ratios are kept.

Video: H.264 (PyAV's libx264, yuv420p, even frame sizes, ``+faststart`` so it streams) in an .mp4 when this
FFmpeg build has libx264, else VP9 (libvpx-vp9, yuv420p) in a .webm; Chromium plays both
(:func:`choose_video_codec` says which). Frames are encoded as they arrive (:class:`VideoWriter`), never
held all at once.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from int_model.constants import TRACK_PALETTE
from pipeline.run import FrameResult
from viz.export import export_meshes
from viz.renderer import PinholeCamera, Renderer, SceneMesh, overlay_meshes, side_view_meshes, soft_colour

__all__ = [
    "VIDEO_CODECS",
    "MeshSequenceSink",
    "OverlaySettings",
    "OverlayVideoSink",
    "VideoCodec",
    "VideoWriter",
    "choose_video_codec",
    "render_overlay_frame",
]


@dataclass(frozen=True)
class VideoCodec:
    """An encoder Chromium can play: FFmpeg encoder name, file suffix, pixel format, encoder options."""

    name: str
    suffix: str
    pixel_format: str
    options: dict[str, str] = field(default_factory=dict)
    container_options: dict[str, str] = field(default_factory=dict)


#: Preferred first. CRF values give visually clean overlays at modest sizes.
VIDEO_CODECS: tuple[VideoCodec, ...] = (
    VideoCodec("libx264", ".mp4", "yuv420p", {"crf": "20", "preset": "veryfast"}, {"movflags": "+faststart"}),
    VideoCodec("libvpx-vp9", ".webm", "yuv420p", {"crf": "32", "b": "0", "deadline": "realtime", "cpu-used": "8"}),
)
#: Frame rates are written as fractions with at most this denominator (29.97 = 30000/1001).
FPS_MAX_DENOMINATOR = 1001
#: Side view depth: people are laid out as seen with a focal length of this many image diagonals.
SIDE_VIEW_FOCAL_PER_DIAGONAL = 1.0
#: Side view panel background (RGB).
SIDE_VIEW_BACKGROUND = (245, 245, 245)
#: Track labels: font scale per pixel of image height, its minimum, and the gap to the box in pixels.
LABEL_SCALE_PER_PIXEL = 1.0 / 600.0
LABEL_MIN_SCALE = 0.45
LABEL_MARGIN_PX = 3
#: Track labels: stroke width per unit of font scale, and a dark outline this much wider for contrast.
LABEL_THICKNESS_PER_SCALE = 2.0
LABEL_OUTLINE_PX = 2
LABEL_OUTLINE_COLOUR = (0, 0, 0)


def choose_video_codec(preferred: tuple[VideoCodec, ...] = VIDEO_CODECS) -> VideoCodec:
    """The first codec of ``preferred`` this PyAV/FFmpeg build can encode with."""
    for codec in preferred:
        try:
            av.codec.Codec(codec.name, "w")
        except (av.error.FFmpegError, ValueError):  # unknown encoder in this build
            continue
        return codec
    raise RuntimeError(f"none of the video encoders {[c.name for c in preferred]} is in this FFmpeg build")


class VideoWriter:
    """Streams RGB frames into a video file (frames padded to even sizes, as yuv420p needs).

    Args:
        path: output path; its suffix is replaced by the codec's (.mp4 or .webm): see :attr:`path`.
        fps: frames per second.
        codec: a :class:`VideoCodec`; default :func:`choose_video_codec`.

    The size is fixed by the first frame. Use as a context manager or call :meth:`close`; a writer closed
    after a failure still leaves a playable file with the frames written so far.
    """

    def __init__(self, path: str | os.PathLike, *, fps: float, codec: VideoCodec | None = None) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.codec = codec or choose_video_codec()
        self.path = Path(path).with_suffix(self.codec.suffix)
        self.fps = Fraction(fps).limit_denominator(FPS_MAX_DENOMINATOR)
        self.frames_written = 0
        self._container = None
        self._stream = None
        self._size: tuple[int, int] | None = None  # (height, width) of the frames given

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open(self, height: int, width: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), mode="w", options=self.codec.container_options)
        stream = self._container.add_stream(self.codec.name, rate=self.fps, options=self.codec.options)
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = self.codec.pixel_format
        self._stream = stream
        self._size = (height, width)

    def write(self, frame: np.ndarray) -> None:
        """Encode one (H, W, 3) uint8 RGB frame."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frames must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        if self._container is None:
            self._open(*frame.shape[:2])
        if frame.shape[:2] != self._size:
            raise ValueError(f"frame size changed from {self._size} to {frame.shape[:2]}")
        height, width = frame.shape[:2]
        if height % 2 or width % 2:  # repeat the last row / column
            frame = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and finish the file (idempotent)."""
        if self._container is None:
            return
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None


@dataclass(frozen=True)
class OverlaySettings:
    """How overlay frames look.

    Attributes:
        alpha: mesh opacity over the frame.
        side_view: add the side view panel to the right of the frame.
        side_view_width: panel width as a fraction of the frame height (the panel is as tall as the frame).
        side_view_angle_deg: turn about the vertical axis for the side view.
        labels: write each track's id next to its box.
    """

    alpha: float = 0.9
    side_view: bool = False
    side_view_width: float = 0.75
    side_view_angle_deg: float = 90.0
    labels: bool = True


def _scene_meshes(frame: FrameResult, *, depth_scale: float = 1.0) -> list[SceneMesh]:
    if frame.vertices is None:
        raise ValueError("the frame carries no vertices (run inference with keep_vertices=True)")
    meshes = []
    for track_id, vertices, cam_t in zip(frame.track_id, frame.vertices, frame.cam_t, strict=True):
        translation = np.asarray(cam_t, dtype=np.float64) * np.array([1.0, 1.0, depth_scale])
        meshes.append(SceneMesh(vertices, frame.faces, soft_colour(int(track_id)), translation))
    return meshes


def _draw_labels(image: np.ndarray, frame: FrameResult) -> None:
    """Write each track id above its box, in the track's palette colour, in place."""
    height = image.shape[0]
    scale = max(LABEL_MIN_SCALE, height * LABEL_SCALE_PER_PIXEL)
    thickness = max(1, int(round(LABEL_THICKNESS_PER_SCALE * scale)))
    for track_id, box in zip(frame.track_id, frame.bbox, strict=True):
        colour = TRACK_PALETTE[int(track_id) % len(TRACK_PALETTE)]
        x, y = int(round(box[0])), int(round(box[1]))
        (_, text_h), _ = cv2.getTextSize(str(int(track_id)), cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        origin = (max(0, x), max(text_h + LABEL_MARGIN_PX, y - LABEL_MARGIN_PX))
        cv2.putText(image, f"{int(track_id)}", origin, cv2.FONT_HERSHEY_SIMPLEX, scale, LABEL_OUTLINE_COLOUR,
                    thickness + LABEL_OUTLINE_PX, cv2.LINE_AA)
        cv2.putText(image, f"{int(track_id)}", origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness,
                    cv2.LINE_AA)


def render_overlay_frame(frame: FrameResult, *, settings: OverlaySettings = OverlaySettings(),
                         renderer: Renderer | None = None) -> np.ndarray:
    """One overlay frame: (H, W, 3) uint8, or (H, W + panel, 3) with the side view. Does not modify ``frame``."""
    image = frame.image
    height, width = image.shape[:2]
    if len(frame):
        camera = PinholeCamera(focal_length=float(frame.focal_length))
        out = overlay_meshes(image, _scene_meshes(frame), camera, alpha=settings.alpha, renderer=renderer)
        if settings.labels:
            _draw_labels(out, frame)
    else:
        out = image.copy()
    if not settings.side_view:
        return out
    panel_width = max(2, int(round(settings.side_view_width * height)))
    if len(frame):
        depth_scale = SIDE_VIEW_FOCAL_PER_DIAGONAL * math.hypot(width, height) / float(frame.focal_length)
        panel = side_view_meshes(_scene_meshes(frame, depth_scale=depth_scale), (height, panel_width),
                                 angle_deg=settings.side_view_angle_deg, background=SIDE_VIEW_BACKGROUND,
                                 renderer=renderer)
    else:
        panel = np.empty((height, panel_width, 3), np.uint8)
        panel[:] = SIDE_VIEW_BACKGROUND
    return np.concatenate([out, panel], axis=1)


class OverlayVideoSink:
    """A frame sink (:class:`pipeline.run.FrameSink`) that renders overlays and encodes them as they
    arrive. ``path`` gets the codec's suffix (see :class:`VideoWriter`)."""

    def __init__(self, path: str | os.PathLike, *, fps: float, settings: OverlaySettings = OverlaySettings(),
                 codec: VideoCodec | None = None) -> None:
        self.settings = settings
        self.writer = VideoWriter(path, fps=fps, codec=codec)
        self._renderer: Renderer | None = None

    @property
    def path(self) -> Path:
        return self.writer.path

    def write(self, frame: FrameResult) -> None:
        if self._renderer is None:
            self._renderer = Renderer()
        self.writer.write(render_overlay_frame(frame, settings=self.settings, renderer=self._renderer))

    def close(self) -> None:
        try:
            self.writer.close()
        finally:
            if self._renderer is not None:
                self._renderer.close()
                self._renderer = None

    def discard(self) -> None:
        """Remove the video (the pipeline calls this when a run found nobody): close it first."""
        self.close()
        self.path.unlink(missing_ok=True)


class MeshSequenceSink:
    """A frame sink that writes each frame's people to ``out_dir/frame_000123.<suffix>`` (every person placed
    by its ``cam_t``, one colour per track; .glb keeps one node per person, .obj concatenates them).
    Frames without people get no file."""

    def __init__(self, out_dir: str | os.PathLike, *, suffixes: tuple[str, ...] = (".obj",)) -> None:
        self.out_dir = Path(out_dir)
        self.suffixes = suffixes
        self.written: list[Path] = []

    def write(self, frame: FrameResult) -> None:
        if not len(frame):
            return
        meshes = _scene_meshes(frame)
        for suffix in self.suffixes:
            self.written.append(export_meshes(self.out_dir / f"frame_{frame.frame:06d}{suffix}", meshes))

    def close(self) -> None:
        pass
