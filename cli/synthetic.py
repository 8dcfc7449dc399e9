"""``python -m cli.synthetic --out DIR --clips N --frames T --seed S [--size PX] [--workers W]
[--backgrounds DIR] [--people K]``: generate a named synthetic dataset (see :mod:`training.synthetic`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence

from training.synthetic.config import SyntheticConfig
from training.synthetic.generate import DEFAULT_CLIPS_PER_SHARD, FRAME_FORMATS, generate_dataset


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cli.synthetic",
        description="Generate a synthetic dataset: clips of the body model in procedural motion, rendered with full "
                    "labels, written as shards with a manifest (deterministic from the seed).")
    parser.add_argument("--out", required=True, help="dataset folder (created; complete shards in it are kept)")
    parser.add_argument("--clips", type=int, required=True, help="number of clips N")
    parser.add_argument("--frames", type=int, required=True, help="frames per clip T")
    parser.add_argument("--seed", type=int, required=True, help="seed S (clip i is drawn from (S, i))")
    parser.add_argument("--size", type=int, default=SyntheticConfig.image_size, help="frame side in pixels")
    parser.add_argument("--fps", type=float, default=SyntheticConfig.fps, help="frame rate of the clips")
    parser.add_argument("--workers", type=int, default=1, help="rendering processes")
    parser.add_argument("--backgrounds", default=None, help="folder of your own background images")
    parser.add_argument("--people", type=int, default=1, help="people per clip K")
    parser.add_argument("--format", choices=FRAME_FORMATS, default="jpeg", help="how frames are stored")
    parser.add_argument("--clips-per-shard", type=int, default=DEFAULT_CLIPS_PER_SHARD, help="clips per shard file")
    parser.add_argument("--smpl-dir", default=None, help="licensed SMPL files (default: $INT_SMPL_DIR or procedural)")
    parser.add_argument("--preview", default=None, help="also write a contact sheet PNG of the first clips here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = dataclasses.replace(SyntheticConfig(), image_size=args.size, fps=args.fps)
    manifest = generate_dataset(
        out_dir=args.out, num_clips=args.clips, num_frames=args.frames, seed=args.seed, num_people=args.people,
        config=config, workers=args.workers, backgrounds=args.backgrounds, frame_format=args.format,
        clips_per_shard=args.clips_per_shard, smpl_dir=args.smpl_dir, progress=not args.quiet,
    )
    if args.preview:
        from training.synthetic.preview import dataset_sheet, write_png

        write_png(dataset_sheet(args.out), args.preview)
    print(json.dumps({"out": args.out, "counts": manifest["counts"], "run": manifest["run"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
