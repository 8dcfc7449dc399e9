"""User-supplied person boxes: a JSON or CSV file of ``frame, x, y, w, h[, id]`` -> tracks.

Accepted layouts (boxes are (x, y, w, h) pixels of the *source* frames, top-left corner and size; frames count
from 0)::

    frame,x,y,w,h,id          <- CSV: header optional (any column order when present), id optional
    0,100,50,80,200,1
    [{"frame": 0, "x": 100, "y": 50, "w": 80, "h": 200, "id": 1}, ...]     <- JSON list of objects
    {"boxes": [...]}                                                          <- or under "boxes"
    [[0, 100, 50, 80, 200, 1], ...]                                           <- or rows of numbers

Blank lines and lines starting with ``#`` are skipped in CSV. With ids, each id becomes one track (the ids are
kept); frames an id skips are filled by linear interpolation when the gap is at most
``TrackingParams.max_missed_frames``, and a longer gap splits the id into two tracks (a note says which new
id the second part got). Without ids, the boxes are linked by :func:`pipeline.tracking.track`
(no smoothing and no minimum length: the user's boxes are kept as given). Boxes reaching outside the frame
are clipped and boxes entirely outside, or on frames past the clip's end, are dropped, each with a note.

A bad row raises :class:`BoxFileError` naming the line (CSV) or item (JSON) and the field.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .tracking import TrackingParams, track
from .types import Detection, Track

__all__ = ["BOX_FIELDS", "BoxFileError", "BoxRow", "UserBoxes", "load_boxes", "parse_box_file"]

BOX_FIELDS: tuple[str, ...] = ("frame", "x", "y", "w", "h")
ID_FIELD = "id"
SUPPORTED_BOX_EXTENSIONS: tuple[str, ...] = (".json", ".csv")
# Score given to user boxes (they are taken as certain).
USER_BOX_SCORE = 1.0
# Largest box file read (a box file is text: anything larger is not one).
MAX_BOX_FILE_BYTES = 64 * 1024**2
# How many examples a note lists.
NOTE_MAX_EXAMPLES = 5


class BoxFileError(ValueError):
    """A box file that cannot be used; the message names the file, line or item, and field."""


@dataclass(frozen=True)
class BoxRow:
    """One parsed row: where it came from (``"line 3"`` / ``"item 2"``), frame, box (x, y, w, h), optional id."""

    where: str
    frame: int
    box: tuple[float, float, float, float]
    track_id: int | None


@dataclass(frozen=True)
class UserBoxes:
    """Tracks built from a box file, and notes for the user (clipping, dropped rows, filled gaps)."""

    tracks: list[Track]
    notes: tuple[str, ...] = ()


# ----------------------------------------------------------------------------------------------
# Parsing
# ----------------------------------------------------------------------------------------------


def _number(value: Any, *, name: str, where: str, source: str) -> float:
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        raise BoxFileError(f"{source} {where}: field '{name}' is empty; expected a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BoxFileError(f"{source} {where}: field '{name}' is {value!r}, not a number") from None
    if not math.isfinite(number):
        raise BoxFileError(f"{source} {where}: field '{name}' is {value!r}; expected a finite number")
    return number


def _integer(value: Any, *, name: str, where: str, source: str) -> int:
    number = _number(value, name=name, where=where, source=source)
    if number != int(number):
        raise BoxFileError(f"{source} {where}: field '{name}' is {value!r}; expected a whole number")
    return int(number)


def _row(values: dict[str, Any], *, where: str, source: str) -> BoxRow:
    for name in BOX_FIELDS:
        if name not in values:
            raise BoxFileError(f"{source} {where}: field '{name}' is missing (each box needs frame, x, y, w, h[, id])")
    frame = _integer(values["frame"], name="frame", where=where, source=source)
    if frame < 0:
        raise BoxFileError(f"{source} {where}: field 'frame' is {frame}; frames count from 0")
    x, y, w, h = (_number(values[name], name=name, where=where, source=source) for name in ("x", "y", "w", "h"))
    for name, size in (("w", w), ("h", h)):
        if size <= 0:
            raise BoxFileError(f"{source} {where}: field '{name}' is {size:g}; width and height must be > 0 "
                               f"(boxes are x, y, w, h, not x0, y0, x1, y1)")
    raw_id = values.get(ID_FIELD)
    empty_id = raw_id is None or (isinstance(raw_id, str) and not raw_id.strip())
    track_id = None if empty_id else _integer(raw_id, name=ID_FIELD, where=where, source=source)
    if track_id is not None and track_id < 0:
        raise BoxFileError(f"{source} {where}: field 'id' is {track_id}; ids must be >= 0")
    return BoxRow(where=where, frame=frame, box=(x, y, w, h), track_id=track_id)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_csv(text: str, source: str) -> list[BoxRow]:
    rows: list[BoxRow] = []
    columns: list[str] | None = None
    for line_number, fields in _csv_lines(text):
        where = f"line {line_number}"
        fields = [field.strip() for field in fields]
        if columns is None and not rows and fields and not _is_number(fields[0]):
            columns = [field.lower() for field in fields]
            missing = [name for name in BOX_FIELDS if name not in columns]
            if missing:
                raise BoxFileError(f"{source} {where}: the header lacks column(s) {', '.join(missing)}; "
                                   f"expected frame, x, y, w, h[, id]")
            continue
        names = columns or list(BOX_FIELDS) + [ID_FIELD]
        if len(fields) < len(BOX_FIELDS) or len(fields) > len(names):
            raise BoxFileError(f"{source} {where}: {len(fields)} field(s); expected {len(BOX_FIELDS)} "
                               f"(frame, x, y, w, h) or {len(BOX_FIELDS) + 1} (with id)")
        rows.append(_row(dict(zip(names, fields)), where=where, source=source))
    return rows


def _csv_lines(text: str) -> list[tuple[int, list[str]]]:
    """(line number, fields) of the non-blank, non-comment lines."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        out.append((number, next(csv.reader(io.StringIO(stripped)))))
    return out


