"""The photo-background fetcher's offline parts: reading GCompris's resource file and the person check."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline import detection, onnx_models
from training.synthetic.photo_backgrounds import _has_person, _monuments

REAL = Path(__file__).resolve().parents[1] / "data" / "real"


def _webp(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="WEBP", lossless=True)
    return buffer.getvalue()


def test_the_webp_images_of_a_resource_file_are_found_in_order():
    red, blue = _webp((255, 0, 0)), _webp((0, 0, 255))
    assert struct.unpack("<I", red[4:8])[0] + 8 == len(red)
    blob = b"qres\x00header" + red + b"\x00\x01padding" + blue + b"trailer"
    found = _monuments(blob)
    assert sorted(found) == [0, 1]
    assert Image.open(io.BytesIO(found[1])).convert("RGB").getpixel((0, 0)) == (0, 0, 255)


@pytest.mark.skipif(not onnx_models.onnxruntime_available(), reason="onnxruntime is not installed")
def test_photos_with_a_person_are_dropped_and_empty_walls_kept():
    detector = detection.get_detector("ssdlite")
    assert _has_person((REAL / "messi5.jpg").read_bytes(), detector)
    wall = cv2.imread(str(REAL / "basketball1.png"))[:, 230:430]
    ok, encoded = cv2.imencode(".png", wall)
    assert ok and not _has_person(encoded.tobytes(), detector)
    assert _has_person(b"not an image", detector)  # unreadable files are not kept either
