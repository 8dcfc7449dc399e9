"""The period estimator: known periods from signals and attention matrices, and non-periodic input said so."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysis import periodicity as per
from int_model.geometry import relative_rotation_vectors
from analysis.temporal import lag_profile


def sine(t: int, period: float, *, phase: float = 0.3) -> np.ndarray:
    return np.sin(2 * np.pi * np.arange(t) / period + phase)


def periodic_matrix(t: int, period: float, *, sharpness: float = 3.0) -> np.ndarray:
    lag = np.subtract.outer(np.arange(t), np.arange(t))
    a = np.exp(sharpness * np.cos(2 * np.pi * lag / period))
    return a / a.sum(-1, keepdims=True)


@pytest.mark.parametrize("period", [5.5, 8.0, 12.3, 20.0, 31.0])
def test_recovers_the_period_of_a_clean_signal_to_a_fraction_of_a_frame(period):
    estimate = per.estimate_period(sine(96, period))
    assert estimate.is_periodic, estimate.reason
    assert estimate.period == pytest.approx(period, abs=0.2)
    assert estimate.confidence > 0.9 and estimate.reason == ""


@pytest.mark.parametrize(("period", "noise"), [(10.0, 0.3), (16.5, 0.5), (24.0, 0.5)])
def test_recovers_the_period_of_a_noisy_signal(period, noise):
    rng = np.random.default_rng(1)
    signal = sine(120, period) + noise * rng.standard_normal(120)
    estimate = per.estimate_period(signal)
    assert estimate.is_periodic, estimate.reason
    assert estimate.period == pytest.approx(period, abs=0.6)
    assert estimate.confidence < 0.95  # noise lowers it


def test_a_signal_with_a_strong_harmonic_gives_its_fundamental():
    t = np.arange(100)
    knee = np.sin(2 * np.pi * t / 25) + 0.8 * np.sin(4 * np.pi * t / 25 + 1.0)
    assert per.estimate_period(knee).period == pytest.approx(25.0, abs=0.3)


def test_a_joint_swinging_through_its_rest_pose_has_the_swing_period_not_half():
    t = np.arange(96)
    pose = np.zeros((96, 24, 3))
    pose[:, 1, 0] = 0.5 * np.sin(2 * np.pi * t / 24)
    rotvecs = relative_rotation_vectors(pose)
    assert rotvecs.shape == (96, 24, 3)
    assert per.period_from_rotations(rotvecs[:, 1]).period == pytest.approx(24.0, abs=0.2)
    # Its rotation *angle* alone repeats twice per swing.
    angle = np.linalg.norm(pose[:, 1], axis=-1)
    assert per.estimate_period(angle).period == pytest.approx(12.0, abs=0.2)
    assert not per.period_from_rotations(rotvecs[:, 5]).is_periodic  # a still joint


def non_periodic_signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    t = np.arange(96)
    return {
        "white noise": rng.standard_normal(96),
        "random walk": np.cumsum(rng.standard_normal(96)),
        "straight line": 0.3 * t + 2.0,
        "constant": np.full(96, 4.0),
        "decay": np.exp(-t / 15.0),
        "chirp": np.sin(0.002 * t**2),
        "single bump": np.exp(-0.5 * ((t - 40) / 6.0) ** 2),
    }


@pytest.mark.parametrize("name", list(non_periodic_signals()))
def test_non_periodic_signals_are_reported_as_such(name):
    estimate = per.estimate_period(non_periodic_signals()[name])
    assert estimate.period is None and not estimate.is_periodic
    assert estimate.reason


def test_white_noise_is_rarely_called_periodic():
    rng = np.random.default_rng(3)
    found = sum(per.estimate_period(rng.standard_normal(96)).is_periodic for _ in range(100))
    assert found <= 5


@pytest.mark.parametrize(("t", "period"), [(64, 24.0), (64, 28.0), (96, 40.0)])
def test_periods_up_to_half_the_window_are_found(t, period):
    """A 24-frame gait in the temporal tab's default 64-frame window (beyond 0.37 T, so no second cycle)."""
    rng = np.random.default_rng(5)
    x = sine(t, period) + 0.1 * rng.standard_normal(t)
    estimate = per.estimate_period(x)
    assert estimate.is_periodic, estimate.reason
    assert estimate.period == pytest.approx(period, rel=0.05)
    matrix = per.period_from_attention(periodic_matrix(t, period))
    assert matrix.period == pytest.approx(period, rel=0.05), matrix.reason


def test_smooth_noise_is_rarely_called_periodic_at_long_lags():
    rng = np.random.default_rng(4)
    found = 0
    for _ in range(100):
        x = np.zeros(64)
        for i in range(1, 64):
            x[i] = 0.9 * x[i - 1] + rng.standard_normal()
        found += per.estimate_period(x).is_periodic
    assert found <= 6


def test_too_short_and_non_finite_input_say_why():
    assert "too short" in per.estimate_period(sine(3, 3.0)).reason
    bad = sine(50, 10.0)
    bad[3] = np.nan
    assert "non-finite" in per.estimate_period(bad).reason


@pytest.mark.parametrize(("t", "period"), [(32, 6.0), (48, 9.5), (96, 24.0)])
def test_recovers_the_period_of_a_periodic_attention_matrix(t, period):
    estimate = per.period_from_attention(periodic_matrix(t, period))
    assert estimate.is_periodic, estimate.reason
    assert estimate.method == "attention"
    assert estimate.period == pytest.approx(period, abs=0.3)


def test_recovers_the_period_of_a_noisy_attention_matrix():
    rng = np.random.default_rng(0)
    a = periodic_matrix(64, 12.0) * np.exp(0.4 * rng.standard_normal((64, 64)))
    a /= a.sum(-1, keepdims=True)
    np.testing.assert_allclose(a.sum(-1), 1.0)
    assert per.period_from_attention(a).period == pytest.approx(12.0, abs=0.5)
    # The lag profile peaks at the period too (what the figure shows).
    profile = lag_profile(a)
    assert 11 <= int(np.argmax(profile[6:20])) + 6 <= 13


def test_non_periodic_attention_matrices_are_reported_as_such():
    rng = np.random.default_rng(2)
    t = 48
    lag = np.abs(np.subtract.outer(np.arange(t), np.arange(t)))
    decaying = np.exp(-lag / 4.0)
    uniform = np.ones((t, t))
    random = rng.dirichlet(np.ones(t), size=t)
    for name, a in (("decaying", decaying), ("uniform", uniform), ("random", random)):
        estimate = per.period_from_attention(a / a.sum(-1, keepdims=True))
        assert not estimate.is_periodic, name
        assert estimate.reason, name


def test_estimates_serialise_to_json():
    clean = per.estimate_period(sine(64, 8.0)).to_dict()
    none = per.estimate_period(np.zeros(64)).to_dict()
    text = json.dumps([clean, none])
    assert '"is_periodic": true' in text and '"period": null' in text
