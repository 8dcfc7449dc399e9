"""Tracking: stable ids through motion, crossings and short misses; gap filling; short tracks; smoothing."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.tracking import StreamingTracker, TrackingParams, appearance, box_iou, smooth_boxes, track
from pipeline.types import Detection, Track


def walker(start: tuple[float, float], velocity: tuple[float, float], *, size=(40.0, 100.0)):
    """Box (x, y, w, h) of a person at frame t moving with constant velocity (pixels per frame)."""

    def box(t: int) -> np.ndarray:
        return np.array([start[0] + velocity[0] * t, start[1] + velocity[1] * t, size[0], size[1]])

    return box


def detections_for(num_frames: int, people, *, missing=None, noise: float = 0.0, seed: int = 0):
    """detections[t] for walkers; ``missing`` maps a person index to frames where it is not detected."""
    rng = np.random.default_rng(seed)
    missing = missing or {}
    out = []
    for t in range(num_frames):
        frame = []
        for index, person in enumerate(people):
            if t in missing.get(index, ()):
                continue
            box = person(t) + rng.normal(0.0, noise, 4) * np.array([1, 1, 0.5, 0.5])
            frame.append(Detection(frame=t, box=box, score=0.9))
        out.append(frame)
    return out


def track_of(tracks: list[Track], person, frame: int) -> Track:
    """The track whose box at ``frame`` overlaps the person's true box most."""
    best = max(tracks, key=lambda t: box_iou(t.boxes[np.searchsorted(t.frames, frame)], person(frame))[0, 0]
               if frame in t.frames else -1.0)
    assert frame in best.frames
    return best


def test_two_people_keep_their_ids():
    left = walker((50, 100), (3, 0))
    right = walker((400, 120), (-2, 0.5))
    tracks = track(detections_for(40, [left, right]), num_frames=40)
    assert len(tracks) == 2
    assert [t.track_id for t in tracks] == [0, 1]
    for t in tracks:
        assert t.frames.tolist() == list(range(40))
    assert track_of(tracks, left, 0).track_id == track_of(tracks, left, 39).track_id == 0
    assert track_of(tracks, right, 0).track_id == track_of(tracks, right, 39).track_id == 1


def test_ids_survive_two_people_crossing():
    # Two people walk past each other (one slightly lower in the image, as if nearer); velocity keeps them apart.
    a = walker((0, 100), (8, 0))
    b = walker((320, 115), (-8, 0))
    tracks = track(detections_for(40, [a, b], noise=1.0), num_frames=40)
    assert len(tracks) == 2
    for person in (a, b):
        first, last = track_of(tracks, person, 0), track_of(tracks, person, 39)
        assert first.track_id == last.track_id
        assert box_iou(last.boxes[-1], person(39))[0, 0] > 0.7


def _painted(colour: tuple[int, int, int]) -> np.ndarray:
    """The appearance of a person in clothes of one colour on a grey road."""
    frame = np.full((200, 100, 3), 128, np.uint8)
    frame[20:180, 30:70] = colour
    return appearance(frame, np.array([20.0, 10.0, 60.0, 180.0]))


def test_appearance_keeps_ids_when_two_people_meet_and_turn_back():
    """A red and a dark walker meet, stand together for 4 frames (one hidden behind the other), then each walks
    back the way they came. Boxes alone predict that they walked on past each other (swapped ids); their clothes
    say who is who."""
    def there_and_back(x0: float, speed: float):
        def box(t: int) -> np.ndarray:
            x = x0 + speed * min(t, 20) - speed * max(0, t - 24)
            return np.array([x, 100.0, 40.0, 100.0])
        return box

    red, dark = there_and_back(0.0, 7.0), there_and_back(300.0, -7.0)
    colours = {0: _painted((200, 30, 30)), 1: _painted((30, 30, 40))}
    plain = detections_for(45, [red, dark], missing={1: set(range(20, 25))})
    dressed = [[Detection(d.frame, d.box, d.score, appearance=colours[int(d.box[0] > red(d.frame)[0] + 1)])
                for d in frame] for frame in plain]
    def same_track_before_and_after(tracks: list[Track], person) -> bool:
        return track_of(tracks, person, 5).track_id == track_of(tracks, person, 44).track_id

    with_clothes = track(dressed, num_frames=45)
    assert len(with_clothes) == 2
    assert same_track_before_and_after(with_clothes, red) and same_track_before_and_after(with_clothes, dark)
    boxes_only = track(plain, num_frames=45)  # the same clip without appearance: the test can fail
    assert not (same_track_before_and_after(boxes_only, red) and same_track_before_and_after(boxes_only, dark))


def test_appearance_is_unit_length_and_tells_colours_apart():
    red, red_again, dark = _painted((200, 30, 30)), _painted((190, 40, 35)), _painted((30, 30, 40))
    assert np.isclose(np.linalg.norm(red), 1.0)
    assert red @ red_again > 0.8 > red @ dark + 0.5
    assert appearance(np.zeros((10, 10, 3), np.uint8), np.array([0.0, 0.0, 2.0, 2.0])) is None


def test_three_frame_miss_is_filled_by_interpolation():
    person = walker((100, 50), (4, 1))
    dets = detections_for(25, [person], missing={0: {10, 11, 12}})
    (only,) = track(dets, num_frames=25, params=TrackingParams(smoothing_window=1))
    assert only.track_id == 0
    assert only.frames.tolist() == list(range(25))
    assert only.scores[10:13].tolist() == [0.0, 0.0, 0.0]
    assert np.all(only.scores[:10] > 0) and np.all(only.scores[13:] > 0)
    for t in (10, 11, 12):
        np.testing.assert_allclose(only.boxes[t], person(t), atol=1e-6)


