"""Body model: the procedural SMPL-format body, the licensed-SMPL reader, and the smplx-backed BodyModel."""

from __future__ import annotations

import io
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import smplx.vertex_ids
import torch
import trimesh

from int_model.body_model import (
    BodyModel,
    BodyOutput,
    RefusedGlobalError,
    load_body_model,
    load_procedural_arrays,
    proportions_for_betas,
    shaped_rest_joints,
)
from int_model.body_model.procedural.cache import CACHE_FILE_NAME, procedural_identity
from int_model.body_model.procedural.landmarks import LANDMARK_NAMES, landmark_dict
from int_model.body_model.procedural.skeleton import h36m_targets
from int_model.body_model.smpl_files import RestrictedUnpickler, SmplFileError, restricted_load
from int_model.constants import H36M_JOINT_NAMES, SMPL_JOINT_NAMES, SMPL_PARENTS

JOINT = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}
CM = 0.01


@pytest.fixture(scope="module")
def arrays(_session_cache) -> dict[str, np.ndarray]:
    return load_procedural_arrays()


def _rest_rotmat(batch: int) -> torch.Tensor:
    return torch.eye(3).expand(batch, 24, 3, 3).clone()


def _rotation(axis: tuple[float, float, float], degrees: float) -> torch.Tensor:
    axis_t = torch.tensor(axis, dtype=torch.float64)
    k = torch.zeros(3, 3, dtype=torch.float64)
    k[0, 1], k[0, 2], k[1, 2] = -axis_t[2], axis_t[1], -axis_t[0]
    k = k - k.T
    angle = torch.tensor(np.deg2rad(degrees), dtype=torch.float64)
    return (torch.eye(3, dtype=torch.float64) + torch.sin(angle) * k + (1 - torch.cos(angle)) * k @ k).float()


# ------------------------------------------------------------------------------ procedural geometry
def test_t_pose_height_and_layout(arrays):
    v = arrays["v_template"]
    height = v[:, 1].max() - v[:, 1].min()
    assert 1.6 <= height <= 1.8
    j = arrays["J"]
    assert np.linalg.norm(j[JOINT["pelvis"]]) < 0.3  # pelvis near the origin, as in SMPL
    assert j[JOINT["head"], 1] > j[JOINT["neck"], 1] > j[JOINT["pelvis"], 1] > j[JOINT["left_knee"], 1]
    assert j[JOINT["left_wrist"], 0] > 0.5 and j[JOINT["right_wrist"], 0] < -0.5  # left side at +x, T-pose
    nose = v[arrays["landmark_ids"][LANDMARK_NAMES.index("nose")]]
    assert nose[2] > j[JOINT["head"], 2] + 0.05  # faces +z
    assert arrays["kintree_table"].shape == (2, 24)
    assert tuple(arrays["kintree_table"][0, 1:]) == SMPL_PARENTS[1:]


def test_mesh_is_one_closed_outward_surface(arrays):
    mesh = trimesh.Trimesh(arrays["v_template"], arrays["f"], process=False)
    assert mesh.is_watertight
    assert mesh.is_winding_consistent
    assert mesh.volume > 0.04  # m^3: a person of roughly 60 kg
    assert mesh.euler_number == 2
    assert len(mesh.split(only_watertight=False)) == 1
    assert 4000 <= len(arrays["v_template"]) <= 8000
    assert arrays["f"].dtype.kind == "i" and arrays["f"].min() == 0 and arrays["f"].max() == len(mesh.vertices) - 1


def test_skinning_weights_are_smooth_partitions_of_unity(arrays):
    w = arrays["weights"]
    assert w.shape == (len(arrays["v_template"]), 24)
    assert (w >= 0).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-5)
    assert (w.max(axis=0) > 0.5).all()  # every joint drives some part of the body
    edges = np.concatenate([arrays["f"][:, [0, 1]], arrays["f"][:, [1, 2]]])
    jump = np.abs(w[edges[:, 0]] - w[edges[:, 1]]).max()
    assert jump < 0.5  # blended across joints, no hard seams
    assert ((w > 0.05).sum(axis=1) >= 2).mean() > 0.2  # a good share of vertices blend two or more joints


