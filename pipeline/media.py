"""Reading the user's media: single images, image folders and videos, as RGB uint8 frames.

::

    reader = open_media("clip.mp4", limits=MediaLimits(max_frames=600))
    reader.info            # MediaInfo: kind, num_frames, fps, width, height, timestamps, notes
    for index, frame in reader:   # frame (H, W, 3) uint8 RGB, decoded lazily one at a time
        ...
    frames = reader.read_all()    # (T, H, W, 3) uint8, for short clips

What is supported (:data:`IMAGE_EXTENSIONS`, :data:`VIDEO_EXTENSIONS`):

* images (jpg, png, webp, bmp; grayscale, palette, 16-bit and RGBA too) through Pillow, turned upright by
  their EXIF orientation; transparent pixels are composited over :data:`ALPHA_BACKGROUND`;
* folders of images, in natural order (``frame2`` before ``frame10``); other files are skipped with a note;
* videos (mp4, avi, mov, webm, mkv, gif) through PyAV (FFmpeg) with threaded decoding, the container's
  average frame rate and every frame's real presentation time (variable frame rate is kept and noted),
  rotated upright by their display matrix (phone clips).

Limits (:class:`MediaLimits`) truncate what can sensibly be truncated (frames past ``max_frames`` or
``max_duration_s``, with a note), downscale frames larger than ``max_side`` for processing (with a note;
``reader.scale`` maps processing pixels back to the source), and refuse what cannot (files over
``max_file_bytes``, images over ``max_image_pixels``) with a :class:`MediaError`.

Every problem with the input raises :class:`MediaError` (a ValueError) whose message is one line saying what
is wrong and what to do. A damaged video whose first frames still decode is not an error: those frames are
used and a note says how many could be read.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .types import MediaInfo

__all__ = [
    "ALPHA_BACKGROUND",
    "IMAGE_EXTENSIONS",
    "MEDIA_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "MediaError",
    "MediaLimits",
    "MediaReader",
    "natural_sort_key",
    "open_media",
    "read_image",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mov", ".webm", ".mkv", ".gif")
MEDIA_EXTENSIONS: tuple[str, ...] = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS

# Frame rates reported for inputs that have none (see MediaInfo.fps).
DEFAULT_FOLDER_FPS = 30.0
DEFAULT_IMAGE_FPS = 1.0
# Transparent pixels of RGBA / LA / palette images are composited over this colour (RGB).
ALPHA_BACKGROUND: tuple[int, int, int] = (255, 255, 255)
# A video is called variable frame rate when its frame intervals spread by more than this fraction of the median.
VFR_TOLERANCE = 0.1
# A video is called truncated when it declares this much more duration (in frame intervals) than it holds.
TRUNCATION_SLACK_FRAMES = 2.0
# Decoder threads (0: FFmpeg picks, one per core).
DECODE_THREADS = 0
# read_all() refuses to hold more than this many bytes of frames (iterate instead).
READ_ALL_MAX_BYTES = 4 * 1024**3
# How many skipped file names a note lists before it says "and N more".
NOTE_MAX_NAMES = 5

_BYTES_PER_MB = 1024**2

#: How much of a clip one run reads by default: the same for the app and the command line, and changed for both
#: by ``INT_MAX_FRAMES`` / ``INT_MAX_DURATION_S`` (longer clips are cut, with a note).
DEFAULT_MAX_FRAMES = int(os.environ.get("INT_MAX_FRAMES", "900"))
DEFAULT_MAX_DURATION_S = float(os.environ.get("INT_MAX_DURATION_S", "60"))


class MediaError(ValueError):
    """Bad or unreadable input. The message is one line: what is wrong, and what to do."""


@dataclass(frozen=True)
class MediaLimits:
    """Limits on what is read; None switches a limit off.

    Attributes:
        max_frames: frames past this are not read (truncated, with a note).
        max_duration_s: frames later than this many seconds after the first are not read (truncated, with a note).
        max_side: frames whose longer side exceeds this many pixels are downscaled to it for processing (a note
            says so; ``MediaReader.scale`` maps back).
        max_file_bytes: larger files are refused.
        max_image_pixels: images with more source pixels than this are refused (decompression bombs); larger
            images up to it are read on a downscaled copy.
    """

    max_frames: int | None = DEFAULT_MAX_FRAMES
    max_duration_s: float | None = DEFAULT_MAX_DURATION_S
    max_side: int | None = 1920
    max_file_bytes: int | None = 4 * 1024**3
    max_image_pixels: int | None = 150_000_000

    def __post_init__(self) -> None:
        for name in ("max_frames", "max_side", "max_file_bytes", "max_image_pixels"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"MediaLimits.{name} must be a positive integer or None, got {value!r}")
        if self.max_duration_s is not None and not self.max_duration_s > 0:
            raise ValueError(f"MediaLimits.max_duration_s must be > 0 or None, got {self.max_duration_s!r}")


# ----------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------


def natural_sort_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders embedded numbers by value: ``img2.png`` before ``img10.png`` (case-insensitive)."""
    parts = re.split(r"(\d+)", name.lower())
    return tuple((0, int(part), part) if part.isdigit() else (1, 0, part) for part in parts)