def test_miss_longer_than_allowed_starts_a_new_track():
    person = walker((100, 50), (1, 0))
    dets = detections_for(30, [person], missing={0: set(range(10, 16))})  # 6 missed frames
    tracks = track(dets, num_frames=30, params=TrackingParams(max_missed_frames=3))
    assert [(t.track_id, int(t.frames[0]), int(t.frames[-1])) for t in tracks] == [(0, 0, 9), (1, 16, 29)]


def test_short_tracks_are_dropped_but_single_frames_kept_for_short_clips():
    person = walker((100, 50), (1, 0))
    dets = detections_for(20, [person])
    dets[5].append(Detection(frame=5, box=np.array([500.0, 300, 30, 80]), score=0.9))  # a 2-frame false alarm
    dets[6].append(Detection(frame=6, box=np.array([501.0, 300, 30, 80]), score=0.9))
    tracks = track(dets, num_frames=20, params=TrackingParams(min_track_length=5))
    assert len(tracks) == 1 and len(tracks[0]) == 20

    one_image = [[Detection(frame=0, box=np.array([10.0, 10, 20, 50]), score=0.8),
                  Detection(frame=0, box=np.array([100.0, 10, 20, 50]), score=0.7)]]
    tracks = track(one_image, num_frames=1)
    assert [t.track_id for t in tracks] == [0, 1]  # left to right
    np.testing.assert_allclose(tracks[0].boxes[0], [10, 10, 20, 50])


def test_ids_follow_first_appearance():
    late = walker((300, 50), (0, 0))
    early = walker((600, 50), (0, 0))
    dets = detections_for(20, [late, early], missing={0: set(range(5))})
    tracks = track(dets, num_frames=20)
    assert track_of(tracks, early, 0).track_id == 0
    assert track_of(tracks, late, 10).track_id == 1
    assert tracks[1].frames[0] == 5


def test_smoothing_reduces_jitter_without_lag():
    person = walker((100, 80), (5, 0.5))
    dets = detections_for(60, [person], noise=4.0, seed=3)
    raw = track(dets, num_frames=60, params=TrackingParams(smoothing_window=1))[0]
    smooth = track(dets, num_frames=60, params=TrackingParams(smoothing_window=9))[0]
    truth = np.stack([person(t) for t in range(60)])
    raw_error = np.abs(raw.boxes - truth)[:, :2].mean()
    smooth_error = np.abs(smooth.boxes - truth)[:, :2].mean()
    assert smooth_error < 0.7 * raw_error
    # No lag on constant motion: the smoothed centre is not behind the true one on average.
    assert abs(np.mean(smooth.boxes[:, 0] - truth[:, 0])) < 1.0


def test_smooth_boxes_handles_short_runs():
    boxes = np.array([[0.0, 0, 10, 20], [1, 0, 10, 20]])
    np.testing.assert_allclose(smooth_boxes(boxes, window=7, order=2), boxes)
    line = np.stack([np.array([t, 2 * t, 10, 20], float) for t in range(5)])
    np.testing.assert_allclose(smooth_boxes(line, window=7, order=2), line, atol=1e-9)  # window shrinks to 5


def test_low_scores_ignored_and_inputs_checked():
    person = walker((100, 50), (1, 0))
    dets = [[Detection(frame=t, box=person(t), score=0.2)] for t in range(10)]
    assert track(dets, num_frames=10, params=TrackingParams(min_score=0.5)) == []
    assert track([], num_frames=5) == []
    with pytest.raises(ValueError, match="num_frames"):
        track(dets, num_frames=5)
    with pytest.raises(ValueError, match="frame 3 listed under frame 0"):
        track([[Detection(frame=3, box=person(0), score=0.9)]], num_frames=4)
    with pytest.raises(ValueError, match="smoothing_window"):
        TrackingParams(smoothing_window=4)


def test_streaming_tracker_hands_out_the_batch_tracks_early_and_in_order():
    people = [walker((100, 50), (2, 0)), walker((500, 60), (-2, 0.5)), walker((300, 200), (0, 0))]
    missing = {0: {7, 8, 9}, 1: set(range(30, 60)), 2: set(range(0, 20))}
    dets = detections_for(80, people, missing=missing, noise=2.0)
    dets[40].append(Detection(frame=40, box=np.array([700.0, 10, 20, 40]), score=0.9))  # a one-frame false alarm
    batch = track(dets, num_frames=80)
    tracker = StreamingTracker(num_frames=80)
    got: dict[int, list] = {}
    lag = []
    for frame, frame_dets in enumerate(dets):
        before = tracker.complete_before
        for rows in tracker.update(frame, frame_dets):
            assert rows.frames[0] >= before  # nothing is handed out for a frame already declared complete
            got.setdefault(rows.track_id, []).append(rows)
            lag.extend(frame - rows.frames)
        assert tracker.complete_before <= frame + 1
    for rows in tracker.finish():
        got.setdefault(rows.track_id, []).append(rows)
    assert sorted(got) == [t.track_id for t in batch]
    for t in batch:
        parts = got[t.track_id]
        frames = np.concatenate([p.frames for p in parts])
        np.testing.assert_array_equal(frames, t.frames)  # in order, each frame once
        np.testing.assert_allclose(np.concatenate([p.boxes for p in parts]), t.boxes, atol=1e-9)
        assert [p.ended for p in parts].count(True) == 1 and parts[-1].ended
    # Most rows leave a few frames after they were seen (half a smoothing window, or a bridged miss).
    assert np.median(lag) <= TrackingParams().smoothing_window
    with pytest.raises(ValueError, match="in order"):
        tracker.update(3, [])
