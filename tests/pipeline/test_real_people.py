"""The shipped detector and keypoint networks on real photographs (tests/data/real, OpenCV's sample data).

The expected boxes and points were read off the photographs by eye (pixels, generous tolerances); each test
fails when the network misses the person, finds a second one, or puts a joint on the wrong limb.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline import detection, onnx_models
from pipeline.detection import DEFAULT_DETECTOR, get_detector
from pipeline.keypoints import BLAZEPOSE_NAMES, BlazePose
from pipeline.tracking import box_iou

REAL = Path(__file__).resolve().parents[1] / "data" / "real"
needs_ssd = pytest.mark.skipif(not onnx_models.onnxruntime_available(), reason="onnxruntime is not installed")
needs_blazepose = pytest.mark.skipif(not onnx_models.onnxruntime_available(), reason="onnxruntime is not installed")


def _rgb(name: str) -> np.ndarray:
    image = cv2.imread(str(REAL / name), cv2.IMREAD_COLOR)
    assert image is not None, name
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _xyxy(box: np.ndarray) -> np.ndarray:
    return np.array([box[0], box[1], box[0] + box[2], box[1] + box[3]])


def test_ssdlite_is_the_default_detector() -> None:
    assert DEFAULT_DETECTOR == "ssdlite"
    assert "ssdlite" in detection.list_detectors()


@needs_ssd
def test_ssdlite_finds_the_footballer_and_nobody_in_the_crowd() -> None:
    people = get_detector("ssdlite").detect(_rgb("messi5.jpg"))
    assert len(people) == 1, [p.box for p in people]
    # His body from the raised right hand (x ~70) to the left boot (x ~455), hair (y ~62) to the boots (y ~335).
    assert box_iou(people[0].box, np.array([70.0, 62.0, 385.0, 273.0]))[0, 0] > 0.7
    assert people[0].score > 0.9


@needs_ssd
def test_ssdlite_finds_both_players_including_the_one_cut_by_the_edge() -> None:
    people = get_detector("ssdlite").detect(_rgb("basketball1.png"))
    assert len(people) == 2, [p.box for p in people]
    left, right = sorted(people, key=lambda p: p.box[0])
    # Left: face at (80, 115), chest at (85, 200). Right: cut by the right edge, hair at (560, 60), shirt to the bottom.
    for box, inside in ((left.box, [(80, 115), (85, 200)]), (right.box, [(560, 60), (560, 300), (600, 430)])):
        x0, y0, x1, y1 = _xyxy(box)
        assert all(x0 <= x <= x1 and y0 <= y <= y1 for x, y in inside), box
    assert _xyxy(left.box)[2] < 300 < _xyxy(right.box)[0]  # neither box spans both people


@needs_ssd
def test_tiles_find_a_small_person_the_whole_frame_misses() -> None:
    """The photo shrunk to 120 pixels inside a 768x576 enlargement of itself: its left player is 101 pixels tall,
    about 53 pixels of the whole-frame pass's 300x300 input (too small), 118 of a 256-pixel tile's."""
    photo = _rgb("basketball1.png")
    frame = cv2.resize(photo, (768, 576))
    frame[400:520, 400:560] = cv2.resize(photo, (160, 120), interpolation=cv2.INTER_AREA)
    small_player = np.array([400 + 30 / 4, 400 + 75 / 4, 130 / 4, 405 / 4])
    whole = get_detector("ssdlite", params=detection.SsdParams(tiles=False)).detect(frame)
    tiled = get_detector("ssdlite").detect(frame)
    assert max((box_iou(p.box, small_player)[0, 0] for p in whole), default=0.0) < 0.3
    assert max((box_iou(p.box, small_player)[0, 0] for p in tiled), default=0.0) > 0.7, [p.box for p in tiled]


def test_tiles_cover_the_frame_with_overlap() -> None:
    tiles = detection.tile_grid(768, 576, side=256, overlap=0.3, max_tiles=20)
    covered = np.zeros((576, 768), bool)
    for x, y, w, h in tiles:
        assert w == h == 256 and 0 <= x <= 768 - w and 0 <= y <= 576 - h
        covered[y:y + h, x:x + w] = True
    assert covered.all()
    xs = sorted({t[0] for t in tiles})
    assert all(b - a <= 256 * 0.7 + 1 for a, b in zip(xs, xs[1:]))
    assert detection.tile_grid(320, 240, side=256, overlap=0.3, max_tiles=20) == []  # small frames: whole only
    assert len(detection.tile_grid(4000, 3000, side=256, overlap=0.3, max_tiles=12)) <= 12


@needs_blazepose
def test_blazepose_puts_the_footballers_joints_on_his_limbs() -> None:
    image = _rgb("messi5.jpg")
    (person,) = BlazePose().estimate(image, np.array([[70.0, 62.0, 385.0, 273.0]]))
    assert person is not None and person.presence > 0.9

    def at(name: str) -> np.ndarray:
        return person.points[BLAZEPOSE_NAMES.index(name)]

    # Read off the photo: his right arm is raised at the image's left, the left hand reaches out at the right,
    # the left boot is beside the ball and the right (standing) foot at the bottom.
    assert np.linalg.norm(at("right_wrist") - [100, 105]) < 25
    assert np.linalg.norm(at("left_wrist") - [355, 168]) < 25
    assert np.linalg.norm(at("left_ankle") - [420, 265]) < 30
    assert np.linalg.norm(at("right_ankle") - [275, 318]) < 30
    assert np.linalg.norm(at("nose") - [240, 108]) < 25
    joints, confidence = person.smpl_joints()
    assert joints.shape == (24, 2) and (confidence > 0).sum() == 12


@needs_blazepose
def test_blazepose_says_nobody_on_an_empty_wall() -> None:
    wall = _rgb("basketball1.png")[:, 230:430].copy()
    assert BlazePose().estimate(wall, np.array([[0.0, 0.0, 200.0, 480.0]])) == [None]