def _supported_list() -> str:
    images = ", ".join(ext.lstrip(".") for ext in IMAGE_EXTENSIONS)
    videos = ", ".join(ext.lstrip(".") for ext in VIDEO_EXTENSIONS)
    return f"images ({images}), videos ({videos}) or a folder of images"


def _name(path: Path) -> str:
    return path.name or str(path)


def _processing_size(width: int, height: int, max_side: int | None) -> tuple[int, int, float]:
    """(width, height, scale) after fitting the longer side into ``max_side`` (scale 1 when it fits)."""
    if max_side is None or max(width, height) <= max_side:
        return width, height, 1.0
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale)), scale


def _resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (height, width, 3); area averaging when shrinking."""
    if frame.shape[1] == width and frame.shape[0] == height:
        return frame
    shrinking = width < frame.shape[1]
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _check_file_size(path: Path, limits: MediaLimits) -> None:
    size = path.stat().st_size
    if size == 0:
        raise MediaError(f"{_name(path)} is empty (0 bytes): check the upload or copy, and try again")
    if limits.max_file_bytes is not None and size > limits.max_file_bytes:
        raise MediaError(
            f"{_name(path)} is {size / _BYTES_PER_MB:,.0f} MB, over the limit of "
            f"{limits.max_file_bytes / _BYTES_PER_MB:,.0f} MB (max_file_bytes): trim or compress it first"
        )


def _looks_like_text(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(512)
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _downscale_note(source: tuple[int, int], size: tuple[int, int], limits: MediaLimits) -> str:
    return (f"frames of {source[0]}x{source[1]} are processed downscaled to {size[0]}x{size[1]} "
            f"(max_side={limits.max_side}); boxes are in the downscaled pixels")


# ----------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------


def _pil_to_rgb(image: Image.Image) -> np.ndarray:
    """Any Pillow mode -> (H, W, 3) uint8 RGB; transparency composited over ALPHA_BACKGROUND; 16-bit -> 8-bit."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grayscale (PNG): full 16-bit range -> 8 bits
        values = np.asarray(image, dtype=np.float64)
        gray = np.clip(values / SIXTEEN_TO_EIGHT_BIT + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float64))
        span = values.max() - values.min() if values.size else 0.0
        gray = np.zeros(values.shape, np.uint8)
        if span > 0:
            gray = ((values - values.min()) / span * 255.0 + 0.5).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        alpha = rgba[..., 3:4] / 255.0
        background = np.asarray(ALPHA_BACKGROUND, dtype=np.float32)
        return np.clip(rgba[..., :3] * alpha + background * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def _image_header(path: Path, limits: MediaLimits) -> tuple[int, int]:
    """(width, height) of an image after EXIF orientation, read from its header only.

    Raises:
        MediaError: not an image Pillow can read, or more pixels than ``limits.max_image_pixels``.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                orientation = image.getexif().get(ORIENTATION_TAG, 1)
    except Image.DecompressionBombError as exc:
        raise MediaError(f"{_name(path)} is too large to read safely ({exc}); downscale it first") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        what = "a text file" if _looks_like_text(path) else "not an image Pillow can read"
        raise MediaError(f"{_name(path)} is {what}, though its name ends in {path.suffix} "
                         f"({type(exc).__name__}): check the file, or save it again as PNG or JPEG") from None
    if orientation in TRANSPOSING_ORIENTATIONS:
        width, height = height, width
    if limits.max_image_pixels is not None and width * height > limits.max_image_pixels:
        raise MediaError(f"{_name(path)} has {width}x{height} = {width * height / 1e6:.0f} megapixels, over the limit "
                         f"of {limits.max_image_pixels / 1e6:.0f} (max_image_pixels): downscale it first")
    return width, height


# 16-bit sample values per 8-bit value (65535 / 255).
SIXTEEN_TO_EIGHT_BIT = 257.0
# EXIF orientation tag and the orientations that swap width and height.
ORIENTATION_TAG = 0x0112
TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)


def read_image(path: str | os.PathLike, *, max_side: int | None = None,
               size: tuple[int, int] | None = None) -> np.ndarray:
    """Read one image as (H, W, 3) uint8 RGB, upright by its EXIF orientation.

    Args:
        path: jpg / png / webp / bmp file.
        max_side: downscale so that the longer side is at most this (large JPEGs are decoded at reduced
            size directly, so an 8000x6000 photo never needs its full-size pixels in memory).
        size: exact (width, height) to resize to instead (wins over ``max_side``).

    Raises:
        MediaError: the file is not a readable image.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                target = size
                if target is None and max_side is not None:
                    oriented = image.size
                    if image.getexif().get(ORIENTATION_TAG, 1) in TRANSPOSING_ORIENTATIONS:
                        oriented = oriented[::-1]
                    target = _processing_size(*oriented, max_side)[:2]
                if target is not None and image.format == "JPEG":
                    draft_size = target
                    if image.getexif().get(ORIENTATION_TAG, 1) in TRANSPOSING_ORIENTATIONS:
                        draft_size = draft_size[::-1]
                    image.draft("RGB", draft_size)  # DCT-domain downscale by a power of two, never below target
                image = ImageOps.exif_transpose(image)
                frame = _pil_to_rgb(image)
    except Image.DecompressionBombError as exc:
        raise MediaError(f"{_name(path)} is too large to read safely ({exc}); downscale it first") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"{_name(path)} could not be decoded as an image ({type(exc).__name__}: {exc}); "
                         f"it may be truncated or damaged: save it again as PNG or JPEG") from None
    if target is not None:
        frame = _resize(frame, *target)
    return frame


