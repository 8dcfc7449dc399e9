"""Command line: from an image, image folder or video to per-person meshes.

::

    python -m cli.reconstruct INPUT --out DIR [--checkpoint C] [--smpl-dir DIR] [--detector D] [--boxes F]
        [--max-frames N] [--max-duration S] [--device D] [--precision fp32|bf16] [--window T] [--meshes] [--bvh] [--side-view] [--no-overlay]

Writes ``DIR/results.npz`` (see :mod:`pipeline.results`), ``DIR/overlay.mp4`` (or ``.webm`` where
FFmpeg lacks H.264), and on request ``DIR/meshes/frame_NNNNNN.obj|glb`` and ``DIR/bvh/track_NNN.bvh``.

Exit status: 0 success; 2 bad input or arguments (one line on stderr saying why, no traceback); 3 no person
found (a results file with status "no_person" is written); 1 an unexpected failure during the run (one line;
the partial results are kept; ``--debug`` shows the traceback).

The overlay video, mesh files and BVH files are drawn by ``viz``, imported only when such an output is asked
for, so a ``--no-overlay`` run never loads pyrender or OpenGL.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from int_model.body_model import SmplFileError
from int_model.checkpoint import CheckpointError
from int_model.config import VARIANTS
from int_model.loading import UNTRAINED_VARIANT, ModelKey, load_model
from pipeline.boxes import BoxFileError
from pipeline.detection import DEFAULT_DETECTOR, DETECTORS, DetectorUnavailable
from pipeline.inference import DEFAULT_WINDOW, InferenceSettings
from pipeline.media import MediaError, MediaLimits, open_media
from pipeline.results import UNTRAINED_CHECKPOINT, PipelineResults, ResultsError
from pipeline.run import FrameSink, RunOutcome, RunSettings, run_pipeline
from pipeline.types import MediaInfo
from int_model.precision import PRECISION_CHOICES

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_NO_PERSON = 3

OVERLAY_NAME = "overlay"
MESH_DIR, BVH_DIR = "meshes", "bvh"
MESH_FORMATS = ("obj", "glb")

UNTRAINED_BANNER = (
    "!" * 100 + "\n"
    f"!! No checkpoint: running a FRESHLY INITIALISED '{UNTRAINED_VARIANT}' INT model (untrained weights).\n"
    "!! Its poses, shapes and meshes are MEANINGLESS until the model is trained; use this run to check the\n"
    "!! pipeline (reading, detection, tracking, outputs), not the reconstructions. results.npz records\n"
    f"!! checkpoint = '{UNTRAINED_CHECKPOINT}'. Pass --checkpoint PATH for real results.\n"
    + "!" * 100
)


class CliError(Exception):
    """A one-line reason to stop with an exit status."""

    def __init__(self, message: str, status: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.status = status


def _viz_failed(output: str, exc: ImportError) -> CliError:
    return CliError(f"the {output} output needs the viz package ({exc}); run with --no-overlay and without "
                    f"--meshes/--bvh to write results.npz only", EXIT_FAILURE)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit status 2), like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m cli.reconstruct",
        description="Reconstruct SMPL meshes of every person in an image, image folder or video with INT.",
    )
    parser.add_argument("input", help="image (jpg/png/webp/bmp), folder of images, or video (mp4/avi/mov/webm/mkv/gif)")
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--checkpoint", help="INT Studio or public INT checkpoint; default: the bundled demo model "
                                             "(small, trained on synthetic people)")
    parser.add_argument("--variant", choices=list(VARIANTS),
                        help="run an UNTRAINED model of this variant instead of a checkpoint (pipeline checks)")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list(DETECTORS),
                        help="person detector (default %(default)s)")
    parser.add_argument("--detect-every", type=int, default=1,
                        help="search for people every N-th frame only; the tracker interpolates between (default 1)")
    parser.add_argument("--boxes", help="JSON or CSV of frame, x, y, w, h[, id] boxes; replaces detection")
    parser.add_argument("--refine", action="store_true",
                        help="fit each body to the 2D keypoints of the shipped BlazePose network (a few optimiser "
                             "steps from INT's output; slower)")
    parser.add_argument("--max-frames", type=int, default=MediaLimits().max_frames,
                        help="process at most this many frames; longer clips are cut with a note (default "
                             "%(default)s, as in the app; INT_MAX_FRAMES changes both)")
    parser.add_argument("--max-duration", type=float, default=MediaLimits().max_duration_s,
                        help="process at most this many seconds (default %(default)s, as in the app; "
                             "INT_MAX_DURATION_S changes both)")
    parser.add_argument("--smpl-dir", default=None,
                        help="folder with the licensed SMPL_NEUTRAL.pkl (default: $INT_SMPL_DIR, else the built-in "
                             "procedural body model), as the app's --smpl-dir")
    parser.add_argument("--fps", type=float, help="frame rate of an image folder (videos carry their own)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default %(default)s)")
    parser.add_argument("--precision", default="fp32", choices=PRECISION_CHOICES, help="default %(default)s")
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOW,
                        help="temporal window in frames (default %(default)s); windows overlap by half")
    parser.add_argument("--image-model", action="store_true", help="switch the temporal transformer off")
    parser.add_argument("--meshes", nargs="?", const="obj", choices=MESH_FORMATS,
                        help="also write per-frame meshes (obj, or glb)")
    parser.add_argument("--bvh", action="store_true", help="also write a BVH motion file per track")
    parser.add_argument("--side-view", action="store_true", help="add a side view panel to the overlay video")
    parser.add_argument("--no-overlay", action="store_true", help="do not render the overlay video")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected failures")
    return parser


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise CliError(f"--device {name!r} is not a device name (use cpu, cuda, cuda:N or auto)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CliError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    return device


def _load_model(args: argparse.Namespace, device: torch.device) -> tuple[torch.nn.Module, str]:
    key = ModelKey.choose(checkpoint=args.checkpoint, variant=args.variant)
    loaded = load_model(key, device=device, smpl_dir=args.smpl_dir)  # SmplFileError: a bad --smpl-dir
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if loaded.untrained:
        print(UNTRAINED_BANNER.replace(f"'{UNTRAINED_VARIANT}'", f"'{loaded.key.value}'"), file=sys.stderr)
        return loaded.model, UNTRAINED_CHECKPOINT
    if loaded.demo and not args.quiet:
        print(f"using the bundled demo model {loaded.checkpoint.name}: the small INT variant trained on SYNTHETIC "
              "people only (see the README for what to expect on real footage)", file=sys.stderr)
    return loaded.model, str(Path(args.checkpoint)) if args.checkpoint else str(loaded.checkpoint)


class _Progress:
    """tqdm bars, one per stage, created when the stage starts."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bars: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=f"{stage:>9}", unit="frame", file=sys.stderr,
                                          dynamic_ncols=True, leave=True)
        bar.total = max(bar.total or 0, total)
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _settings(args: argparse.Namespace) -> RunSettings:
    if args.max_frames is not None and args.max_frames < 1:
        raise CliError(f"--max-frames must be at least 1, got {args.max_frames}")
    if args.window < 2:
        raise CliError(f"--window must be at least 2 frames, got {args.window}")
    if args.max_duration is not None and not args.max_duration > 0:
        raise CliError(f"--max-duration must be positive, got {args.max_duration}")
    if args.fps is not None and not args.fps > 0:
        raise CliError(f"--fps must be positive, got {args.fps}")
    if args.boxes is not None and not Path(args.boxes).is_file():
        raise CliError(f"--boxes {args.boxes}: no such file")
    try:
        inference = InferenceSettings(window=args.window, precision=args.precision,
                                      temporal=False if args.image_model else None,
                                      keep_vertices=not args.no_overlay or bool(args.meshes))
        return RunSettings(detector=args.detector, detect_every=args.detect_every, boxes=args.boxes,
                           limits=MediaLimits(max_frames=args.max_frames, max_duration_s=args.max_duration),
                           fps=args.fps, inference=inference, refine=args.refine)
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def _sinks(args: argparse.Namespace, out_dir: Path, fps: float) -> list[FrameSink]:
    sinks: list[FrameSink] = []
    if args.no_overlay and not args.meshes:
        return sinks
    try:
        from viz.overlay import MeshSequenceSink, OverlaySettings, OverlayVideoSink
    except ImportError as exc:
        raise _viz_failed("overlay" if not args.no_overlay else "meshes", exc) from exc
    if not args.no_overlay:
        sinks.append(OverlayVideoSink(out_dir / OVERLAY_NAME, fps=fps,
                                      settings=OverlaySettings(side_view=args.side_view)))
    if args.meshes:
        sinks.append(MeshSequenceSink(out_dir / MESH_DIR, suffixes=(f".{args.meshes}",)))
    return sinks


