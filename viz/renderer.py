"""Headless mesh rendering with pyrender: crop overlays, full-image overlays and side views.

Coordinate convention
---------------------
Every function here takes vertices in the **camera frame** of the image they are drawn on:
x to the right, y *down*, z away from the camera (the OpenCV convention). This is the frame in which
INT predicts its meshes: the body model is y-up, but the global orientation the network learns from
the training labels already contains the 180-degree rotation about x that SPIN/VIBE bake into their
ground-truth global orientation, so the posed SMPL vertices come out upright in this frame.
Nothing in this module flips a mesh; :mod:`viz.export` converts back to y-up for 3D viewers.

Pixel coordinates have integer values at pixel centres (the keypoint/OpenCV convention): pixel
``(u, v)`` is column ``u``, row ``v`` of the image array.

Two cameras:

* :class:`WeakPerspectiveCamera` ``(s, tx, ty)``, the SPIN/VIBE crop camera. A point ``X`` maps to
  normalised crop coordinates ``x_2d = s * (X[:2] + [tx, ty])`` in ``[-1, 1]`` (y down), exactly as
  the model's 2D joints, and to pixels ``u = (x_2d[0] + 1) * W / 2``, ``v = (x_2d[1] + 1) * H / 2``.
  It is rendered with an exact orthographic projection (not a long-focal perspective camera), so an
  overlay lines up with the 2D joints to the pixel. Depth only orders surfaces.
* :class:`PinholeCamera` ``(focal_length, principal_point)``: ``u = f * X / Z + cx``,
  ``v = f * Y / Z + cy`` with ``Z > 0`` in front of the camera; the principal point defaults to the
  image centre ``(W / 2, H / 2)``. Each mesh carries its own translation (``cam_t``), so several
  tracks can be drawn in one full-image camera.

Headless OpenGL
---------------
PyOpenGL fixes its platform when it is first imported, so the platform is chosen before pyrender is
imported (pyrender is only imported inside :class:`Renderer`). If ``PYOPENGL_PLATFORM`` is set, it is
used as is. Otherwise each candidate (EGL, then OSMesa) is tried in a short subprocess that creates a
1x1 offscreen renderer; the first that works is written to ``os.environ['PYOPENGL_PLATFORM']`` for
this process and its children. If none works, :class:`RendererUnavailable` says what to install.

A :class:`Renderer` owns its OpenGL contexts and serialises its calls with a lock. The module-level
functions use one default renderer per thread when none is passed. A process forked after it
created an OpenGL context cannot render (the context would hang in the child): use the 'spawn' or
'forkserver' start method for workers that render.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from int_model.constants import TRACK_PALETTE

if TYPE_CHECKING:  # pyrender is imported lazily, after the OpenGL platform has been chosen.
    import pyrender

__all__ = [
    "GL_PLATFORMS",
    "RENDER_DEBIAN_PACKAGES",
    "PinholeCamera",
    "RenderLayers",
    "Renderer",
    "RendererUnavailable",
    "SceneMesh",
    "WeakPerspectiveCamera",
    "composite",
    "ensure_gl_platform",
    "overlay_meshes",
    "render_crop_overlay",
    "render_perspective_overlay",
    "render_side_view",
    "side_view_meshes",
    "soft_colour",
]

RGB = tuple[float, float, float]

#: Headless OpenGL platforms tried in order, with the Debian packages each one needs.
GL_PLATFORMS: dict[str, tuple[str, ...]] = {
    "egl": ("libegl1", "libegl-mesa0", "libgl1", "libgl1-mesa-dri"),
    "osmesa": ("libosmesa6",),
}
#: Everything `scripts/system-deps.sh render` installs (kept equal by a test).
RENDER_DEBIAN_PACKAGES: tuple[str, ...] = tuple(p for pkgs in GL_PLATFORMS.values() for p in pkgs)

_PLATFORM_ENV = "PYOPENGL_PLATFORM"
_PROBE_TIMEOUT_S = 120.0
_PROBE_CODE = (
    "import pyrender\n"
    "r = pyrender.OffscreenRenderer(1, 1)\n"
    "s = pyrender.Scene()\n"
    "s.add(pyrender.OrthographicCamera(1.0, 1.0))\n"
    "r.render(s)\n"
    "r.delete()\n"
)
_MAX_CONTEXTS = 4  # offscreen contexts (one per image size) kept alive by one Renderer
_SOFTEN = 0.25  # how far palette colours are blended toward white for mesh materials


class RendererUnavailable(RuntimeError):
    """No headless OpenGL platform works; the message says what to install."""


# ----------------------------------------------------------------------------------------------
# OpenGL platform selection
# ----------------------------------------------------------------------------------------------

_selected_platform: str | None = None
_platform_error: RendererUnavailable | None = None  # remembered so that later calls fail fast
_platform_lock = threading.Lock()


def _probe_platform(platform: str) -> str | None:
    """Try ``platform`` in a subprocess; None if it renders, else the reason it failed."""
    env = {**os.environ, _PLATFORM_ENV: platform}
    try:
        result = subprocess.run(
            [sys.executable, "-c", _PROBE_CODE],
            env=env,
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{type(exc).__name__}: {exc}"
    if result.returncode == 0:
        return None
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {result.returncode}"


def _unavailable_message(failures: dict[str, str]) -> str:
    tried = "; ".join(f"{name}: {reason}" for name, reason in failures.items())
    return (
        "No headless OpenGL platform works for pyrender, so meshes cannot be rendered "
        f"(tried {tried}). Install the Debian packages {' '.join(RENDER_DEBIAN_PACKAGES)} "
        "(EGL through Mesa; libosmesa6 for the OSMesa fallback) - `make app` or "
        "`scripts/system-deps.sh render` installs them. OSMesa also needs a PyOpenGL newer than the "
        "3.1.0 that pyrender 0.1.45 pins (3.1.10 works: `pip install PyOpenGL==3.1.10` after the "
        "requirements). Or set "
        f"{_PLATFORM_ENV} to a platform that works here."
    )


def select_gl_platform(
    candidates: Sequence[str] = tuple(GL_PLATFORMS),
    *,
    probe: Callable[[str], str | None] = _probe_platform,
) -> str:
    """The first platform in ``candidates`` for which ``probe`` reports no failure.

    Raises:
        RendererUnavailable: none works; the message names the Debian packages to install.
    """
    failures: dict[str, str] = {}
    for platform in candidates:
        reason = probe(platform)
        if reason is None:
            return platform
        failures[platform] = reason
    raise RendererUnavailable(_unavailable_message(failures))


def ensure_gl_platform() -> str:
    """Choose the headless OpenGL platform for this process (once) and return its name.

    Respects a ``PYOPENGL_PLATFORM`` set by the user. If PyOpenGL was imported before any platform
    was chosen it is too late to choose one: the platform it picked is used ("default").

    Raises:
        RendererUnavailable: no candidate platform works (probed once; later calls raise again
            without probing).
    """
    global _selected_platform, _platform_error
    with _platform_lock:
        if _selected_platform is None:
            if _platform_error is not None:
                raise _platform_error
            if os.environ.get(_PLATFORM_ENV):
                _selected_platform = os.environ[_PLATFORM_ENV]
            elif "OpenGL.platform" in sys.modules:
                _selected_platform = "default"
            else:
                try:  # the probe is looked up in the module at call time so that tests can replace it
                    platform = select_gl_platform(probe=_probe_platform)
                except RendererUnavailable as exc:
                    _platform_error = exc
                    raise
                os.environ[_PLATFORM_ENV] = platform
                _selected_platform = platform
        return _selected_platform


def _pyrender() -> Any:
    """The pyrender module, imported only after the OpenGL platform has been chosen."""
    ensure_gl_platform()
    import pyrender

    return pyrender


# ----------------------------------------------------------------------------------------------
# Scene description
# ----------------------------------------------------------------------------------------------


class SceneMesh(NamedTuple):
    """One mesh to draw. Plain ``(vertices, faces)`` or ``(vertices, faces, colour)`` tuples are
    accepted wherever a SceneMesh is.

    Attributes:
        vertices: (V, 3) float, camera frame (x right, y down, z forward).
        faces: (F, 3) int vertex indices.
        colour: RGB in [0, 1]; None picks :func:`soft_colour` of the mesh's position in the list.
        translation: (3,) added to the vertices (a track's ``cam_t``); None for no translation.
    """

    vertices: np.ndarray
    faces: np.ndarray
    colour: RGB | None = None
    translation: np.ndarray | Sequence[float] | None = None


@dataclass(frozen=True)
class WeakPerspectiveCamera:
    """SPIN/VIBE weak-perspective crop camera: ``x_2d = s * (X[:2] + [tx, ty])`` in [-1, 1]."""

    s: float
    tx: float
    ty: float

    @classmethod
    def from_array(cls, cam: np.ndarray | Sequence[float]) -> WeakPerspectiveCamera:
        """From a (3,) array ``(s, tx, ty)``, the INT camera head's output."""
        values = np.asarray(cam, dtype=np.float64).reshape(-1)
        if values.shape != (3,):
            raise ValueError(f"cam must have shape (3,) = (s, tx, ty), got {np.shape(cam)}")
        if not values[0] > 0:
            raise ValueError(f"weak-perspective scale s must be > 0, got {values[0]}")
        return cls(s=float(values[0]), tx=float(values[1]), ty=float(values[2]))


@dataclass(frozen=True)
class PinholeCamera:
    """Pinhole camera at the origin of the camera frame: ``u = f X / Z + cx``, ``v = f Y / Z + cy``.

    ``principal_point`` is ``(cx, cy)`` in pixels; None means the image centre ``(W / 2, H / 2)``.
    """

    focal_length: float
    principal_point: tuple[float, float] | None = None


Camera = WeakPerspectiveCamera | PinholeCamera


@dataclass(frozen=True)
class RenderLayers:
    """What one render produces, all at the image size (H, W).

    Attributes:
        colour: (H, W, 3) float32 in [0, 1], premultiplied by ``coverage`` (anti-aliased edges).
        coverage: (H, W) float32 in [0, 1], the meshes' silhouette (1 inside, fractional at edges).
        depth: (H, W) float32, camera-frame z of the nearest surface; 0 where no mesh is.
    """

    colour: np.ndarray
    coverage: np.ndarray
    depth: np.ndarray


def soft_colour(index: int) -> RGB:
    """Soft RGB in [0, 1] for mesh number ``index``: the track palette blended toward white."""
    rgb = np.asarray(TRACK_PALETTE[index % len(TRACK_PALETTE)], dtype=np.float64) / 255.0
    soft = (1.0 - _SOFTEN) * rgb + _SOFTEN
    return (float(soft[0]), float(soft[1]), float(soft[2]))


def as_scene_meshes(meshes: Sequence[SceneMesh | tuple[Any, ...]]) -> list[SceneMesh]:
    """SceneMeshes or ``(vertices, faces[, colour[, translation]])`` tuples -> checked SceneMeshes with the
    translation applied to the vertices and each missing colour set to :func:`soft_colour` of its position."""
    items = [m if isinstance(m, SceneMesh) else SceneMesh(*m) for m in meshes]
    if not items:
        raise ValueError("at least one mesh is needed")
    checked = []
    for index, item in enumerate(items):
        vertices = np.asarray(item.vertices, dtype=np.float64)
        faces = np.asarray(item.faces)
        if vertices.ndim != 2 or vertices.shape[1] != 3:
            raise ValueError(f"mesh {index}: vertices must be (V, 3), got {vertices.shape}")
        if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
            raise ValueError(f"mesh {index}: faces must be (F, 3) integers, got {faces.shape}")
        translation = np.zeros(3) if item.translation is None else np.asarray(item.translation, np.float64)
        if translation.shape != (3,):
            raise ValueError(f"mesh {index}: translation must be (3,), got {translation.shape}")
        colour = soft_colour(index) if item.colour is None else tuple(float(c) for c in item.colour)
        if len(colour) != 3:
            raise ValueError(f"mesh {index}: colour must be RGB, got {item.colour}")
        checked.append(SceneMesh(vertices + translation, faces, colour, None))
    return checked


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    return image


# ----------------------------------------------------------------------------------------------
# Projection matrices (OpenGL view space: x right, y up, looking down -z)
# ----------------------------------------------------------------------------------------------

# Camera frame (x right, y down, z forward) -> OpenGL view space: a 180-degree rotation about x.
_CAMERA_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])