# ----------------------------------------------------------------------------------------------
# Readers
# ----------------------------------------------------------------------------------------------


class MediaReader:
    """Frames of one input, decoded lazily.

    Attributes:
        info: :class:`MediaInfo` (a property: a video found damaged only while decoding gets an updated info,
            with fewer frames and a note, once iteration has stopped early).
        scale: processing pixels per source pixel (1.0 unless frames were downscaled for ``max_side``).
        source_size: (width, height) of the source frames, upright, before downscaling.
    """

    def __init__(self, info: MediaInfo, *, scale: float, source_size: tuple[int, int]) -> None:
        self._info = info
        self.scale = scale
        self.source_size = source_size

    @property
    def info(self) -> MediaInfo:
        return self._info

    def __len__(self) -> int:
        return self._info.num_frames

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, frame)`` with frame (H, W, 3) uint8 RGB at the processing size, index 0, 1, ..."""
        raise NotImplementedError

    def read_all(self, *, max_bytes: int = READ_ALL_MAX_BYTES) -> np.ndarray:
        """All frames as one (T, H, W, 3) uint8 array. For short clips: refuses more than ``max_bytes``."""
        info = self._info
        needed = info.num_frames * info.height * info.width * 3
        if needed > max_bytes:
            raise MediaError(f"{info.num_frames} frames of {info.width}x{info.height} need "
                             f"{needed / _BYTES_PER_MB:,.0f} MB, over {max_bytes / _BYTES_PER_MB:,.0f} MB: "
                             f"iterate over the reader instead, or lower max_frames")
        frames = [frame for _, frame in self]
        if not frames:
            raise MediaError(f"{Path(info.source).name}: no frames could be read")
        return np.stack(frames)

    def close(self) -> None:
        """Release resources (readers open files only while iterating; kept for symmetry)."""

    def __enter__(self) -> MediaReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        info = self._info
        return (f"{type(self).__name__}({Path(info.source).name!r}, {info.kind}, {info.num_frames} frames, "
                f"{info.width}x{info.height}, {info.fps:g} fps)")


class _ImageReader(MediaReader):
    def __init__(self, path: Path, *, limits: MediaLimits, fps: float | None) -> None:
        _check_file_size(path, limits)
        source = _image_header(path, limits)
        width, height, scale = _processing_size(*source, limits.max_side)
        notes = (_downscale_note(source, (width, height), limits),) if scale != 1.0 else ()
        info = MediaInfo(source=str(path), kind="image", num_frames=1, fps=float(fps or DEFAULT_IMAGE_FPS),
                         width=width, height=height, timestamps=np.zeros(1), notes=notes)
        super().__init__(info, scale=scale, source_size=source)
        self._path = path

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        yield 0, read_image(self._path, size=(self._info.width, self._info.height))


class _FolderReader(MediaReader):
    def __init__(self, path: Path, *, limits: MediaLimits, fps: float | None) -> None:
        fps = float(fps or DEFAULT_FOLDER_FPS)
        entries = sorted((entry for entry in path.iterdir() if entry.is_file() and not entry.name.startswith(".")),
                         key=lambda entry: natural_sort_key(entry.name))
        images = [entry for entry in entries if entry.suffix.lower() in IMAGE_EXTENSIONS]
        others = [entry.name for entry in entries if entry.suffix.lower() not in IMAGE_EXTENSIONS]
        notes: list[str] = []
        if others:
            notes.append(f"skipped {len(others)} file(s) that are not images: {_list_names(others)}")
        if not images:
            raise MediaError(f"folder {_name(path)} holds no images ({len(others)} other file(s)); "
                             f"supported: {_supported_list()}")
        limit = _frame_limit(len(images), fps, limits)
        if limit < len(images):
            notes.append(_truncation_note(len(images), limit, len(images) / fps, limits))
            images = images[:limit]
        readable: list[Path] = []
        sizes: list[tuple[int, int]] = []
        unreadable: list[str] = []
        for image in images:
            try:
                _check_file_size(image, limits)
                sizes.append(_image_header(image, limits))
                readable.append(image)
            except MediaError:
                unreadable.append(image.name)
        if unreadable:
            notes.append(f"skipped {len(unreadable)} image file(s) that could not be read: {_list_names(unreadable)}")
        if not readable:
            raise MediaError(f"folder {_name(path)}: none of its {len(images)} image files could be read; "
                             f"check them, or save them again as PNG or JPEG")
        source = sizes[0]
        width, height, scale = _processing_size(*source, limits.max_side)
        if scale != 1.0:
            notes.append(_downscale_note(source, (width, height), limits))
        odd = sum(size != source for size in sizes)
        if odd:
            notes.append(f"{odd} image(s) differ in size from the first ({source[0]}x{source[1]}) and are resized to "
                         f"{width}x{height}")
        info = MediaInfo(source=str(path), kind="folder", num_frames=len(readable), fps=fps, width=width,
                         height=height, timestamps=np.arange(len(readable)) / fps, notes=tuple(notes))
        super().__init__(info, scale=scale, source_size=source)
        self._files = readable

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        size = (self._info.width, self._info.height)
        for index, file in enumerate(self._files):
            yield index, read_image(file, size=size)


def _list_names(names: list[str]) -> str:
    shown = ", ".join(names[:NOTE_MAX_NAMES])
    return shown if len(names) <= NOTE_MAX_NAMES else f"{shown} and {len(names) - NOTE_MAX_NAMES} more"


def _frame_limit(available: int, fps: float, limits: MediaLimits) -> int:
    """How many of ``available`` evenly spaced frames the limits allow."""
    limit = available
    if limits.max_frames is not None:
        limit = min(limit, limits.max_frames)
    if limits.max_duration_s is not None:
        limit = min(limit, math.floor(limits.max_duration_s * fps + 1e-9) + 1)
    return limit


def _truncation_note(available: int | str, kept: int, duration_s: float | str, limits: MediaLimits) -> str:
    duration = f"{duration_s:.1f} s" if isinstance(duration_s, float) else duration_s
    return (f"the input has {available} frames ({duration}); only the first {kept} are processed "
            f"(max_frames={limits.max_frames}, max_duration_s={limits.max_duration_s})")


# ----------------------------------------------------------------------------------------------
# Videos
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _VideoScan:
    """What a packet-level pass (no decoding) found."""

    timestamps: np.ndarray  # (N,) seconds from the first frame, presentation order
    more_than_limit: bool  # stopped early because of max_frames / max_duration_s
    damaged: str | None  # why the file looks truncated or corrupt, else None
    declared_frames: int
    declared_duration_s: float | None


class _VideoReader(MediaReader):
    def __init__(self, path: Path, *, limits: MediaLimits) -> None:
        _check_file_size(path, limits)
        self._path = path
        notes: list[str] = []
        with _open_container(path) as container:
            stream = _video_stream(container, path)
            first = _first_frame(container, stream, path)
            rate = stream.average_rate or stream.guessed_rate
            container_fps = float(rate) if rate else 0.0
            scan = _scan_packets(container, stream, limits)
        source = first.shape[1], first.shape[0]  # upright (after the display rotation)
        timestamps = scan.timestamps
        if scan.damaged:
            decoded = _decodable_timestamps(path, len(timestamps))
            if len(decoded) == 0:
                raise MediaError(f"{_name(path)} is truncated or corrupt and none of its frames decode "
                                 f"({scan.damaged}); re-export or re-download the video")
            notes.append(f"the video is truncated or corrupt ({scan.damaged}): {len(decoded)} frame(s) "
                         f"({decoded[-1]:.2f} s) could be decoded and are used; re-export the file to get the rest")
            timestamps = decoded
        if len(timestamps) == 0:
            raise MediaError(f"{_name(path)} has zero video frames: export the clip again with at least one frame")
        if scan.more_than_limit:
            available = f"more than {len(timestamps)}"
            declared = f"{scan.declared_duration_s:.1f} s" if scan.declared_duration_s else "longer"
            notes.append(_truncation_note(available, len(timestamps), declared, limits))
        fps = container_fps if container_fps > 0 else _fps_from_timestamps(timestamps)
        vfr = _variable_frame_rate_note(timestamps)
        if vfr:
            notes.append(vfr)
        width, height, scale = _processing_size(*source, limits.max_side)
        if scale != 1.0:
            notes.append(_downscale_note(source, (width, height), limits))
        info = MediaInfo(source=str(path), kind="video", num_frames=len(timestamps), fps=fps, width=width,
                         height=height, timestamps=timestamps, notes=tuple(notes))
        super().__init__(info, scale=scale, source_size=source)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        info = self._info
        index = 0
        failure: str | None = None
        with _open_container(self._path) as container:
            stream = _video_stream(container, self._path)
            _configure_decoder(stream)
            try:
                for frame in container.decode(stream):
                    if index >= info.num_frames:
                        break
                    yield index, _resize(_frame_to_rgb(frame), info.width, info.height)
                    index += 1
            except av.error.FFmpegError as exc:
                failure = f"{type(exc).__name__}: {exc}"
        if index < info.num_frames:
            self._stopped_early(index, failure)

    def _stopped_early(self, decoded: int, failure: str | None) -> None:
        """Decoding ended before ``info.num_frames``: shrink the info and say why (raise if nothing decoded)."""
        info = self._info
        why = failure or "the stream ended early"
        if decoded == 0:
            raise MediaError(f"{_name(self._path)}: no frame could be decoded ({why}); re-export the video")
        note = (f"decoding stopped after {decoded} of {info.num_frames} frames ({why}); the first {decoded} "
                f"frames are used: re-export the file to get the rest")
        self._info = dataclasses.replace(info, num_frames=decoded, timestamps=info.timestamps[:decoded],
                                         notes=info.notes + (note,))


class _open_container:
    """Context manager around ``av.open`` that turns FFmpeg's refusal into a MediaError naming the cause."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._container: Any = None

    def __enter__(self) -> Any:
        path = self._path
        try:
            self._container = av.open(str(path), mode="r")
        except av.error.FFmpegError as exc:
            raise MediaError(_open_failure_message(path, exc)) from None
        return self._container

    def __exit__(self, *exc_info: object) -> None:
        if self._container is not None:
            self._container.close()


