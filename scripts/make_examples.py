"""Render the app's bundled example clips with the project's own synthetic generator (no downloads).

    python -m scripts.make_examples [--out studio/examples]

Writes ``two-walkers.mp4``: two people of random shape walking and running on the spot, 48 frames at 25 fps,
480 x 270 (H.264). Deterministic from its seed.
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


if __name__ == "__main__":
    main()