def _weak_perspective_projection(cam: WeakPerspectiveCamera, width: int, height: int,
                                 znear: float, zfar: float) -> np.ndarray:
    """Orthographic projection reproducing ``x_2d = s (X[:2] + t)`` at pixel centres.

    View space has ``x_v = X``, ``y_v = -Y`` and ``z_v = -(Z + offset)`` (the meshes are shifted to
    positive depths). The half-pixel terms move the GL window coordinate ``(ndc + 1) * size / 2``
    (pixel corners) onto pixel centres.
    """
    s, tx, ty = cam.s, cam.tx, cam.ty
    projection = np.zeros((4, 4))
    projection[0, 0] = s
    projection[0, 3] = s * tx + 1.0 / width
    projection[1, 1] = s
    projection[1, 3] = -s * ty - 1.0 / height
    projection[2, 2] = -2.0 / (zfar - znear)
    projection[2, 3] = -(zfar + znear) / (zfar - znear)
    projection[3, 3] = 1.0
    return projection


def _pinhole_projection(cam: PinholeCamera, width: int, height: int,
                        znear: float, zfar: float) -> np.ndarray:
    """Perspective projection with ``u = f X / Z + cx`` at pixel centres (row ``v`` down)."""
    cx, cy = cam.principal_point if cam.principal_point is not None else (width / 2.0, height / 2.0)
    f = float(cam.focal_length)
    # Pixel centres sit half a pixel inside the GL window coordinate of their corner.
    cx_gl, cy_gl = cx + 0.5, cy + 0.5
    projection = np.zeros((4, 4))
    projection[0, 0] = 2.0 * f / width
    projection[0, 2] = 1.0 - 2.0 * cx_gl / width
    projection[1, 1] = 2.0 * f / height
    projection[1, 2] = 2.0 * cy_gl / height - 1.0
    projection[2, 2] = (zfar + znear) / (znear - zfar)
    projection[2, 3] = 2.0 * zfar * znear / (znear - zfar)
    projection[3, 2] = -1.0
    return projection


