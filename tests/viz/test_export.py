"""3D export: round trips through trimesh, y-up conversion, several meshes, purity."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from viz.export import export_mesh, export_meshes, mesh_to_trimesh
from viz.renderer import SceneMesh


@pytest.fixture
def person_like() -> tuple[np.ndarray, np.ndarray]:
    """An icosphere stretched into a standing figure, camera frame: the head end is at y = -0.9."""
    sphere = trimesh.creation.icosphere(subdivisions=3)
    vertices = sphere.vertices * [0.25, 0.9, 0.15] + [0.1, 0.0, 3.0]
    return vertices, sphere.faces


@pytest.mark.parametrize("suffix", [".glb", ".obj", ".ply"])
def test_export_round_trips_with_the_same_vertices(tmp_path, person_like, suffix):
    vertices, faces = person_like
    path = export_mesh(tmp_path / f"body{suffix}", vertices, faces, colour=(0.2, 0.4, 0.8))
    loaded = trimesh.load(path, force="mesh", process=False)
    assert len(loaded.vertices) == len(vertices) and len(loaded.faces) == len(faces)
    np.testing.assert_allclose(np.sort(loaded.vertices[:, 1]), np.sort(-vertices[:, 1]), atol=1e-5)


def test_y_up_conversion_is_a_rotation_that_keeps_the_body_upright_and_outward(person_like):
    vertices, faces = person_like
    mesh = mesh_to_trimesh(vertices, faces)
    np.testing.assert_allclose(mesh.vertices, vertices * [1.0, -1.0, -1.0])
    assert mesh.vertices[:, 1].max() == pytest.approx(-vertices[:, 1].min())  # head on top in y-up
    assert mesh.volume > 0  # winding still outward: a rotation, not a mirror
    kept = mesh_to_trimesh(vertices, faces, y_up=False)
    np.testing.assert_allclose(kept.vertices, vertices)


def test_colour_is_stored_per_vertex(person_like):
    vertices, faces = person_like
    mesh = mesh_to_trimesh(vertices, faces, colour=(1.0, 0.5, 0.0))
    np.testing.assert_array_equal(mesh.visual.vertex_colors[0], [255, 128, 0, 255])


def test_export_does_not_mutate_inputs(tmp_path, person_like):
    vertices, faces = person_like
    vertices.flags.writeable = False
    faces.flags.writeable = False
    before = vertices.copy(), faces.copy()
    export_mesh(tmp_path / "a.glb", vertices, faces)
    export_meshes(tmp_path / "b.glb", [SceneMesh(vertices, faces, None, (1.0, 0.0, 0.0))])
    np.testing.assert_array_equal(vertices, before[0])
    np.testing.assert_array_equal(faces, before[1])


def test_export_meshes_keeps_each_track(tmp_path, person_like):
    vertices, faces = person_like
    meshes = [SceneMesh(vertices, faces), (vertices, faces, (1.0, 0.0, 0.0), (1.0, 0.0, 0.0))]
    scene = trimesh.load(export_meshes(tmp_path / "tracks.glb", meshes), process=False)
    assert len(scene.geometry) == 2
    combined = trimesh.load(export_meshes(tmp_path / "tracks.obj", meshes), force="mesh", process=False)
    assert len(combined.vertices) == 2 * len(vertices)
    assert combined.vertices[:, 0].max() == pytest.approx(vertices[:, 0].max() + 1.0)


def test_export_rejects_unknown_formats(tmp_path, person_like):
    with pytest.raises(ValueError, match=r"\.glb"):
        export_mesh(tmp_path / "body.fbx", *person_like)


def test_results_frame_meshes_are_the_body_model_posed_and_placed(tmp_path, body_model):
    from pipeline.results import PipelineResults
    from viz.export import export_results_frame

    n = 3  # two people in frame 0, one in frame 1
    pose = np.zeros((n, 72))
    pose[:, 0] = np.pi  # upright in the camera frame
    cam_t = np.array([[-1.0, 0.0, 40.0], [1.0, 0.0, 60.0], [-1.0, 0.0, 40.0]])
    rows = dict(track_id=np.array([0, 1, 0]), frame=np.array([0, 0, 1]), bbox=np.ones((n, 4)), pose=pose,
                betas=np.zeros((n, 10)), cam=np.ones((n, 3)), cam_t=cam_t, joints3d=np.zeros((n, 24, 3)),
                joints2d=np.zeros((n, 24, 2)))
    results = PipelineResults.from_rows(rows, fps=25.0, image_size=(400, 300), num_frames=2,
                                        timestamps=np.array([0.0, 0.04]), focal_length=1000.0,
                                        body_model=body_model.identity, checkpoint="x", source="x", status="ok",
                                        message="")
    path = export_results_frame(tmp_path / "f0.glb", results, body_model, frame=0)
    scene = trimesh.load(path)
    assert len(scene.geometry) == 2
    depths = sorted(-g.vertices[:, 2].mean() for g in scene.dump())  # y-up export: camera z becomes -z
    assert depths == pytest.approx([40.0, 60.0], abs=0.5)
    # Centred at natural depth: the group sits at the origin and the depth gap shrinks with the focal length.
    near = trimesh.load(export_results_frame(tmp_path / "c.glb", results, body_model, frame=0, centre=True,
                                             natural_depth=True))
    gap = np.ptp([g.vertices[:, 2].mean() for g in near.dump()])
    assert gap == pytest.approx(20.0 * 500.0 / 1000.0, abs=0.5) and np.abs(near.bounds.mean(axis=0)).max() < 1.5
    assert len(trimesh.load(export_results_frame(tmp_path / "t.glb", results, body_model, frame=0,
                                                 track_ids=[1])).geometry) == 1
    with pytest.raises(ValueError, match="frame 1 has none of tracks"):
        export_results_frame(tmp_path / "x.glb", results, body_model, frame=1, track_ids=[1])
