"""The whole pipeline on rendered multi-person clips: results, frames handed to sinks in order, image
coordinates, user boxes, single images, no person, and partial results after a failure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from int_model import build_model
from int_model.crops import project_pinhole
from pipeline.inference import InferenceSettings
from pipeline.results import RESULTS_FILE_NAME, load_results
from pipeline.run import FrameResult, RunSettings, run_pipeline
from pipeline.tracking import box_iou

pytestmark = pytest.mark.slow

WIDTH, HEIGHT, FRAMES, FPS = 320, 240, 24, 25.0
PEOPLE_X = (-1.3, 0.0, 1.3)  # metres, left to right, all 5.5 m from the camera


def render_people_clip(body_model, *, num_frames: int = FRAMES, width: int = WIDTH, height: int = HEIGHT,
                       xs: tuple[float, ...] = PEOPLE_X, distance: float = 5.5, seed: int = 0):
    """A synthetic clip (training.synthetic) of people walking on the spot side by side, facing the camera."""
    from training.synthetic.camera import Camera
    from training.synthetic.motions import periodic_motion
    from training.synthetic.scene import PersonSpec, render_clip
    from viz.renderer import Renderer

    rng = np.random.default_rng(seed)
    people = [PersonSpec(motion=periodic_motion("walk", rng=rng), betas=np.zeros(10, np.float32),
                         heading_deg=0.0, position=(x, 0.0)) for x in xs]
    camera = Camera.look_at(target=np.array([0.0, 0.9, 0.0]), distance=distance, elevation_deg=5.0, roll_deg=0.0,
                            focal_length=0.9 * width, width=width, height=height)
    y, x = np.mgrid[:height, :width]
    background = np.stack([70 + 80 * x / width, 90 + 40 * y / height, 110 + 0 * x], -1).astype(np.uint8)
    with Renderer() as renderer:
        return render_clip(people=people, camera=camera, background=background, num_frames=num_frames, fps=FPS,
                           body_model=body_model, renderer=renderer)


def write_clip(path, frames: np.ndarray, fps: float = FPS):
    from viz.overlay import VideoWriter

    with VideoWriter(path, fps=fps) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.path


@pytest.fixture(scope="module")
def clip(body_model, tmp_path_factory, renderer_ok):
    rendered = render_people_clip(body_model)
    path = write_clip(tmp_path_factory.mktemp("clip") / "people.mp4", rendered.frames)
    return path, rendered


@pytest.fixture(scope="module")
def tiny(body_model):
    torch.manual_seed(0)
    return build_model("tiny", body_model=body_model).eval()


# These tests check the pipeline's mechanics on rendered procedural people, which HOG finds reliably; the
# default detector is tested on real photographs (test_real_people.py).
SETTINGS = RunSettings(detector="hog", inference=InferenceSettings(window=8, encode_batch=8))


class RecordingSink:
    def __init__(self, fail_at: int | None = None) -> None:
        self.frames: list[FrameResult] = []
        self.closed = False
        self.fail_at = fail_at

    def write(self, frame: FrameResult) -> None:
        if frame.frame == self.fail_at:
            raise RuntimeError(f"sink broke at frame {frame.frame}")
        self.frames.append(frame)

    def close(self) -> None:
        self.closed = True


def true_boxes_xywh(rendered) -> np.ndarray:
    """(P, T, 4) (x, y, w, h) from the generator's (cx, cy, w, h) labels."""
    boxes = np.stack([p.bbox for p in rendered.people]).astype(np.float64)
    return np.concatenate([boxes[..., :2] - boxes[..., 2:] / 2, boxes[..., 2:]], axis=-1)


def test_every_person_gets_a_track_and_every_frame_reaches_the_sinks(clip, tiny, tmp_path):
    path, rendered = clip
    sink = RecordingSink()
    stages = set()
    outcome = run_pipeline(path, tmp_path, model=tiny, checkpoint="none (untrained)", settings=SETTINGS,
                           sinks=[sink], progress=lambda stage, done, total: stages.add(stage))
    results = load_results(tmp_path / RESULTS_FILE_NAME)
    assert results.status == "ok" and outcome.results.status == "ok"
    assert results.image_size == (WIDTH, HEIGHT) and results.fps == pytest.approx(FPS)
    assert results.num_frames == FRAMES and results.checkpoint == "none (untrained)"
    assert results.body_model == tiny.body_model.identity
    assert len(results.track_ids) == 3
    # Each track follows one person: its boxes overlap that person's true boxes.
    truth = true_boxes_xywh(rendered)
    for track_id in results.track_ids:
        rows = results.rows_of_track(int(track_id))
        assert len(rows) >= FRAMES - 4
        ious = [box_iou(results.bbox[r], truth[:, results.frame[r]]).max() for r in rows]
        assert np.median(ious) > 0.5
    # Image coordinates: joints3d + cam_t seen by the full-image camera land on joints2d (pixels).
    projected = project_pinhole(results.joints3d, results.cam_t, focal_length=results.focal_length,
                                image_size=results.image_size)
    assert np.abs(projected - results.joints2d).max() < 2.0
    # Frames reach the sink once each, in order, with their people, and the sink is closed.
    assert [f.frame for f in sink.frames] == list(range(FRAMES)) and sink.closed
    for frame in sink.frames:
        rows = results.rows_of_frame(frame.frame)
        assert np.array_equal(frame.track_id, results.track_id[rows])
        assert np.allclose(frame.cam_t, results.cam_t[rows], atol=1e-4)
        assert frame.vertices.shape == (len(rows), tiny.body_model.num_vertices, 3)
        assert frame.image.shape == (HEIGHT, WIDTH, 3)
    assert {"people", "inference", "output"} <= stages
    assert {"decode", "detect", "model", "output", "wall"} <= set(outcome.timings)