_fixed_camera_class: type | None = None


def _make_fixed_camera(projection: np.ndarray, znear: float, zfar: float) -> pyrender.Camera:
    """A pyrender camera with a fixed projection matrix (pyrender's own cameras cannot express a
    weak-perspective crop camera on a non-square image, nor pixel-centre conventions)."""
    global _fixed_camera_class
    if _fixed_camera_class is None:
        pyrender = _pyrender()

        class _FixedProjectionCamera(pyrender.camera.Camera):
            def __init__(self, projection: np.ndarray, znear: float, zfar: float) -> None:
                super().__init__(znear=znear, zfar=zfar)
                self.projection = projection

            def get_projection_matrix(self, width: int | None = None, height: int | None = None) -> np.ndarray:
                return self.projection

        _fixed_camera_class = _FixedProjectionCamera
    return _fixed_camera_class(projection, znear, zfar)


_offscreen_class: type | None = None
_gl_pid: int | None = None  # the process that created the first OpenGL context


def _offscreen_renderer_class() -> type:
    """pyrender.OffscreenRenderer adapted to sharing one EGL display between contexts and threads.

    pyrender's EGL platform calls eglTerminate on delete; the display is shared by every context of
    the process, so deleting one renderer would break all the others (EGL_BAD_DISPLAY). Here
    delete() destroys only its own context. pyrender also leaves an EGL context current on the
    thread that rendered, so no other thread could use it (EGL_BAD_ACCESS); here each render
    releases it.
    """
    global _offscreen_class
    if _offscreen_class is None:
        pyrender = _pyrender()

        def egl_release(platform: Any) -> None:
            from OpenGL.EGL import EGL_NO_CONTEXT, EGL_NO_SURFACE, eglMakeCurrent

            eglMakeCurrent(platform._egl_display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT)

        class _OffscreenRenderer(pyrender.OffscreenRenderer):
            def render(self, *args: Any, **kwargs: Any) -> Any:
                try:
                    return super().render(*args, **kwargs)
                finally:
                    platform = getattr(self, "_platform", None)
                    if getattr(platform, "_egl_context", None) is not None:
                        egl_release(platform)

            def delete(self) -> None:
                platform = getattr(self, "_platform", None)
                if platform is None:
                    return
                if not hasattr(platform, "_egl_display"):
                    super().delete()
                    return
                from OpenGL.EGL import eglDestroyContext

                if platform._egl_display is not None and platform._egl_context is not None:
                    platform.make_current()
                    self._renderer.delete()
                    egl_release(platform)
                    eglDestroyContext(platform._egl_display, platform._egl_context)
                platform._egl_context = None
                platform._egl_display = None
                self._renderer = None
                self._platform = None

        _offscreen_class = _OffscreenRenderer
    return _offscreen_class


