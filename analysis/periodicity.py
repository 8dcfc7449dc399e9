"""Dominant period of a joint, from its temporal attention matrix and from its rotation over time.

One estimator serves both: the normalised autocorrelation of a (multi-channel) signal, whose first
prominent peak at a lag of at least ``min_period`` frames is the period, refined to a fraction of a
frame by a parabola through the peak and its two neighbours.

* From a rotation signal (T, C): the channels (e.g. the three components of a joint's rotation relative
  to its mean rotation, :func:`relative_rotation_vectors`) are detrended and their autocovariances summed,
  so a joint that swings about any axis counts, and the period is the swing's, not half of it (the
  rotation *angle* of a joint that swings +-a through its rest pose repeats twice per cycle).
* From an attention matrix A (T, T) (query frame, key frame): every row is a signal over the key frames.
  When the joint attends to frames one period apart (the paper's Fig. 7), every row repeats with that
  period, so the rows' summed autocorrelation peaks at it. Attention that only decays with frame distance
  gives a monotone autocorrelation and no peak; the estimator says so.

Non-periodic input is reported as such: :class:`PeriodEstimate` has ``period=None`` and a ``reason`` when
the signal is constant or a straight line, when the autocorrelation has no local maximum in the searched
range, when its best peak is below ``min_correlation``, below the noise level ``noise_z / sqrt(T - lag)``
of white noise at that lag, rises less than ``min_prominence`` above the lowest value before it, or when
the repetition is not there again one period later (``r(2P) < min_correlation``: smooth random motion
has chance bumps in its autocorrelation at long lags, a periodic one repeats). ``confidence`` is the
autocorrelation at the peak (1 for a perfectly repeating signal, about 0 for noise).

Searched periods: ``min_period`` (2 frames) up to, by default, half the clip (T / 2: a clip must hold two
cycles). Where the second cycle of a candidate lies beyond the clip (periods above about 0.37 T), the
repetition cannot be confirmed, so its autocorrelation must reach ``UNCHECKED_MIN_CORRELATION`` instead.
Measured on this estimator with its defaults (300 draws each, 32-128 frames): white noise and random walks are
called periodic in at most 3 % of draws, AR(1) noise (phi 0.9) in at most 6.3 % (6.7 % with the earlier
0.37 T limit); sinusoids with noise of 0.3 times their amplitude are found within 10 % of their period in 97-100 %
of draws up to 0.37 T, 77-97 % between 0.37 T and 0.45 T, and 37-70 % at exactly T / 2.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_MIN_CORRELATION",
    "DEFAULT_MIN_PERIOD",
    "DEFAULT_MIN_PROMINENCE",
    "DEFAULT_NOISE_Z",
    "PeriodEstimate",
    "autocorrelation",
    "estimate_period",
    "mean_rotations",
    "period_from_attention",
    "period_from_rotations",
    "relative_rotation_vectors",
]

#: Shortest period searched, in frames (a period of 1 is a constant signal; 2 is Nyquist).
DEFAULT_MIN_PERIOD = 2.0
#: The autocorrelation at the period must reach this value.
DEFAULT_MIN_CORRELATION = 0.3
#: ... and exceed white noise's standard deviation at that lag, 1 / sqrt(T - lag), this many times.
DEFAULT_NOISE_Z = 2.5
#: ... and rise this much above its lowest value between lag 0 and the peak (a real repetition dips first).
DEFAULT_MIN_PROMINENCE = 0.25
#: Peaks within this fraction of the best one count as equally good; the shortest of them is the period
#: (a signal of period P also repeats at 2P, 3P).
HARMONIC_TOLERANCE = 0.8
#: A second cycle (lag 2P) is checked where at least this fraction of the frames still overlap at that lag.
SECOND_CYCLE_MIN_OVERLAP = 0.25
#: A period whose second cycle lies beyond the clip (between about 0.37 T and T / 2) must show this much
#: autocorrelation instead: smooth noise has chance bumps at long lags that a second cycle would expose.
UNCHECKED_MIN_CORRELATION = 0.7
#: A signal whose standard deviation is below this (relative to its magnitude, or absolute near 0) is constant.
_FLAT_RELATIVE = 1e-6
_FLAT_ABSOLUTE = 1e-12


@dataclass(frozen=True)
class PeriodEstimate:
    """The dominant period of one signal.

    Attributes:
        period: frames per cycle (sub-frame), or None when the signal is not periodic in the searched range.
        confidence: autocorrelation at the chosen lag in [0, 1] (0 when no peak was found).
        reason: why ``period`` is None ("" when it is not).
        lag: the integer lag of the autocorrelation peak (None without one).
        method: "attention" or "rotation" or "signal": what the estimate was made from.
    """

    period: float | None
    confidence: float
    reason: str = ""
    lag: int | None = None
    method: str = "signal"

    @property
    def is_periodic(self) -> bool:
        return self.period is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (period None stays None)."""
        out = asdict(self)
        out["is_periodic"] = self.is_periodic
        return out


