"""Pictures and figures from INT results: headless mesh renderer, overlays, side views, 3D export."""

from viz.export import export_mesh, export_meshes, mesh_to_trimesh
from viz.renderer import (
    PinholeCamera,
    Renderer,
    RendererUnavailable,
    RenderLayers,
    SceneMesh,
    WeakPerspectiveCamera,
    composite,
    ensure_gl_platform,
    overlay_meshes,
    render_crop_overlay,
    render_perspective_overlay,
    render_side_view,
    side_view_meshes,
    soft_colour,
)

__all__ = [
    "PinholeCamera",
    "RenderLayers",
    "Renderer",
    "RendererUnavailable",
    "SceneMesh",
    "WeakPerspectiveCamera",
    "composite",
    "ensure_gl_platform",
    "export_mesh",
    "export_meshes",
    "mesh_to_trimesh",
    "overlay_meshes",
    "render_crop_overlay",
    "render_perspective_overlay",
    "render_side_view",
    "side_view_meshes",
    "soft_colour",
]