def _raymond_light_poses(elevation_deg: float = 30.0) -> list[np.ndarray]:
    """Poses (OpenGL view space) of three directional lights placed 120 degrees apart on a cone
    around the viewing direction, each shining toward the scene (the 'Raymond' rig)."""
    poses = []
    theta = math.radians(elevation_deg)
    for phi in (0.0, 2.0 * math.pi / 3.0, 4.0 * math.pi / 3.0):
        # Unit vector from the scene toward the light; a pyrender light shines along its -z axis.
        z_axis = np.array([math.sin(theta) * math.cos(phi), math.sin(theta) * math.sin(phi), math.cos(theta)])
        x_axis = np.array([-z_axis[1], z_axis[0], 0.0])
        x_axis /= np.linalg.norm(x_axis)
        pose = np.eye(4)
        pose[:3, :3] = np.stack([x_axis, np.cross(z_axis, x_axis), z_axis], axis=1)
        poses.append(pose)
    return poses


# ----------------------------------------------------------------------------------------------
# Renderer
# ----------------------------------------------------------------------------------------------


class Renderer:
    """Offscreen mesh renderer: one lazily created pyrender context per image size.

    Calls are serialised by a lock; with EGL a renderer can be used from any thread. Close it with
    :meth:`close` or use it as a context manager.

    Args:
        light_intensity: intensity of each of the three directional lights.
        ambient: ambient light level in [0, 1].
        metallic: material metallic factor.
        roughness: material roughness factor.
    """

    def __init__(self, *, light_intensity: float = 1.2, ambient: float = 0.25,
                 metallic: float = 0.05, roughness: float = 0.65) -> None:
        self.light_intensity = float(light_intensity)
        self.ambient = float(ambient)
        self.metallic = float(metallic)
        self.roughness = float(roughness)
        self._contexts: OrderedDict[tuple[int, int], pyrender.OffscreenRenderer] = OrderedDict()
        self._lock = threading.RLock()

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release every OpenGL context. The renderer can be used again afterwards."""
        with self._lock:
            while self._contexts:
                _, context = self._contexts.popitem()
                if _gl_pid == os.getpid():  # a forked child must not touch its parent's contexts
                    context.delete()

    def _context(self, width: int, height: int) -> pyrender.OffscreenRenderer:
        key = (width, height)
        if key in self._contexts:
            self._contexts.move_to_end(key)
            return self._contexts[key]
        global _gl_pid
        platform = ensure_gl_platform()
        if _gl_pid is not None and _gl_pid != os.getpid():
            raise RendererUnavailable(
                "OpenGL was initialised in a parent process before it forked; a forked child cannot "
                "render (it would hang). Render in the parent, or start workers with the 'spawn' or "
                "'forkserver' multiprocessing start method."
            )
        try:
            context = _offscreen_renderer_class()(viewport_width=width, viewport_height=height)
        except Exception as exc:  # any GL failure means the same to the caller
            reason = f"{type(exc).__name__}: {exc}"
            if platform == "default":
                reason += (f" (PyOpenGL was imported before viz.renderer could choose a headless platform:"
                           f" import viz first, or set {_PLATFORM_ENV}=egl)")
            raise RendererUnavailable(_unavailable_message({platform: reason})) from exc
        _gl_pid = os.getpid()
        self._contexts[key] = context
        while len(self._contexts) > _MAX_CONTEXTS:
            _, old = self._contexts.popitem(last=False)
            old.delete()
        return context

    # -- rendering --------------------------------------------------------------------------

    def render(self, meshes: Sequence[SceneMesh | tuple[Any, ...]], camera: Camera, *,
               width: int, height: int) -> RenderLayers:
        """Render meshes (camera frame) seen by ``camera`` into an image of (height, width).

        Args:
            meshes: SceneMesh items or ``(vertices (V, 3), faces (F, 3)[, colour])`` tuples.
            camera: WeakPerspectiveCamera or PinholeCamera.
            width, height: image size in pixels.

        Returns:
            RenderLayers with colour (H, W, 3), coverage (H, W) and depth (H, W).
        """
        pyrender = _pyrender()  # chooses the OpenGL platform first, raising RendererUnavailable
        items = as_scene_meshes(meshes)
        width, height = int(width), int(height)
        if width < 1 or height < 1:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        z_values = np.concatenate([m.vertices[:, 2] for m in items])
        z_min, z_max = float(z_values.min()), float(z_values.max())
        span = max(z_max - z_min, 1e-3)

        if isinstance(camera, WeakPerspectiveCamera):
            # Shift every mesh along the view axis so that depths are >= 1; order is unchanged.
            z_offset = 1.0 - z_min
            znear, zfar = 0.5, z_max + z_offset + 0.5 + 0.01 * span
            projection = _weak_perspective_projection(camera, width, height, znear, zfar)
        elif isinstance(camera, PinholeCamera):
            if z_min <= 0:
                raise ValueError(f"pinhole camera: every vertex needs z > 0 (in front), min z = {z_min}")
            z_offset = 0.0
            znear, zfar = 0.5 * z_min, 2.0 * z_max + 1.0
            projection = _pinhole_projection(camera, width, height, znear, zfar)
        else:
            raise TypeError(f"unknown camera type {type(camera).__name__}")

        scene = self._build_scene(items, z_offset)
        scene.add(_make_fixed_camera(projection, znear, zfar), pose=np.eye(4))

        with self._lock:
            context = self._context(width, height)
            colour, depth = context.render(scene, flags=pyrender.RenderFlags.RGBA)
        hit = depth > 0
        rgb = colour[..., :3].astype(np.float32) / 255.0
        if colour.shape[-1] == 4:  # anti-aliased coverage from the multisampled framebuffer
            coverage = colour[..., 3].astype(np.float32) / 255.0
        else:  # platforms without framebuffers (OSMesa) give RGB only: a hard silhouette
            coverage = hit.astype(np.float32)
        depth = depth.astype(np.float32)
        if isinstance(camera, WeakPerspectiveCamera):
            depth = _linear_depth_orthographic(depth, hit, znear, zfar) - np.float32(z_offset)
        depth[~hit] = 0.0
        return RenderLayers(colour=rgb, coverage=coverage, depth=depth)

    def _build_scene(self, meshes: list[SceneMesh], z_offset: float) -> pyrender.Scene:
        import trimesh

        pyrender = _pyrender()
        scene = pyrender.Scene(bg_color=(0.0, 0.0, 0.0, 0.0), ambient_light=(self.ambient,) * 3)
        pose = _CAMERA_TO_GL.copy()
        pose[2, 3] = -z_offset
        for item in meshes:
            material = pyrender.MetallicRoughnessMaterial(
                metallicFactor=self.metallic,
                roughnessFactor=self.roughness,
                alphaMode="OPAQUE",
                doubleSided=True,
                baseColorFactor=(*item.colour, 1.0),
            )
            tri = trimesh.Trimesh(item.vertices, item.faces, process=False)
            scene.add(pyrender.Mesh.from_trimesh(tri, material=material, smooth=True), pose=pose)
        for light_pose in _raymond_light_poses():
            light = pyrender.DirectionalLight(color=np.ones(3), intensity=self.light_intensity)
            scene.add(light, pose=light_pose)
        return scene


def _linear_depth_orthographic(depth: np.ndarray, hit: np.ndarray, znear: float, zfar: float) -> np.ndarray:
    """Undo pyrender's perspective depth linearisation for an orthographic projection."""
    out = depth.copy()
    d = depth[hit]
    z_ndc = (zfar + znear - 2.0 * znear * zfar / d) / (zfar - znear)
    out[hit] = znear + (z_ndc + 1.0) * 0.5 * (zfar - znear)
    return out


