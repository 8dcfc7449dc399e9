"""Real photographs without people, from registry packages, as backgrounds for the synthetic renders.

``python -m cli.backgrounds [--out data/backgrounds]`` (``make backgrounds``) fetches about
90 photos (streets, buildings, monuments, landscapes, a few rooms and objects) from Debian packages (with
``apt-get download``) and the scikit-image wheel (with ``pip download``), keeps only the files listed below, and
drops any photo in which the shipped person detector finds someone. A phase's synthetic data spec then names the
folder (``backgrounds: backgrounds``, relative to ``data.root``).

The photos are for training here and are not shipped. Their licences are those of their packages: OpenCV's
sample data (Apache-2.0 / BSD-3), scikit-image's data (CC0 / public domain), the Plasma and Palapeli wallpapers
(GPL-2+ / LGPL-3), the Lomiri wallpapers (CC-BY-4.0 / CC-BY-SA / CC0, per file in the package's copyright file)
and GCompris's monument photos (Wikimedia Commons licences, credited in GCompris). Each file's name starts with
its source.
"""

from __future__ import annotations

import io
import re
import struct
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

PLASMA = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
          "OneStandsOut", "Path", "summer_1am")
OPENCV = ("aero1.jpg", "aero3.jpg", "building.jpg", "home.jpg", "leuvenA.jpg", "leuvenB.jpg", "graf1.png",
          "graf3.png", "aloeL.jpg", "box_in_scene.png", "stuff.jpg", "rubberwhale1.png")
LOMIRI_SKIP = ("analogpattern", "umang", "Fossa", "Infinite", "Painting")  # drawings, not photographs
SKIMAGE = ("coffee.png", "motorcycle_left.png", "rocket.jpg", "brick.png", "gravel.png", "grass.png")
# GCompris's monument photos (WebP images inside a Qt resource file), by their order there: those without
# statues of people or crowds in view.
MONUMENTS = (0, 1, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 18, 19, 20, 21, 22, 24, 25, 27, 29, 30, 31, 33, 36,
             40, 41, 42, 45, 47)
DEBIAN = ("plasma-workspace-wallpapers", "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04", "palapeli-data",
          "opencv-doc", "gcompris-qt-data")
SKIMAGE_WHEEL = "scikit-image==0.26.0"
PERSON_SCORE = 0.6


def _members(deb: Path, wanted) -> dict[str, bytes]:
    """The files of a .deb whose path satisfies ``wanted(path)``: {path: bytes}."""
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True).stdout
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive:
            if member.isfile() and wanted(member.name):
                out[member.name] = archive.extractfile(member).read()
    return out


def _monuments(resource: bytes) -> dict[int, bytes]:
    """The WebP images of a Qt resource file, by their order in it."""
    found = {}
    for index, match in enumerate(re.finditer(rb"RIFF....WEBP", resource, re.S)):
        start = match.start()
        length = struct.unpack("<I", resource[start + 4:start + 8])[0] + 8
        found[index] = resource[start:start + length]
    return found


def _collect(downloads: Path) -> dict[str, bytes]:
    """{file name: bytes} of every listed photo in the downloaded packages."""
    photos: dict[str, bytes] = {}

    def deb(name: str) -> Path:
        return next(downloads.glob(f"{name}_*.deb"))

    for path, data in _members(deb("plasma-workspace-wallpapers"),
                               lambda p: p.endswith("contents/images/2560x1600.jpg")
                               and p.split("/")[-4] in PLASMA).items():
        photos[f"plasma_{path.split('/')[-4]}.jpg"] = data
    for name in ("lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04"):
        for path, data in _members(deb(name), lambda p: "/backgrounds/" in p and "_by_" in p and p.endswith(".jpg")
                                   and not any(s in p for s in LOMIRI_SKIP)).items():
            photos[f"lomiri_{Path(path).name}"] = data
    for path, data in _members(deb("palapeli-data"), lambda p: "/palapeli/collection/" in p and p.endswith(".jpg")
                               ).items():
        photos[f"palapeli_{Path(path).name}"] = data
    for path, data in _members(deb("opencv-doc"), lambda p: "/examples/data/" in p and Path(p).name in OPENCV
                               and p.count("/examples/data/") == 1 and Path(p).parent.name == "data").items():
        photos[f"opencv_{Path(path).name}"] = data
    (resource,) = _members(deb("gcompris-qt-data"), lambda p: p.endswith("explore_monuments.rcc")).values()
    from PIL import Image

    for index, webp in _monuments(resource).items():
        if index in MONUMENTS:
            buffer = io.BytesIO()
            Image.open(io.BytesIO(webp)).convert("RGB").save(buffer, format="JPEG", quality=95)
            photos[f"gcompris_monument_{index:02d}.jpg"] = buffer.getvalue()
    import zipfile

    (wheel,) = downloads.glob("scikit_image-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for name in SKIMAGE:
            photos[f"skimage_{name}"] = archive.read(f"skimage/data/{name}")
    return photos


def _has_person(data: bytes, detector) -> bool:
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return True  # unreadable: not kept
    scale = 1024 / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return any(d.score >= PERSON_SCORE for d in detector.detect(rgb))


def fetch_backgrounds(out: Path) -> list[Path]:
    """Fetch, filter and write the photos into ``out``; returns the files written (existing ones are kept)."""
    from pipeline.detection import get_detector

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        downloads = Path(tmp)
        try:
            subprocess.run(["apt-get", "download", *DEBIAN], cwd=downloads, check=True, capture_output=True)
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                            SKIMAGE_WHEEL, "-d", str(downloads)], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError) as error:
            detail = getattr(error, "stderr", b"") or b""
            raise SystemExit(f"could not download the packages (apt-get, pip and the registries are needed): "
                             f"{error}: {detail.decode(errors='replace')[-300:]}") from error
        photos = _collect(downloads)
    detector = get_detector("ssdlite")
    written, dropped = [], []
    for name, data in sorted(photos.items()):
        if _has_person(data, detector):
            dropped.append(name)
            continue
        (out / name).write_bytes(data)
        written.append(out / name)
    print(f"{len(written)} photos in {out}; dropped {len(dropped)} where the detector saw a person: "
          f"{', '.join(dropped) or 'none'}")
    return written