def test_detecting_every_other_frame_keeps_the_tracks(clip, tiny, tmp_path):
    path, _ = clip
    settings = RunSettings(detector="hog", detect_every=2, inference=SETTINGS.inference)
    outcome = run_pipeline(path, tmp_path, model=tiny, checkpoint="x", settings=settings)
    results = outcome.results
    assert results.status == "ok" and len(results.track_ids) == 3
    assert all(len(results.rows_of_track(int(t))) >= FRAMES - 4 for t in results.track_ids)
    with pytest.raises(ValueError, match="detect_every"):
        RunSettings(detect_every=100)


def test_user_boxes_replace_detection_and_keep_their_ids(clip, tiny, tmp_path):
    path, rendered = clip
    truth = true_boxes_xywh(rendered)
    lines = ["frame,x,y,w,h,id"] + [f"{t},{b[0]:.1f},{b[1]:.1f},{b[2]:.1f},{b[3]:.1f},{10 + p}"
                                    for p in range(len(truth)) for t, b in enumerate(truth[p])]
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("\n".join(lines))
    settings = RunSettings(boxes=str(boxes), inference=SETTINGS.inference)
    outcome = run_pipeline(path, tmp_path / "out", model=tiny, checkpoint="x", settings=settings)
    results = outcome.results
    assert results.status == "ok" and list(results.track_ids) == [10, 11, 12]
    assert len(results) == 3 * FRAMES
    assert np.allclose(results.bbox[results.rows_of_track(11)], truth[1], atol=0.1)


def test_a_single_image_runs_as_one_frame(clip, tiny, tmp_path):
    from PIL import Image

    _, rendered = clip
    image = tmp_path / "people.png"
    Image.fromarray(rendered.frames[0]).save(image)
    results = run_pipeline(image, tmp_path / "out", model=tiny, checkpoint="x", settings=SETTINGS).results
    assert results.status == "ok" and results.num_frames == 1 and len(results) == 3


def test_no_person_writes_a_results_file_that_says_so(tiny, tmp_path):
    y, x = np.mgrid[:HEIGHT, :WIDTH]
    frames = np.repeat(np.stack([60 + 100 * x / WIDTH, 80 + 0 * x, 120 + 60 * y / HEIGHT], -1)[None], 8, 0)
    path = write_clip(tmp_path / "empty.mp4", frames.astype(np.uint8))
    made = []
    outcome = run_pipeline(path, tmp_path / "out", model=tiny, checkpoint="x", settings=SETTINGS,
                           sinks=lambda info: made.append(info) or [])
    results = load_results(tmp_path / "out")
    assert results.status == "no_person" and len(results) == 0
    assert "no person found" in results.message and "empty.mp4" in results.message
    assert outcome.results.status == "no_person" and made == []  # no sinks without people


def test_a_failure_keeps_what_was_done(clip, tiny, tmp_path):
    path, _ = clip
    sink = RecordingSink(fail_at=10)
    with pytest.raises(RuntimeError, match="sink broke at frame 10"):
        run_pipeline(path, tmp_path, model=tiny, checkpoint="x", settings=SETTINGS, sinks=[sink])
    results = load_results(tmp_path)
    assert results.status == "partial" and "sink broke at frame 10" in results.message
    assert len(results) > 0 and sink.closed
    assert [f.frame for f in sink.frames] == list(range(10))


def test_one_pass_streams_people_into_the_model_before_the_clip_is_read(clip, tiny, tmp_path):
    """Detection, the model and the output overlap: the first frames are finished (decoded by the model and
    handed to the sink) while later frames are still being searched for people, and the clip is decoded once."""
    path, _ = clip
    events: list[tuple[str, int]] = []
    sink = RecordingSink()
    outcome = run_pipeline(path, tmp_path, model=tiny, checkpoint="none (untrained)", settings=SETTINGS,
                           sinks=[sink], progress=lambda stage, done, total: events.append((stage, done)))
    first_done = next(i for i, (stage, _) in enumerate(events) if stage == "inference")
    last_searched = max(i for i, (stage, _) in enumerate(events) if stage == "people")
    assert first_done < last_searched
    people_at_first = max(done for stage, done in events[:first_done] if stage == "people")
    assert people_at_first < FRAMES
    assert outcome.results.status == "ok" and [f.frame for f in sink.frames] == list(range(FRAMES))
    assert outcome.timings["decode"] > 0 and set(outcome.passes) == {"stream"}