# ----------------------------------------------------------------------------------------------
# Pure functions
# ----------------------------------------------------------------------------------------------

_thread_state = threading.local()


def _default_renderer() -> Renderer:
    """One Renderer per thread and process (a forked child must not reuse its parent's contexts)."""
    pid = os.getpid()
    if getattr(_thread_state, "pid", None) != pid:
        _thread_state.pid = pid
        _thread_state.renderer = Renderer()
    return _thread_state.renderer


def composite(image: np.ndarray, layers: RenderLayers, *, alpha: float = 1.0) -> np.ndarray:
    """Blend rendered layers over ``image`` (H, W, 3) uint8; pixels outside the silhouette keep
    their value exactly. ``alpha`` is the meshes' opacity. Returns a new (H, W, 3) uint8 image."""
    image = _check_image(image)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if layers.coverage.shape != image.shape[:2]:
        raise ValueError(f"layers are {layers.coverage.shape}, image is {image.shape[:2]}")
    weight = (float(alpha) * layers.coverage)[..., None]
    blended = image.astype(np.float32) * (1.0 - weight) + 255.0 * float(alpha) * layers.colour
    out = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    outside = layers.coverage <= 0.0
    out[outside] = image[outside]
    return out


def overlay_meshes(image: np.ndarray, meshes: Sequence[SceneMesh | tuple[Any, ...]], camera: Camera, *,
                   alpha: float = 1.0, renderer: Renderer | None = None) -> np.ndarray:
    """Draw several meshes over ``image`` (H, W, 3) uint8 with one camera, depth-correctly.

    For a weak-perspective camera the image is the crop the camera belongs to; for a pinhole camera
    each mesh's ``translation`` is its ``cam_t``. Returns a new (H, W, 3) uint8 image.
    """
    image = _check_image(image)
    height, width = image.shape[:2]
    layers = (renderer or _default_renderer()).render(meshes, camera, width=width, height=height)
    return composite(image, layers, alpha=alpha)