def _write_bvh(results: PipelineResults, body_model: Any, out_dir: Path) -> list[Path]:
    try:
        from viz.bvh import write_results_bvh
    except ImportError as exc:
        raise _viz_failed("bvh", exc) from exc
    return write_results_bvh(results, body_model=body_model, out_dir=out_dir)


def _report(outcome: RunOutcome, sinks: Sequence[Any], bvh_paths: Sequence[Path]) -> None:
    results: PipelineResults = outcome.results
    print(f"{results.status}: {results.message}")
    for note in outcome.notes:
        print(f"note: {note}")
    print(f"results: {outcome.results_path}")
    for sink in sinks:
        if hasattr(sink, "path"):
            print(f"overlay: {sink.path}")
        elif hasattr(sink, "out_dir"):
            print(f"meshes: {sink.out_dir} ({len(sink.written)} files)")
    if bvh_paths:
        print(f"bvh: {bvh_paths[0].parent} ({len(bvh_paths)} files)")


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run; returns the exit status (argparse errors exit 2 by themselves)."""
    args = build_parser().parse_args(argv)
    progress = _Progress(enabled=not args.quiet)
    out_dir = Path(args.out)
    try:
        settings = _settings(args)
        device = _device(args.device)
        reader = open_media(args.input, limits=settings.limits, fps=settings.fps)  # a bad input stops here
        model, checkpoint = _load_model(args, device)
        sinks: list[FrameSink] = []

        def make_sinks(info: MediaInfo) -> list[FrameSink]:
            sinks.extend(_sinks(args, out_dir, info.fps))
            return sinks

        try:
            outcome = run_pipeline(reader, out_dir, model=model, checkpoint=checkpoint, settings=settings,
                                   sinks=make_sinks, progress=progress)
        finally:
            progress.close()
        bvh_paths: list[Path] = []
        if args.bvh and outcome.results.status == "ok":
            bvh_paths = _write_bvh(outcome.results, model.body_model, out_dir / BVH_DIR)
        _report(outcome, sinks, bvh_paths)
        return EXIT_NO_PERSON if outcome.results.status == "no_person" else EXIT_OK
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status
    except (MediaError, BoxFileError, CheckpointError, DetectorUnavailable, ResultsError, FileNotFoundError,
            SmplFileError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted (partial results, if any, are in the output folder)", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - one line for the user, the traceback on request
        if args.debug:
            raise
        kept = (f"partial results are kept in {out_dir}" if out_dir.is_dir() and any(out_dir.iterdir())
                else "nothing was written")
        print(f"error: the run failed ({type(exc).__name__}: {_one_line(exc)}); {kept}; rerun with --debug for the "
              "traceback", file=sys.stderr)
        return EXIT_FAILURE


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
