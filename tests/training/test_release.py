"""Releasing a checkpoint: small float16 weights that load and predict like the original, with the training
set's mean pose and shape for the baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from int_model import build_model, load_checkpoint, save_checkpoint
from int_model.checkpoint import read_checkpoint_file
from cli.release import main as release_main
from training.release import training_mean


def test_training_mean_of_rotations_about_one_axis_is_their_mean_angle() -> None:
    pose = np.zeros((3, 72))
    pose[:, 5] = np.deg2rad([10.0, 20.0, 30.0])  # left hip about z
    mean = training_mean(pose, np.zeros((3, 10)))
    np.testing.assert_allclose(mean["pose"][3:6], [0, 0, np.deg2rad(20.0)], atol=1e-6)


def test_training_mean_skips_unlabelled_frames() -> None:
    pose = np.zeros((3, 72))
    pose[2, 3:6] = [1.0, 0.0, 0.0]  # an outlier on an unlabelled frame
    betas = np.array([[1.0] * 10, [3.0] * 10, [100.0] * 10])
    mean = training_mean(pose, betas, valid=np.array([1, 1, 0]))
    assert mean["frames"] == 2 and np.allclose(mean["betas"], 2.0) and np.allclose(mean["pose"], 0.0, atol=1e-7)


def test_released_checkpoint_is_half_size_and_predicts_the_same(tmp_path: Path, body_model) -> None:
    torch.manual_seed(0)
    model = build_model("tiny", body_model=body_model).eval()
    source = save_checkpoint(tmp_path / "final.pt", model, meta={"phase": "test", "step": 7},
                             extra={"optimizer": {"state": {"big": torch.zeros(10000)}}})
    target = tmp_path / "released.pt"
    assert release_main([str(source), str(target)]) == 0
    data = read_checkpoint_file(target)
    assert data["extra"] == {} and data["meta"]["released_from"]["step"] == 7
    assert all(v.dtype == torch.float16 for k, v in data["state_dict"].items() if v.is_floating_point())
    assert target.stat().st_size < 0.6 * source.stat().st_size
    released = load_checkpoint(target, body_model=body_model).model
    assert all(p.dtype == torch.float32 for p in released.parameters())
    frames = torch.randn(1, 4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(released(frames).joints3d, model(frames).joints3d, atol=5e-3, rtol=0)
    # The source model was not changed by the release.
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_release_of_a_missing_file_is_one_line(tmp_path: Path, capsys) -> None:
    assert release_main([str(tmp_path / "nope.pt"), str(tmp_path / "out.pt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