def test_joint_regressor_recovers_rest_joints(arrays):
    reg = arrays["J_regressor"]
    assert reg.shape == (24, len(arrays["v_template"]))
    assert (reg >= 0).all()
    np.testing.assert_allclose(reg.sum(axis=1), 1.0, atol=1e-5)
    assert ((reg > 0).sum(axis=1) <= 64).all()  # sparse
    err = np.linalg.norm(reg @ arrays["v_template"] - arrays["J"], axis=1)
    assert err.max() < 1 * CM
    np.testing.assert_allclose(arrays["J"], shaped_rest_joints(np.zeros(10)), atol=1e-6)


def test_joint_regressor_follows_the_shape(arrays):
    rng = np.random.default_rng(0)
    betas = np.concatenate([rng.normal(size=(8, 10)) * 1.5, rng.uniform(-3, 3, size=(8, 10)), 3 * np.eye(10)[:4]])
    for beta in betas:
        shaped = arrays["v_template"] + arrays["shapedirs"] @ beta
        err = np.linalg.norm(arrays["J_regressor"] @ shaped - shaped_rest_joints(beta), axis=1)
        assert err.max() < 1 * CM, (beta, err.max())


def test_h36m_regressor(arrays):
    reg = arrays["J_regressor_h36m"]
    assert reg.shape == (17, len(arrays["v_template"]))
    assert (reg >= 0).all()
    np.testing.assert_allclose(reg.sum(axis=1), 1.0, atol=1e-5)
    h36m = reg @ arrays["v_template"]
    np.testing.assert_allclose(h36m, h36m_targets(), atol=1 * CM)
    smpl = arrays["J"]
    for name in ("left_wrist", "right_knee", "left_shoulder"):
        assert np.linalg.norm(h36m[H36M_JOINT_NAMES.index(name)] - smpl[JOINT[name]]) < 1 * CM
    pelvis = h36m[H36M_JOINT_NAMES.index("pelvis")]
    np.testing.assert_allclose(pelvis, 0.5 * (smpl[JOINT["left_hip"]] + smpl[JOINT["right_hip"]]), atol=1 * CM)
    assert h36m[H36M_JOINT_NAMES.index("head")][1] > h36m[H36M_JOINT_NAMES.index("neck_base")][1] > pelvis[1]
    for beta in np.random.default_rng(1).uniform(-3, 3, size=(8, 10)):
        shaped = arrays["v_template"] + arrays["shapedirs"] @ beta
        expected = h36m_targets(proportions_for_betas(beta))
        assert np.linalg.norm(reg @ shaped - expected, axis=1).max() < 1 * CM


def test_shape_directions_are_distinct_and_human(arrays):
    dirs = arrays["shapedirs"].reshape(-1, 10).astype(np.float64)
    norms = np.linalg.norm(dirs, axis=0)
    assert (np.abs(arrays["shapedirs"]).max(axis=(0, 1)) > 0.004).all()  # each moves some vertex > 4 mm per unit
    corr = (dirs / norms).T @ (dirs / norms)
    off_diagonal = np.abs(corr - np.diag(np.diag(corr)))
    assert off_diagonal.max() < 0.8
    v = arrays["v_template"]

    def height(beta: np.ndarray) -> float:
        shaped = v + arrays["shapedirs"] @ beta
        return float(shaped[:, 1].max() - shaped[:, 1].min())

    assert height(np.eye(10)[0]) - height(np.zeros(10)) > 0.03  # beta[0]: taller
    faces = arrays["f"]
    for i in range(10):
        for sign in (-3.0, 3.0):
            beta = sign * np.eye(10)[i]
            assert 1.45 < height(beta) < 1.95
            tri = (v + arrays["shapedirs"] @ beta)[faces]
            volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
            assert 0.035 < volume < 0.11


