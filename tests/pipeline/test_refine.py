"""Fitting bodies to 2D keypoints (pipeline.refine) and the pipeline's --refine switch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from int_model.constants import SMPL_JOINT_NAMES
from int_model.geometry import axis_angle_to_rotmat, weak_perspective_project
from pipeline import onnx_models
from pipeline.keypoints import BLAZEPOSE_TO_SMPL, BlazePose
from pipeline.refine import RefineParams, refine_to_keypoints

MARKED = [SMPL_JOINT_NAMES.index(name) for name in BLAZEPOSE_TO_SMPL.values()]
REAL = Path(__file__).resolve().parents[1] / "data" / "real"


def _pose(rng: np.random.Generator, n: int, scale: float) -> torch.Tensor:
    angles = rng.normal(0.0, scale, (n, 24, 3)).astype(np.float32)
    angles[:, 0] = [np.pi, 0.0, 0.0]  # facing the camera, y down
    return axis_angle_to_rotmat(torch.from_numpy(angles).reshape(-1, 3)).reshape(n, 24, 3, 3)


def _target(body_model, rotmat: torch.Tensor, betas: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return weak_perspective_project(body_model(rotmat=rotmat, betas=betas).joints, cam)


def test_the_fit_moves_a_wrong_arm_onto_its_keypoints_and_keeps_the_rest(body_model):
    rng = np.random.default_rng(0)
    truth = _pose(rng, 3, 0.15)
    start = truth.clone()
    elbow = SMPL_JOINT_NAMES.index("right_shoulder")  # rotating the shoulder joint swings the elbow and wrist
    start[:, elbow] = axis_angle_to_rotmat(torch.tensor([[0.0, 0.0, 0.9]]).expand(3, 3)) @ start[:, elbow]
    betas, cam = torch.zeros(3, 10), torch.tensor([[0.9, 0.0, 0.1]]).repeat(3, 1)
    keypoints = _target(body_model, truth, betas, cam)
    confidence = torch.zeros(3, 24)
    confidence[:, MARKED] = 1.0
    before = (_target(body_model, start, betas, cam) - keypoints)[:, MARKED].norm(dim=-1).mean()
    fit = refine_to_keypoints(body_model, start, betas, cam, keypoints, confidence)
    after = (fit.joints2d - keypoints)[:, MARKED].norm(dim=-1).mean()
    assert fit.fitted.all()
    assert after < 0.25 * before, (float(before), float(after))
    # The joints without keypoints (spine, neck, head) barely move: the prior keeps them at the start.
    unmarked = [SMPL_JOINT_NAMES.index(n) for n in ("spine1", "spine2", "spine3", "neck", "head")]
    moved = (fit.joints2d - _target(body_model, start, betas, cam))[:, unmarked].norm(dim=-1).max()
    assert moved < 0.05


def test_rows_with_too_few_keypoints_and_zero_steps_are_left_alone(body_model):
    rng = np.random.default_rng(1)
    start = _pose(rng, 2, 0.2)
    betas, cam = torch.zeros(2, 10), torch.tensor([[1.0, 0.05, 0.0]]).repeat(2, 1)
    keypoints = torch.zeros(2, 24, 2)
    confidence = torch.zeros(2, 24)
    confidence[0, MARKED[:3]] = 1.0  # 3 keypoints < min_keypoints
    fit = refine_to_keypoints(body_model, start, betas, cam, keypoints, confidence)
    assert not fit.fitted.any()
    torch.testing.assert_close(fit.rotmat, start)
    torch.testing.assert_close(fit.cam, cam)
    confidence[:, MARKED] = 0.3  # below min_confidence
    assert not refine_to_keypoints(body_model, start, betas, cam, keypoints, confidence).fitted.any()
    confidence[:, MARKED] = 1.0
    unchanged = refine_to_keypoints(body_model, start, betas, cam, keypoints, confidence,
                                    params=RefineParams(steps=0))
    torch.testing.assert_close(unchanged.rotmat, start)
    with pytest.raises(ValueError):
        RefineParams(steps=-1)


@pytest.mark.skipif(not onnx_models.onnxruntime_available(), reason="onnxruntime is not installed")
def test_the_cli_switch_brings_the_footballers_mesh_onto_his_keypoints(tmp_path):
    """The demo model on a real photo, without and with --refine: the refined joints lie much nearer BlazePose's."""
    import cv2

    from cli.reconstruct import run
    from pipeline.results import load_results

    photo = REAL / "messi5.jpg"
    errors = {}
    for name, extra in (("plain", []), ("refined", ["--refine"])):
        assert run([str(photo), "--out", str(tmp_path / name), "--quiet", "--no-overlay"] + extra) == 0
        results = load_results(tmp_path / name / "results.npz")
        assert len(results.frame) == 1
        image = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)
        (person,) = BlazePose().estimate(image, results.bbox[:1])
        points, confidence = person.smpl_joints(frame_size=(image.shape[1], image.shape[0]))
        used = confidence > 0.5
        assert used.sum() >= 8
        errors[name] = float(np.linalg.norm(results.joints2d[0] - points, axis=-1)[used].mean() / results.bbox[0, 3])
    assert errors["refined"] < 0.5 * errors["plain"], errors