def _parse_json(text: str, source: str) -> list[BoxRow]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BoxFileError(f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if isinstance(data, dict):
        if "boxes" not in data:
            raise BoxFileError(f"{source}: a JSON object must hold the list under \"boxes\" "
                               f"(found keys: {', '.join(map(str, data)) or 'none'})")
        data = data["boxes"]
    if not isinstance(data, list):
        raise BoxFileError(f"{source}: expected a JSON list of boxes, got {type(data).__name__}")
    rows = []
    for index, item in enumerate(data):
        where = f"item {index}"
        if isinstance(item, dict):
            values = {str(key).lower(): value for key, value in item.items()}
        elif isinstance(item, list):
            if len(item) not in (len(BOX_FIELDS), len(BOX_FIELDS) + 1):
                raise BoxFileError(f"{source} {where}: {len(item)} value(s); expected [frame, x, y, w, h] or "
                                   f"[frame, x, y, w, h, id]")
            values = dict(zip(list(BOX_FIELDS) + [ID_FIELD], item))
        else:
            raise BoxFileError(f"{source} {where}: expected an object with frame, x, y, w, h[, id], "
                               f"got {type(item).__name__}")
        rows.append(_row(values, where=where, source=source))
    return rows


def parse_box_file(path: str | os.PathLike) -> list[BoxRow]:
    """Read the rows of a JSON or CSV box file, validating every field.

    Raises:
        BoxFileError: unreadable file, unsupported extension, bad row (named by line or item, and field), no rows,
            ids on some rows only, or two boxes with the same id in one frame.
    """
    path = Path(path)
    source = path.name
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_BOX_EXTENSIONS:
        raise BoxFileError(f"{source}: box files must be .json or .csv (frame, x, y, w, h[, id])")
    if not path.is_file():
        raise BoxFileError(f"{path} does not exist or is not a file")
    if path.stat().st_size > MAX_BOX_FILE_BYTES:
        raise BoxFileError(f"{source} is larger than {MAX_BOX_FILE_BYTES // 1024**2} MB; is it really a box file?")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise BoxFileError(f"{source} is not UTF-8 text; save it as a plain CSV or JSON file") from None
    rows = _parse_json(text, source) if suffix == ".json" else _parse_csv(text, source)
    if not rows:
        raise BoxFileError(f"{source} holds no boxes; expected rows of frame, x, y, w, h[, id]")
    with_id = [row for row in rows if row.track_id is not None]
    if with_id and len(with_id) != len(rows):
        first_missing = next(row for row in rows if row.track_id is None)
        raise BoxFileError(f"{source} {first_missing.where}: field 'id' is missing; give an id on every row or on none")
    seen: dict[tuple[int, int], str] = {}
    for row in with_id:
        key = (row.track_id, row.frame)
        if key in seen:
            raise BoxFileError(f"{source} {row.where}: id {row.track_id} already has a box in frame {row.frame} "
                               f"({seen[key]}); one box per id and frame")
        seen[key] = row.where
    return rows


# ----------------------------------------------------------------------------------------------
# Rows -> tracks
# ----------------------------------------------------------------------------------------------


def _clip(box: np.ndarray, width: int, height: int) -> np.ndarray | None:
    x0, y0 = max(box[0], 0.0), max(box[1], 0.0)
    x1, y1 = min(box[0] + box[2], float(width)), min(box[1] + box[3], float(height))
    if x1 <= x0 or y1 <= y0:
        return None
    return np.array([x0, y0, x1 - x0, y1 - y0])


def _examples(items: list[str]) -> str:
    shown = ", ".join(items[:NOTE_MAX_EXAMPLES])
    return shown if len(items) <= NOTE_MAX_EXAMPLES else f"{shown} and {len(items) - NOTE_MAX_EXAMPLES} more"


def _id_tracks(rows: list[tuple[BoxRow, np.ndarray]], *, max_gap: int,
               notes: list[str]) -> list[Track]:
    """One track per user id; short gaps interpolated, long gaps split off under new ids."""
    by_id: dict[int, list[tuple[int, np.ndarray]]] = {}
    for row, box in rows:
        by_id.setdefault(int(row.track_id), []).append((row.frame, box))
    next_id = max(by_id) + 1 if by_id else 0
    tracks: list[Track] = []
    filled_total = 0
    for user_id in sorted(by_id):
        items = sorted(by_id[user_id], key=lambda item: item[0])
        frames = np.array([frame for frame, _ in items])
        boxes = np.stack([box for _, box in items])
        breaks = np.flatnonzero(np.diff(frames) - 1 > max_gap) + 1
        for part, (start, stop) in enumerate(zip(np.r_[0, breaks], np.r_[breaks, len(frames)])):
            track_id = user_id
            if part:
                track_id = next_id
                next_id += 1
                notes.append(f"id {user_id} has no box for frames {frames[start - 1] + 1}-{frames[start] - 1} "
                             f"(more than {max_gap}); from frame {frames[start]} on it is track {track_id}")
            seg_frames, seg_boxes = frames[start:stop], boxes[start:stop]
            full = np.arange(seg_frames[0], seg_frames[-1] + 1)
            filled = np.stack([np.interp(full, seg_frames, seg_boxes[:, k]) for k in range(4)], axis=1)
            scores = np.zeros(len(full))
            scores[seg_frames - seg_frames[0]] = USER_BOX_SCORE
            filled_total += len(full) - len(seg_frames)
            tracks.append(Track(track_id=track_id, frames=full.astype(np.int64), boxes=filled, scores=scores))
    if filled_total:
        notes.append(f"{filled_total} frame(s) without a box inside an id's run were interpolated")
    return sorted(tracks, key=lambda t: t.track_id)


def load_boxes(path: str | os.PathLike, *, num_frames: int, width: int, height: int, scale: float = 1.0,
               params: TrackingParams = TrackingParams()) -> UserBoxes:
    """Read a box file into tracks for a clip of ``num_frames`` frames of ``width`` x ``height`` pixels.

    Args:
        path: .json or .csv box file (see the module docstring).
        num_frames, width, height: the clip as processed (``MediaReader.info``).
        scale: processing pixels per file pixel (``MediaReader.scale`` when frames were downscaled).
        params: tracking settings: ``max_missed_frames`` bounds interpolated gaps; without ids the boxes are
            linked by :func:`track` with these settings but no smoothing and no minimum length.

    Returns:
        :class:`UserBoxes` (tracks with boxes (K, 4) (x, y, w, h) in processing pixels, scores 1 for given boxes
        and 0 for interpolated ones; notes).

    Raises:
        BoxFileError: see :func:`parse_box_file`, or no box left inside the clip.
    """
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    source = Path(path).name
    rows = parse_box_file(path)
    notes: list[str] = []
    kept: list[tuple[BoxRow, np.ndarray]] = []
    clipped, outside, late = [], [], []
    for row in rows:
        if row.frame >= num_frames:
            late.append(row.where)
            continue
        box = np.asarray(row.box, dtype=np.float64) * scale
        inside = _clip(box, width, height)
        if inside is None:
            outside.append(row.where)
            continue
        if not np.allclose(inside, box):
            clipped.append(row.where)
        kept.append((row, inside))
    if late:
        notes.append(f"{len(late)} box(es) on frames past the clip's last frame ({num_frames - 1}) were dropped: "
                     f"{_examples(late)}")
    if outside:
        notes.append(f"{len(outside)} box(es) entirely outside the {width}x{height} frame were dropped: "
                     f"{_examples(outside)}")
    if clipped:
        notes.append(f"{len(clipped)} box(es) reaching outside the {width}x{height} frame were clipped to it: "
                     f"{_examples(clipped)}")
    if not kept:
        raise BoxFileError(f"{source}: none of its {len(rows)} box(es) lies inside the clip "
                           f"({num_frames} frames of {width}x{height}); check frame numbers and coordinates")
    if kept[0][0].track_id is not None:
        tracks = _id_tracks(kept, max_gap=params.max_missed_frames, notes=notes)
    else:
        per_frame: list[list[Detection]] = [[] for _ in range(num_frames)]
        for row, box in kept:
            per_frame[row.frame].append(Detection(frame=row.frame, box=box, score=USER_BOX_SCORE))
        as_given = dataclasses.replace(params, min_score=0.0, min_track_length=1, smoothing_window=1)
        tracks = track(per_frame, num_frames=num_frames, params=as_given)
    return UserBoxes(tracks=tracks, notes=tuple(notes))