def test_landmarks_cover_smplx_keys(arrays):
    ids = landmark_dict(arrays)
    assert set(ids) == set(smplx.vertex_ids.vertex_ids["smplh"])
    v = arrays["v_template"]
    assert v[ids["leye"], 0] > 0 > v[ids["reye"], 0]
    assert v[ids["lthumb"], 0] > 0.6 and v[ids["rpinky"], 0] < -0.6
    assert v[ids["LBigToe"], 2] > v[ids["LHeel"], 2] + 0.15
    assert v[ids["nose"], 1] > arrays["J"][JOINT["head"], 1]


@pytest.mark.slow
def test_generation_is_deterministic_and_cache_recovers(arrays, tmp_path, monkeypatch):
    monkeypatch.setenv("INT_CACHE_DIR", str(tmp_path))
    (tmp_path / CACHE_FILE_NAME).write_bytes(b"not an npz")  # a damaged cache is regenerated
    fresh = load_procedural_arrays()
    assert sorted(fresh) == sorted(arrays)
    for key in arrays:
        np.testing.assert_array_equal(fresh[key], arrays[key], err_msg=key)
    assert procedural_identity(fresh) == procedural_identity(arrays)
    assert [p.name for p in tmp_path.iterdir()] == [CACHE_FILE_NAME]  # written atomically, no leftovers
    assert not fresh["v_template"].flags.writeable


# ------------------------------------------------------------------------------ BodyModel
def test_body_model_metadata(body_model):
    assert isinstance(body_model, BodyModel)
    assert body_model.kind == "procedural"
    assert body_model.identity.startswith("procedural-v1:") and len(body_model.identity.split(":")[1]) == 12
    assert "procedural" in body_model.description and f"{body_model.num_vertices:,}" in body_model.description
    assert body_model.faces.shape[1] == 3 and body_model.faces.dtype == np.int64


def test_forward_shapes(body_model):
    b = 3
    out = body_model(rotmat=_rest_rotmat(b), betas=torch.randn(b, 10, generator=torch.Generator().manual_seed(1)))
    assert isinstance(out, BodyOutput)
    assert out.vertices.shape == (b, body_model.num_vertices, 3)
    assert out.joints.shape == (b, 24, 3)
    assert out.joints_h36m is not None and out.joints_h36m.shape == (b, 17, 3)
    assert out.vertices.dtype == out.joints.dtype == torch.float32


def test_identity_rotation_gives_the_rest_pose(body_model, arrays):
    out = body_model(rotmat=_rest_rotmat(1), betas=torch.zeros(1, 10))
    np.testing.assert_allclose(out.vertices[0].numpy(), arrays["v_template"], atol=1e-5)
    np.testing.assert_allclose(out.joints[0].numpy(), arrays["J"], atol=1 * CM)


def test_elbow_bend_moves_the_wrist_forward(body_model):
    rotmat = _rest_rotmat(1)
    rotmat[0, JOINT["left_elbow"]] = _rotation((0.0, 1.0, 0.0), -90.0)  # left arm along +x: flexion about -y
    rotmat[0, JOINT["right_elbow"]] = _rotation((0.0, 1.0, 0.0), 90.0)
    rest = body_model(rotmat=_rest_rotmat(1), betas=torch.zeros(1, 10)).joints[0]
    bent = body_model(rotmat=rotmat, betas=torch.zeros(1, 10)).joints[0]
    for side in ("left", "right"):
        elbow, wrist = JOINT[f"{side}_elbow"], JOINT[f"{side}_wrist"]
        forearm = torch.linalg.norm(rest[wrist] - rest[elbow])
        moved = bent[wrist] - bent[elbow]
        assert moved[2] > 0.9 * forearm  # forward
        assert abs(moved[0]) < 0.1 * forearm
        torch.testing.assert_close(bent[elbow], rest[elbow])
        assert torch.linalg.norm(bent[wrist] - rest[wrist]) > 0.3


def test_body_model_has_no_persistent_state(body_model):
    assert body_model.state_dict() == {}
    parent = torch.nn.Module()
    parent.body = body_model
    assert parent.state_dict() == {}
    assert sum(1 for _ in body_model.buffers()) > 0
    assert list(body_model.parameters()) == []


