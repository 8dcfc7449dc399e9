"""matplotlib rendering of plotly figures: the PNG fallback of :func:`viz.figures.export.save_figures` where
kaleido finds no browser.

It draws the trace types the figure builders use (heatmap, image, scatter lines / markers / text, bar,
mesh3d), their subplot layout, axis titles and ranges, and titles.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import plotly.colors
import plotly.graph_objects as go

from viz.figures.images import decode_data_uri
from viz.figures.style import MESH_COLOUR

log = logging.getLogger(__name__)

__all__ = ["render_png_matplotlib"]

#: plotly's default margins (pixels) when a figure sets none.
_PLOTLY_MARGIN = dict(l=80, r=80, t=100, b=80)
_MPL_DPI = 100
#: Colour bar in the right margin: gap from the plot area and width, as fractions of the figure width.
COLOURBAR_GAP = 0.01
COLOURBAR_WIDTH = 0.015
_PLOTLY_SYMBOLS = {"circle": "o", "square": "s", "diamond": "D", "x": "x", "x-thin": "x", "cross": "+",
                   "triangle-up": "^"}


def _mpl_colour(value: Any, default: str = "#1f77b4") -> Any:
    if value is None:
        return default
    if isinstance(value, str) and value.startswith("rgb"):
        parts = value[value.index("(") + 1: value.index(")")].split(",")
        rgb = [float(p) for p in parts[:3]]
        return tuple(c / 255.0 for c in rgb)
    return value


def _mpl_colourmap(colorscale: Any):
    from matplotlib.colors import LinearSegmentedColormap

    if colorscale is None:
        colorscale = plotly.colors.get_colorscale("Plasma")
    elif isinstance(colorscale, str):
        colorscale = plotly.colors.get_colorscale(colorscale)
    stops = [(float(s), _mpl_colour(plotly.colors.convert_colors_to_same_type(c, "rgb")[0][0]))
             for s, c in colorscale]
    return LinearSegmentedColormap.from_list("plotly", stops)


def _axis_suffix(ref: str | None, letter: str) -> str:
    ref = ref or letter
    return ref[1:]


def _text(title: Any) -> str:
    """Plain text of a plotly title / annotation: ``<br>`` becomes a line break, other tags are dropped."""
    if title is None:
        return ""
    text = getattr(title, "text", title)
    if text is None:
        return ""
    text = re.sub(r"<br\s*/?>", "\n", str(text))
    return re.sub(r"<[^>]+>", "", text).strip()


def render_png_matplotlib(figure: go.Figure, path: str | Path, *, width: int, height: int) -> Path:
    """Draw a plotly figure with matplotlib and save it as a PNG of ``width`` x ``height`` pixels.

    Covers what the figure builders of :mod:`viz.figures` use: heatmaps, images, scatter (lines, markers, text), bars,
    mesh3d; subplot domains, axis titles, ranges (reversed y), equal aspect, hidden axes, titles and
    subplot titles. Anything else is skipped with a debug log line.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    layout = figure.layout
    margin = {k: (getattr(layout.margin, k) if layout.margin and getattr(layout.margin, k) is not None
                  else v) for k, v in _PLOTLY_MARGIN.items()}
    mpl_fig = plt.figure(figsize=(width / _MPL_DPI, height / _MPL_DPI), dpi=_MPL_DPI)
    try:
        left, right = margin["l"] / width, 1.0 - margin["r"] / width
        bottom, top = margin["b"] / height, 1.0 - margin["t"] / height
        axes: dict[tuple[str, str], Any] = {}
        scenes: dict[str, Any] = {}
        bar_groups: dict[tuple[str, str], list[Any]] = {}
        for trace in figure.data:
            if trace.type == "bar":
                key = (_axis_suffix(trace.xaxis, "x"), _axis_suffix(trace.yaxis, "y"))
                bar_groups.setdefault(key, []).append(trace)

        def get_axes(trace: Any) -> Any:
            if trace.type == "mesh3d":
                scene = trace.scene or "scene"
                if scene not in scenes:
                    dom = layout[scene].domain
                    x0, x1 = dom.x or (0, 1)
                    y0, y1 = dom.y or (0, 1)
                    rect = [left + x0 * (right - left), bottom + y0 * (top - bottom),
                            (x1 - x0) * (right - left), (y1 - y0) * (top - bottom)]
                    scenes[scene] = mpl_fig.add_axes(rect, projection="3d")
                return scenes[scene]
            xs, ys = _axis_suffix(trace.xaxis, "x"), _axis_suffix(trace.yaxis, "y")
            if (xs, ys) not in axes:
                xa, ya = layout[f"xaxis{xs}"], layout[f"yaxis{ys}"]
                x0, x1 = xa.domain or (0, 1)
                y0, y1 = ya.domain or (0, 1)
                rect = [left + x0 * (right - left), bottom + y0 * (top - bottom),
                        (x1 - x0) * (right - left), (y1 - y0) * (top - bottom)]
                axes[(xs, ys)] = mpl_fig.add_axes(rect)
            return axes[(xs, ys)]

        colourbar_box = [right + COLOURBAR_GAP, bottom, COLOURBAR_WIDTH, top - bottom]
        categories: dict[int, list[Any]] = {}  # per matplotlib axes: category labels of its x axis, in order
        for trace in figure.data:
            ax = get_axes(trace)
            _draw_trace(ax, trace, bar_groups, colourbar_box=colourbar_box,
                        categories=categories.setdefault(id(ax), []))
        for (xs, ys), ax in axes.items():
            _style_axes(ax, layout[f"xaxis{xs}"], layout[f"yaxis{ys}"])
        for annotation in layout.annotations or ():
            if annotation.xref == "paper" and annotation.yref == "paper":
                mpl_fig.text(left + annotation.x * (right - left), bottom + annotation.y * (top - bottom),
                             _text(annotation.text), ha=annotation.xanchor if annotation.xanchor in
                             ("left", "right", "center") else "center",
                             va="bottom" if annotation.yanchor == "bottom" else "center", fontsize=9)
        title = _text(layout.title)
        if title:
            mpl_fig.text(0.02, 1.0 - 0.1 * margin["t"] / height, title, ha="left", va="top", fontsize=12)
        handles = [h for ax in axes.values() for h in ax.get_legend_handles_labels()[0]]
        if handles and layout.showlegend is not False:
            labels = [lab for ax in axes.values() for lab in ax.get_legend_handles_labels()[1]]
            unique = dict(zip(labels, handles))
            mpl_fig.legend(unique.values(), unique.keys(), loc="upper right", fontsize=8, ncol=min(len(unique), 6),
                           frameon=False)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        mpl_fig.savefig(path, dpi=_MPL_DPI, facecolor="white")
    finally:
        plt.close(mpl_fig)
    return path


