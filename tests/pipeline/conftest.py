"""Shared fixtures for the pipeline tests: rendered people at known places, and small clips written in tmp.

People are the project's procedural SMPL-format body rendered with ``viz.renderer`` (tests may import viz;
``int_model`` code may not). Poses are upright (global orientation 180 degrees about x, as in the renderer's
camera frame: x right, y down, z forward); the true box of a person is the bounding box of its projected
vertices, clipped to the frame.
"""

from __future__ import annotations

import fractions
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

# Joint indices (SMPL order) used by the test poses.
_ROOT, _L_HIP, _R_HIP, _L_KNEE, _R_KNEE = 0, 1, 2, 4, 5
_L_SHOULDER, _R_SHOULDER, _L_ELBOW, _R_ELBOW = 16, 17, 18, 19
_UPRIGHT = (np.pi, 0.0, 0.0)  # body model is y-up; the camera frame is y-down

# Pose name -> {joint: axis-angle (radians)} on top of the upright root. The SMPL rest pose is a T-pose.
POSES: dict[str, dict[int, tuple[float, float, float]]] = {
    "stand": {_L_SHOULDER: (0, 0, -1.22), _R_SHOULDER: (0, 0, 1.22)},
    "walk": {_L_SHOULDER: (0, 0, -1.22), _R_SHOULDER: (0, 0, 1.22), _L_HIP: (-0.45, 0, 0), _R_HIP: (0.35, 0, 0),
             _L_KNEE: (0.5, 0, 0), _R_KNEE: (0.15, 0, 0), _L_ELBOW: (0, -0.35, 0), _R_ELBOW: (0, 0.35, 0)},
    "stride": {_L_SHOULDER: (0, 0, -1.22), _R_SHOULDER: (0, 0, 1.22), _L_HIP: (-0.7, 0, 0), _R_HIP: (0.6, 0, 0),
               _L_KNEE: (0.9, 0, 0), _R_KNEE: (0.3, 0, 0)},
    "tpose": {},
    "arms_up": {_L_SHOULDER: (0, 0, 1.05), _R_SHOULDER: (0, 0, -1.05)},
}
BODY_HEIGHT_M = 1.72  # approximate standing height of the procedural body (used only to place people)


@dataclass(frozen=True)
class Person:
    """A person to render: pose name, yaw (radians about the vertical), pixel height wanted, feet position.

    ``feet`` is the pixel (u, v) where the person's feet should stand; ``height_px`` the wanted height.
    """

    pose: str = "stand"
    yaw: float = 0.0
    height_px: float = 80.0
    feet: tuple[float, float] = (0.0, 0.0)
    colour: tuple[float, float, float] | None = None


def posed_vertices(body_model, pose: str, yaw: float = 0.0) -> np.ndarray:
    """(V, 3) camera-frame vertices (y down) of the body in ``pose``, turned ``yaw`` about the vertical."""
    rotvec = np.zeros((24, 3))
    rotvec[_ROOT] = _UPRIGHT
    for joint, value in POSES[pose].items():
        rotvec[joint] = value
    rotmat = Rotation.from_rotvec(rotvec).as_matrix()
    rotmat[_ROOT] = Rotation.from_rotvec([0.0, yaw, 0.0]).as_matrix() @ rotmat[_ROOT]
    with torch.no_grad():
        out = body_model(rotmat=torch.as_tensor(rotmat, dtype=torch.float32)[None], betas=torch.zeros(1, 10))
    return out.vertices[0].numpy().astype(np.float64)