def _open_failure_message(path: Path, exc: Exception) -> str:
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head[4:8] == b"ftyp":  # an ISO media file (mp4 / mov) whose index (moov atom) is missing
        return (f"{_name(path)} is a truncated or damaged MP4/MOV: its index (moov atom) is missing, so no frame can "
                f"be located; re-export or re-download the video (an interrupted recording loses its index)")
    if isinstance(exc, EOFError):
        return (f"{_name(path)} ends before its first frame (an empty or truncated video with zero frames): "
                f"re-export it")
    if _looks_like_text(path):
        return (f"{_name(path)} is a text file, not a video, though its name ends in {path.suffix}: "
                f"upload the video itself")
    return (f"{_name(path)} is not a video FFmpeg can read, though its name ends in {path.suffix} "
            f"({type(exc).__name__}): check the file, or convert it to MP4 (H.264)")


def _video_stream(container: Any, path: Path) -> Any:
    if not container.streams.video:
        raise MediaError(f"{_name(path)} has no video stream (zero video frames): upload a file with video in it")
    return container.streams.video[0]


def _configure_decoder(stream: Any) -> None:
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = DECODE_THREADS


def _frame_to_rgb(frame: Any) -> np.ndarray:
    """PyAV VideoFrame -> (H, W, 3) uint8 RGB, rotated upright by its display matrix."""
    rgb = frame.to_ndarray(format="rgb24")
    quarter_turns = round(getattr(frame, "rotation", 0) / 90) % 4  # counterclockwise, as FFmpeg displays it
    if quarter_turns:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=quarter_turns))
    return rgb


