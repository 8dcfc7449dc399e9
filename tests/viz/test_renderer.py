"""Headless renderer: projection conventions, compositing, occlusion, side views, platform choice."""

from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import trimesh

import viz.renderer as R
from viz.renderer import (
    PinholeCamera,
    Renderer,
    RendererUnavailable,
    SceneMesh,
    WeakPerspectiveCamera,
    overlay_meshes,
    render_crop_overlay,
    render_perspective_overlay,
    render_side_view,
    side_view_meshes,
)

REPO = Path(__file__).resolve().parents[2]
RED, GREEN = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)


def box(centre=(0.0, 0.0, 0.0), extents=(0.2, 0.2, 0.2), colour=None) -> SceneMesh:
    mesh = trimesh.creation.box(extents=extents)
    return SceneMesh(mesh.vertices + np.asarray(centre), mesh.faces, colour)


def gradient_image(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[:height, :width]
    return np.stack([40 + 150 * x / width, 60 + 120 * y / height, 200 - 100 * x / width], -1).astype(np.uint8)


def weighted_centroid(coverage: np.ndarray) -> np.ndarray:
    rows, cols = np.mgrid[: coverage.shape[0], : coverage.shape[1]]
    return np.array([(coverage * cols).sum(), (coverage * rows).sum()]) / coverage.sum()


def silhouette_bbox(coverage: np.ndarray) -> np.ndarray:
    """(u_min, v_min, u_max, v_max) of pixels at least half covered."""
    rows, cols = np.nonzero(coverage >= 0.5)
    return np.array([cols.min(), rows.min(), cols.max(), rows.max()], dtype=np.float64)


def projected_bbox(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The pixels whose centres (at integer coordinates) lie inside the projected extent."""
    return np.array([np.ceil(u.min()), np.ceil(v.min()), np.floor(u.max()), np.floor(v.max())])


# ----------------------------------------------------------------------------------------------
# Weak-perspective crop camera
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "cam", "centre"),
    [
        (224, 224, (0.9, 0.1, 0.05), (0.3, -0.2, 0.4)),
        (200, 120, (1.3, -0.2, 0.15), (-0.1, 0.35, -0.3)),
    ],
)
def test_weak_perspective_places_points_like_the_joints2d_formula(renderer, width, height, cam, centre):
    s, tx, ty = cam
    mesh = box(centre)
    layers = renderer.render([mesh], WeakPerspectiveCamera(*cam), width=width, height=height)

    u = (s * (mesh.vertices[:, 0] + tx) + 1) * width / 2
    v = (s * (mesh.vertices[:, 1] + ty) + 1) * height / 2
    expected_centre = np.array([(s * (centre[0] + tx) + 1) * width / 2, (s * (centre[1] + ty) + 1) * height / 2])
    np.testing.assert_allclose(weighted_centroid(layers.coverage), expected_centre, atol=0.6)
    np.testing.assert_allclose(silhouette_bbox(layers.coverage), projected_bbox(u, v), atol=1.0)
    # y is image-down: a point with smaller Y is higher in the image.
    assert (expected_centre[1] < height / 2) == (s * (centre[1] + ty) < 0)
    # Depth is the camera-frame z of the nearest face.
    np.testing.assert_allclose(layers.depth[layers.coverage > 0.99], centre[2] - 0.1, atol=1e-3)
    assert np.all(layers.depth[layers.coverage == 0] == 0)


def test_weak_perspective_uprightness_head_above_feet(renderer):
    head, feet = box((0.0, -0.8, 0.0), colour=RED), box((0.0, 0.8, 0.0), colour=GREEN)
    image = np.zeros((100, 100, 3), np.uint8)
    out = overlay_meshes(image, [head, feet], WeakPerspectiveCamera(1.0, 0.0, 0.0), renderer=renderer)
    red_rows = np.nonzero((out[..., 0] > 100) & (out[..., 1] < 50))[0]
    green_rows = np.nonzero((out[..., 1] > 100) & (out[..., 0] < 50))[0]
    assert red_rows.mean() < 20 < 80 < green_rows.mean()


def test_crop_camera_rejects_bad_input():
    image = np.zeros((8, 8, 3), np.uint8)
    mesh = box()
    with pytest.raises(ValueError, match="must be > 0"):
        render_crop_overlay(image, mesh.vertices, mesh.faces, (0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        render_crop_overlay(image, mesh.vertices, mesh.faces, (1.0, 0.0))
    with pytest.raises(ValueError, match="uint8"):
        render_crop_overlay(image.astype(np.float32), mesh.vertices, mesh.faces, (1.0, 0.0, 0.0))


# ----------------------------------------------------------------------------------------------
# Pinhole camera
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("principal_point", [None, (150.0, 70.0)])
def test_pinhole_places_points_like_the_pinhole_formula(renderer, principal_point):
    width, height, focal = 240, 160, 400.0
    mesh = box((0.0, 0.0, 0.0), extents=(0.3, 0.2, 0.01))  # thin plate facing the camera
    cam_t = np.array([0.25, -0.15, 3.0])
    camera = PinholeCamera(focal_length=focal, principal_point=principal_point)
    layers = renderer.render([mesh._replace(translation=cam_t)], camera, width=width, height=height)

    cx, cy = principal_point or (width / 2, height / 2)
    points = mesh.vertices + cam_t
    u = focal * points[:, 0] / points[:, 2] + cx
    v = focal * points[:, 1] / points[:, 2] + cy
    np.testing.assert_allclose(silhouette_bbox(layers.coverage), projected_bbox(u, v), atol=1.0)
    centre = cam_t + np.array([0.0, 0.0, -0.005])
    np.testing.assert_allclose(
        weighted_centroid(layers.coverage),
        [focal * centre[0] / centre[2] + cx, focal * centre[1] / centre[2] + cy],
        atol=0.6,
    )
    np.testing.assert_allclose(layers.depth[layers.coverage > 0.99], 2.995, atol=1e-3)


def test_pinhole_rejects_meshes_behind_the_camera(renderer):
    with pytest.raises(ValueError, match="z > 0"):
        renderer.render([box((0.0, 0.0, -1.0))], PinholeCamera(500.0), width=16, height=16)


# ----------------------------------------------------------------------------------------------
# Compositing, purity, several meshes
# ----------------------------------------------------------------------------------------------


def test_crop_overlay_changes_only_pixels_inside_the_silhouette(renderer):
    image = gradient_image(96, 128)
    mesh = box((0.1, 0.0, 0.0), extents=(1.0, 1.2, 0.3))
    cam = (0.8, 0.0, 0.1)
    out = render_crop_overlay(image, mesh.vertices, mesh.faces, cam, renderer=renderer)
    coverage = renderer.render([mesh], WeakPerspectiveCamera(*cam), width=128, height=96).coverage

    assert out.shape == image.shape and out.dtype == np.uint8
    outside, inside = coverage == 0, coverage == 1
    assert outside.sum() > 1000 and inside.sum() > 1000
    np.testing.assert_array_equal(out[outside], image[outside])
    assert np.mean(np.any(out[inside] != image[inside], axis=-1)) > 0.99


def test_alpha_blends_between_image_and_mesh(renderer):
    image = gradient_image(64, 64)
    mesh = box(extents=(1.0, 1.0, 0.5))
    cam = (1.0, 0.0, 0.0)
    opaque = render_crop_overlay(image, mesh.vertices, mesh.faces, cam, renderer=renderer)
    half = render_crop_overlay(image, mesh.vertices, mesh.faces, cam, alpha=0.5, renderer=renderer)
    none = render_crop_overlay(image, mesh.vertices, mesh.faces, cam, alpha=0.0, renderer=renderer)
    np.testing.assert_array_equal(none, image)
    expected = (opaque.astype(np.float64) + image) / 2
    assert np.abs(half[32, 32] - expected[32, 32]).max() <= 1.0


def test_functions_do_not_mutate_their_inputs(renderer):
    image = gradient_image(48, 48)
    mesh = box((0.05, 0.0, 2.0))
    vertices, faces, cam, cam_t = mesh.vertices.copy(), mesh.faces.copy(), np.array([1.0, 0.0, 0.0]), np.zeros(3)
    for array in (image, vertices, faces, cam, cam_t):
        array.flags.writeable = False
    before = [a.copy() for a in (image, vertices, faces, cam, cam_t)]

    render_crop_overlay(image, vertices, faces, cam, renderer=renderer)
    render_perspective_overlay(image, vertices, faces, cam_t, focal_length=100.0, renderer=renderer)
    render_side_view(vertices, faces, 32, renderer=renderer)
    side_view_meshes([SceneMesh(vertices, faces, None, cam_t)], 32, renderer=renderer)

    for array, copy in zip((image, vertices, faces, cam, cam_t), before, strict=True):
        np.testing.assert_array_equal(array, copy)


@pytest.mark.parametrize("camera", [WeakPerspectiveCamera(1.0, 0.0, 0.0), PinholeCamera(60.0)])
def test_nearer_mesh_occludes_the_farther_one(renderer, camera):
    def draw(red_z: float, green_z: float) -> np.ndarray:
        meshes = [box((0.0, 0.0, red_z), extents=(0.6, 0.6, 0.1), colour=RED),
                  box((0.1, 0.1, green_z), extents=(0.6, 0.6, 0.1), colour=GREEN)]
        return overlay_meshes(np.zeros((40, 40, 3), np.uint8), meshes, camera, renderer=renderer)

    red_in_front, green_in_front = draw(2.0, 3.0), draw(3.0, 2.0)
    centre = (20, 20)
    assert red_in_front[centre][0] > 2 * red_in_front[centre][1]
    assert green_in_front[centre][1] > 2 * green_in_front[centre][0]


def test_several_meshes_get_distinct_default_colours(renderer):
    meshes = [box((-0.5, 0.0, 0.0)), box((0.5, 0.0, 0.0))]
    out = overlay_meshes(np.zeros((40, 80, 3), np.uint8), meshes, WeakPerspectiveCamera(1.0, 0.0, 0.0),
                         renderer=renderer)
    left, right = out[20, 20].astype(int), out[20, 60].astype(int)
    assert left.sum() > 0 and right.sum() > 0
    assert np.abs(left - right).max() > 30
    assert R.soft_colour(0) != R.soft_colour(1)


def test_perspective_overlay_with_cam_t_matches_overlay_meshes(renderer):
    image = gradient_image(60, 80)
    mesh = box()
    single = render_perspective_overlay(image, mesh.vertices, mesh.faces, (0.1, 0.0, 2.0), focal_length=150.0,
                                        renderer=renderer)
    multi = overlay_meshes(image, [mesh._replace(translation=(0.1, 0.0, 2.0))], PinholeCamera(150.0),
                           renderer=renderer)
    np.testing.assert_array_equal(single, multi)
    assert np.any(single != image)


# ----------------------------------------------------------------------------------------------
# Side view
# ----------------------------------------------------------------------------------------------


def test_side_view_turns_depth_into_width(renderer):
    # Thin in x, long in z: narrow from the front, wide from the side.
    slab = box((0.0, 0.0, 3.0), extents=(0.1, 0.5, 1.0))
    background = (245, 245, 245)
    side = render_side_view(slab.vertices, slab.faces, 64, background=background, renderer=renderer)
    front = render_side_view(slab.vertices, slab.faces, 64, angle_deg=0.0, background=background,
                             renderer=renderer)

    def aspect(image: np.ndarray) -> float:
        rows, cols = np.nonzero(np.any(image != background, axis=-1))
        return (cols.max() - cols.min() + 1) / (rows.max() - rows.min() + 1)

    assert np.any(side != background) and not np.array_equal(side, front)
    assert aspect(side) > 1.5 and aspect(front) < 0.4
    # Framed automatically: the silhouette fills most of the frame but stays inside it.
    _, cols = np.nonzero(np.any(side != background, axis=-1))
    assert cols.min() > 0 and cols.max() < 63 and cols.max() - cols.min() > 40


def test_side_view_shows_far_things_on_the_right(renderer):
    near, far = box((0.0, 0.0, 2.0), colour=RED), box((0.0, 0.0, 4.0), colour=GREEN)
    out = side_view_meshes([near, far], (40, 80), background=(0, 0, 0), renderer=renderer)
    red_cols = np.nonzero((out[..., 0] > 100) & (out[..., 1] < 50))[1]
    green_cols = np.nonzero((out[..., 1] > 100) & (out[..., 0] < 50))[1]
    assert out.shape == (40, 80, 3)
    assert red_cols.mean() < 40 < green_cols.mean()


# ----------------------------------------------------------------------------------------------
# Renderer lifecycle, threads, processes
# ----------------------------------------------------------------------------------------------


def test_renderer_is_reusable_across_sizes_and_after_close(renderer):
    del renderer  # only needed to skip where no OpenGL platform works; this test makes its own
    mesh = box()
    camera = WeakPerspectiveCamera(1.0, 0.0, 0.0)
    with Renderer() as r:
        first = r.render([mesh], camera, width=32, height=32).coverage
        for size in (16, 24, 40, 48, 56, 64):  # more sizes than contexts kept: old ones are evicted
            assert r.render([mesh], camera, width=size, height=size).coverage.shape == (size, size)
        np.testing.assert_array_equal(r.render([mesh], camera, width=32, height=32).coverage, first)
    # close() released everything; the renderer and other renderers still work.
    np.testing.assert_array_equal(r.render([mesh], camera, width=32, height=32).coverage, first)
    r.close()
    other = Renderer()
    np.testing.assert_array_equal(other.render([mesh], camera, width=32, height=32).coverage, first)
    other.close()


def test_renderer_and_default_renderer_work_from_other_threads(renderer):
    mesh = box()
    camera = WeakPerspectiveCamera(1.0, 0.0, 0.0)
    expected = renderer.render([mesh], camera, width=24, height=24).coverage
    image = np.zeros((24, 24, 3), np.uint8)
    default_expected = render_crop_overlay(image, mesh.vertices, mesh.faces, (1.0, 0.0, 0.0))
    results: list[bool] = []

    def work() -> None:
        same = np.array_equal(renderer.render([mesh], camera, width=24, height=24).coverage, expected)
        default = render_crop_overlay(image, mesh.vertices, mesh.faces, (1.0, 0.0, 0.0))
        results.append(same and np.array_equal(default, default_expected))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [True, True, True]


def _render_in_forked_child(queue: multiprocessing.Queue) -> None:
    mesh = box()
    try:
        render_crop_overlay(np.zeros((8, 8, 3), np.uint8), mesh.vertices, mesh.faces, (1.0, 0.0, 0.0))
        queue.put("rendered")
    except RendererUnavailable as exc:
        queue.put(str(exc))


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_forked_child_gets_a_clear_error_instead_of_a_hang(renderer):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_render_in_forked_child, args=(queue,))
    child.start()
    message = queue.get(timeout=60)
    child.join(timeout=60)
    assert "spawn" in message and "fork" in message


# ----------------------------------------------------------------------------------------------
# Platform choice and the RendererUnavailable message
# ----------------------------------------------------------------------------------------------


def test_unavailable_message_names_the_packages_and_how_to_install_them():
    with pytest.raises(RendererUnavailable) as info:
        R.select_gl_platform(probe=lambda platform: f"{platform} is broken here")
    message = str(info.value)
    for package in ("libegl1", "libegl-mesa0", "libgl1-mesa-dri", "libosmesa6"):
        assert package in message
    assert "make app" in message and "scripts/system-deps.sh render" in message
    assert "egl: egl is broken here" in message and "osmesa: osmesa is broken here" in message


def test_ensure_gl_platform_falls_back_and_exports_the_choice(monkeypatch):
    tried: list[str] = []

    def probe(platform: str) -> str | None:
        tried.append(platform)
        return None if platform == "osmesa" else "no EGL"

    monkeypatch.setattr(R, "_selected_platform", None)
    monkeypatch.setattr(R, "_platform_error", None)
    monkeypatch.setattr(R, "_probe_platform", probe)
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    monkeypatch.delitem(sys.modules, "OpenGL.platform", raising=False)
    assert R.ensure_gl_platform() == "osmesa"
    assert tried == ["egl", "osmesa"]
    assert os.environ["PYOPENGL_PLATFORM"] == "osmesa"
    assert R.ensure_gl_platform() == "osmesa" and len(tried) == 2  # cached for the process


def test_ensure_gl_platform_raises_when_nothing_works_and_remembers_it(monkeypatch):
    tried: list[str] = []
    monkeypatch.setattr(R, "_selected_platform", None)
    monkeypatch.setattr(R, "_platform_error", None)
    monkeypatch.setattr(R, "_probe_platform", lambda platform: tried.append(platform) or "missing")
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    monkeypatch.delitem(sys.modules, "OpenGL.platform", raising=False)
    for _ in range(2):
        with pytest.raises(RendererUnavailable, match="libosmesa6"):
            Renderer().render([box()], WeakPerspectiveCamera(1.0, 0.0, 0.0), width=4, height=4)
    assert tried == ["egl", "osmesa"]  # probed once
    assert "PYOPENGL_PLATFORM" not in os.environ


def test_ensure_gl_platform_respects_the_user_setting(monkeypatch):
    monkeypatch.setattr(R, "_selected_platform", None)
    monkeypatch.setattr(R, "_probe_platform", lambda platform: pytest.fail("must not probe"))
    monkeypatch.setenv("PYOPENGL_PLATFORM", "osmesa")
    assert R.ensure_gl_platform() == "osmesa"


@pytest.mark.slow
def test_real_probe_falls_back_when_egl_fails(renderer):
    """A broken EGL (no such device) must not be chosen: OSMesa is used, or the error says what to install."""
    env = {k: v for k, v in os.environ.items() if k != "PYOPENGL_PLATFORM"}
    env["EGL_DEVICE_ID"] = "99"
    code = (
        "import viz.renderer as R\n"
        "try:\n    print('chose', R.ensure_gl_platform())\n"
        "except R.RendererUnavailable as exc:\n    print('unavailable', exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.startswith(("chose osmesa", "unavailable")), result.stdout + result.stderr
    if result.stdout.startswith("unavailable"):
        assert "egl: ValueError: Invalid device ID (99)" in result.stdout and "libosmesa6" in result.stdout


def test_system_deps_render_group_installs_what_the_error_message_names():
    script = (REPO / "scripts" / "system-deps.sh").read_text()
    match = re.search(r'\[render\]="([^"]*)"', script)
    assert match is not None
    assert tuple(match.group(1).split()) == R.RENDER_DEBIAN_PACKAGES
