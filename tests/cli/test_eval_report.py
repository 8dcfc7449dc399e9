"""The evidence report end to end on tiny models and a tiny test set: every section is filled, the baseline
is the training mean's, and the numbers are the evaluator's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from int_model import build_model, save_checkpoint
from analysis.priors import fresh_tokens, prior_plausibility
from cli.eval_report import Models, evaluate_all
from cli.eval_report import main as report_main

TINY_TEST_SET = dict(num_clips=4, num_frames=32, seed=5, image_size=64, fps=20.0)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, body_model):
    folder = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    mean = {"pose": [0.0] * 72, "betas": [0.0] * 10, "frames": 1}
    mean["pose"][0] = np.pi  # upright in the camera frame
    paths = {}
    for name, kwargs in (("int", {}), ("image", {"temporal_depth": 0}), ("whole_pose", {"temporal_mode": "whole_pose"})):
        model = build_model("tiny", body_model=body_model, **kwargs)
        paths[name] = save_checkpoint(folder / f"{name}.pt", model, meta={"phase": name, "train_mean": mean})
    return paths


@pytest.mark.slow
def test_report_fills_every_section(tmp_path: Path, checkpoints, _session_cache) -> None:
    models = Models(int=checkpoints["int"], image=checkpoints["image"], whole_pose=checkpoints["whole_pose"])
    report = evaluate_all(models, tmp_path / "test", tmp_path / "out", device=torch.device("cpu"),
                          windows=(8, 16), test_set=TINY_TEST_SET, progress=False)
    names = [row["model"] for row in report["table"]]
    assert len(names) == 5 and names[0].startswith("mean-pose baseline")
    for row in report["table"]:
        assert "missing" not in row, row
        assert all(row[k] is not None and np.isfinite(row[k]) and row[k] > 0 for k in ("pa_mpjpe", "mpjpe", "pve"))
    # A constant prediction has the labels' acceleration; a model that moves has its own.
    assert report["table"][0]["accel_error"] > 0
    assert set(report["windows"]) == {"8", "16"}
    # A fresh tiny model's phase-3 "image-only" row and the phase-1 model differ (different weights).
    assert report["table"][1]["mpjpe"] != report["table"][2]["mpjpe"]
    assert report["test_set"]["frames_evaluated"] > 0
    assert {"learned tokens", "fresh model", "fresh tokens, trained heads"} <= set(report["priors"])
    assert report["periodicity"]["joints"] == ["left_hip", "right_hip", "left_knee", "right_knee"]
    assert (tmp_path / "out" / "windows.png").is_file()


def test_missing_shipped_checkpoint_is_one_line(tmp_path: Path, capsys) -> None:
    assert report_main(["--int", str(tmp_path / "none.pt"), "--out", str(tmp_path / "o"),
                        "--test-data", str(tmp_path / "t"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "none.pt" in err


def test_prior_plausibility_flags_a_hyperextended_knee(body_model) -> None:
    torch.manual_seed(0)
    model = build_model("tiny", body_model=body_model).eval()
    with torch.no_grad():
        # Make the pose head ignore the tokens and output a knee bent backwards by 40 degrees.
        head = model.heads.pose
        head.weight.zero_()
        c, s = np.cos(np.deg2rad(-40.0)), np.sin(np.deg2rad(-40.0))
        head.bias.copy_(torch.tensor([1.0, 0.0, 0.0, c, 0.0, s]))  # two columns of Rx(-40)
    result = prior_plausibility(model)
    assert "left_knee" in result["joints_outside"] and result["max_excess_deg"] == pytest.approx(40.0, abs=0.5)
    twin = fresh_tokens(model)
    assert not torch.equal(twin.tokens.joints, model.tokens.joints)
    assert torch.equal(twin.heads.pose.weight, model.heads.pose.weight)