def _first_frame(container: Any, stream: Any, path: Path) -> np.ndarray:
    """Decode the first frame (size, rotation; proves the stream decodes), then rewind the container."""
    _configure_decoder(stream)
    try:
        frame = next(container.decode(stream), None)
    except av.error.FFmpegError as exc:
        frame = None
        failure = f"{type(exc).__name__}: {exc}"
    else:
        failure = "the stream holds no picture"
    if frame is None:
        if path.stat().st_size and _looks_like_text(path):
            raise MediaError(f"{_name(path)} is a text file, not a video: upload the video itself")
        raise MediaError(f"{_name(path)}: no video frame decodes ({failure}); the file is empty, truncated or corrupt: "
                         f"re-export the video")
    rgb = _frame_to_rgb(frame)
    container.seek(0)
    return rgb


def _scan_packets(container: Any, stream: Any, limits: MediaLimits) -> _VideoScan:
    """Presentation times of every frame from the packets (no decoding), up to the limits.

    A packet pass reads the file once but decodes nothing, so it is cheap next to decoding. The stream's declared
    length (frame count or duration) is compared with what the packets hold to spot truncated files.
    """
    time_base = stream.time_base
    declared_frames = int(stream.frames or 0)
    if stream.duration is not None and time_base:
        declared_duration: float | None = float(stream.duration * time_base)
    elif container.duration and len(container.streams) == 1:  # with audio, the container may outlast the video
        declared_duration = container.duration / av.time_base
    else:
        declared_duration = None
    container.seek(0)
    pts: list[int] = []
    end_pts: int | None = None  # latest pts + duration: where the last frame stops showing
    missing_pts = 0
    damaged: str | None = None
    more_than_limit = False
    first_pts: int | None = None
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # end-of-stream flush packet
                continue
            if packet.pts is None:
                missing_pts += 1
                pts.append(-1)
                continue
            first_pts = packet.pts if first_pts is None else min(first_pts, packet.pts)
            pts.append(int(packet.pts))
            end = int(packet.pts) + int(packet.duration or 0)
            end_pts = end if end_pts is None else max(end_pts, end)
            if limits.max_frames is not None and len(pts) > limits.max_frames + _REORDER_MARGIN:
                more_than_limit = True
                break
            if (limits.max_duration_s is not None and time_base
                    and float((packet.pts - first_pts) * time_base) > limits.max_duration_s + _REORDER_SECONDS):
                more_than_limit = True
                break
    except av.error.FFmpegError as exc:
        damaged = f"reading stopped at packet {len(pts)}: {type(exc).__name__}"
    fallback_rate = float(stream.average_rate or stream.guessed_rate or DEFAULT_FOLDER_FPS)
    if missing_pts or not time_base:  # no usable timing (rare: some raw AVI streams): evenly spaced frames
        seconds = np.arange(len(pts)) / fallback_rate
    else:
        seconds = np.sort(np.asarray(pts, dtype=np.float64))
        seconds = (seconds - seconds[0]) * float(time_base) if len(seconds) else seconds
    if more_than_limit or (limits.max_frames is not None and len(seconds) > limits.max_frames):
        more_than_limit = True
        keep = len(seconds)
        if limits.max_frames is not None:
            keep = min(keep, limits.max_frames)
        if limits.max_duration_s is not None:
            keep = min(keep, int(np.searchsorted(seconds, limits.max_duration_s + 1e-9, side="right")))
        seconds = seconds[:keep]
    elif limits.max_duration_s is not None and len(seconds) and seconds[-1] > limits.max_duration_s:
        more_than_limit = True
        seconds = seconds[: int(np.searchsorted(seconds, limits.max_duration_s + 1e-9, side="right"))]
    if damaged is None and not more_than_limit:
        end_s = float((end_pts - first_pts) * time_base) if end_pts is not None and first_pts is not None else None
        damaged = _truncation(len(seconds), seconds, end_s, declared_frames, declared_duration)
    return _VideoScan(timestamps=seconds, more_than_limit=more_than_limit, damaged=damaged,
                      declared_frames=declared_frames, declared_duration_s=declared_duration)


