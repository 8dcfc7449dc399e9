"""Windowed temporal inference over person tracks, streamed, batched across tracks and windows.

The network's three stages (docs/architecture.md) are used separately:

1. :meth:`IntModel.encode_frames` runs once per crop (batched over whatever crops are waiting, across tracks
   and frames) and gives each (track, frame) row its 24 joint tokens, shape token and camera token;
2. :meth:`IntModel.temporal` runs per window: each track is covered by overlapping windows of ``window``
   frames (default 64; any length works through the interpolated temporal embedding) every ``stride`` frames
   (default ``window // 2``), the last window aligned with the track's end; windows of equal length are
   batched together, across tracks;
3. the windows' output joint tokens are **blended** per row with window weights that fall to (almost) zero at
   the window edges, a Hann taper ``w(i) = sin^2(pi (i + 1/2) / L)``; at stride L/2 the overlapping tapers
   sum to one. Blending happens on the tokens *before* the heads, where averaging is well defined (a
   weighted mean of rotations would need re-orthonormalisation; tokens are plain vectors and the 6D head
   and Gram-Schmidt follow), so the decoded pose moves continuously across a seam: where one window takes
   over from the next, its weight starts from zero;
4. :meth:`IntModel.decode` runs once per row (batched), when every window covering the row is done.

Rows are streamed: crops arrive in frame order (:meth:`WindowedInference.add`), and decoded rows leave as
soon as they are final, so a caller can render early frames while later ones are still being read. A track
no longer than one window gives exactly the single-window result. With the temporal transformer off (or a
model without one) every row is decoded from its own frame: the image model.

Precision: fp32, or bf16 autocast on CPU or CUDA; blending and decoding of the body model are fp32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from int_model.model import IntModel
from int_model.precision import PRECISION_CHOICES, autocast_context

DEFAULT_WINDOW = 64


@dataclass(frozen=True)
class InferenceSettings:
    """How the network runs over tracks.

    Attributes:
        window: frames per temporal window (>= 2).
        stride: frames between window starts; default ``window // 2``.
        temporal: run the temporal transformer; None means "when the model has one".
        precision: "fp32", "bf16" (autocast) or "auto" (bf16 where the device computes it natively).
        encode_batch: crops per ``encode_frames`` call.
        window_batch: windows per ``temporal`` call.
        decode_batch: rows per ``decode`` call.
        keep_vertices: return mesh vertices with each row (for rendering and mesh export).
    """

    window: int = DEFAULT_WINDOW
    stride: int | None = None
    temporal: bool | None = None
    precision: str = "fp32"
    encode_batch: int = 32
    window_batch: int = 16
    decode_batch: int = 64
    keep_vertices: bool = True

    def __post_init__(self) -> None:
        if self.window < 2:
            raise ValueError(f"window must be at least 2 frames, got {self.window}")
        if self.stride is not None and not 1 <= self.stride <= self.window:
            raise ValueError(f"stride must be in [1, window], got {self.stride}")
        if self.precision not in PRECISION_CHOICES:
            raise ValueError(f"precision must be one of {PRECISION_CHOICES}, got {self.precision!r}")
        for name in ("encode_batch", "window_batch", "decode_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")

    @property
    def effective_stride(self) -> int:
        return self.stride if self.stride is not None else max(1, self.window // 2)


def window_spans(length: int, *, window: int, stride: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` windows covering ``range(length)``: every ``stride`` frames, the last one
    aligned with the end; a single window ``(0, length)`` when ``length <= window``."""
    if length <= 0:
        return []
    if length <= window:
        return [(0, length)]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] + window < length:
        starts.append(length - window)
    return [(s, s + window) for s in starts]


def window_weights(length: int) -> np.ndarray:
    """(length,) Hann taper ``sin^2(pi (i + 1/2) / length)``: near zero at both edges, one in the middle;
    two such windows offset by half their length sum to one."""
    i = np.arange(length, dtype=np.float64)
    return np.sin(math.pi * (i + 0.5) / length) ** 2