def test_works_under_bf16_autocast(body_model):
    rotmat = _rest_rotmat(2)
    rotmat[:, JOINT["left_knee"]] = _rotation((1.0, 0.0, 0.0), 60.0)
    betas = torch.randn(2, 10, generator=torch.Generator().manual_seed(2))
    reference = body_model(rotmat=rotmat, betas=betas)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = body_model(rotmat=rotmat.bfloat16(), betas=betas.bfloat16())
    assert out.vertices.dtype == torch.float32 and out.joints.dtype == torch.float32
    assert out.joints_h36m.dtype == torch.float32
    torch.testing.assert_close(out.joints, reference.joints, atol=2e-2, rtol=0)


def test_rejects_wrong_input_shapes(body_model):
    with pytest.raises(ValueError, match="rotmat"):
        body_model(rotmat=torch.zeros(1, 23, 3, 3), betas=torch.zeros(1, 10))
    with pytest.raises(ValueError, match="betas"):
        body_model(rotmat=_rest_rotmat(1), betas=torch.zeros(1, 11))


# ------------------------------------------------------------------------------ licensed SMPL files
def _fake_chumpy(monkeypatch) -> type:
    """A class that pickles as ``chumpy.ch.Ch`` with the array in ``x``, like the official SMPL files."""

    class Ch:
        def __init__(self, x: np.ndarray) -> None:
            self.x = x
            self.label = "fake"

    Ch.__module__, Ch.__qualname__, Ch.__name__ = "chumpy.ch", "Ch", "Ch"
    package, module = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
    module.Ch = Ch
    package.ch = module
    monkeypatch.setitem(sys.modules, "chumpy", package)
    monkeypatch.setitem(sys.modules, "chumpy.ch", module)
    return Ch


SMPL_VERTICES = 6890


