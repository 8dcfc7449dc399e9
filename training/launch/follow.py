"""Following a run as it goes: its ``metrics.jsonl`` (read incrementally) and the tail of its ``train.log``."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..trainer import METRICS_FILE

LOG_FILE = "train.log"
LOG_TAIL_LINES = 40


@dataclass(frozen=True)
class Metrics:
    """A run's ``metrics.jsonl``: ``train`` (one record per step, with ``loss``; None on skipped steps),
    ``val`` (``"split": "val"`` records, one per evaluation and mode) and ``checkpoints`` (save events)."""

    train: tuple[dict[str, Any], ...] = ()
    val: tuple[dict[str, Any], ...] = ()
    checkpoints: tuple[dict[str, Any], ...] = ()

    @property
    def step(self) -> int:
        return max([int(r.get("step", 0)) for r in (*self.train, *self.val)] or [0])

    @property
    def epoch(self) -> int:
        return max([int(r.get("epoch", 0)) for r in (*self.train, *self.val)] or [0])

    def latest_val(self) -> dict[str, Any] | None:
        """The newest evaluation (its temporal record when the model has one)."""
        if not self.val:
            return None
        step = self.val[-1].get("step")
        latest = [r for r in self.val if r.get("step") == step]
        return next((r for r in latest if r.get("mode") == "temporal"), latest[-1])


def parse_metrics(lines: Sequence[str]) -> Metrics:
    """Records of ``metrics.jsonl`` lines (a line being written or otherwise broken is skipped)."""
    train, val, checkpoints = [], [], []
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        if record.get("split") == "val":
            val.append(record)
        elif record.get("event") == "checkpoint":
            checkpoints.append(record)
        elif "loss" in record:
            train.append(record)
    return Metrics(tuple(train), tuple(val), tuple(checkpoints))


class _MetricsFollower:
    """A ``metrics.jsonl`` parsed once: each call reads and parses only what was appended since the last one
    (everything again when the file was replaced or shrank: a resumed run rewinds it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._reset()

    def _reset(self, inode: int | None = None) -> None:
        self._offset, self._inode, self._metrics = 0, inode, Metrics()

    def read(self) -> Metrics:
        with self._lock:
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                self._reset()
                return self._metrics
            if stat.st_ino != self._inode or stat.st_size < self._offset:
                self._reset(stat.st_ino)
            if stat.st_size > self._offset:
                with open(self.path, "rb") as handle:
                    handle.seek(self._offset)
                    chunk = handle.read(stat.st_size - self._offset)
                complete = chunk.rfind(b"\n") + 1  # the last line may still be being written
                self._offset += complete
                new = parse_metrics(chunk[:complete].decode("utf-8", errors="replace").splitlines())
                old = self._metrics
                self._metrics = Metrics(old.train + new.train, old.val + new.val, old.checkpoints + new.checkpoints)
            return self._metrics


_FOLLOWERS: dict[Path, _MetricsFollower] = {}
_FOLLOWERS_LOCK = threading.Lock()


def read_metrics(run_dir: str | os.PathLike) -> Metrics:
    """The records of ``<run_dir>/metrics.jsonl`` (empty when there is none yet); a file read before is only
    read from where it was last time."""
    path = (Path(run_dir) / METRICS_FILE).resolve()
    with _FOLLOWERS_LOCK:
        follower = _FOLLOWERS.setdefault(path, _MetricsFollower(path))
    return follower.read()


def log_tail(path: str | os.PathLike, lines: int = LOG_TAIL_LINES, *, max_bytes: int = 256_000) -> str:
    """The last ``lines`` lines of a log (a progress bar's carriage-return updates: only the newest)."""
    path = Path(path)
    if not path.is_file():
        return ""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - max_bytes))
        text = handle.read().decode("utf-8", errors="replace")
    rows = [row.rsplit("\r", 1)[-1] if "\r" in row.rstrip("\r") else row.rstrip("\r") for row in text.split("\n")]
    rows = rows[1:] if size > max_bytes else rows  # the first one is cut
    while rows and not rows[-1].strip():
        rows.pop()
    rows = rows[-lines:]
    while rows and not rows[0].strip():
        rows.pop(0)
    return "\n".join(rows)


def error_line(tail: str) -> str:
    """The line of a log tail that says what went wrong."""
    rows = [r.strip() for r in tail.splitlines() if r.strip()]
    for row in reversed(rows):
        if row.startswith("error:") or re.match(r"^[\w.]*(Error|Exception)\b", row) or " ERROR " in row:
            return row
    return rows[-1] if rows else "no output"
