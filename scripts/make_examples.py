"""Render the app's bundled example clips with the project's own synthetic generator (no downloads).

    python -m scripts.make_examples [--out studio/examples]

Writes ``two-walkers.mp4``: two people of random shape walking and running on the spot, 48 frames at 25 fps,
480 x 270 (H.264); and ``one-walker.mp4``: one person in a periodic motion, 96 frames at 25 fps, 320 x 320, long
enough for the Temporal attention tab to show several periods. Deterministic from their seeds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.pipeline import generate_clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "studio" / "examples")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = generate_clip(args.out / "two-walkers.mp4", frames=48, people=2, size=(480, 270), seed=7)
    print(path)
    print(generate_clip(args.out / "one-walker.mp4", frames=96, people=1, size=(320, 320), seed=3))


if __name__ == "__main__":
    main()
