"""The real-footage evaluation's measures (cli.real_footage) on the bundled real photo."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from int_model.checkpoint import DEMO_CHECKPOINT, load_checkpoint
from int_model.constants import SMPL_JOINT_NAMES
from pipeline import onnx_models

from cli import real_footage

REAL = Path(__file__).resolve().parents[1] / "data" / "real"


def test_the_mean_skeleton_stands_in_its_box():
    checkpoint = load_checkpoint(DEMO_CHECKPOINT)
    layout = real_footage.mean_skeleton_layout(checkpoint.model, checkpoint.meta["train_mean"])
    index = SMPL_JOINT_NAMES.index
    assert layout.shape == (24, 2)
    assert np.all((layout[:, 1] > 0) & (layout[:, 1] < 1)) and np.all(np.abs(layout[:, 0]) < 0.5)
    assert layout[index("head"), 1] < layout[index("pelvis"), 1] < layout[index("left_ankle"), 1]
    # Seen from the front: the person's left side is on the image's right.
    assert layout[index("left_shoulder"), 0] > layout[index("right_shoulder"), 0]


def test_summary_counts_joints_within_a_tenth_of_the_box():
    assert real_footage._summary(np.array([0.05, 0.09, 0.2, 0.3])) == {"error_pct": 16.0, "pck": 0.5, "joints": 4}
    assert real_footage._summary(np.array([]))["pck"] is None


@pytest.mark.slow
@pytest.mark.skipif(not onnx_models.onnxruntime_available(), reason="onnxruntime is not installed")
def test_one_photo_gives_every_row_of_the_table(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(REAL / "messi5.jpg", media / "messi5.jpg")
    report = real_footage.evaluate(media, tmp_path / "out", media=[m for m in real_footage.MEDIA if m.name == "messi5"])
    (entry,) = report["media"]
    assert entry["visible"] == entry["found"] == 1 and entry["measured_person_frames"] == 1
    for row in ("int", "mean_skeleton", "refined_fitted", "refined_held_out", "int_on_held_out_limbs"):
        assert 0 <= entry[row]["pck"] <= 1 and entry[row]["joints"] >= 4
    assert entry["refined_fitted"]["error_pct"] < entry["int"]["error_pct"] / 2
    assert (tmp_path / "out" / "messi5.png").stat().st_size > 50_000
    assert (tmp_path / "out" / "real_footage.json").is_file()
