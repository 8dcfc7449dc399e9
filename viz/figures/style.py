"""Colours and sizes shared by several figure modules, so that the figures of one report look alike."""

from __future__ import annotations

__all__ = ["MESH_COLOUR", "SERIES_COLOURS", "TILE_PX", "TITLE_PX"]

#: Tile size in pixels of image grids, and the figure margins around them.
TILE_PX = 170
TITLE_PX = 90
#: Colour of meshes in 3D figures.
MESH_COLOUR = "#e3b07a"
#: Colours of named series in curve plots (image-only, temporal, extra ones).
SERIES_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd")
