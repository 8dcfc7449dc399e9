"""What the Image attention and Temporal attention tabs share: the clip's pipeline results (the session's last
reconstruction, or a fresh pipeline run when the endpoint is given another clip) and the model re-run with
attention captured over one track's window (:mod:`analysis.capture`), cached so
that choosing another layer, head or joint does not run the network again."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from pipeline.detection import DEFAULT_DETECTOR, detectors_to_try
from pipeline.results import RESULTS_FILE_NAME, PipelineResults, load_results
from pipeline.run import RunSettings, run_pipeline
from pipeline.media import MediaLimits, open_media
from analysis.capture import ClipWindow, ModelRun, read_window, run_model

from .common import ModelCache, UserError

#: Analysed windows kept in memory (each holds its frames and attention maps: a few tens of MB at most).
MAX_CACHED_WINDOWS = 4
#: Longest analysis window of the temporal tab (its matrices are T x T per joint, layer and head).
MAX_WINDOW = 128


@dataclass
class Analysis:
    """One analysed window: the results it came from, the frames and crops, and the model's outputs."""

    run_dir: Path
    results: PipelineResults
    window: ClipWindow
    run: ModelRun


def media_path(media: Any) -> Path | None:
    if media is None:
        return None
    return Path(media if isinstance(media, str) else getattr(media, "name", media))


def clip_results(cache: ModelCache, media: Any, run_dir: str | None, model_key: str,
                 request: gr.Request | None = None, progress: Any = None) -> tuple[PipelineResults, Path]:
    """The pipeline results for ``media``: those of ``run_dir`` (the session's last reconstruction) when they are
    for the same file (or no file is given), else a new pipeline run (people, tracks and poses; no overlay)."""
    source = media_path(media)
    if run_dir and (Path(run_dir) / RESULTS_FILE_NAME).is_file():
        results = load_results(Path(run_dir) / RESULTS_FILE_NAME)
        if source is None or Path(results.source).resolve() == source.resolve():
            return results, Path(run_dir)
    if source is None:
        raise UserError("reconstruct a clip in the Reconstruct tab first (or pass an image or clip to this endpoint)")
    model, info = cache.get(model_key)

    def report(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress((done, max(total, 1)), desc=f"finding people and tracks ({stage})")

    # The default detector is trained on real people; the bundled rendered clips need HOG (see FALLBACK_DETECTOR).
    for detector in detectors_to_try(DEFAULT_DETECTOR):
        out = (cache.sessions.folder(request)
               / f"analysis-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**6:06d}")
        reader = open_media(source, limits=MediaLimits(max_frames=cache.settings.max_frames,
                                                       max_duration_s=cache.settings.max_duration_s))
        outcome = run_pipeline(reader, out, model=model, checkpoint=info["checkpoint"] or "none (untrained)",
                               settings=RunSettings(detector=detector), progress=report)
        if outcome.results.status != "no_person":
            break
    return outcome.results, out


def track_choices(results: PipelineResults) -> list[str]:
    return [f"track {int(t)} ({len(results.rows_of_track(int(t)))} frames)" for t in results.track_ids]


def track_update(results: PipelineResults, track_id: int) -> dict:
    """The track dropdown's choices for ``results``, with ``track_id`` chosen."""
    choices = track_choices(results)
    return gr.update(choices=["longest", *choices], value=next(c for c in choices if c.startswith(f"track {track_id} ")))


def parse_track(results: PipelineResults, track: Any) -> int:
    """A track id from a choice like "track 3 (40 frames)", "3" or 3; "longest" / None / "" is the longest."""
    if results.status == "no_person" or len(results) == 0:
        raise UserError(f"the clip has no person to analyse ({results.message})")
    ids = [int(t) for t in results.track_ids]
    if track in (None, "", "longest"):
        return max(ids, key=lambda t: len(results.rows_of_track(t)))
    text = str(track).strip()
    if text.startswith("track"):
        text = text.split()[1]
    try:
        chosen = int(float(text))
    except ValueError as exc:
        raise UserError(f"unknown track {track!r}; the clip has tracks {', '.join(map(str, ids))}") from exc
    if chosen not in ids:
        raise UserError(f"no track {chosen}; the clip has tracks {', '.join(map(str, ids))}")
    return chosen


class AnalysisCache:
    """The most recent analysed windows, keyed by (results, track, first row, length, model)."""

    def __init__(self, capacity: int = MAX_CACHED_WINDOWS) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple, Analysis] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, cache: ModelCache, results: PipelineResults, run_dir: Path, model_key: str, *, track: int,
            start: int, length: int, shown: int = 0) -> Analysis:
        key = (str(run_dir), track, start, length, shown, model_key)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        model, _ = cache.get(model_key)
        window = read_window(results, crop_size=model.config.img_size, track=track, start=start, length=length)
        analysis = Analysis(run_dir=run_dir, results=results, window=window,
                            run=run_model(model, window.crops, shown_frame=min(shown, len(window.crops) - 1)))
        with self._lock:
            self._items[key] = analysis
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return analysis