def textured_background(height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8: a colour gradient with random rectangles (walls, windows, signs), stripes and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:height, :width]
    image = np.stack([90 + 60 * x / width, 100 + 40 * y / height, 120 - 50 * x / width], -1)
    for _ in range(max(8, height * width // 25000)):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        w, h = rng.integers(10, max(11, width // 5)), rng.integers(10, max(11, height // 5))
        image[y0:y0 + h, x0:x0 + w] = rng.integers(30, 230, 3)
    stripes = (np.sin(x / rng.uniform(6, 14)) > 0.8)[..., None] * rng.integers(-25, 25, 3)
    image = image + stripes + rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _place(vertices: np.ndarray, person: Person, focal: float, centre: tuple[float, float]) -> np.ndarray:
    """Translation (3,) that puts the feet at ``person.feet`` with about ``height_px`` pixels of height."""
    depth = focal * BODY_HEIGHT_M / person.height_px
    lowest = vertices[:, 1].max()  # y down: the feet are the largest y
    mid_x = (vertices[:, 0].min() + vertices[:, 0].max()) / 2
    u, v = person.feet
    return np.array([(u - centre[0]) * depth / focal - mid_x, (v - centre[1]) * depth / focal - lowest, depth])


def true_box(vertices: np.ndarray, focal: float, centre: tuple[float, float], width: int, height: int) -> np.ndarray:
    """(4,) (x, y, w, h) of the projected vertices (already translated), clipped to the frame."""
    u = focal * vertices[:, 0] / vertices[:, 2] + centre[0]
    v = focal * vertices[:, 1] / vertices[:, 2] + centre[1]
    x0, y0 = max(u.min(), 0.0), max(v.min(), 0.0)
    x1, y1 = min(u.max(), float(width)), min(v.max(), float(height))
    return np.array([x0, y0, x1 - x0, y1 - y0])


def render_people(body_model, people: Sequence[Person], *, size: tuple[int, int], focal: float = 1000.0,
                  seed: int = 0, background: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Render ``people`` over a textured background.

    Returns:
        image (H, W, 3) uint8 RGB and true boxes (P, 4) (x, y, w, h), in the order of ``people``.
    """
    from viz.renderer import PinholeCamera, SceneMesh, overlay_meshes

    width, height = size
    centre = (width / 2, height / 2)
    image = textured_background(height, width, seed=seed) if background is None else background
    meshes, boxes = [], []
    for index, person in enumerate(people):
        vertices = posed_vertices(body_model, person.pose, person.yaw)
        translation = _place(vertices, person, focal, centre)
        colour = person.colour or _PERSON_COLOURS[index % len(_PERSON_COLOURS)]
        meshes.append(SceneMesh(vertices, body_model.faces, colour, translation))
        boxes.append(true_box(vertices + translation, focal, centre, width, height))
    if meshes:
        image = overlay_meshes(image, meshes, PinholeCamera(focal))
    return image, np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


# Clothing-like colours, darker and lighter than the background, so silhouettes have both contrasts.
_PERSON_COLOURS = ((0.25, 0.3, 0.55), (0.8, 0.45, 0.3), (0.2, 0.5, 0.3), (0.85, 0.8, 0.7), (0.5, 0.2, 0.25))


@pytest.fixture(scope="session")
def renderer_ok(body_model) -> bool:
    """Skip (or fail when INT_REQUIRE_RENDERER=1) when no headless OpenGL platform works."""
    from viz.renderer import RendererUnavailable

    try:
        render_people(body_model, [Person(height_px=20, feet=(8, 30))], size=(16, 32))
    except RendererUnavailable as exc:
        if os.environ.get("INT_REQUIRE_RENDERER") == "1":
            raise
        pytest.skip(f"no headless OpenGL platform works here: {exc}")
    return True


# ----------------------------------------------------------------------------------------------
# Clip writers
# ----------------------------------------------------------------------------------------------


def moving_frames(num_frames: int, *, width: int = 160, height: int = 120, seed: int = 0) -> np.ndarray:
    """(T, H, W, 3) uint8: a smooth random texture scrolling sideways and a white square moving across it.

    Smooth (no per-pixel noise) so that 4:2:0 lossy codecs keep it close to the original; moving so that every
    frame costs bytes (a file cut in half keeps about half of its frames).
    """
    import cv2

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 255, (height // 8 + 1, 2 * width // 8 + 1, 3)).astype(np.uint8)
    texture = cv2.resize(coarse, (2 * width, height), interpolation=cv2.INTER_CUBIC)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        offset = (4 * t) % width
        frame = texture[:, offset:offset + width].copy()
        x = (5 * t) % max(1, width - 24)
        frame[10:34, x:x + 24] = 255
        frames[t] = frame
    return frames


def encoder_available(codec: str) -> bool:
    try:
        av.codec.Codec(codec, "w")
    except Exception:  # noqa: BLE001 - any failure means "not here"
        return False
    return True


def write_video(path: Path, frames: np.ndarray, *, codec: str, fps: int = 25,
                pts_ms: Sequence[int] | None = None, container_options: dict[str, str] | None = None) -> Path:
    """Write (T, H, W, 3) uint8 RGB frames with PyAV; ``pts_ms`` gives explicit times (variable frame rate)."""
    pix_fmt = {"mjpeg": "yuvj420p", "gif": "rgb8"}.get(codec, "yuv420p")
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        if pts_ms is not None:
            stream.codec_context.time_base = fractions.Fraction(1, 1000)
        if len(frames) == 0:
            container.start_encoding()
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            if pts_ms is not None:
                frame.pts = int(pts_ms[index])
                frame.time_base = fractions.Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_gif(path: Path, frames: np.ndarray, *, durations_ms: Sequence[int]) -> Path:
    """An animated GIF through Pillow with per-frame durations."""
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=list(durations_ms), loop=0)
    return path


def h264_codec() -> str:
    """The H.264 encoder when this FFmpeg has one, else MPEG-4 part 2 (both play as .mp4)."""
    return "libx264" if encoder_available("libx264") else "mpeg4"


@pytest.fixture(scope="session")
def clips() -> SimpleNamespace:
    """Clip helpers: moving_frames, write_video, write_gif, encoder_available, h264_codec."""
    return SimpleNamespace(moving_frames=moving_frames, write_video=write_video, write_gif=write_gif,
                           encoder_available=encoder_available, h264_codec=h264_codec)


@pytest.fixture(scope="session")
def scenes(body_model, renderer_ok) -> SimpleNamespace:
    """Scene helpers bound to the session's body model: render(people, size=..., ...), Person, vertices(pose, yaw)."""

    def render(people: Sequence[Person], **kwargs):
        return render_people(body_model, people, **kwargs)

    def vertices(pose: str, yaw: float = 0.0) -> np.ndarray:
        return posed_vertices(body_model, pose, yaw)

    return SimpleNamespace(render=render, Person=Person, vertices=vertices, true_box=true_box,
                           background=textured_background)
