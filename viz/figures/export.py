"""Writing figures as interactive HTML and as PNG.

PNG export (:func:`save_figures`): through kaleido (>= 1.0) when it is installed and finds a Chrome or
Chromium (it searches ``PATH`` for ``chromium`` and the other usual names; ``BROWSER_PATH`` names one
explicitly; it never downloads one); otherwise through a matplotlib rendering of the same figure
(:func:`viz.figures.matplotlib_png.render_png_matplotlib`). Which backend wrote a PNG is returned.

The HTML of a temporal attention figure can show, under the mouse, the thumbnails of the two frames of the
heat-map cell (``hover_frames``).
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import plotly.graph_objects as go

from viz.figures.images import check_rgb, image_data_uri
from viz.figures.matplotlib_png import render_png_matplotlib

log = logging.getLogger(__name__)

__all__ = ["FigureFile", "kaleido_usable", "save_figure", "save_figures", "save_image"]

#: Frames shown under the mouse in temporal HTML figures: thumbnail height in pixels.
HOVER_THUMB_PX = 96
#: Default export size of a figure without its own layout size.
DEFAULT_SIZE = (1000, 700)


@dataclass
class FigureFile:
    """A figure to write: ``stem`` (path without suffix) gets ``.html`` and ``.png``.

    Attributes:
        figure: the plotly figure (not modified).
        stem: output path without suffix.
        hover_frames: frame number -> (h, w, 3) uint8 thumbnail; the HTML shows the query and key frames of
            the heat-map cell under the mouse (temporal attention figures).
        width, height: PNG size in pixels; default the figure's layout size or :data:`DEFAULT_SIZE`.
    """

    figure: go.Figure
    stem: Path
    hover_frames: Mapping[int, np.ndarray] | None = None
    width: int | None = None
    height: int | None = None
    written: dict[str, Path] = field(default_factory=dict)

    def size(self) -> tuple[int, int]:
        layout = self.figure.layout
        width = self.width or layout.width or DEFAULT_SIZE[0]
        height = self.height or layout.height or DEFAULT_SIZE[1]
        return int(width), int(height)


_HOVER_SCRIPT = """
(function() {{
  var gd = document.getElementById('{{plot_id}}');
  var frames = {frames};
  var box = document.createElement('div');
  box.style.cssText = 'display:flex;gap:16px;font-family:sans-serif;font-size:13px;margin:6px 0 0 60px';
  function panel(label) {{
    var fig = document.createElement('figure'); fig.style.margin = '0';
    var img = document.createElement('img'); img.style.height = '{height}px'; img.alt = '';
    var cap = document.createElement('figcaption'); cap.textContent = label;
    fig.appendChild(img); fig.appendChild(cap); box.appendChild(fig);
    return [img, cap, label];
  }}
  var q = panel('query frame'), k = panel('key frame');
  gd.parentNode.insertBefore(box, gd.nextSibling);
  function show(p, frame) {{
    if (frames[frame] === undefined) return;
    p[0].src = frames[frame]; p[1].textContent = p[2] + ' ' + frame;
  }}
  gd.on('plotly_hover', function(ev) {{
    var pt = ev.points[0];
    if (!pt || pt.data.type !== 'heatmap') return;
    show(q, Math.round(pt.y)); show(k, Math.round(pt.x));
  }});
}})();
"""


def _hover_script(frames: Mapping[int, np.ndarray]) -> str:
    uris = {}
    for number, image in frames.items():
        img = check_rgb(image)
        scale = HOVER_THUMB_PX / img.shape[0]
        small = cv2.resize(img, (max(1, round(img.shape[1] * scale)), HOVER_THUMB_PX), interpolation=cv2.INTER_AREA)
        uris[str(int(number))] = image_data_uri(small, fmt="jpeg")
    return _HOVER_SCRIPT.format(frames=json.dumps(uris), height=HOVER_THUMB_PX)


def kaleido_usable() -> bool:
    """Whether kaleido (>= 1.0) is installed and finds a Chrome / Chromium (``BROWSER_PATH`` or ``PATH``)."""
    if importlib.util.find_spec("kaleido") is None:
        return False
    try:
        from choreographer.browsers.chromium import Chromium

        return Chromium.find_browser(skip_local=False) is not None
    except ImportError:  # a kaleido without choreographer: let it try
        return True
    except Exception:  # noqa: BLE001 - any failure to find a browser means "not usable"
        return False


def save_image(path: str | Path, image: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 RGB image as PNG (or JPEG by suffix); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(check_rgb(image), cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path


def save_figures(items: Sequence[FigureFile], *, formats: Sequence[str] = ("html", "png"),
                 png_backend: str = "auto") -> str | None:
    """Write every figure as HTML and / or PNG; fills each item's ``written`` (format -> path).

    Args:
        formats: any of "html", "png".
        png_backend: "kaleido", "matplotlib" or "auto" (kaleido when :func:`kaleido_usable`, else
            matplotlib; a kaleido failure falls back to matplotlib with a warning).

    Returns:
        The PNG backend used, or None when no PNG was asked for.
    """
    if png_backend not in ("auto", "kaleido", "matplotlib"):
        raise ValueError(f"png_backend must be 'auto', 'kaleido' or 'matplotlib', got {png_backend!r}")
    for item in items:
        item.stem.parent.mkdir(parents=True, exist_ok=True)
        if "html" in formats:
            path = item.stem.with_suffix(".html")
            script = _hover_script(item.hover_frames) if item.hover_frames else None
            item.figure.write_html(path, include_plotlyjs="directory", full_html=True, post_script=script)
            item.written["html"] = path
    if "png" not in formats or not items:
        return None
    backend = png_backend
    if backend == "auto":
        backend = "kaleido" if kaleido_usable() else "matplotlib"
    paths = [item.stem.with_suffix(".png") for item in items]
    if backend == "kaleido":
        import plotly.io as pio

        try:
            sizes = [item.size() for item in items]
            pio.write_images([item.figure for item in items], paths, width=[s[0] for s in sizes],
                             height=[s[1] for s in sizes])
        except Exception as exc:  # noqa: BLE001 - a browser that fails to start, a kaleido error...
            if png_backend == "kaleido":
                raise
            log.warning("kaleido could not write the PNGs (%s); using matplotlib", exc)
            backend = "matplotlib"
    if backend == "matplotlib":
        for item, path in zip(items, paths, strict=True):
            render_png_matplotlib(item.figure, path, width=item.size()[0], height=item.size()[1])
    for item, path in zip(items, paths, strict=True):
        item.written["png"] = path
    return backend


def save_figure(figure: go.Figure, stem: str | Path, *, formats: Sequence[str] = ("html", "png"),
                hover_frames: Mapping[int, np.ndarray] | None = None, png_backend: str = "auto") -> dict[str, Path]:
    """Write one figure (see :func:`save_figures`); returns format -> path."""
    item = FigureFile(figure=figure, stem=Path(stem), hover_frames=hover_frames)
    save_figures([item], formats=formats, png_backend=png_backend)
    return item.written