def _as_channels(signal: np.ndarray) -> np.ndarray:
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"signal must be (T,) or (T, C), got shape {np.shape(signal)}")
    return x


def _detrend(x: np.ndarray, *, linear: bool) -> np.ndarray:
    """Remove each channel's mean, and its least-squares line when ``linear``. (T, C) -> (T, C), a copy."""
    t = np.arange(len(x), dtype=np.float64)
    if not linear or len(x) < 3:
        return x - x.mean(axis=0, keepdims=True)
    design = np.stack([np.ones_like(t), t - t.mean()], axis=1)
    coef, *_ = np.linalg.lstsq(design, x, rcond=None)
    return x - design @ coef


def autocorrelation(signal: np.ndarray, *, max_lag: int, detrend: bool = True) -> np.ndarray:
    """Normalised autocorrelation of a (multi-channel) signal, summed over channels.

    ``r(k) = [sum_c sum_t x_c(t) x_c(t+k) / (T - k)] / [sum_c sum_t x_c(t)^2 / T]`` with each channel
    detrended first (mean, and the least-squares line when ``detrend``). The (T - k) normalisation keeps
    the value of a pure repetition near 1 at any lag.

    Args:
        signal: (T,) or (T, C). Not modified.
        max_lag: largest lag, < T.
        detrend: remove a linear trend per channel (else only the mean).

    Returns:
        (max_lag + 1,) with r(0) = 1, or all zeros for a constant signal.
    """
    x = _detrend(_as_channels(signal), linear=detrend)
    n = len(x)
    if not 0 <= max_lag < n:
        raise ValueError(f"max_lag must be in [0, {n - 1}] for a signal of {n} frames, got {max_lag}")
    energy = float((x**2).sum()) / n
    if energy <= 0.0:
        return np.zeros(max_lag + 1)
    out = np.empty(max_lag + 1)
    for k in range(max_lag + 1):
        out[k] = float((x[: n - k] * x[k:]).sum()) / (n - k) / energy
    return out


def _parabolic_vertex(left: float, centre: float, right: float) -> tuple[float, float]:
    """(offset in [-0.5, 0.5], value) of the vertex of the parabola through three equally spaced values."""
    curvature = left - 2.0 * centre + right
    if curvature >= 0.0:  # not a maximum (flat or convex): stay on the sample
        return 0.0, float(centre)
    offset = float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))
    return offset, float(centre - 0.25 * (left - right) * offset)


def _second_cycle(r: np.ndarray, period: float) -> float | None:
    """Best autocorrelation within a frame of lag 2 * ``period``, or None where ``r`` does not reach it."""
    centre = int(round(2.0 * period))
    if centre + 1 >= len(r):
        return None
    return float(r[centre - 1: centre + 2].max())


def _is_flat(x: np.ndarray, *, scale: float | None = None) -> bool:
    """True when no channel of (T, C) varies by more than rounding relative to ``scale`` (default max |x|)."""
    spread = float(np.std(x, axis=0).max()) if x.size else 0.0
    scale = (float(np.abs(x).max()) if x.size else 0.0) if scale is None else scale
    return spread <= max(_FLAT_ABSOLUTE, _FLAT_RELATIVE * scale)