def _category_positions(values: Sequence[Any], categories: list[Any]) -> np.ndarray:
    """Positions of categorical x values (plotly places categories at 0, 1, ... in order of appearance)."""
    for value in values:
        if value not in categories:
            categories.append(value)
    return np.array([categories.index(v) for v in values], dtype=np.float64)


def _per_point(value: Any, count: int, default: Any) -> list[Any]:
    if value is None:
        return [default] * count
    if isinstance(value, (str, int, float)):
        return [value] * count
    return list(value)


def _draw_trace(ax: Any, trace: Any, bar_groups: Mapping[tuple[str, str], list[Any]], *,
                colourbar_box: Sequence[float], categories: list[Any]) -> None:
    """Draw one plotly trace on its matplotlib axes (``categories``: the axes' categorical x labels so far)."""
    kind = trace.type
    if kind == "image":
        _draw_image(ax, trace)
    elif kind == "heatmap":
        _draw_heatmap(ax, trace, colourbar_box=colourbar_box)
    elif kind == "scatter":
        _draw_scatter(ax, trace, categories=categories)
    elif kind == "bar":
        _draw_bar(ax, trace, bar_groups, categories=categories)
    elif kind == "mesh3d":
        _draw_mesh3d(ax, trace)
    else:
        log.debug("matplotlib export skips a %s trace", kind)