def _as_smpl_topology(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The procedural arrays padded with unused vertices to SMPL's 6890 (so smplx's landmark ids exist)."""
    pad = SMPL_VERTICES - len(arrays["v_template"])
    out = dict(arrays)
    out["v_template"] = np.concatenate([arrays["v_template"], np.zeros((pad, 3), np.float32)])
    for key in ("shapedirs", "posedirs"):
        out[key] = np.concatenate([arrays[key], np.zeros((pad,) + arrays[key].shape[1:], np.float32)])
    out["weights"] = np.concatenate([arrays["weights"], np.eye(24, dtype=np.float32)[np.zeros(pad, int)]])
    for key in ("J_regressor", "J_regressor_h36m"):
        out[key] = np.concatenate([arrays[key], np.zeros((len(arrays[key]), pad), np.float32)], axis=1)
    return out


def _write_smpl_dir(directory: Path, arrays: dict[str, np.ndarray], monkeypatch, h36m: bool) -> None:
    ch = _fake_chumpy(monkeypatch)
    arrays = _as_smpl_topology(arrays)
    kintree = arrays["kintree_table"].astype(np.int64)
    kintree[0, 0] = 4294967295  # as SMPL stores the root's parent
    content = {
        "v_template": ch(arrays["v_template"].astype(np.float64)),
        "f": arrays["f"].astype(np.uint32),
        "shapedirs": ch(arrays["shapedirs"].astype(np.float64)),
        "posedirs": arrays["posedirs"].astype(np.float64),
        "J_regressor": scipy.sparse.csc_matrix(arrays["J_regressor"].astype(np.float64)),
        "weights": ch(arrays["weights"].astype(np.float64)),
        "kintree_table": kintree,
        "J": arrays["J"].astype(np.float64),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    (directory / "SMPL_NEUTRAL.pkl").write_bytes(pickle.dumps(content, protocol=2))
    if h36m:
        np.save(directory / "J_regressor_h36m.npy", arrays["J_regressor_h36m"].astype(np.float64))


def test_reads_chumpy_style_smpl_pickle(arrays, body_model, tmp_path, monkeypatch):
    _write_smpl_dir(tmp_path, arrays, monkeypatch, h36m=False)
    monkeypatch.delitem(sys.modules, "chumpy.ch")  # reading needs no chumpy
    monkeypatch.delitem(sys.modules, "chumpy")
    smpl = load_body_model(tmp_path)
    assert smpl.kind == "smpl" and smpl.identity.startswith("smpl:")
    assert "licensed SMPL" in smpl.description and "without" in smpl.description
    assert smpl.state_dict() == {}
    rotmat = _rest_rotmat(2)
    rotmat[1, JOINT["left_shoulder"]] = _rotation((0.0, 0.0, 1.0), -70.0)
    betas = torch.randn(2, 10, generator=torch.Generator().manual_seed(3))
    out = smpl(rotmat=rotmat, betas=betas)
    assert out.joints_h36m is None
    ref = body_model(rotmat=rotmat, betas=betas)  # the same arrays through the same smplx code
    assert smpl.num_vertices == SMPL_VERTICES
    torch.testing.assert_close(out.vertices[:, : body_model.num_vertices], ref.vertices, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.joints, ref.joints, atol=1e-5, rtol=0)


def test_reads_optional_h36m_regressor_and_env_var(arrays, tmp_path, monkeypatch):
    _write_smpl_dir(tmp_path, arrays, monkeypatch, h36m=True)
    monkeypatch.setenv("INT_SMPL_DIR", str(tmp_path))
    smpl = load_body_model()
    assert smpl.kind == "smpl" and "with the Human3.6M" in smpl.description
    out = smpl(rotmat=_rest_rotmat(1), betas=torch.zeros(1, 10))
    assert out.joints_h36m is not None and out.joints_h36m.shape == (1, 17, 3)


def test_rejects_a_non_smpl_topology(arrays, tmp_path, monkeypatch):
    _write_smpl_dir(tmp_path, arrays, monkeypatch, h36m=False)
    content = pickle.loads((tmp_path / "SMPL_NEUTRAL.pkl").read_bytes())
    content["v_template"] = content["v_template"].x[:100]
    (tmp_path / "SMPL_NEUTRAL.pkl").write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(ValueError, match="6890"):
        load_body_model(tmp_path)


def test_unpickler_allow_list_paths():
    unpickler = RestrictedUnpickler(io.BytesIO(b""))
    assert unpickler.find_class("scipy.sparse.csc", "csc_matrix") is scipy.sparse.csc_matrix
    assert unpickler.find_class("scipy.sparse._csr", "csr_matrix") is scipy.sparse.csr_matrix
    assert unpickler.find_class("numpy", "dtype") is np.dtype
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        unpickler.find_class(module, "_reconstruct")
        unpickler.find_class(module, "scalar")
    stand_in = unpickler.find_class("chumpy.reordering", "Select")
    assert stand_in is unpickler.find_class("chumpy.ch", "Ch")


def test_refuses_other_globals(tmp_path):
    marker = tmp_path / "executed"
    payload = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()
    with pytest.raises(RefusedGlobalError, match=r"os\.system"):
        restricted_load(payload)
    (tmp_path / "SMPL_NEUTRAL.pkl").write_bytes(payload)
    with pytest.raises(SmplFileError, match=r"is not the SMPL model file and was not loaded .*os\.system"):
        load_body_model(tmp_path)
    assert not marker.exists()
    with pytest.raises(RefusedGlobalError, match=r"builtins\.eval"):
        restricted_load(b"cbuiltins\neval\n(S'1'\ntR.")


def test_missing_smpl_file_is_explained(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError) as info:
        load_body_model(tmp_path)
    message = str(info.value)
    assert "SMPL_NEUTRAL.pkl" in message and "smpl.is.tue.mpg.de" in message
    assert "--smpl-dir" in message and "INT_SMPL_DIR" in message
    monkeypatch.setenv("INT_SMPL_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="SMPL_NEUTRAL.pkl"):  # no silent fallback to procedural
        load_body_model()


def test_gradients_reach_pose_and_shape(body_model):
    rotmat = _rest_rotmat(1).requires_grad_(True)
    betas = torch.zeros(1, 10, requires_grad=True)
    out = body_model(rotmat=rotmat, betas=betas)
    (out.joints.square().sum() + out.vertices.mean()).backward()
    assert rotmat.grad is not None and rotmat.grad.abs().sum() > 0
    assert betas.grad is not None and betas.grad.abs().sum() > 0
