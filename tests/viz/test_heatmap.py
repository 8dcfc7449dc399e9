"""Heat maps blended over images."""

from __future__ import annotations

import numpy as np

from viz.heatmap import heatmap_overlay


def test_heatmap_overlay_is_pure_and_keeps_cold_pixels():
    image = np.full((8, 8, 3), 100, np.uint8)
    heat = np.zeros((8, 8))
    heat[2, 3] = 5.0
    before_image, before_heat = image.copy(), heat.copy()
    out = heatmap_overlay(image, heat)
    np.testing.assert_array_equal(image, before_image)
    np.testing.assert_array_equal(heat, before_heat)
    assert out.dtype == np.uint8 and out.shape == image.shape
    np.testing.assert_array_equal(out[0, 0], image[0, 0])
    assert not np.array_equal(out[2, 3], image[2, 3])
    np.testing.assert_array_equal(heatmap_overlay(image, heat, alpha=0.0), image)
