"""Figures build, are pure, and their PNGs are not blank (matplotlib always; kaleido where it works)."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pytest

from int_model.crops import CropSettings, CropTransform
from analysis.attribution import Attribution, AttributionTarget
from viz.figures.attention import attribution_figure, frame_attention_figure, token_grid_figure
from viz.figures.export import FigureFile, kaleido_usable, save_figures, save_image
from viz.figures.images import decode_data_uri, image_data_uri, labelled_montage, signed_overlay
from viz.figures.priors import prior_angles_figure, prior_mesh_figure, similarity_figure
from viz.figures.temporal import (
    frame_pairs_figure,
    jitter_figure,
    lag_profile_figure,
    periodicity_figure,
    rotation_curves_figure,
    temporal_grid_figure,
    temporal_matrix_figure,
)
from analysis.periodicity import PeriodEstimate
from analysis.temporal import FramePair, joint_angle_curves, strongest_pairs

RNG = np.random.default_rng(0)
CROP = RNG.integers(0, 255, (64, 64, 3), dtype=np.uint8)
FRAME = RNG.integers(0, 255, (90, 120, 3), dtype=np.uint8)


def periodic_matrices(j: int, t: int) -> np.ndarray:
    lag = np.subtract.outer(np.arange(t), np.arange(t))
    a = np.exp(2.0 * np.cos(2 * np.pi * lag / 6.0))[None] * (1.0 + 0.2 * RNG.random((j, t, t)))
    return a / a.sum(-1, keepdims=True)


def curves():
    t = np.arange(30)
    pose = np.zeros((30, 24, 3))
    pose[:, :, 0] = 0.4 * np.sin(2 * np.pi * t / 10)[:, None]
    temporal = joint_angle_curves(pose)
    return {"image-only": joint_angle_curves(pose + RNG.normal(0, 0.02, pose.shape), like=temporal),
            "temporal": temporal}


def build_all() -> dict[str, tuple]:
    """name -> (builder, kwargs); every builder of viz.figures with small inputs."""
    matrices = periodic_matrices(24, 12)
    pairs = [strongest_pairs(m, count=3) for m in matrices]
    transform = CropTransform.from_box(np.array([30.0, 10.0, 40.0, 60.0]), settings=CropSettings(size=64))
    vertices = RNG.normal(size=(30, 3))
    faces = RNG.integers(0, 30, (40, 3))
    attribution = Attribution(target=AttributionTarget("joint_angle", index=4), pixels=RNG.normal(size=(64, 64)),
                              value=20.0, baseline_value=18.0, delta=0.1, method="integrated_gradients")
    periodic = PeriodEstimate(12.0, 0.8, lag=12, method="attention")
    flat = PeriodEstimate(None, 0.1, "weak repetition", method="rotation")
    return {
        "prior_angles": (prior_angles_figure, dict(angles={"fresh": RNG.random(24), "learned": 30 * RNG.random(24)})),
        "prior_meshes": (prior_mesh_figure, dict(meshes={"a": (vertices, faces), "b": (vertices * 2, faces)})),
        "similarity": (similarity_figure, dict(similarity=np.corrcoef(RNG.normal(size=(24, 5))))),
        "token_grid": (token_grid_figure, dict(crop=CROP, maps=RNG.random((26, 64, 64)),
                                               joints_px=RNG.random((24, 2)) * 64)),
        "frame_attention": (frame_attention_figure, dict(frame=FRAME, heat=RNG.random((90, 120)),
                                                         transform=transform, point=(50.0, 40.0))),
        "attribution": (attribution_figure, dict(crop=CROP, attention_map=RNG.random((64, 64)),
                                                 attribution=attribution, joint_px=(30.0, 20.0))),
        "temporal_matrix": (temporal_matrix_figure, dict(matrix=matrices[4], pairs=pairs[4],
                                                         frame_numbers=np.arange(100, 112))),
        "temporal_grid": (temporal_grid_figure, dict(matrices=matrices, pairs=pairs)),
        "frame_pairs": (frame_pairs_figure, dict(thumbnails=RNG.integers(0, 255, (12, 16, 12, 3), dtype=np.uint8),
                                                 pairs={"left_knee": pairs[4], "right_knee": pairs[5]})),
        "lag_profile": (lag_profile_figure, dict(profiles=RNG.random((24, 12)), periods=[6.0] * 12 + [None] * 12)),
        "periodicity": (periodicity_figure, dict(attention=[periodic] * 24, rotation=[flat] * 24, known_period=12.0)),
        "rotation_curves": (rotation_curves_figure, dict(curves=curves(), joints=[1, 4])),
        "jitter": (jitter_figure, dict(curves=curves())),
    }


def not_blank(path) -> None:
    image = cv2.imread(str(path))
    assert image is not None, f"{path} is not a readable image"
    assert image.shape[0] > 100 and image.shape[1] > 100
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    background = np.median(grey)
    drawn = np.abs(grey.astype(int) - int(background)) > 20
    assert drawn.mean() > 0.01, f"{path.name}: only {drawn.mean():.2%} of the pixels differ from the background"
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 20, f"{path.name} has almost no colours"


@pytest.mark.parametrize("name", list(build_all()))
def test_figure_builds_without_touching_its_inputs(name):
    builder, kwargs = build_all()[name]
    frozen = copy.deepcopy(kwargs)
    figure = builder(**kwargs)
    assert len(figure.data) > 0
    for key, value in kwargs.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, frozen[key])


@pytest.mark.slow
def test_every_figure_writes_html_and_a_png_that_is_not_blank(tmp_path):
    items = [FigureFile(figure=builder(**kwargs), stem=tmp_path / name,
                        hover_frames={100 + i: CROP for i in range(12)} if name == "temporal_matrix" else None)
             for name, (builder, kwargs) in build_all().items()]
    backend = save_figures(items, png_backend="matplotlib")
    assert backend == "matplotlib"
    for item in items:
        not_blank(item.written["png"])
        html = item.written["html"].read_text()
        assert "plotly.min.js" in html and "Plotly.newPlot" in html
    assert (tmp_path / "plotly.min.js").is_file()  # written once, shared, so the HTML works offline
    hover_html = (tmp_path / "temporal_matrix.html").read_text()
    assert "plotly_hover" in hover_html and "data:image/jpeg;base64" in hover_html


@pytest.mark.slow
@pytest.mark.skipif(not kaleido_usable(), reason="kaleido (>= 1) with a Chrome / Chromium is not installed")
def test_kaleido_pngs_are_not_blank(tmp_path):
    chosen = ["token_grid", "temporal_grid", "periodicity", "prior_meshes"]
    items = [FigureFile(figure=build_all()[n][0](**build_all()[n][1]), stem=tmp_path / n) for n in chosen]
    assert save_figures(items, formats=("png",), png_backend="kaleido") == "kaleido"
    for item in items:
        not_blank(item.written["png"])


def test_signed_overlay_colours_by_sign_and_montage_layout():
    image = np.full((4, 4, 3), 128, np.uint8)
    values = np.zeros((4, 4))
    values[0, 0], values[3, 3] = 5.0, -5.0
    out = signed_overlay(image, values)
    assert out[0, 0, 0] > out[0, 0, 2] and out[3, 3, 2] > out[3, 3, 0]
    np.testing.assert_array_equal(out[1, 1], image[1, 1])
    montage = labelled_montage([[image, image], [image, image]], row_labels=["a", "b"], column_labels=["x", "y"])
    assert montage.shape[0] == 8 + 28 and montage.shape[1] > 8
    with pytest.raises(ValueError):
        labelled_montage([[image, np.zeros((5, 4, 3), np.uint8)]])


def test_data_uris_round_trip(tmp_path):
    uri = image_data_uri(CROP)
    np.testing.assert_array_equal(decode_data_uri(uri), CROP)
    path = save_image(tmp_path / "crop.png", CROP)
    np.testing.assert_array_equal(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), CROP)


def test_pairs_are_drawn_where_the_matrix_has_them():
    a = np.full((10, 10), 0.05)
    a[1, 8] = 0.6
    figure = temporal_matrix_figure(a / a.sum(-1, keepdims=True), pairs=strongest_pairs(a, count=1))
    marker = figure.data[1]
    assert list(marker.x) == [8] and list(marker.y) == [1]
    strip = frame_pairs_figure(np.zeros((10, 8, 6, 3), np.uint8), {"left_knee": [FramePair(1, 8, 0.6, 7)]})
    arc = strip.data[1]
    assert arc.x[0] == pytest.approx(1.5 * 6 - 0.5) and arc.x[-1] == pytest.approx(8.5 * 6 - 0.5)