def _draw_image(ax: Any, trace: Any) -> None:
    image = decode_data_uri(trace.source) if trace.source else np.asarray(trace.z, dtype=np.uint8)
    h, w = image.shape[:2]
    ax.imshow(image, extent=(-0.5, w - 0.5, h - 0.5, -0.5), interpolation="nearest")


def _draw_heatmap(ax: Any, trace: Any, *, colourbar_box: Sequence[float]) -> None:
    z = np.asarray(trace.z, dtype=np.float64)
    x = np.arange(z.shape[1]) if trace.x is None else np.asarray(trace.x)
    y = np.arange(z.shape[0]) if trace.y is None else np.asarray(trace.y)
    numeric = np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number)
    xs = x if numeric else np.arange(len(x))
    ys = y if numeric else np.arange(len(y))
    zmin = trace.zmin if trace.zmin is not None else np.nanmin(z)
    zmax = trace.zmax if trace.zmax is not None else np.nanmax(z)
    if trace.zmid is not None and trace.zmin is None:
        half = max(abs(zmax - trace.zmid), abs(trace.zmid - zmin))
        zmin, zmax = trace.zmid - half, trace.zmid + half
    step_x = (xs[1] - xs[0]) if len(xs) > 1 else 1
    step_y = (ys[1] - ys[0]) if len(ys) > 1 else 1
    image = ax.imshow(z, cmap=_mpl_colourmap(trace.colorscale), vmin=zmin, vmax=zmax, aspect="auto",
                      origin="lower", interpolation="nearest",
                      extent=(xs[0] - step_x / 2, xs[-1] + step_x / 2, ys[0] - step_y / 2, ys[-1] + step_y / 2))
    if not numeric:
        ax.set_xticks(np.arange(len(x)), [str(v) for v in x], rotation=90, fontsize=6)
        ax.set_yticks(np.arange(len(y)), [str(v) for v in y], fontsize=6)
    if trace.showscale is not False:  # in the right margin, as plotly puts it
        ax.figure.colorbar(image, cax=ax.figure.add_axes(list(colourbar_box)))


def _draw_scatter(ax: Any, trace: Any, *, categories: list[Any]) -> None:
    x = np.asarray(trace.x if trace.x is not None else np.arange(len(trace.y)))
    y = np.asarray(trace.y, dtype=np.float64)
    if not np.issubdtype(x.dtype, np.number):
        x = _category_positions(list(trace.x), categories)
        ax.set_xticks(np.arange(len(categories)), [str(c) for c in categories], rotation=60, ha="right",
                      fontsize=7)
    mode = trace.mode or "lines"
    label = trace.name if trace.showlegend is not False and trace.name else None
    if "lines" in mode:
        line = trace.line
        ax.plot(x, y, color=_mpl_colour(line.color), linewidth=(line.width or 2) * 0.75,
                linestyle="--" if line.dash == "dash" else "-", label=label)
        label = None
    if "markers" in mode:
        marker = trace.marker
        symbols = _per_point(marker.symbol, len(x), "circle")
        sizes = _per_point(marker.size, len(x), 8)
        colour = _mpl_colour(marker.color if isinstance(marker.color, str) else None)
        for index, (xi, yi) in enumerate(zip(x, y)):
            symbol = str(symbols[index])
            base, open_marker = symbol.replace("-open", ""), symbol.endswith("-open")
            style = ({"c": [colour]} if base.startswith("x") else
                     {"facecolors": "none" if open_marker else colour, "edgecolors": colour})
            ax.scatter([xi], [yi], s=(float(sizes[index]) * 0.9) ** 2, marker=_PLOTLY_SYMBOLS.get(base, "o"),
                       linewidths=2, label=label if index == 0 else None, **style)
    if "text" in mode and trace.text is not None:
        texts = [trace.text] * len(x) if isinstance(trace.text, str) else list(trace.text)
        for xi, yi, text in zip(x, y, texts):
            ax.annotate(str(text), (xi, yi), textcoords="offset points", xytext=(0, 5), ha="center",
                        fontsize=7, color=_mpl_colour(trace.textfont.color, "black"))