@dataclass(frozen=True)
class DecodedRows:
    """Decoded (track, frame) rows, N of them, as numpy arrays (float32).

    Attributes:
        track_id: (N,) int.
        index: (N,) int position of the row within its track.
        pose: (N, 72) axis-angle, global orientation first.
        rotmat: (N, 24, 3, 3) the same as rotation matrices.
        betas: (N, 10).
        cam: (N, 3) weak-perspective crop camera (s, tx, ty).
        joints3d: (N, 24, 3) camera frame of the body model (x right, y down), before translation.
        joints2d: (N, 24, 2) normalised crop coordinates ([-1, 1]).
        vertices: (N, V, 3) or None when not kept.
    """

    track_id: np.ndarray
    index: np.ndarray
    pose: np.ndarray
    rotmat: np.ndarray
    betas: np.ndarray
    cam: np.ndarray
    joints3d: np.ndarray
    joints2d: np.ndarray
    vertices: np.ndarray | None

    def __len__(self) -> int:
        return len(self.track_id)

    @staticmethod
    def concatenate(parts: Sequence[DecodedRows]) -> DecodedRows:
        """One DecodedRows from several (vertices kept only if every part has them)."""
        if not parts:
            raise ValueError("nothing to concatenate")
        keep = all(p.vertices is not None for p in parts)
        return DecodedRows(
            **{name: np.concatenate([getattr(p, name) for p in parts])
               for name in ("track_id", "index", "pose", "rotmat", "betas", "cam", "joints3d", "joints2d")},
            vertices=np.concatenate([p.vertices for p in parts]) if keep else None,
        )


@dataclass
class _TrackState:
    """Book-keeping of one track inside :class:`WindowedInference`. ``length`` is None while the track is
    open (streamed: its end is not known yet); its windows are then the regular ones every ``stride`` frames,
    which are always the first windows of the plan for whatever length it ends with."""

    track_id: int
    length: int | None
    window: int
    stride: int
    spans: list[tuple[int, int]] = field(default_factory=list)
    last_cover: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    encoded: int = 0  # rows encoded so far (a prefix)
    windows_done: int = 0  # windows run so far (in order)
    finalised: int = 0  # rows decoded so far (a prefix)
    joints: dict[int, torch.Tensor] = field(default_factory=dict)  # row -> (24, D) spatial joint tokens
    shape: dict[int, torch.Tensor] = field(default_factory=dict)  # row -> (D,)
    cam: dict[int, torch.Tensor] = field(default_factory=dict)  # row -> (D,)
    blended: dict[int, torch.Tensor] = field(default_factory=dict)  # row -> (24, D) weighted sum (fp32)
    weight: dict[int, float] = field(default_factory=dict)  # row -> sum of weights

    def __post_init__(self) -> None:
        if self.length is not None:
            self.end(self.length)

    def end(self, length: int) -> None:
        """Fix the track's length: its whole window plan is known from now on."""
        spans = window_spans(int(length), window=self.window, stride=self.stride)
        if spans[:self.windows_done] != self.spans[:self.windows_done]:
            raise RuntimeError(f"track {self.track_id}: windows already run do not fit its length {length}")
        self.length, self.spans = int(length), spans
        self.last_cover = np.zeros(int(length), dtype=np.int64)
        for w, (start, end) in enumerate(spans):
            self.last_cover[start:end] = w

    def next_window(self) -> tuple[int, int] | None:
        """The next window to run, if all its rows are encoded."""
        if self.length is None:  # open: the regular windows
            start = self.windows_done * self.stride
            span = (start, start + self.window)
            if span[1] <= self.encoded:
                self.spans.append(span)
                return span
            return None
        if self.windows_done < len(self.spans) and self.spans[self.windows_done][1] <= self.encoded:
            return self.spans[self.windows_done]
        return None

    def ready_rows(self, temporal: bool) -> int:
        """How many rows (a prefix) can be decoded now."""
        if not temporal:
            return self.encoded
        if self.windows_done == 0:
            return 0
        if self.length is None:
            # No later window starts before the next regular start, and the window aligned with the (unknown)
            # end starts at least one window before the rows encoded so far end.
            return max(0, min(self.windows_done * self.stride, self.encoded - self.window))
        return int(np.searchsorted(self.last_cover, self.windows_done - 1, side="right"))


