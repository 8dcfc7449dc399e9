"""Captum attributions of a chosen output with respect to the input pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from int_model import build_model
from analysis import attribution as attr


@pytest.fixture(scope="module")
def model(body_model):
    torch.manual_seed(0)
    return build_model("tiny", body_model=body_model).eval()


@pytest.fixture(scope="module")
def crop(model):
    torch.manual_seed(1)
    return attr.blurred_baseline(torch.randn(3, model.img_size, model.img_size), sigma_fraction=0.03)


@pytest.mark.parametrize("target", [
    attr.AttributionTarget("joint_angle", index=4),
    attr.AttributionTarget("joint_6d", index=1, component=3),
    attr.AttributionTarget("shape", index=0),
    attr.AttributionTarget("camera", index=0),
])
def test_integrated_gradients_map_and_completeness(model, crop, target):
    before = crop.clone()
    result = attr.attribute(model, crop, target=target, n_steps=4, internal_batch_size=4)
    torch.testing.assert_close(crop, before)
    assert result.pixels.shape == (model.img_size, model.img_size)
    assert np.isfinite(result.pixels).all() and np.abs(result.pixels).max() > 0
    # delta is captum's completeness error: sum(attributions) - (f(x) - f(baseline)).
    change = result.value - result.baseline_value
    assert result.pixels.sum() - change == pytest.approx(result.delta, abs=1e-3 * (1 + abs(result.delta)))
    with torch.no_grad():
        value = attr.output_value(model, crop[None], target=target)
    assert float(value[0]) == pytest.approx(result.value, rel=1e-4, abs=1e-5)


def test_joint_angle_is_the_rotation_angle_in_degrees(model, crop):
    from int_model.geometry import rot6d_to_rotmat, rotmat_to_axis_angle

    with torch.no_grad():
        tokens = model.encode_frames(crop[None])
        rot6d = model.heads(tokens.joints, tokens.shape, tokens.cam)[0]
        expected = torch.rad2deg(rotmat_to_axis_angle(rot6d_to_rotmat(rot6d[0, 4])).norm())
        angle = attr.output_value(model, crop[None], target=attr.AttributionTarget("joint_angle", index=4))
    assert float(angle[0]) == pytest.approx(float(expected), abs=1e-2)


def test_saliency_and_black_baseline(model, crop):
    target = attr.AttributionTarget("camera", index=1)
    saliency = attr.attribute(model, crop, target=target, method="saliency")
    assert saliency.pixels.shape == crop.shape[1:] and np.isnan(saliency.delta)
    black = attr.attribute(model, crop, target=target, baseline="black", n_steps=2)
    assert np.isfinite(black.baseline_value)
    with pytest.raises(ValueError):
        attr.attribute(model, crop, target=target, method="lime")


def test_target_validation_and_labels():
    with pytest.raises(ValueError):
        attr.AttributionTarget("pose")
    with pytest.raises(ValueError):
        attr.AttributionTarget("camera", index=3)
    with pytest.raises(ValueError):
        attr.AttributionTarget("joint_6d", index=0, component=6)
    assert attr.AttributionTarget("joint_angle", index=4).token == 4
    assert attr.AttributionTarget("shape").token == 24 and attr.AttributionTarget("camera").token == 25
    assert "left_knee" in attr.AttributionTarget("joint_angle", index=4).label


def test_blurred_baseline_keeps_colour_and_removes_structure():
    torch.manual_seed(0)
    x = torch.randn(3, 64, 64)
    blurred = attr.blurred_baseline(x)
    torch.testing.assert_close(blurred.mean(dim=(1, 2)), x.mean(dim=(1, 2)), atol=0.05, rtol=0)
    assert blurred.std() < 0.2 * x.std()


def test_pooling_and_agreement():
    pixels = np.zeros((8, 8))
    pixels[4:6, 0:2] = 1.0
    grid = attr.pool_to_grid(pixels, grid_size=4)
    assert grid.shape == (4, 4) and grid[2, 0] == 4.0 and grid.sum() == 4.0
    assert attr.map_agreement(grid, grid) == pytest.approx(1.0)
    assert attr.map_agreement(grid, -grid) == pytest.approx(-1.0)
    assert np.isnan(attr.map_agreement(grid, np.ones((4, 4))))