def estimate_period(
    signal: np.ndarray,
    *,
    min_period: float = DEFAULT_MIN_PERIOD,
    max_period: float | None = None,
    min_correlation: float = DEFAULT_MIN_CORRELATION,
    noise_z: float = DEFAULT_NOISE_Z,
    min_prominence: float = DEFAULT_MIN_PROMINENCE,
    detrend: bool = True,
    method: str = "signal",
) -> PeriodEstimate:
    """The dominant period of ``signal`` (T,) or (T, C) in frames, or a reasoned None.

    The search covers lags ``min_period .. max_period`` (default: half the signal, T / 2; see the module
    docstring). Among the autocorrelation's local maxima there,
    those within ``HARMONIC_TOLERANCE`` of the best one compete and the shortest lag wins; it is refined by a parabola to a fraction of a frame and checked
    against ``min_correlation``, the white-noise level ``noise_z / sqrt(T - lag)``, ``min_prominence`` and,
    where the signal is long enough, the second cycle at lag 2P.

    Returns:
        :class:`PeriodEstimate` (``period`` None with a ``reason`` for non-periodic or too short input).
    """
    x = _as_channels(signal)
    n = len(x)
    if not np.isfinite(x).all():
        return PeriodEstimate(None, 0.0, "the signal has non-finite values", method=method)
    # Lags up to where a quarter of the frames still overlap: the second-cycle check looks that far.
    reach = n - 1 - int(math.ceil(n * SECOND_CYCLE_MIN_OVERLAP))
    longest = n / 2.0 if max_period is None else float(max_period)
    hi = min(int(math.floor(longest)), n - 2)
    lo = max(int(math.ceil(min_period)), 1)
    if hi < lo:
        return PeriodEstimate(
            None, 0.0, f"too short: {n} frames cannot show a period of at least {min_period:g} frames twice",
            method=method,
        )
    if _is_flat(x) or _is_flat(_detrend(x, linear=detrend), scale=float(np.abs(x).max())):
        what = "does not vary" if _is_flat(x) else "is a straight line"
        return PeriodEstimate(None, 0.0, f"the signal {what}", method=method)
    r = autocorrelation(x, max_lag=max(hi + 1, reach), detrend=detrend)
    peaks = [k for k in range(lo, hi + 1) if r[k] >= r[k - 1] and r[k] >= r[k + 1]]
    if not peaks:
        return PeriodEstimate(
            None, 0.0, f"no repetition: the autocorrelation has no peak between lags {lo} and {hi}", method=method
        )
    # Compare peaks by their parabola vertices: a period between two lags splits its peak over both.
    vertex = {k: _parabolic_vertex(r[k - 1], r[k], r[k + 1]) for k in peaks}
    best_value = max(vertex[k][1] for k in peaks)
    if best_value <= 0.0:
        return PeriodEstimate(None, 0.0, "no repetition: every autocorrelation peak is negative", method=method)
    lag = min(k for k in peaks if vertex[k][1] >= HARMONIC_TOLERANCE * best_value)
    offset, value = vertex[lag]
    confidence = float(np.clip(value, 0.0, 1.0))
    noise_level = noise_z / math.sqrt(n - lag)
    prominence = value - float(r[: lag + 1].min())
    if value < min_correlation:
        reason = f"weak repetition: autocorrelation {value:.2f} at lag {lag} is below {min_correlation:g}"
    elif value < noise_level:
        reason = (f"indistinguishable from noise: autocorrelation {value:.2f} at lag {lag} is below the noise "
                  f"level {noise_level:.2f} for {n} frames")
    elif prominence < min_prominence:
        reason = (f"no distinct cycle: the autocorrelation rises only {prominence:.2f} before lag {lag} "
                  f"(needs {min_prominence:g})")
    elif (second := _second_cycle(r, lag + offset)) is not None and second < min_correlation:
        reason = (f"does not repeat: autocorrelation {value:.2f} at lag {lag} but {second:.2f} two cycles "
                  f"later (needs {min_correlation:g})")
    elif second is None and value < UNCHECKED_MIN_CORRELATION:
        reason = (f"too few cycles to confirm: autocorrelation {value:.2f} at lag {lag}, whose second cycle lies "
                  f"beyond the {n} frames, is below {UNCHECKED_MIN_CORRELATION:g}")
    else:
        period = lag + offset
        return PeriodEstimate(float(period), confidence, "", lag=lag, method=method)
    return PeriodEstimate(None, confidence, reason, lag=lag, method=method)


def period_from_attention(matrix: np.ndarray, **kwargs: Any) -> PeriodEstimate:
    """A joint's period from its temporal attention matrix (T, T) (query frame, key frame).

    Each row (one query frame's attention over the key frames) is a channel of the signal handed to
    :func:`estimate_period`, with only the mean removed (a row is a distribution, not a drifting signal).
    Keyword arguments go to :func:`estimate_period`.
    """
    a = np.asarray(matrix, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"attention matrix must be (T, T), got {a.shape}")
    kwargs.setdefault("detrend", False)
    return estimate_period(a.T, method="attention", **kwargs)


def period_from_rotations(rotvecs: np.ndarray, **kwargs: Any) -> PeriodEstimate:
    """A joint's period from its rotation over time: (T, 3) rotation vectors (e.g. one joint of
    :func:`relative_rotation_vectors`), linearly detrended. Keyword arguments go to :func:`estimate_period`."""
    r = np.asarray(rotvecs, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError(f"rotation vectors must be (T, 3), got {r.shape}")
    return estimate_period(r, method="rotation", **kwargs)
