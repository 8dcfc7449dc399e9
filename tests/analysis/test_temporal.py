"""Temporal attention per joint: selection, lag profile, strongest pairs, rotation curves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from int_model import build_model
from analysis import temporal as tmp


def periodic_matrix(t: int, period: float, *, sharpness: float = 3.0) -> np.ndarray:
    """Row-stochastic (T, T) attention peaking at frame distances that are multiples of ``period``."""
    lag = np.subtract.outer(np.arange(t), np.arange(t))
    a = np.exp(sharpness * np.cos(2 * np.pi * lag / period))
    return a / a.sum(-1, keepdims=True)


def test_select_temporal_on_a_model_output(body_model):
    torch.manual_seed(0)
    model = build_model("tiny", body_model=body_model).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 5, 3, model.img_size, model.img_size), capture_attention=True)
    clip = out.attention.temporal[0]  # (L_t, H_t, J, T, T)
    for layer in (0, -1, tmp.MEAN):
        for head in (0, tmp.MEAN):
            m = tmp.select_temporal(clip, layer=layer, head=head)
            assert m.shape == (24, 5, 5)
            np.testing.assert_allclose(m.sum(-1), 1.0, atol=1e-5)
    with pytest.raises(ValueError):
        tmp.select_temporal(clip, layer="max")
    with pytest.raises(IndexError):
        tmp.select_temporal(clip, head=99)


def test_strongest_pairs_skip_the_diagonal_and_come_strongest_first():
    a = np.full((10, 10), 0.01)
    np.fill_diagonal(a, 0.9)
    a[2, 9], a[7, 1], a[4, 5] = 0.5, 0.3, 0.8  # (4, 5) is only one frame apart
    pairs = tmp.strongest_pairs(a, count=2)
    assert [(p.query, p.key) for p in pairs] == [(2, 9), (7, 1)]
    assert pairs[0].lag == 7 and pairs[0].weight == pytest.approx(0.5)
    assert tmp.strongest_pairs(a, count=1, min_lag=1)[0].key == 5
    assert pairs[0].to_dict() == {"query": 2, "key": 9, "weight": 0.5, "lag": 7}


def test_lag_profile_and_peak_distance_of_a_periodic_matrix():
    a = periodic_matrix(40, 8)
    profile = tmp.lag_profile(a)
    assert profile.shape == (40,)
    assert profile[0] == pytest.approx(np.diagonal(a).mean())
    assert tmp.attention_peak_distance(a) == 8
    decaying = np.exp(-np.abs(np.subtract.outer(np.arange(20), np.arange(20))) / 3.0)
    assert tmp.attention_peak_distance(decaying / decaying.sum(-1, keepdims=True)) == 2


def test_joint_angle_curves_measure_swing_and_jitter():
    t = np.arange(90)
    pose = np.zeros((90, 24, 3))
    pose[:, 0] = [np.pi, 0.0, 0.0]
    amplitude = np.deg2rad(30.0)
    pose[:, 1, 0] = amplitude * np.sin(2 * np.pi * t / 30)  # left hip swings about x
    pose[:, 4, 2] = np.deg2rad(2.0) * t / 90  # left knee: a slow constant turn (no acceleration)
    before = pose.copy()
    curves = tmp.joint_angle_curves(pose)
    np.testing.assert_array_equal(pose, before)
    assert curves.angle_deg.shape == (90, 24) and curves.acceleration_deg.shape == (88, 24)
    assert np.abs(curves.angle_deg[:, 1]).max() == pytest.approx(30.0, abs=0.5)
    np.testing.assert_allclose(np.abs(curves.axes[1]), [1.0, 0.0, 0.0], atol=1e-6)
    assert curves.mean_abs_acceleration[4] == pytest.approx(0.0, abs=1e-6)
    rng = np.random.default_rng(0)
    noisy = tmp.joint_angle_curves(pose + rng.normal(0.0, 0.02, pose.shape), like=curves)
    np.testing.assert_array_equal(noisy.axes, curves.axes)
    assert noisy.mean_abs_acceleration[1] > 3 * curves.mean_abs_acceleration[1]
