"""results.npz: plain arrays (no pickle), typed reader, sorting, statuses, atomic writes, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.results import (
    RESULTS_FILE_NAME,
    ROW_FIELDS,
    UNTRAINED_CHECKPOINT,
    PipelineResults,
    ResultsError,
    load_results,
    save_results,
)

RUN = dict(fps=25.0, image_size=(640, 360), num_frames=3, timestamps=np.array([0.0, 0.04, 0.08]),
           focal_length=14285.7, body_model="procedural-v1:abc", checkpoint=UNTRAINED_CHECKPOINT,
           source="clip.mp4", message="2 track(s)")


def random_rows(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = {name: rng.normal(size=(n, *shape)).astype(dtype) for name, (dtype, shape) in ROW_FIELDS.items()}
    rows["track_id"] = rng.integers(0, 3, n)
    rows["frame"] = rng.integers(0, 3, n)
    return rows


def test_round_trip_without_pickle(tmp_path):
    results = PipelineResults.from_rows(random_rows(7), **RUN, status="ok")
    path = save_results(tmp_path / RESULTS_FILE_NAME, results)
    with np.load(path, allow_pickle=False) as data:  # every field is a plain array
        assert {"track_id", "frame", "bbox", "pose", "betas", "cam", "cam_t", "joints3d", "joints2d", "fps",
                "image_size", "body_model", "checkpoint", "status", "message"} <= set(data.files)
        assert data["pose"].shape == (7, 72) and data["joints2d"].shape == (7, 24, 2)
        assert str(data["checkpoint"]) == UNTRAINED_CHECKPOINT
        assert tuple(data["image_size"]) == (640, 360)
    loaded = load_results(tmp_path)  # the folder works too
    for name in ROW_FIELDS:
        assert np.array_equal(getattr(loaded, name), getattr(results, name)), name
    assert loaded.image_size == (640, 360) and loaded.fps == 25.0 and loaded.status == "ok"
    assert loaded.body_model == RUN["body_model"] and loaded.message == RUN["message"]
    assert np.array_equal(loaded.timestamps, RUN["timestamps"])
    assert [p.name for p in tmp_path.iterdir()] == [RESULTS_FILE_NAME]  # no temporary file left behind
    assert (path.stat().st_mode & 0o777) == 0o644


def test_rows_are_sorted_by_frame_then_track_and_can_be_selected():
    results = PipelineResults.from_rows(random_rows(20, seed=1), **RUN, status="ok")
    keys = list(zip(results.frame, results.track_id))
    assert keys == sorted(keys)
    for track_id in results.track_ids:
        rows = results.rows_of_track(int(track_id))
        assert np.all(results.track_id[rows] == track_id) and np.all(np.diff(results.frame[rows]) >= 0)
    rows = results.rows_of_frame(1)
    assert np.all(results.frame[rows] == 1)


def test_no_person_file_says_so(tmp_path):
    results = PipelineResults.from_rows(None, **{**RUN, "message": "no person found"}, status="no_person")
    save_results(tmp_path / RESULTS_FILE_NAME, results)
    loaded = load_results(tmp_path / RESULTS_FILE_NAME)
    assert loaded.status == "no_person" and len(loaded) == 0 and loaded.message == "no person found"
    assert loaded.pose.shape == (0, 72) and loaded.joints3d.shape == (0, 24, 3)


def test_bad_contents_are_refused(tmp_path):
    with pytest.raises(ResultsError, match="status"):
        PipelineResults.from_rows(None, **RUN, status="fine")
    rows = random_rows(3)
    rows["pose"] = rows["pose"][:2]
    with pytest.raises(ValueError):
        PipelineResults.from_rows(rows, **RUN, status="ok")
    with pytest.raises(ResultsError, match="no results file"):
        load_results(tmp_path)
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ResultsError, match="not a readable"):
        load_results(tmp_path / "junk.npz")
    np.savez(tmp_path / "partial.npz", track_id=np.zeros(1))
    with pytest.raises(ResultsError, match="lacks"):
        load_results(tmp_path / "partial.npz")