def _draw_bar(ax: Any, trace: Any, bar_groups: Mapping[tuple[str, str], list[Any]], *,
              categories: list[Any]) -> None:
    group = bar_groups.get((_axis_suffix(trace.xaxis, "x"), _axis_suffix(trace.yaxis, "y")), [trace])
    count = len(group)
    index = next(i for i, t in enumerate(group) if t is trace)
    centres = _category_positions(list(trace.x), categories)
    width = 0.8 / count
    ax.bar(centres - 0.4 + width * (index + 0.5), np.asarray(trace.y, dtype=np.float64), width=width,
           color=_mpl_colour(trace.marker.color), label=trace.name)
    ax.set_xticks(np.arange(len(categories)), [str(c) for c in categories], rotation=60, ha="right",
                  fontsize=7)


def _draw_mesh3d(ax: Any, trace: Any) -> None:
    v = np.stack([np.asarray(trace.x), np.asarray(trace.y), np.asarray(trace.z)], axis=1)
    faces = np.stack([np.asarray(trace.i), np.asarray(trace.j), np.asarray(trace.k)], axis=1)
    ax.plot_trisurf(v[:, 0], v[:, 1], v[:, 2], triangles=faces, color=_mpl_colour(trace.color, MESH_COLOUR),
                    linewidth=0, antialiased=False, shade=True)
    span = (v.max(axis=0) - v.min(axis=0)).max() / 2
    mid = (v.max(axis=0) + v.min(axis=0)) / 2
    ax.set_xlim(mid[0] - span, mid[0] + span)
    ax.set_ylim(mid[1] - span, mid[1] + span)
    ax.set_zlim(mid[2] - span, mid[2] + span)
    ax.view_init(elev=5, azim=-90)
    ax.set_axis_off()


def _style_axes(ax: Any, xaxis: Any, yaxis: Any) -> None:
    if xaxis.range is not None:
        ax.set_xlim(*xaxis.range)
    if yaxis.range is not None:
        ax.set_ylim(*yaxis.range)
    elif yaxis.autorange == "reversed":
        low, high = ax.get_ylim()
        ax.set_ylim(max(low, high), min(low, high))
    if yaxis.type == "log":
        ax.set_yscale("log")
    if yaxis.scaleanchor:
        ax.set_aspect("equal", adjustable="box")
    for axis, set_ticks in ((xaxis, ax.set_xticks), (yaxis, ax.set_yticks)):
        if axis.tickvals is not None:
            labels = list(axis.ticktext) if axis.ticktext is not None else [str(v) for v in axis.tickvals]
            set_ticks(list(axis.tickvals), labels)
    ax.set_xlabel(_text(xaxis.title), fontsize=9)
    ax.set_ylabel(_text(yaxis.title), fontsize=9)
    ax.tick_params(labelsize=7)
    if xaxis.visible is False:
        ax.get_xaxis().set_visible(False)
    if yaxis.visible is False:
        ax.get_yaxis().set_visible(False)
    if xaxis.visible is False and yaxis.visible is False:
        ax.set_frame_on(False)
    if xaxis.showticklabels is False:
        ax.set_xticklabels([])
    if yaxis.showticklabels is False:
        ax.set_yticklabels([])
