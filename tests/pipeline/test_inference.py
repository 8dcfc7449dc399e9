"""Windowed temporal inference: windows, weights, equality with one window, continuity at seams, streaming."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from int_model import build_model
from pipeline.inference import (
    DecodedRows,
    InferenceSettings,
    WindowedInference,
    infer_tracks,
    window_spans,
    window_weights,
)


@pytest.fixture(scope="module")
def tiny(body_model):
    torch.manual_seed(0)
    return build_model("tiny", body_model=body_model).eval()


def smooth_clip(length: int, *, seed: int, drift: float = 0.05, size: int = 64) -> torch.Tensor:
    """(length, 3, S, S) frames that change slowly (a small drift from one random image toward another)."""
    generator = torch.Generator().manual_seed(seed)
    a, b = torch.randn(2, 3, size, size, generator=generator)
    t = torch.linspace(0, 1, length)[:, None, None, None]
    return a + (b - a) * drift * t


def test_window_spans_cover_every_frame_and_end_at_the_track_end():
    assert window_spans(0, window=8, stride=4) == []
    assert window_spans(5, window=8, stride=4) == [(0, 5)]
    assert window_spans(8, window=8, stride=4) == [(0, 8)]
    spans = window_spans(21, window=8, stride=4)
    assert spans[0] == (0, 8) and spans[-1] == (13, 21)
    assert all(e - s == 8 for s, e in spans)
    covered = np.zeros(21, int)
    for s, e in spans:
        covered[s:e] += 1
    assert covered.min() >= 1


def test_window_weights_fall_to_zero_at_the_edges_and_sum_to_one_at_half_overlap():
    w = window_weights(64)
    assert w[0] < 1e-3 and w[-1] < 1e-3 and w.max() == pytest.approx(1.0, abs=1e-3)
    assert np.allclose(w[32:] + w[:32], 1.0)
    assert window_weights(1) == pytest.approx([1.0])


@pytest.mark.parametrize("temporal", [True, False])
def test_one_window_equals_the_plain_forward_pass(tiny, temporal):
    """Tracks that fit one window give exactly the model's own forward pass on the whole clip (crops fed frame by
    frame across tracks, encoded in batches that straddle tracks and frames)."""
    clips = {3: smooth_clip(20, seed=1, drift=1.0), 7: smooth_clip(13, seed=2, drift=1.0)}
    rows = infer_tracks(tiny, clips, settings=InferenceSettings(window=32, encode_batch=5, temporal=temporal))
    assert len(rows) == 33 and rows.vertices is not None
    for track_id, clip in clips.items():
        with torch.inference_mode():
            expected = tiny(clip[None], temporal=temporal)
        mine = rows.track_id == track_id
        assert np.array_equal(rows.index[mine], np.arange(len(clip)))
        for name in ("pose", "betas", "cam", "joints3d", "joints2d"):
            assert np.allclose(getattr(rows, name)[mine], getattr(expected, name)[0].numpy(), atol=1e-5), name
        assert np.allclose(rows.vertices[mine], expected.vertices[0].numpy(), atol=1e-5)


def test_windowed_inference_close_to_one_window_on_a_long_track(tiny):
    """Windows of 16 over 40 frames stay close to one 40-frame window (the temporal context differs, so equality
    is approximate)."""
    clip = smooth_clip(40, seed=3, drift=1.0)
    one = infer_tracks(tiny, {0: clip}, settings=InferenceSettings(window=64))
    windowed = infer_tracks(tiny, {0: clip}, settings=InferenceSettings(window=16))
    gap = np.linalg.norm(one.joints3d - windowed.joints3d, axis=-1)
    spread = np.linalg.norm(one.joints3d - one.joints3d.mean(axis=0), axis=-1)
    assert gap.mean() < 0.25 * spread.mean()


def _frame_steps(rows: DecodedRows) -> np.ndarray:
    """(K - 1,) largest joint displacement between neighbouring frames."""
    return np.linalg.norm(np.diff(rows.joints3d, axis=0), axis=-1).max(axis=-1)


def test_blended_windows_do_not_jump_at_seams(tiny):
    """Hard-switched windows (stride = window, no overlap) jump at every seam by more than any step inside a
    window; the blended windows (stride = window / 2) never step further than the largest step inside a window."""
    window, length = 8, 40
    clip = smooth_clip(length, seed=0)
    hard = _frame_steps(infer_tracks(tiny, {0: clip}, settings=InferenceSettings(window=window, stride=window)))
    blended = _frame_steps(infer_tracks(tiny, {0: clip}, settings=InferenceSettings(window=window)))
    seams = np.arange(window - 1, length - 1, window)  # steps from the last frame of a window to the next one
    inside = np.setdiff1d(np.arange(length - 1), seams)
    assert hard[seams].min() > 1.2 * hard[inside].max()  # the content makes seams visible
    assert blended.max() <= 1.05 * hard[inside].max()


def test_rows_stream_out_before_the_track_ends(tiny):
    """A row is decoded as soon as every window covering it has run, not at the end of the track."""
    clip = smooth_clip(40, seed=4)
    engine = WindowedInference(tiny, track_lengths={0: 40}, settings=InferenceSettings(window=8, encode_batch=4))
    emitted, indices = [], []
    for k in range(40):
        for rows in engine.add([0], clip[k:k + 1]):
            emitted.append((k, rows.index.max()))
            indices.extend(rows.index)
    for rows in engine.finish():
        indices.extend(rows.index)
    assert emitted and emitted[0][0] < 12  # first rows out after about one window
    assert all(k - last <= 8 + 4 for k, last in emitted)  # bounded latency: one window plus one batch
    assert indices == list(range(40))  # every row once, in order
    with pytest.raises(ValueError, match="more than"):
        engine.add([0] * 4, clip[:4])


def test_incomplete_tracks_are_reported(tiny):
    engine = WindowedInference(tiny, track_lengths={0: 5, 1: 3}, settings=InferenceSettings(window=8))
    engine.add([0, 1], smooth_clip(2, seed=0))
    with pytest.raises(ValueError, match="ended early"):
        engine.finish()


def test_temporal_on_a_model_without_it_is_refused(body_model):
    image_model = build_model("tiny", body_model=body_model, temporal_depth=0).eval()
    with pytest.raises(ValueError, match="no temporal transformer"):
        WindowedInference(image_model, track_lengths={0: 4}, settings=InferenceSettings(temporal=True))
    rows = infer_tracks(image_model, {0: smooth_clip(4, seed=0)}, settings=InferenceSettings())
    assert len(rows) == 4


def test_bf16_autocast_stays_close_to_fp32(tiny):
    clip = smooth_clip(12, seed=5, drift=1.0)
    fp32 = infer_tracks(tiny, {0: clip}, settings=InferenceSettings(window=8))
    bf16 = infer_tracks(tiny, {0: clip}, settings=InferenceSettings(window=8, precision="bf16"))
    assert bf16.joints3d.dtype == np.float32
    assert np.abs(fp32.joints3d - bf16.joints3d).mean() < 0.05


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(body_model):
    torch.manual_seed(0)
    model = build_model("tiny", body_model=body_model).eval()
    clip = smooth_clip(20, seed=6, drift=1.0)
    cpu = infer_tracks(model, {0: clip}, settings=InferenceSettings(window=8))
    gpu = infer_tracks(model.to("cuda"), {0: clip}, settings=InferenceSettings(window=8))
    model.to("cpu")
    assert np.allclose(cpu.joints3d, gpu.joints3d, atol=1e-3)


def test_settings_are_checked():
    with pytest.raises(ValueError):
        InferenceSettings(window=1)
    with pytest.raises(ValueError):
        InferenceSettings(window=8, stride=9)
    with pytest.raises(ValueError):
        InferenceSettings(precision="fp16")
    assert InferenceSettings(window=64).effective_stride == 32


def test_open_tracks_give_the_known_length_result_and_release_rows_before_the_end(tiny):
    lengths = {0: 5, 1: 8, 2: 21, 3: 30}  # shorter than, equal to and longer than the window of 8
    starts = {0: 3, 1: 0, 2: 6, 3: 1}  # tracks start and end at different frames
    clips = {t: smooth_clip(n, seed=t, drift=0.3) for t, n in lengths.items()}
    settings = InferenceSettings(window=8, encode_batch=4)
    known = infer_tracks(tiny, clips, settings=settings)
    engine = WindowedInference(tiny, settings=settings)  # no lengths: every track is open
    parts: list[DecodedRows] = []
    early = 0
    for frame in range(max(starts[t] + n for t, n in lengths.items())):
        ids = [t for t in lengths if starts[t] <= frame < starts[t] + lengths[t]]
        if ids:
            out = engine.add(ids, torch.stack([clips[t][frame - starts[t]] for t in ids]))
            early += sum(len(p) for p in out)
            parts.extend(out)
        for t in lengths:
            if frame == starts[t] + lengths[t] - 1:
                engine.end_track(t)
    parts.extend(engine.finish())
    rows = DecodedRows.concatenate(parts)
    order = np.lexsort((rows.index, rows.track_id))
    np.testing.assert_array_equal(rows.track_id[order], known.track_id)
    np.testing.assert_array_equal(rows.index[order], known.index)
    np.testing.assert_allclose(rows.pose[order], known.pose, atol=1e-5)
    assert early > 0  # long tracks decode their first rows while still open
    closed = WindowedInference(tiny, track_lengths={0: 3}, settings=settings)  # known tracks only
    closed.add([9], clips[0][:1])
    with pytest.raises(KeyError, match="unknown track id 9"):
        closed.flush()
