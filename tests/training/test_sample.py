import math

import numpy as np
import pytest
import torch

from int_model.crops import denormalise_frame, normalise_image
from training.sample import ARRAY_FIELDS, SampleError, collate_samples, empty_sample, validate_sample


def _sample(t: int = 3, size: int = 8):
    return empty_sample(num_frames=t, img_size=size, dataset="toy", sequence="seq0")


def test_empty_sample_follows_the_contract_with_zero_masks():
    s = _sample()
    validate_sample(s)
    assert s["frames"].shape == (3, 3, 8, 8) and s["pose"].shape == (3, 72)
    assert s["joints3d_h36m"].shape == (3, 17, 3) and s["joints2d"].shape == (3, 24, 2)
    for key in ("has_pose", "has_betas", "joints3d_vis", "joints3d_h36m_vis", "joints2d_vis"):
        assert not s[key].any()
    assert s["valid"].tolist() == [1.0, 1.0, 1.0]
    assert s["frame_index"].dtype == np.int64 and s["frame_index"].tolist() == [0, 1, 2]
    assert math.isnan(s["period"])


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("pose", np.zeros((3, 69), np.float32), "pose must have shape (T, 72)"),
        ("joints2d", np.zeros((3, 24, 3), np.float32), "joints2d must have shape"),
        ("betas", np.zeros((3, 10), np.float64), "betas must be float32"),
        ("joints2d_vis", np.full((3, 24), 0.5, np.float32), "joints2d_vis is a mask"),
        ("frame_index", np.zeros(3, np.float32), "frame_index must be int64"),
        ("dataset", 3, "dataset must be a str"),
    ],
)
def test_validate_sample_names_the_broken_key(key, value, message):
    s = _sample()
    s[key] = value
    with pytest.raises(SampleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_sample(s)


def test_validate_sample_lists_missing_keys():
    s = _sample()
    del s["joints3d"], s["period"]
    with pytest.raises(SampleError, match="missing keys: joints3d, period"):
        validate_sample(s)


def test_collate_stacks_a_batch_that_validates():
    samples = [_sample(), _sample()]
    samples[1]["sequence"] = "seq1"
    samples[1]["period"] = 30.0
    batch = collate_samples(samples)
    validate_sample(batch, batched=True)
    for key in ARRAY_FIELDS:
        assert isinstance(batch[key], torch.Tensor) and batch[key].shape[:2] == (2, 3)
    assert batch["frame_index"].dtype == torch.int64
    assert batch["sequence"] == ["seq0", "seq1"]
    assert torch.isnan(batch["period"][0]) and batch["period"][1] == 30.0


def test_collate_rejects_different_clip_lengths():
    with pytest.raises(SampleError, match="sample 1 has frames"):
        collate_samples([_sample(t=2), _sample(t=3)])


def test_normalise_round_trips_through_denormalise():
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    frame = normalise_image(image)
    assert frame.shape == (3, 5, 7) and frame.dtype == np.float32
    np.testing.assert_array_equal(denormalise_frame(frame), image)