# Extra packets read past max_frames / max_duration_s so that reordered (B-frame) timestamps are all seen.
_REORDER_MARGIN = 16
_REORDER_SECONDS = 1.0


def _truncation(count: int, seconds: np.ndarray, end_s: float | None, declared_frames: int,
               declared_duration: float | None) -> str | None:
    """Why the packets look like less than the stream declares, else None.

    ``end_s`` is when the last frame stops showing (its time plus its packet's duration), when the packets say.
    """
    if declared_frames > count:
        return f"it declares {declared_frames} frames but holds {count}"
    if declared_duration and count:
        interval = float(np.median(np.diff(seconds))) if count > 1 else 0.0
        held = end_s if end_s is not None and end_s > seconds[-1] else float(seconds[-1]) + interval
        if interval > 0 and declared_duration - held > TRUNCATION_SLACK_FRAMES * interval:
            return f"it declares {declared_duration:.2f} s but holds {held:.2f} s"
    return None


def _decodable_timestamps(path: Path, expected: int) -> np.ndarray:
    """Decode a damaged video up to its first failure; (K,) seconds of the frames that decode."""
    times: list[float] = []
    with _open_container(path) as container:
        stream = _video_stream(container, path)
        _configure_decoder(stream)
        try:
            for frame in container.decode(stream):
                times.append(float(frame.time) if frame.time is not None else float("nan"))
        except av.error.FFmpegError:
            pass
    seconds = np.asarray(times, dtype=np.float64)
    if len(seconds) and np.isnan(seconds).any():
        seconds = np.arange(len(seconds), dtype=np.float64) / DEFAULT_FOLDER_FPS
    return seconds - seconds[0] if len(seconds) else seconds


