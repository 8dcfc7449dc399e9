"""``python -m cli.release SRC DST [--train-data DIR] [--dtype float16]``: a trained checkpoint made ready to
ship (see :mod:`training.release`: float16 weights, no training state, the training set's mean pose in its meta).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from int_model.checkpoint import CheckpointError
from training.release import DTYPES, release


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.release", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a trained INT Studio checkpoint (final.pt / last.pt)")
    parser.add_argument("target", type=Path, help="where to write the released checkpoint")
    parser.add_argument("--train-data", type=Path, default=None,
                        help="the synthetic training dataset, for the training-set mean pose and shape")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float16", help="stored weight type")
    args = parser.parse_args(argv)
    try:
        path = release(args.source, args.target, train_data=args.train_data, dtype=args.dtype)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
