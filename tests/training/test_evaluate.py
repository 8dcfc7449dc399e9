"""Evaluation: the metrics through the whole path (labels, label meshes, sequences), and the command line."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from int_model import build_model, save_checkpoint
from int_model.geometry import axis_angle_to_rotmat
from training.data import collate_groups, ensure_synthetic
from training.evaluate import frame_segments, evaluate_model
from cli.evaluate import main as evaluate_main
from training.phases import load_phase_config
from training.synthetic import SyntheticDataset

TEST_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "test"
CLIP_LEN = 8


@pytest.fixture(scope="module")
def val_dir(tmp_path_factory: pytest.TempPathFactory, _session_cache) -> Path:
    """The test phases' held-out synthetic clips (2 clips of 16 frames, 64 px)."""
    spec = load_phase_config(TEST_CONFIGS / "phase1.yaml").data.val[0]
    return ensure_synthetic(spec, root=tmp_path_factory.mktemp("data"), progress=False)


class Oracle(nn.Module):
    """Predicts the label's own body (posed by the label theta and beta), optionally rotated about the camera's
    y axis: a stand-in for the network with known metrics."""

    def __init__(self, body_model, *, yaw_deg: float = 0.0) -> None:
        super().__init__()
        self.body_model = body_model
        self.temporal_transformer = nn.Identity()
        self.batch: dict | None = None
        angle = math.radians(yaw_deg)
        self.rotation = torch.tensor([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0],
                                      [-math.sin(angle), 0, math.cos(angle)]], dtype=torch.float32)

    def forward(self, frames: torch.Tensor, *, temporal: bool | None = None) -> SimpleNamespace:
        b, t = frames.shape[:2]
        pose, betas = self.batch["pose"].reshape(b * t, 24, 3), self.batch["betas"].reshape(b * t, 10)
        body = self.body_model(rotmat=axis_angle_to_rotmat(pose), betas=betas)

        def turn(x: torch.Tensor) -> torch.Tensor:
            return (x @ self.rotation.T).reshape(b, t, *x.shape[1:])

        return SimpleNamespace(joints3d=turn(body.joints), vertices=turn(body.vertices),
                               joints3d_h36m=None if body.joints_h36m is None else turn(body.joints_h36m))


def _feeding(loader, oracle: Oracle):
    for batches in loader:
        for batch in batches:
            oracle.batch = batch
            yield batch


def _loader(val_dir: Path, img_size: int = 64) -> DataLoader:
    dataset = SyntheticDataset(val_dir, clip_len=CLIP_LEN, stride=CLIP_LEN, img_size=img_size, train=False)
    return DataLoader(dataset, batch_size=2, collate_fn=collate_groups)


@pytest.mark.parametrize("joint_set", ["smpl24", "h36m17"])
def test_the_label_body_scores_zero(val_dir: Path, body_model, joint_set: str) -> None:
    oracle = Oracle(body_model)
    result = evaluate_model(oracle, _feeding(_loader(val_dir), oracle), joint_set=joint_set)
    assert result["joint_set"] == joint_set and result["clips"] == 4
    assert result["frames"] > 0
    for mode in ("image", "temporal"):
        for metric, value in result[mode].items():
            assert value is not None and value < 1.0, (mode, metric, value)  # mm: labels and meshes agree
    baseline = result["mean_pose_baseline"]
    assert baseline["mpjpe"] > 20.0 and baseline["pa_mpjpe"] > 5.0


def test_a_rotated_body_has_mpjpe_but_no_pa_mpjpe(val_dir: Path, body_model) -> None:
    oracle = Oracle(body_model, yaw_deg=20.0)
    result = evaluate_model(oracle, _feeding(_loader(val_dir), oracle), modes=["image"])
    assert result["temporal"] is None
    assert result["image"]["mpjpe"] > 20.0 and result["image"]["pve"] > 20.0
    assert result["image"]["pa_mpjpe"] < 1e-3


def test_segments_follow_sequences_and_frames() -> None:
    keys = [("b", 1), ("a", 2), ("a", 0), ("a", 1), ("b", 0), ("a", 1), ("a", 5), ("a", 6)]
    kept, ids = frame_segments(keys)
    ordered = [keys[i] for i in kept]
    assert ordered == [("a", 0), ("a", 1), ("a", 2), ("a", 5), ("a", 6), ("b", 0), ("b", 1)]  # duplicate dropped
    assert ids.tolist() == [0, 0, 0, 1, 1, 2, 2]  # a gap in the frames and a new sequence start new segments


def _checkpoint(tmp_path: Path, body_model, **overrides) -> Path:
    torch.manual_seed(0)
    model = build_model("tiny", body_model=body_model, **overrides)
    return save_checkpoint(tmp_path / "model.pt", model, meta={"phase": "test", "step": 7})


def test_cli_prints_the_four_metrics_for_both_inference_modes(tmp_path: Path, val_dir: Path, body_model,
                                                              capsys) -> None:
    path = _checkpoint(tmp_path, body_model)
    assert evaluate_main(["--checkpoint", str(path), "--data", str(val_dir), "--clip-len", str(CLIP_LEN)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["phase"] == "test" and report["step"] == 7 and report["clips"] == 4
    for mode in ("image", "temporal"):
        assert set(report[mode]) == {"mpjpe", "pa_mpjpe", "pve", "accel_error"}
        assert all(np.isfinite(v) and v > 0 for v in report[mode].values())
    assert report["image"] != report["temporal"]  # the temporal transformer changes the predictions


def test_cli_on_an_image_model_reports_no_temporal_inference(tmp_path: Path, val_dir: Path, body_model,
                                                             capsys) -> None:
    path = _checkpoint(tmp_path, body_model, temporal_depth=0)
    assert evaluate_main(["--checkpoint", str(path), "--data", str(val_dir), "--max-clips", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["temporal"] is None and report["clips"] == 1
    assert set(report["image"]) == {"mpjpe", "pa_mpjpe", "pve", "accel_error"}


def test_cli_names_a_folder_that_is_not_a_dataset(tmp_path: Path, body_model) -> None:
    path = _checkpoint(tmp_path, body_model)
    with pytest.raises(FileNotFoundError, match="neither a synthetic dataset"):
        evaluate_main(["--checkpoint", str(path), "--data", str(tmp_path)])