def render_crop_overlay(image: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
                        cam: np.ndarray | Sequence[float], *, colour: RGB | None = None,
                        alpha: float = 1.0, renderer: Renderer | None = None) -> np.ndarray:
    """Overlay one mesh on its person crop with the weak-perspective crop camera.

    Args:
        image: (H, W, 3) uint8 RGB crop.
        vertices: (V, 3) camera frame (x right, y down, z forward).
        faces: (F, 3) int.
        cam: (3,) ``(s, tx, ty)``; vertex ``X`` lands at pixel
            ``((s (X + tx) + 1) W / 2, (s (Y + ty) + 1) H / 2)``.
        colour: RGB in [0, 1]; default :func:`soft_colour` (0).
        alpha: mesh opacity in [0, 1].
        renderer: a Renderer to reuse; default the thread's own.

    Returns:
        (H, W, 3) uint8, a new image.
    """
    return overlay_meshes(image, [SceneMesh(vertices, faces, colour)], WeakPerspectiveCamera.from_array(cam),
                          alpha=alpha, renderer=renderer)


def render_perspective_overlay(image: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
                               cam_t: np.ndarray | Sequence[float], *, focal_length: float,
                               principal_point: tuple[float, float] | None = None,
                               colour: RGB | None = None, alpha: float = 1.0,
                               renderer: Renderer | None = None) -> np.ndarray:
    """Overlay one mesh on a full image with a pinhole camera.

    Args:
        image: (H, W, 3) uint8 RGB.
        vertices: (V, 3) camera frame (x right, y down, z forward), before translation.
        faces: (F, 3) int.
        cam_t: (3,) translation added to the vertices; the mesh must end up at z > 0.
        focal_length: in pixels.
        principal_point: (cx, cy) in pixels; default the image centre (W / 2, H / 2).
        colour: RGB in [0, 1]; default :func:`soft_colour` (0).
        alpha: mesh opacity in [0, 1].
        renderer: a Renderer to reuse; default the thread's own.

    Returns:
        (H, W, 3) uint8, a new image.
    """
    camera = PinholeCamera(focal_length=float(focal_length), principal_point=principal_point)
    return overlay_meshes(image, [SceneMesh(vertices, faces, colour, cam_t)], camera,
                          alpha=alpha, renderer=renderer)


