"""3D export of meshes for viewers (.glb, .obj, .ply) through trimesh.

Meshes arrive in the camera frame used throughout INT (x right, y down, z away from the camera; see
:mod:`viz.renderer`). glTF and most viewers are y-up with the viewer looking down -z, so by default
the export rotates the mesh 180 degrees about x: ``(x, y, z) -> (x, -y, -z)``. That is a rotation
(not a mirror), so face winding and normals stay outward, the body stands upright, and a person who
faced the camera faces the viewer's default camera. Pass ``y_up=False`` to keep camera coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

from viz.renderer import RGB, SceneMesh, as_scene_meshes, soft_colour

__all__ = ["EXPORT_FORMATS", "export_mesh", "export_meshes", "mesh_to_trimesh"]

#: File suffixes :func:`export_mesh` writes.
EXPORT_FORMATS: tuple[str, ...] = (".glb", ".obj", ".ply")

_CAMERA_TO_Y_UP = np.array([1.0, -1.0, -1.0])


def mesh_to_trimesh(vertices: np.ndarray, faces: np.ndarray, colour: RGB | None = None, *,
                    y_up: bool = True) -> trimesh.Trimesh:
    """A trimesh.Trimesh with per-vertex colour, converted to y-up unless ``y_up`` is False.

    Args:
        vertices: (V, 3) camera frame (x right, y down, z forward). Not modified.
        faces: (F, 3) int.
        colour: RGB in [0, 1]; default :func:`viz.renderer.soft_colour` (0).
        y_up: rotate 180 degrees about x into the y-up viewer frame.

    Returns:
        trimesh.Trimesh with V vertices (no merging or reordering) and F faces.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must be (V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must be (F, 3), got {faces.shape}")
    points = vertices * _CAMERA_TO_Y_UP if y_up else vertices.copy()
    rgb = soft_colour(0) if colour is None else colour
    rgba = np.array([*(np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 1.0) * 255.0), 255.0])
    vertex_colors = np.tile(np.rint(rgba).astype(np.uint8), (len(points), 1))
    return trimesh.Trimesh(points, faces.astype(np.int64), vertex_colors=vertex_colors, process=False)


def _check_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise ValueError(f"cannot export {path.name}: the suffix must be one of {', '.join(EXPORT_FORMATS)}")
    return suffix


def export_mesh(path: str | Path, vertices: np.ndarray, faces: np.ndarray, colour: RGB | None = None, *,
                y_up: bool = True) -> Path:
    """Write one mesh to ``path`` (.glb, .obj or .ply, chosen by the suffix); returns the path.

    Vertices (V, 3) are in the camera frame and converted as in :func:`mesh_to_trimesh`.
    """
    path = Path(path)
    _check_suffix(path)
    mesh = mesh_to_trimesh(vertices, faces, colour, y_up=y_up)
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh.export(path)
    return path


def export_meshes(path: str | Path, meshes: Sequence[SceneMesh | tuple[Any, ...]], *,
                  y_up: bool = True) -> Path:
    """Write several meshes (e.g. all tracks of a frame) to one file; returns the path.

    Each item is a SceneMesh or ``(vertices, faces[, colour[, translation]])`` in one camera frame;
    colours default to :func:`viz.renderer.soft_colour` by position. A .glb keeps one node per mesh;
    .obj and .ply get the meshes concatenated.
    """
    path = Path(path)
    suffix = _check_suffix(path)
    parts = [mesh_to_trimesh(m.vertices, m.faces, m.colour, y_up=y_up) for m in as_scene_meshes(meshes)]
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".glb":
        scene = trimesh.Scene()
        for index, part in enumerate(parts):
            scene.add_geometry(part, node_name=f"mesh_{index}", geom_name=f"mesh_{index}")
        scene.export(path)
    else:
        trimesh.util.concatenate(parts).export(path)
    return path


def export_results_frame(path: str | Path, results: Any, body_model: Any, *, frame: int,
                         track_ids: Sequence[int] | None = None, centre: bool = False,
                         natural_depth: bool = False) -> Path:
    """The people of one frame of a pipeline run (``results.npz``) as one mesh file: each person's SMPL mesh
    rebuilt by ``body_model`` from its ``pose`` and ``betas`` and placed by its ``cam_t``, one colour per
    track (:func:`viz.renderer.soft_colour` of the track id). ``track_ids`` limits it to those tracks;
    ``centre`` moves the group so that the people's mean position is the origin (viewers frame the origin;
    the people keep their places relative to each other). ``natural_depth`` rescales the people's depths to a
    camera of ordinary field of view (focal length = the image diagonal, as the overlay's side view does):
    the run's ``cam_t`` uses the long SPIN focal length, which keeps depth *ratios* but puts people hundreds of
    metres away and far apart in depth.

    Raises ValueError when nobody of ``track_ids`` is in ``frame``.
    """
    import torch

    from int_model.geometry import axis_angle_to_rotmat

    rows = results.rows_of_frame(int(frame))
    if track_ids is not None:
        rows = rows[np.isin(results.track_id[rows], np.asarray(list(track_ids)))]
    if not len(rows):
        who = "nobody" if track_ids is None else f"none of tracks {list(track_ids)}"
        raise ValueError(f"frame {frame} has {who} in it")
    pose = torch.as_tensor(results.pose[rows], dtype=torch.float32).reshape(len(rows), -1, 3)
    betas = torch.as_tensor(results.betas[rows], dtype=torch.float32)
    with torch.no_grad():
        vertices = body_model(rotmat=axis_angle_to_rotmat(pose), betas=betas).vertices.numpy()
    translations = np.asarray(results.cam_t[rows], dtype=np.float64)
    if natural_depth:
        diagonal = float(np.hypot(*results.image_size))
        translations = translations * np.array([1.0, 1.0, diagonal / float(results.focal_length)])
    if centre:
        translations = translations - (translations + vertices.mean(axis=1)).mean(axis=0)
    meshes = [SceneMesh(v, np.asarray(body_model.faces), soft_colour(int(t)), shift)
              for v, t, shift in zip(vertices, results.track_id[rows], translations, strict=True)]
    return export_meshes(path, meshes)
