"""The report command end to end on a tiny clip: pipeline, every figure (PNG + HTML), analysis.json."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from cli import report
from viz.renderer import Renderer, RendererUnavailable, WeakPerspectiveCamera

NUM_FRAMES = 12


@pytest.fixture(scope="module")
def renderer_works():
    r = Renderer()
    try:
        r.render([(np.eye(3), np.array([[0, 1, 2]]))], WeakPerspectiveCamera(1.0, 0.0, 0.0), width=4, height=4)
    except RendererUnavailable as exc:
        if os.environ.get("INT_REQUIRE_RENDERER") == "1":
            raise
        pytest.skip(f"no headless OpenGL platform works here: {exc}")
    finally:
        r.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A folder of frames with a figure that swings its 'arm' with a period of 4 frames."""
    folder = tmp_path_factory.mktemp("clip")
    for i in range(NUM_FRAMES):
        frame = np.full((96, 80, 3), (40, 90, 40), np.uint8)
        cv2.rectangle(frame, (32, 20), (48, 80), (200, 180, 160), -1)
        angle = 0.8 * np.sin(2 * np.pi * i / 4)
        tip = (int(40 + 30 * np.sin(angle)), int(30 + 30 * np.cos(angle)))
        cv2.line(frame, (40, 30), tip, (220, 200, 180), 5)
        cv2.imwrite(str(folder / f"f{i:03d}.png"), frame)
    return folder


@pytest.mark.slow
def test_report_writes_every_figure_and_the_analysis(clip, tmp_path, renderer_works):
    out = tmp_path / "report"
    code = report.main([str(clip), "--out", str(out), "--variant", "tiny", "--detector", "whole_frame",
                        "--window", str(NUM_FRAMES), "--ig-steps", "2", "--png-backend", "matplotlib",
                        "--known-period", "4", "--quiet"])
    assert code == 0
    analysis = json.loads((out / "analysis.json").read_text())
    assert analysis["untrained"] is True and analysis["num_frames"] == NUM_FRAMES
    assert analysis["png_backend"] == "matplotlib"
    assert len(analysis["periods"]) == 24
    for joint in ("pelvis", "left_knee"):
        assert set(analysis["periods"][joint]) == {"attention", "rotation", "rotation_whole_track"}
        for estimate in analysis["periods"][joint].values():
            assert (estimate["period"] is None) == bool(estimate["reason"])
    assert set(analysis["attention_peak_distance"]) == set(analysis["periods"])
    assert len(analysis["prior_angles_deg"]["fresh tokens"]) == 24
    assert {a["token"] for a in analysis["attributions"]} == {"left_knee", "shape", "camera"}
    expected = {"prior_meshes", "prior_angles", "token_similarity", "attention_tokens_rollout",
                "attention_frame_rollout", "attribution_angle_left_knee", "attribution_shape_beta0",
                "attribution_camera_scale", "temporal_joints", "temporal_left_knee", "temporal_pairs",
                "lag_profiles", "periods", "rotation_curves", "jitter"}
    assert expected <= set(analysis["files"])
    for name in expected:
        files = analysis["files"][name]
        assert set(files) == {"html", "png"}
        image = cv2.imread(files["png"])
        assert image is not None and image.std() > 10, name
    assert (out / "prior_renders.png").is_file() and (out / "prior_fresh.glb").stat().st_size > 1000
    assert (out / "pipeline" / "results.npz").is_file()

    # A results folder is read as it is (no second pipeline run); another token, frame and window.
    again = tmp_path / "again"
    assert report.main([str(out / "pipeline"), "--out", str(again), "--variant", "tiny", "--window", "8",
                        "--start", "2", "--frame", "1", "--token", "camera", "--ig-steps", "2",
                        "--png-backend", "matplotlib", "--quiet"]) == 0
    second = json.loads((again / "analysis.json").read_text())
    assert second["frames"] == [2, 9] and second["token"] == "camera"
    assert {a["token"] for a in second["attributions"]} == {"shape", "camera"}
    assert not (again / "pipeline").exists()


def test_bad_settings_are_refused(clip, tmp_path):
    with pytest.raises(SystemExit):
        report.main([str(clip), "--out", str(tmp_path), "--token", "tail"])