def _rotation_about_vertical(angle_deg: float) -> np.ndarray:
    """(3, 3) rotation about the camera frame's y axis (vertical in the image)."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def side_view_meshes(meshes: Sequence[SceneMesh | tuple[Any, ...]], size: int | tuple[int, int], *,
                     angle_deg: float = 90.0, background: tuple[int, int, int] = (245, 245, 245),
                     margin: float = 0.08, focal_scale: float = 2.5,
                     renderer: Renderer | None = None) -> np.ndarray:
    """The meshes seen from the side, on a plain background, framed automatically.

    All meshes turn together by ``angle_deg`` about the vertical axis through the centre of their
    joint bounding box, so relative positions (e.g. of several tracks) are kept. At 90 degrees the
    view is from the original camera's right: what was far from the camera appears on the right.

    Args:
        meshes: SceneMesh items or ``(vertices, faces[, colour])`` tuples, camera frame.
        size: output size, an int for a square image or (height, width).
        angle_deg: rotation about the vertical axis.
        background: RGB uint8 background colour.
        margin: free border as a fraction of the image size on each side.
        focal_scale: focal length as a multiple of the image size (larger is flatter).
        renderer: a Renderer to reuse; default the thread's own.

    Returns:
        (H, W, 3) uint8.
    """
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    items = as_scene_meshes(meshes)
    points = np.concatenate([m.vertices for m in items])
    centre = 0.5 * (points.min(axis=0) + points.max(axis=0))
    rotation = _rotation_about_vertical(angle_deg)
    rotated = [(m.vertices - centre) @ rotation.T for m in items]
    all_rotated = np.concatenate(rotated)
    low, high = all_rotated.min(axis=0), all_rotated.max(axis=0)
    mid = 0.5 * (low + high)
    half = np.maximum(0.5 * (high - low), 1e-6)
    focal = focal_scale * max(width, height)
    usable = 0.5 * (1.0 - 2.0 * margin)
    # Nearest points (at depth distance - half_z) must still fit inside the usable half-size.
    distance = max(focal * half[0] / (usable * width), focal * half[1] / (usable * height)) + half[2]
    shift = np.array([-mid[0], -mid[1], distance - mid[2]])
    placed = [SceneMesh(r + shift, m.faces, m.colour) for r, m in zip(rotated, items, strict=True)]
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = np.asarray(background, dtype=np.uint8)
    return overlay_meshes(canvas, placed, PinholeCamera(focal_length=focal), renderer=renderer)


def render_side_view(vertices: np.ndarray, faces: np.ndarray, size: int | tuple[int, int], *,
                     colour: RGB | None = None, angle_deg: float = 90.0,
                     background: tuple[int, int, int] = (245, 245, 245),
                     renderer: Renderer | None = None) -> np.ndarray:
    """One mesh (V, 3) camera frame, faces (F, 3), seen from the side; see :func:`side_view_meshes`.

    Returns:
        (H, W, 3) uint8 with ``size`` an int (square) or (height, width).
    """
    return side_view_meshes([SceneMesh(vertices, faces, colour)], size, angle_deg=angle_deg,
                            background=background, renderer=renderer)