def _fps_from_timestamps(seconds: np.ndarray) -> float:
    if len(seconds) > 1 and seconds[-1] > seconds[0]:
        return float((len(seconds) - 1) / (seconds[-1] - seconds[0]))
    return DEFAULT_FOLDER_FPS


def _variable_frame_rate_note(seconds: np.ndarray) -> str | None:
    if len(seconds) < 3:
        return None
    intervals = np.diff(seconds)
    median = float(np.median(intervals))
    if median <= 0 or float(intervals.max() - intervals.min()) <= VFR_TOLERANCE * median:
        return None
    return (f"variable frame rate: frame intervals range from {intervals.min() * 1000:.1f} to "
            f"{intervals.max() * 1000:.1f} ms (average {_fps_from_timestamps(seconds):.2f} fps); "
            f"the real timestamps are kept")


# ----------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------


def open_media(path: str | os.PathLike, *, limits: MediaLimits = MediaLimits(),
               fps: float | None = None) -> MediaReader:
    """Open an image, a folder of images or a video for reading.

    Args:
        path: the user's file or folder.
        limits: frame, duration, resolution and size limits (see :class:`MediaLimits`).
        fps: frame rate to report for a folder (default 30) or a single image (default 1); ignored for videos,
            which carry their own.

    Returns:
        A :class:`MediaReader`: ``.info`` is known at once (a packet pass over a video, no decoding beyond its
        first frame), frames are decoded while iterating.

    Raises:
        MediaError: missing path, unsupported extension, non-media content, zero frames, files over the limits.
    """
    path = Path(path)
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if not path.exists():
        raise MediaError(f"{path} does not exist: check the path (supported: {_supported_list()})")
    if path.is_dir():
        return _FolderReader(path, limits=limits, fps=fps)
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return _ImageReader(path, limits=limits, fps=fps)
    if suffix in VIDEO_EXTENSIONS:
        return _VideoReader(path, limits=limits)
    shown = suffix or "no extension"
    raise MediaError(f"{_name(path)}: unsupported file type ({shown}); supported: {_supported_list()}")
