"""Overlay frames and videos: the full-frame overlay lands where the crop overlay did, one colour per track,
side view, streamed H.264 (or VP9) that decodes with the right frames, per-frame mesh files."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
import torch
import trimesh

from int_model.geometry import axis_angle_to_rotmat
from int_model.crops import CropSettings, CropTransform, crop_camera_to_full, default_focal_length
from pipeline.run import FrameResult
from tests.support import CHROMIUM, NO_CHROMIUM
from viz.overlay import (
    VIDEO_CODECS,
    MeshSequenceSink,
    OverlaySettings,
    OverlayVideoSink,
    VideoWriter,
    choose_video_codec,
    render_overlay_frame,
)
from viz.renderer import render_crop_overlay, soft_colour

WIDTH, HEIGHT = 320, 240


@pytest.fixture(scope="module")
def standing(body_model) -> np.ndarray:
    """(V, 3) an upright body in the camera frame (arms down a little), before translation."""
    rotvec = torch.zeros(24, 3)
    rotvec[0] = torch.tensor([np.pi, 0.0, 0.0])
    rotvec[16], rotvec[17] = torch.tensor([0.0, 0.0, -1.0]), torch.tensor([0.0, 0.0, 1.0])
    with torch.no_grad():
        return body_model(rotmat=axis_angle_to_rotmat(rotvec)[None], betas=torch.zeros(1, 10)).vertices[0].numpy()


def frame_result(body_model, vertices: np.ndarray, *, index: int, track_ids: list[int], boxes: np.ndarray,
                 cams: np.ndarray, image: np.ndarray | None = None) -> FrameResult:
    """A FrameResult for people with crop cameras ``cams`` (n, 3) in crops around ``boxes`` (n, 4)."""
    transforms = [CropTransform.from_box(b, settings=CropSettings(size=224)) for b in boxes]
    focal = default_focal_length(WIDTH, HEIGHT)
    cam_t = crop_camera_to_full(cams, np.array([t.centre for t in transforms]).reshape(-1, 2),
                                np.array([t.side for t in transforms]), image_size=(WIDTH, HEIGHT), focal_length=focal)
    n = len(track_ids)
    if image is None:
        image = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
    return FrameResult(frame=index, image=image, track_id=np.array(track_ids, dtype=np.int64),
                       bbox=np.asarray(boxes, dtype=np.float64).reshape(-1, 4), cam_t=cam_t,
                       joints2d=np.zeros((n, 24, 2)), pose=np.zeros((n, 72)), betas=np.zeros((n, 10)),
                       vertices=np.repeat(vertices[None], n, axis=0), faces=body_model.faces, focal_length=focal)


def test_this_ffmpeg_has_h264():
    codec = choose_video_codec()
    assert codec in VIDEO_CODECS
    assert codec.name == "libx264" and codec.suffix == ".mp4" and codec.pixel_format == "yuv420p"


@pytest.mark.parametrize("codec", VIDEO_CODECS, ids=[c.name for c in VIDEO_CODECS])
def test_video_writer_streams_a_playable_file_with_even_size(tmp_path, codec):
    rng = np.random.default_rng(0)
    frames = [np.clip(rng.normal(120, 30, (45, 61, 3)) + 10 * k, 0, 255).astype(np.uint8) for k in range(7)]
    with VideoWriter(tmp_path / "clip.any", fps=29.97, codec=codec) as writer:
        for frame in frames:
            writer.write(frame)
    assert writer.path.suffix == codec.suffix and writer.frames_written == 7
    with av.open(str(writer.path)) as container:
        stream = container.streams.video[0]
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert float(stream.average_rate) == pytest.approx(29.97, abs=0.01)
    assert len(decoded) == 7 and decoded[0].shape == (46, 62, 3)
    assert np.abs(decoded[3][:45, :61].astype(float).mean() - frames[3].astype(float).mean()) < 3.0
    with pytest.raises(ValueError, match="size changed"):
        with VideoWriter(tmp_path / "b.mp4", fps=10) as other:
            other.write(frames[0])
            other.write(frames[0][:40])


def test_full_frame_overlay_lands_where_the_crop_overlay_did(body_model, standing, renderer):
    """The mesh drawn with cam_t in the full image's pinhole camera covers the pixels the weak-perspective crop
    overlay covers once mapped back from the crop to the image."""
    box = np.array([190.0, 60.0, 60.0, 150.0])
    cam = np.array([0.95, 0.04, 0.12])
    crop_size = 256
    transform = CropTransform.from_box(box, settings=CropSettings(size=crop_size))
    crop = render_crop_overlay(np.zeros((crop_size, crop_size, 3), np.uint8), standing, body_model.faces, cam,
                               colour=(1.0, 1.0, 1.0), renderer=renderer)
    back = cv2.warpAffine(crop, cv2.invertAffineTransform(transform.image_to_crop_matrix()), (WIDTH, HEIGHT))
    frame = frame_result(body_model, standing, index=0, track_ids=[0], boxes=box[None], cams=cam[None],
                         image=np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    full = render_overlay_frame(frame, settings=OverlaySettings(alpha=1.0, labels=False), renderer=renderer)
    a, b = back.max(axis=-1) > 60, full.max(axis=-1) > 60
    assert a.sum() > 1000
    assert (a & b).sum() / (a | b).sum() > 0.9


def test_video_sink_colours_tracks_adds_a_side_view_and_decodes(body_model, standing, renderer, tmp_path):
    boxes = np.array([[40.0, 50.0, 60.0, 150.0], [200.0, 60.0, 50.0, 130.0]])
    cams = np.array([[0.9, 0.0, 0.1], [0.9, 0.0, 0.1]])
    frames = [frame_result(body_model, standing, index=k, track_ids=[0, 1] if k != 2 else [], cams=cams if k != 2
                           else np.zeros((0, 3)), boxes=boxes if k != 2 else np.zeros((0, 4))) for k in range(5)]
    originals = [f.image.copy() for f in frames]
    sink = OverlayVideoSink(tmp_path / "overlay", fps=10.0, settings=OverlaySettings(side_view=True))
    for frame in frames:
        sink.write(frame)
    sink.close()
    assert all(np.array_equal(f.image, o) for f, o in zip(frames, originals))  # inputs untouched
    assert sink.path.name == "overlay.mp4"
    with av.open(str(sink.path)) as container:
        stream = container.streams.video[0]
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert stream.codec_context.name == "h264"
    assert len(decoded) == 5
    panel = OverlaySettings().side_view_width * HEIGHT
    assert decoded[0].shape[1] == WIDTH + int(round(panel)) + int(round(panel)) % 2
    left, right = decoded[0][:, :WIDTH], decoded[0][:, WIDTH:]
    # Each person is drawn in its own track colour, near its box centre.
    for track_id, box in enumerate(boxes):
        cx, cy = int(box[0] + box[2] / 2), int(box[1] + box[3] * 0.4)
        pixel = left[cy - 2: cy + 3, cx - 2: cx + 3].reshape(-1, 3).mean(axis=0)
        distances = [np.abs(pixel / 255.0 - np.asarray(soft_colour(k))).sum() for k in (0, 1)]
        assert np.argmin(distances) == track_id, (track_id, pixel)
    assert np.abs(left.astype(int) - 40).max() > 100  # not blank
    assert (right.astype(int).sum(axis=-1) < 600).sum() > 200  # people in the side view
    assert np.abs(decoded[2][:, :WIDTH].astype(int) - 40).max() < 12  # no people: the frame as it was


def test_mesh_sequence_sink_writes_one_file_per_frame_with_people(body_model, standing, tmp_path):
    boxes = np.array([[40.0, 50.0, 60.0, 150.0], [200.0, 60.0, 50.0, 130.0]])
    sink = MeshSequenceSink(tmp_path / "meshes", suffixes=(".obj", ".glb"))
    sink.write(frame_result(body_model, standing, index=3, track_ids=[0, 1], boxes=boxes,
                            cams=np.array([[0.9, 0.0, 0.1]] * 2)))
    sink.write(frame_result(body_model, standing, index=4, track_ids=[], boxes=np.zeros((0, 4)),
                            cams=np.zeros((0, 3))))
    sink.close()
    assert sorted(p.name for p in (tmp_path / "meshes").iterdir()) == ["frame_000003.glb", "frame_000003.obj"]
    mesh = trimesh.load(tmp_path / "meshes" / "frame_000003.obj", process=False)
    assert len(mesh.vertices) == 2 * len(standing)
    scene = trimesh.load(tmp_path / "meshes" / "frame_000003.glb")
    assert len(scene.geometry) == 2


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--autoplay-policy=no-user-gesture-required", "--allow-file-access-from-files"]


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_overlay_video_plays_in_chromium(body_model, standing, renderer, tmp_path):
    """Chromium decodes the overlay video: it reports the size and duration, plays to the end, and a frame drawn to
    a canvas shows the people."""
    from playwright.sync_api import sync_playwright

    boxes = np.array([[40.0, 50.0, 60.0, 150.0], [200.0, 60.0, 50.0, 130.0]])
    sink = OverlayVideoSink(tmp_path / "overlay", fps=10.0)
    for k in range(10):
        sink.write(frame_result(body_model, standing, index=k, track_ids=[0, 1], boxes=boxes,
                                cams=np.array([[0.9, 0.0, 0.1]] * 2)))
    sink.close()
    page_path = tmp_path / "play.html"
    page_path.write_text(f'<video id="v" src="{sink.path.name}" muted playsinline></video><canvas id="c"></canvas>')
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(page_path.as_uri())
        state = page.evaluate("""async () => {
            const v = document.getElementById('v');
            const type = v.canPlayType('video/mp4; codecs="avc1.640028"');
            if (v.readyState < 2) await new Promise((ok, bad) => { v.onloadeddata = ok; v.onerror = () => bad(
                new Error('media error ' + (v.error && v.error.code))); });
            await v.play();
            await new Promise(ok => { if (v.ended) ok(); else v.onended = ok; });
            v.currentTime = 0.5;
            await new Promise(ok => { v.onseeked = ok; });
            const c = document.getElementById('c');
            c.width = v.videoWidth; c.height = v.videoHeight;
            const g = c.getContext('2d');
            g.drawImage(v, 0, 0);
            const px = g.getImageData(70, 110, 1, 1).data;
            return {type, width: v.videoWidth, height: v.videoHeight, duration: v.duration,
                    frames: v.getVideoPlaybackQuality().totalVideoFrames, pixel: Array.from(px)};
        }""")
        browser.close()
    assert state["type"] in ("probably", "maybe")
    assert (state["width"], state["height"]) == (WIDTH, HEIGHT)
    assert state["duration"] == pytest.approx(1.0, abs=0.15)
    assert state["frames"] >= 5
    assert np.abs(np.array(state["pixel"][:3]) - 40).max() > 60  # a mesh, not the plain background
