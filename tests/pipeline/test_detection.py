"""Person detection: registry, whole-frame mode, NMS, and the HOG detector on rendered people at known places."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import pipeline.detection as detection
from pipeline.detection import (
    DetectorUnavailable,
    HogParams,
    PersonDetector,
    WholeFrameDetector,
    get_detector,
    list_detectors,
    nms,
)
from pipeline.media import open_media
from pipeline.tracking import TrackingParams, box_iou, track
from pipeline.types import Detection

MIN_IOU = 0.5  # a true person counts as found when a detection overlaps its projected box by more than this

needs_hog = pytest.mark.skipif(not detection.hog_available(), reason=detection.HOG_INSTALL_HINT)


def matched_ious(detections: list[Detection], truth: np.ndarray) -> np.ndarray:
    """Best IoU of each true box (P, 4) with any detection (one detection per person: greedy by IoU)."""
    if not detections:
        return np.zeros(len(truth))
    iou = box_iou(truth, np.stack([d.box for d in detections]))
    best = np.zeros(len(truth))
    for _ in range(min(iou.shape)):
        person, det = np.unravel_index(np.argmax(iou), iou.shape)
        if iou[person, det] <= 0:
            break
        best[person] = iou[person, det]
        iou[person, :] = -1
        iou[:, det] = -1
    return best


@pytest.fixture(scope="module")
def hog() -> PersonDetector:
    if not detection.hog_available():
        pytest.skip(detection.HOG_INSTALL_HINT)
    return get_detector("hog")


# ----------------------------------------------------------------------------------------------
# Interface and registry
# ----------------------------------------------------------------------------------------------


def test_registry_lists_and_builds_backends():
    names = list_detectors()
    assert {"hog", "whole_frame"} <= set(names)
    assert isinstance(get_detector("whole_frame"), WholeFrameDetector)
    with pytest.raises(ValueError, match="unknown detector 'yolo'; choose one of: ssdlite, hog, whole_frame"):
        get_detector("yolo")


def test_whole_frame_mode_and_batch():
    frames = np.zeros((3, 40, 60, 3), np.uint8)
    per_frame = get_detector("whole_frame").detect_batch(frames, first_index=5)
    assert [[d.frame for d in dets] for dets in per_frame] == [[5], [6], [7]]
    np.testing.assert_allclose(per_frame[0][0].box, [0, 0, 60, 40])
    assert per_frame[0][0].score == 1.0
    with pytest.raises(ValueError, match="uint8"):
        WholeFrameDetector().detect(np.zeros((40, 60, 3), np.float32))


def test_missing_hog_says_what_to_install(monkeypatch):
    monkeypatch.setattr(detection, "hog_available", lambda: False)
    with pytest.raises(DetectorUnavailable, match="opencv-contrib-python-headless"):
        get_detector("hog")
    assert "not available here" in list_detectors()["hog"]


def test_register_a_backend():
    class Fixed(PersonDetector):
        name = "fixed"

        def detect(self, frame, *, frame_index=0):
            return [Detection(frame=frame_index, box=np.array([1.0, 2, 3, 4]), score=0.5)]

    detection.register_detector("fixed_test", Fixed, description="a fixed box")
    try:
        assert get_detector("fixed_test").detect(np.zeros((8, 8, 3), np.uint8))[0].score == 0.5
    finally:
        detection.DETECTORS.pop("fixed_test")


def test_nms_merges_clusters_and_drops_lonely_hits():
    boxes = np.array([[10, 10, 20, 40], [12, 10, 20, 40], [11, 11, 20, 40], [200, 10, 20, 40]], float)
    scores = np.array([1.0, 3.0, 1.0, 5.0])
    merged, best, sizes = nms(boxes, scores, iou_threshold=0.3, min_cluster=2)
    assert len(merged) == 1 and sizes.tolist() == [3] and best.tolist() == [3.0]
    np.testing.assert_allclose(merged[0], [11.4, 10.2, 20, 40])  # score-weighted mean of the cluster
    assert len(nms(boxes, scores, iou_threshold=0.3)[0]) == 2


@needs_hog
def test_empty_scene_has_no_people(hog, scenes):
    background = scenes.background(480, 640, seed=3)
    assert hog.detect(background) == []


# ----------------------------------------------------------------------------------------------
# Rendered people at known places
# ----------------------------------------------------------------------------------------------


@needs_hog
def test_small_people_in_a_wide_street(hog, scenes):
    P = scenes.Person
    people = [P("stand", 0.0, 64, (150, 520)), P("walk", np.pi, 80, (450, 600)),
              P("walk", 0.4, 96, (800, 470)), P("stand", np.pi, 72, (1100, 640))]
    image, truth = scenes.render(people, size=(1280, 720), seed=1)
    assert np.all((truth[:, 3] >= 60) & (truth[:, 3] <= 100))
    found = hog.detect(image)
    ious = matched_ious(found, truth)
    assert np.all(ious > MIN_IOU), ious
    assert len(found) <= len(people) + 1


@needs_hog
def test_one_large_person_in_a_close_shot(hog, scenes):
    image, truth = scenes.render([scenes.Person("stand", 0.0, 640, (640, 700))], size=(1280, 720), seed=2)
    assert truth[0, 3] > 0.85 * 720
    found = hog.detect(image)
    assert matched_ious(found, truth)[0] > MIN_IOU
    assert len(found) == 1


@needs_hog
def test_three_people_in_one_frame(hog, scenes):
    P = scenes.Person
    people = [P("walk", 0.0, 220, (180, 470)), P("stand", np.pi, 300, (480, 510)), P("walk", -0.4, 180, (780, 450))]
    image, truth = scenes.render(people, size=(960, 540), seed=4)
    found = hog.detect(image)
    ious = matched_ious(found, truth)
    assert np.all(ious > MIN_IOU), ious
    assert len(found) == 3
    assert all(0.0 <= d.score <= 1.0 and d.frame == 0 for d in found)


@needs_hog
def test_huge_image_detected_on_a_downscaled_copy(hog, scenes, tmp_path):
    image, truth = scenes.render([scenes.Person("stand", 0.0, 700, (800, 1100))], size=(1600, 1200), seed=5)
    upscale = 5  # 8000 x 6000 pixels, as a modern phone photo
    Image.fromarray(image).resize((8000, 6000), Image.Resampling.BILINEAR).save(tmp_path / "photo.jpg", quality=85)
    reader = open_media(tmp_path / "photo.jpg")
    assert max(reader.info.width, reader.info.height) == 1920
    assert any("8000x6000" in note for note in reader.info.notes)
    frame = reader.read_all()[0]
    found = hog.detect(frame)
    assert len(found) == 1
    in_source = found[0].box / reader.scale  # back to the photo's own pixels
    assert box_iou(in_source, truth[0] * upscale)[0, 0] > MIN_IOU


@needs_hog
@pytest.mark.slow
def test_rendered_clip_tracks_keep_ids_through_an_occlusion(hog, scenes):
    """Two people walk across a 640x360 clip; one is hidden for 3 frames; detection + tracking keep both ids."""
    P = scenes.Person
    num_frames, hidden = 12, {5, 6, 7}
    background = scenes.background(360, 640, seed=6)
    per_frame, truth = [], []
    for t in range(num_frames):
        people = [P("walk", 0.0, 150, (120 + 12 * t, 300)), P("stand", np.pi, 130, (520 - 8 * t, 330))]
        visible = [p for i, p in enumerate(people) if not (i == 0 and t in hidden)]
        image, boxes = scenes.render(visible, size=(640, 360), background=background)
        per_frame.append(hog.detect(image, frame_index=t))
        truth.append(boxes)
    tracks = track(per_frame, num_frames=num_frames, params=TrackingParams(min_track_length=5))
    summary = [f"id {t.track_id} frames {t.frames.tolist()} scores {t.scores.round(2).tolist()}" for t in tracks]
    assert len(tracks) == 2, summary
    assert all(t.frames.tolist() == list(range(num_frames)) for t in tracks), summary
    walker = max(tracks, key=lambda t: t.boxes[-1, 0] - t.boxes[0, 0])  # the one moving right
    assert walker.scores[sorted(hidden)].tolist() == [0.0, 0.0, 0.0]  # filled in, not detected
    for t in range(num_frames):
        assert box_iou(walker.boxes[t], truth[t][0] if t not in hidden else walker.boxes[t])[0, 0] > MIN_IOU


def test_hog_params_validate():
    with pytest.raises(ValueError, match="pyramid_scale"):
        HogParams(pyramid_scale=1.0)
    with pytest.raises(ValueError, match="min_person_height"):
        HogParams(min_person_height=4)


def test_shipped_networks_are_where_the_loader_looks():
    """The ONNX weights ship inside the ``pipeline`` package; a lost file fails here rather than skipping tests."""
    from pipeline import onnx_models

    for path in (onnx_models.SSDLITE_PERSON, onnx_models.BLAZEPOSE_FULL):
        assert path.is_file(), path
        assert path.stat().st_size > 1_000_000, path
