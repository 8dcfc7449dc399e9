"""BVH export: standard syntax (parsed back by a small reader here), joint and frame counts, and forward
kinematics of the parsed channels reproducing the predicted joints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from int_model.constants import SMPL_JOINT_NAMES, SMPL_PARENTS
from int_model.geometry import rotmat_to_axis_angle
from pipeline.results import ROW_FIELDS, PipelineResults
from viz.bvh import CAMERA_TO_Y_UP, BvhSettings, rest_joints_for_betas, write_bvh, write_results_bvh

LEAVES = [j for j in range(24) if j not in SMPL_PARENTS]


# ----------------------------------------------------------------------------------------------
# A small BVH reader (the standard grammar: HIERARCHY / ROOT / JOINT / End Site / MOTION)
# ----------------------------------------------------------------------------------------------


def parse_bvh(text: str) -> dict:
    tokens = text.split()
    pos = 0

    def take(expected: str | None = None) -> str:
        nonlocal pos
        token = tokens[pos]
        pos += 1
        if expected is not None and token != expected:
            raise AssertionError(f"expected {expected!r}, got {token!r} at token {pos}")
        return token

    joints: list[dict] = []

    def node(parent: int, keyword: str) -> None:
        name = take()
        take("{")
        take("OFFSET")
        offset = np.array([float(take()) for _ in range(3)])
        take("CHANNELS")
        channels = [take() for _ in range(int(take()))]
        index = len(joints)
        joints.append(dict(name=name, parent=parent, offset=offset, channels=channels, end=None, keyword=keyword))
        while True:
            token = take()
            if token == "JOINT":
                node(index, "JOINT")
            elif token == "End":
                take("Site")
                take("{")
                take("OFFSET")
                joints[index]["end"] = np.array([float(take()) for _ in range(3)])
                take("}")
            elif token == "}":
                return
            else:
                raise AssertionError(f"unexpected {token!r}")

    take("HIERARCHY")
    take("ROOT")
    node(-1, "ROOT")
    take("MOTION")
    take("Frames:")
    frames = int(take())
    take("Frame")
    take("Time:")
    frame_time = float(take())
    values = np.array([float(t) for t in tokens[pos:]])
    width = sum(len(j["channels"]) for j in joints)
    assert values.size == frames * width, (values.size, frames, width)
    return dict(joints=joints, frames=frames, frame_time=frame_time, motion=values.reshape(frames, width))


def forward_kinematics(bvh: dict) -> np.ndarray:
    """(frames, J, 3) joint positions from the parsed channels (BVH: channels applied in file order)."""
    joints, motion = bvh["joints"], bvh["motion"]
    out = np.zeros((bvh["frames"], len(joints), 3))
    for k in range(bvh["frames"]):
        column = 0
        globals_: list[tuple[np.ndarray, np.ndarray]] = []
        for j, joint in enumerate(joints):
            position = joint["offset"].copy()
            rotation = np.eye(3)
            for channel in joint["channels"]:
                value = motion[k, column]
                column += 1
                if channel.endswith("position"):
                    position += np.eye(3)["XYZ".index(channel[0])] * value
                else:
                    rotation = rotation @ Rotation.from_euler(channel[0].lower(), value, degrees=True).as_matrix()
            if joint["parent"] < 0:
                g_rot, g_pos = rotation, position
            else:
                p_rot, p_pos = globals_[joint["parent"]]
                g_rot, g_pos = p_rot @ rotation, p_pos + p_rot @ joint["offset"]
            globals_.append((g_rot, g_pos))
            out[k, j] = g_pos
    return out


# ----------------------------------------------------------------------------------------------


def posed(body_model, frames: int, *, seed: int = 0, betas: np.ndarray | None = None):
    """Random smooth poses: rotmats (K, 24, 3, 3), joints (K, 24, 3) camera frame, betas (10,)."""
    rng = np.random.default_rng(seed)
    base, drift = rng.normal(0, 0.4, (24, 3)), rng.normal(0, 0.05, (24, 3))
    rotvec = base[None] + drift[None] * np.arange(frames)[:, None, None]
    rotvec[:, 0] = [np.pi, 0.0, 0.0]  # upright in the camera frame
    rotvec[:, 0] = (Rotation.from_rotvec(rotvec[:, 0]) * Rotation.from_rotvec(
        np.outer(np.linspace(0, 2.5, frames), [0, 1, 0]))).as_rotvec()
    rotmat = Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(frames, 24, 3, 3)
    betas = rng.normal(0, 1, 10).astype(np.float32) if betas is None else betas
    with torch.no_grad():
        out = body_model(rotmat=torch.as_tensor(rotmat, dtype=torch.float32),
                         betas=torch.as_tensor(np.tile(betas, (frames, 1))))
    return rotmat, out.joints.double().numpy(), betas


@pytest.mark.parametrize("order", ["ZYX", "XYZ"])
def test_bvh_parses_and_forward_kinematics_reproduces_the_joints(body_model, tmp_path, order):
    frames = 30
    rotmat, joints, betas = posed(body_model, frames)
    translation = np.array([0.3, -0.2, 12.0])
    rest = rest_joints_for_betas(body_model, betas)
    path = write_bvh(tmp_path / "a.bvh", rest_joints=rest, rotmats=rotmat, root_positions=joints[:, 0] + translation,
                     fps=25.0, settings=BvhSettings(order=order))
    text = path.read_text()
    assert text.startswith("HIERARCHY\nROOT pelvis\n") and "\nMOTION\nFrames: 30\n" in text
    bvh = parse_bvh(text)
    assert bvh["frames"] == frames and bvh["frame_time"] == pytest.approx(1 / 25.0)
    names = [j["name"] for j in bvh["joints"]]
    assert sorted(names) == sorted(SMPL_JOINT_NAMES) and len(names) == 24
    assert {j["name"] for j in bvh["joints"] if j["end"] is not None} == {SMPL_JOINT_NAMES[j] for j in LEAVES}
    assert bvh["joints"][0]["channels"][:3] == ["Xposition", "Yposition", "Zposition"]
    assert all(len(j["channels"]) == 3 for j in bvh["joints"][1:])
    assert [c[0] for c in bvh["joints"][1]["channels"]] == list(order)
    # Parents in the file are the SMPL parents.
    index = {name: i for i, name in enumerate(names)}
    for joint in bvh["joints"][1:]:
        smpl = SMPL_JOINT_NAMES.index(joint["name"])
        assert names[joint["parent"]] == SMPL_JOINT_NAMES[SMPL_PARENTS[smpl]]
    positions = forward_kinematics(bvh)[:, [index[n] for n in SMPL_JOINT_NAMES]]
    expected = (joints + translation) @ CAMERA_TO_Y_UP.T
    assert np.abs(positions - expected).max() < 1e-4
    # Upright: the head is above the pelvis in the y-up file.
    assert np.all(positions[:, 15, 1] > positions[:, 0, 1])


@pytest.mark.parametrize("axis, turn", [((0, 0, 1), 2 * np.pi), ((0, 1, 0), 0.95 * np.pi)])
def test_euler_curves_do_not_jump(tmp_path, axis, turn):
    """A root turning steadily gives steady channels: no 360-degree wraps (a full turn about the first axis) and no
    switch between the two Euler branches (past 90 degrees about the middle axis), where a plain decomposition
    jumps."""
    frames = 60
    spin = Rotation.from_rotvec(np.outer(np.linspace(0, turn, frames), axis))
    rotmat = np.tile(np.eye(3), (frames, 24, 1, 1))
    rotmat[:, 0] = CAMERA_TO_Y_UP.T @ spin.as_matrix()  # the file's root rotation is `spin` (y-up frame)
    path = write_bvh(tmp_path / "spin.bvh", rest_joints=np.random.default_rng(0).normal(size=(24, 3)),
                     rotmats=rotmat, root_positions=np.zeros((frames, 3)), fps=30.0)
    root = parse_bvh(path.read_text())["motion"][:, 3:6]
    step = np.degrees(turn) / (frames - 1)
    assert np.abs(np.diff(root, axis=0)).max() < 1.5 * step
    plain = spin.as_euler("ZYX", degrees=True)
    assert np.abs(np.diff(plain, axis=0)).max() > 170.0  # what the test guards against
    assert np.allclose(Rotation.from_euler("ZYX", root, degrees=True).as_matrix(), spin.as_matrix(), atol=1e-5)


def test_one_file_per_track_from_results(body_model, tmp_path):
    rotmat, joints, betas = posed(body_model, 12, seed=2)
    n = 12
    rows = {name: np.zeros((2 * n, *shape), dtype) for name, (dtype, shape) in ROW_FIELDS.items()}
    rows["track_id"] = np.repeat([4, 9], n)
    rows["frame"] = np.concatenate([np.arange(n), np.arange(n) + 5])
    rows["pose"] = np.tile(rotmat_to_axis_angle(torch.as_tensor(rotmat)).reshape(n, 72).numpy(), (2, 1))
    rows["betas"] = np.tile(betas, (2 * n, 1))
    rows["joints3d"] = np.tile(joints, (2, 1, 1))
    rows["cam_t"] = np.concatenate([np.tile([0.0, 0.0, 50.0], (n, 1)), np.tile([1.0, 0.0, 60.0], (n, 1))])
    results = PipelineResults.from_rows(rows, fps=30.0, image_size=(64, 64), num_frames=17, timestamps=np.zeros(17),
                                        focal_length=1000.0, body_model="b", checkpoint="c", source="s", status="ok",
                                        message="m")
    paths = write_results_bvh(results, body_model=body_model, out_dir=tmp_path / "bvh")
    assert [p.name for p in paths] == ["track_004.bvh", "track_009.bvh"]
    bvh = parse_bvh(paths[1].read_text())
    assert bvh["frames"] == n
    names = [j["name"] for j in bvh["joints"]]
    positions = forward_kinematics(bvh)[:, [names.index(j) for j in SMPL_JOINT_NAMES]]
    expected = (joints + np.array([1.0, 0.0, 60.0])) @ CAMERA_TO_Y_UP.T
    assert np.abs(positions - expected).max() < 1e-3


def test_bad_inputs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="rest_joints"):
        write_bvh(tmp_path / "x.bvh", rest_joints=np.zeros((5, 3)), rotmats=np.zeros((1, 24, 3, 3)),
                  root_positions=np.zeros((1, 3)), fps=30)
    with pytest.raises(ValueError, match="order"):
        BvhSettings(order="YXZ")