class WindowedInference:
    """Streaming windowed inference over tracks.

    Args:
        model: the network (eval mode); inputs are moved to its device.
        track_lengths: {track_id: number of rows}; each track's crops must be added in order. None: tracks are
            open, they start with their first crop and end with :meth:`end_track` (or :meth:`finish`).
        settings: :class:`InferenceSettings`.

    Usage::

        engine = WindowedInference(model, track_lengths={0: 120, 1: 80}, settings=InferenceSettings())
        for frame crops ...:
            for rows in engine.add(track_ids, crops):   # crops (n, 3, S, S) normalised
                ...                                      # DecodedRows as soon as they are final
        for rows in engine.finish(): ...
    """

    def __init__(self, model: IntModel, *, track_lengths: dict[int, int] | None = None,
                 settings: InferenceSettings) -> None:
        self.model = model
        self.settings = settings
        self.device = next(model.parameters()).device
        wanted = model.temporal_transformer is not None if settings.temporal is None else settings.temporal
        if wanted and model.temporal_transformer is None:
            raise ValueError("temporal inference was asked for, but this model has no temporal transformer")
        self.temporal = bool(wanted)
        self._weights: dict[int, torch.Tensor] = {}
        self._tracks: dict[int, _TrackState] = {}
        self._open = track_lengths is None
        for track_id, length in (track_lengths or {}).items():
            self._tracks[int(track_id)] = self._new_track(int(track_id), int(length))
        self._pending_ids: list[int] = []
        self._pending_crops: list[torch.Tensor] = []

    def _new_track(self, track_id: int, length: int | None) -> _TrackState:
        return _TrackState(track_id, length, window=self.settings.window, stride=self.settings.effective_stride)

    # ------------------------------------------------------------------ public
    def end_track(self, track_id: int) -> None:
        """An open track has had its last crop added (rows still queued count); its last windows can run."""
        track = self._tracks.get(int(track_id))
        if track is None and self._open and int(track_id) in self._pending_ids:  # every row still queued
            track = self._tracks[int(track_id)] = self._new_track(int(track_id), None)
        if track is None:
            raise KeyError(f"unknown track id {track_id}")
        if track.length is None:
            track.end(track.encoded + sum(1 for t in self._pending_ids if t == track.track_id))

    def add(self, track_ids: Sequence[int], crops: torch.Tensor) -> list[DecodedRows]:
        """Queue crops (n, 3, S, S) of the next rows of ``track_ids`` (n,); when a batch is full, encode it and
        return the rows that became final (else an empty list)."""
        if len(track_ids) != len(crops):
            raise ValueError(f"{len(track_ids)} track ids for {len(crops)} crops")
        self._pending_ids.extend(int(t) for t in track_ids)
        self._pending_crops.extend(crops)
        if len(self._pending_ids) >= self.settings.encode_batch:
            return self._flush()
        return []

    def flush(self) -> list[DecodedRows]:
        """Encode what is queued now (a partial batch) and return the rows that became final."""
        return self._flush()

    def finish(self) -> list[DecodedRows]:
        """Encode what is queued and decode every remaining row; checks that every track was complete."""
        for track in self._tracks.values():
            if track.length is None:
                self.end_track(track.track_id)
        out = self._flush()
        missing = {t.track_id: t.length - t.encoded for t in self._tracks.values() if t.encoded < t.length}
        if missing:
            raise ValueError(f"tracks ended early (rows missing per track id): {missing}")
        return out

    # ------------------------------------------------------------------ stages
    def _flush(self) -> list[DecodedRows]:
        with torch.inference_mode(), autocast_context(self.device, self.settings.precision):
            while self._pending_ids:
                batch = self.settings.encode_batch
                ids, crops = self._pending_ids[:batch], self._pending_crops[:batch]
                del self._pending_ids[:batch], self._pending_crops[:batch]
                self._encode(ids, torch.stack(crops).to(self.device, non_blocking=True))
            if self.temporal:
                self._run_ready_windows()
            return self._decode_ready()

    def _encode(self, track_ids: list[int], crops: torch.Tensor) -> None:
        tokens = self.model.encode_frames(crops)
        for n, track_id in enumerate(track_ids):
            track = self._tracks.get(track_id)
            if track is None and self._open:
                track = self._tracks[track_id] = self._new_track(track_id, None)
            if track is None:
                raise KeyError(f"unknown track id {track_id}")
            if track.length is not None and track.encoded >= track.length:
                raise ValueError(f"track {track_id} got more than its {track.length} rows")
            row = track.encoded
            track.joints[row], track.shape[row], track.cam[row] = tokens.joints[n], tokens.shape[n], tokens.cam[n]
            track.encoded += 1

    def _window_weight(self, length: int) -> torch.Tensor:
        if length not in self._weights:
            self._weights[length] = torch.as_tensor(window_weights(length), dtype=torch.float32,
                                                    device=self.device)
        return self._weights[length]

    def _run_ready_windows(self) -> None:
        ready: dict[int, list[tuple[_TrackState, int, int]]] = {}
        for track in self._tracks.values():
            while (span := track.next_window()) is not None:
                start, end = span
                ready.setdefault(end - start, []).append((track, start, end))
                track.windows_done += 1
        for length, items in ready.items():
            weight = self._window_weight(length)
            for first in range(0, len(items), self.settings.window_batch):
                chunk = items[first:first + self.settings.window_batch]
                tokens = torch.stack([torch.stack([t.joints[r] for r in range(s, e)]) for t, s, e in chunk])
                if self.model.uses_temporal(length, True):
                    tokens = self.model.temporal(tokens)
                tokens = tokens.float()
                for (track, start, end), window_tokens in zip(chunk, tokens, strict=True):
                    for i, row in enumerate(range(start, end)):
                        contribution = weight[i] * window_tokens[i]
                        if row in track.blended:
                            track.blended[row] += contribution
                            track.weight[row] += float(weight[i])
                        else:
                            track.blended[row] = contribution
                            track.weight[row] = float(weight[i])

    def _decode_ready(self) -> list[DecodedRows]:
        rows: list[tuple[_TrackState, int]] = []
        for track in self._tracks.values():
            ready = track.ready_rows(self.temporal)
            rows.extend((track, r) for r in range(track.finalised, ready))
            track.finalised = max(track.finalised, ready)
        step = self.settings.decode_batch
        return [self._decode(rows[first:first + step]) for first in range(0, len(rows), step)]

    def _decode(self, rows: list[tuple[_TrackState, int]]) -> DecodedRows:
        joints, shape, cam = [], [], []
        for track, r in rows:
            if self.temporal:
                joints.append(track.blended.pop(r) / track.weight.pop(r))
                del track.joints[r]
            else:
                joints.append(track.joints.pop(r))
            shape.append(track.shape.pop(r))
            cam.append(track.cam.pop(r))
        out = self.model.decode(torch.stack(joints)[None], torch.stack(shape)[None], torch.stack(cam)[None])

        def numpy(t: torch.Tensor) -> np.ndarray:
            return t[0].detach().float().cpu().numpy()

        return DecodedRows(
            track_id=np.array([t.track_id for t, _ in rows], dtype=np.int64),
            index=np.array([r for _, r in rows], dtype=np.int64),
            pose=numpy(out.pose),
            rotmat=numpy(out.rotmat),
            betas=numpy(out.betas),
            cam=numpy(out.cam),
            joints3d=numpy(out.joints3d),
            joints2d=numpy(out.joints2d),
            vertices=numpy(out.vertices) if self.settings.keep_vertices else None,
        )


def infer_tracks(model: IntModel, crops: dict[int, torch.Tensor], *, settings: InferenceSettings) -> DecodedRows:
    """All tracks at once (tests, benchmarks): {track_id: crops (K, 3, S, S) normalised} -> rows, sorted by
    (track_id, index). Crops are fed frame by frame across tracks, as the streaming pipeline does."""
    engine = WindowedInference(model, track_lengths={t: len(c) for t, c in crops.items()}, settings=settings)
    parts: list[DecodedRows] = []
    longest = max((len(c) for c in crops.values()), default=0)
    for k in range(longest):
        ids = [t for t, c in crops.items() if k < len(c)]
        parts.extend(engine.add(ids, torch.stack([crops[t][k] for t in ids])))
    parts.extend(engine.finish())
    if not parts:
        raise ValueError("no crops to run")
    rows = DecodedRows.concatenate(parts)
    order = np.lexsort((rows.index, rows.track_id))
    return DecodedRows(**{name: None if getattr(rows, name) is None else getattr(rows, name)[order]
                          for name in rows.__dataclass_fields__})
