import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from int_model.geometry import axis_angle_to_rotmat
from training.augment import AugmentConfig
from training.datasets import ThreeDPW, read_3dpw
from training.datasets.threedpw import fill_missing_boxes
from int_model.crops import denormalise_frame
from training.sample import collate_samples, validate_sample

SEQ = "courtyard_toy_00"
N = 4
IMAGE_SIZE = (120, 160)
K = np.array([[150.0, 0.0, 80.0], [0.0, 150.0, 60.0], [0.0, 0.0, 1.0]])
# Actor 1 has no aligned camera pose in its last two frames: only its 2D detections are labels there.
CAMPOSE_VALID = (np.ones(N, bool), np.array([True, True, False, False]))


def _camera(i: int) -> np.ndarray:
    extrinsics = np.eye(4)
    extrinsics[:3, :3] = Rotation.from_euler("y", 20 + 5 * i, degrees=True).as_matrix()
    extrinsics[:3, 3] = [0.1 * i, 0.0, 5.0]
    return extrinsics


def _world_joints(actor: int, rng: np.random.Generator) -> np.ndarray:
    """(N, 24, 3) person-sized joint clouds, the two actors side by side."""
    base = rng.uniform([-0.3, -0.8, -0.2], [0.3, 0.8, 0.2], size=(24, 3)) + [1.0 * actor - 0.5, 0.0, 0.0]
    return np.stack([base + 0.02 * i for i in range(N)])


def _project(world: np.ndarray, i: int) -> np.ndarray:
    cam = _camera(i)
    points = world @ cam[:3, :3].T + cam[:3, 3]
    uvw = points @ K.T
    return uvw[:, :2] / uvw[:, 2:]


def write_3dpw(root: Path, writer, *, split: str = "train") -> dict:
    rng = np.random.default_rng(0)
    joints = [_world_joints(a, rng) for a in range(2)]
    poses2d = []
    for actor in range(2):
        det = np.zeros((N, 3, 18))
        for i in range(N):
            pixels = _project(joints[actor][i], i)
            det[i, :2, 8] = pixels[2]  # COCO-18 right hip <- the SMPL right hip
            det[i, :2, 11] = pixels[1]  # left hip
            det[i, 2, [8, 11]] = 0.9
            det[i, 2, 0] = 0.1  # a nose below the confidence threshold
        poses2d.append(det)
    data = {
        "sequence": SEQ,
        "poses": [rng.normal(size=(N, 72)) * 0.3 for _ in range(2)],
        "betas": [rng.normal(size=10), rng.normal(size=300)],
        "trans": [np.zeros((N, 3)) for _ in range(2)],
        "jointPositions": [j.reshape(N, 72) for j in joints],
        "poses2d": poses2d,
        "cam_poses": np.stack([_camera(i) for i in range(N)]),
        "cam_intrinsics": K,
        "campose_valid": list(CAMPOSE_VALID),
        "img_frame_ids": np.arange(N),
        "genders": ["m", "f"],
    }
    folder = root / "sequenceFiles" / split
    folder.mkdir(parents=True)
    with (folder / f"{SEQ}.pkl").open("wb") as handle:
        pickle.dump(data, handle, protocol=2)
    for i in range(N):
        points = np.concatenate([_project(joints[a][i], i) for a in range(2)])
        writer(root / "imageFiles" / SEQ / f"image_{i:05d}.jpg", size=IMAGE_SIZE, points=points)
    return data


def test_missing_boxes_are_interpolated_in_time():
    nan = np.full(4, np.nan)
    boxes = np.stack([nan, [0.0, 0, 10, 10], nan, nan, [6.0, 0, 10, 10], nan])
    filled = fill_missing_boxes(boxes)
    np.testing.assert_allclose(filled[:, 0], [0, 0, 2, 4, 6, 6])
    assert np.isnan(fill_missing_boxes(np.stack([nan, nan]))).all()


def test_labels_are_in_the_camera_frame(tmp_path, marked_image_writer):
    data = write_3dpw(tmp_path, marked_image_writer)
    table = read_3dpw(tmp_path, "train")
    assert len(table) == 2 * N
    assert list(table.sequence[:N]) == [f"{SEQ}_0"] * N and table.sequence[N] == f"{SEQ}_1"
    for i in range(N):
        cam = data["cam_poses"][i]
        rot = cam[:3, :3] @ axis_angle_to_rotmat(torch.from_numpy(data["poses"][0][i, :3])).numpy()
        got = axis_angle_to_rotmat(torch.from_numpy(table.pose[i, :3]).double()).numpy()
        np.testing.assert_allclose(got, rot, atol=1e-5)
        world = data["jointPositions"][0][i].reshape(24, 3)
        np.testing.assert_allclose(table.joints3d[i], world @ cam[:3, :3].T + cam[:3, 3], atol=1e-5)
        np.testing.assert_allclose(table.joints2d[i], _project(world, i), atol=1e-3)
    np.testing.assert_allclose(table.pose[:N, 3:], data["poses"][0][:, 3:].astype(np.float32))
    np.testing.assert_allclose(table.betas[N], data["betas"][1][:10].astype(np.float32))


def test_frames_without_camera_pose_keep_only_their_2d_detections(tmp_path, marked_image_writer):
    write_3dpw(tmp_path, marked_image_writer)
    table = read_3dpw(tmp_path, "train")
    unaligned = slice(N + 2, 2 * N)
    for key in ("has_pose", "has_betas"):
        assert getattr(table, key)[N:N + 2].all() and not getattr(table, key)[unaligned].any()
    assert not table.joints3d_vis[unaligned].any() and not table.pose[unaligned].any()
    # Only the two confident detections (the hips) are 2D labels there.
    assert table.joints2d_vis[unaligned].sum(axis=1).tolist() == [2.0, 2.0]
    assert table.joints2d_vis[unaligned][:, [1, 2]].all()
    # Two detections make no box: those frames take the actor's nearest box (frame 1's).
    assert table.valid.all() and np.isfinite(table.bbox).all()
    np.testing.assert_array_equal(table.bbox[unaligned], np.tile(table.bbox[N + 1], (2, 1)))


def test_samples_crop_the_person_where_the_2d_joints_say(tmp_path, marked_image_writer, crop_brightness):
    write_3dpw(tmp_path, marked_image_writer)
    dataset = ThreeDPW(tmp_path, split="train", img_size=96, train=False)
    assert len(dataset) == 2 * N
    assert dataset.augment == AugmentConfig.none()
    for index in (0, 5):
        sample = dataset[index]
        validate_sample(sample)
        frame = denormalise_frame(sample["frames"][0])
        visible = sample["joints2d_vis"][0] > 0
        inside = visible & (np.abs(sample["joints2d"][0]) < 0.97).all(axis=1)
        assert inside.sum() >= 2
        assert (crop_brightness(frame, sample["joints2d"][0][inside]) > 120).all()
        assert not sample["joints2d"][0][~visible].any()


def test_clips_stay_inside_one_actor_and_augmentation_is_deterministic(tmp_path, marked_image_writer):
    write_3dpw(tmp_path, marked_image_writer)
    dataset = ThreeDPW(tmp_path, split="train", clip_len=3, stride=1, img_size=32, seed=5)
    assert len(dataset) == 2 * (N - 2)
    for index in range(len(dataset)):
        rows = dataset.clips.rows[index]
        assert len(set(dataset.table.sequence[rows])) == 1
    first, again = dataset[1], dataset[1]
    for key in ("frames", "joints2d", "pose"):
        np.testing.assert_array_equal(first[key], again[key])
    batch = collate_samples([dataset[i] for i in range(len(dataset))])
    validate_sample(batch, batched=True)
    assert batch["frames"].shape == (4, 3, 3, 32, 32)
    params = [dataset.augmentation(i) for i in range(len(dataset))]
    dataset.set_epoch(1)
    assert params != [dataset.augmentation(i) for i in range(len(dataset))]


def test_missing_files_say_where_3dpw_comes_from(tmp_path, marked_image_writer):
    with pytest.raises(FileNotFoundError, match=r"sequenceFiles.*virtualhumans.mpi-inf.mpg.de/3DPW.*imageFiles/"):
        read_3dpw(tmp_path, "train")
    write_3dpw(tmp_path, marked_image_writer, split="test")
    (tmp_path / "imageFiles" / SEQ / "image_00002.jpg").unlink()
    dataset = ThreeDPW(tmp_path, split="test", img_size=32)
    with pytest.raises(FileNotFoundError, match=r"image_00002\.jpg not found\. 3DPW: download"):
        dataset[2]
