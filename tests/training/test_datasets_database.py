import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from int_model.constants import H36M_JOINT_NAMES, SMPL_JOINT_NAMES
from int_model.geometry import axis_angle_to_rotmat
from training.datasets import DatabaseDataset, read_database
from training.datasets.database import ImagePathResolver
from training.datasets.joints import JOINT_LAYOUTS
from int_model.crops import denormalise_frame
from training.sample import validate_sample

IMAGE_SIZE = (100, 120)
SPIN49 = JOINT_LAYOUTS["spin49"]
VIDEOS = {"S1_Walking_cam0": 5, "S1_Eating_cam0": 4}


def _joints49(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """2D joints (n, 49, 3) inside a box around (60, 50), all labelled, and 3D joints (n, 49, 4)."""
    j2d = np.ones((n, 49, 3))
    j2d[..., :2] = rng.uniform([35, 20], [85, 80], size=(n, 49, 2))
    j3d = np.ones((n, 49, 4))
    j3d[..., :3] = rng.normal(size=(n, 49, 3)) * 0.3
    return j2d, j3d


def _write_images(root: Path, names: list[str], joints2d: np.ndarray, writer) -> None:
    for name, joints in zip(names, joints2d):
        writer(root / name, size=IMAGE_SIZE, points=joints[joints[:, 2] > 0.3, :2])


def write_video_db(root: Path, writer, *, name: str = "h36m", use_joblib: bool = False) -> dict:
    rng = np.random.default_rng(1)
    n = sum(VIDEOS.values())
    vid_name = np.concatenate([[v] * k for v, k in VIDEOS.items()])
    frame_id = np.concatenate([np.arange(k) * 5 for k in VIDEOS.values()])  # subsampled every 5th frame
    rel = [f"images/{v}/{f:06d}.jpg" for v, f in zip(vid_name, frame_id)]
    j2d, j3d = _joints49(rng, n)
    j2d[0, SPIN49.index("lhip"), 2] = 0.0  # ground-truth left hip missing: OpenPose's is used
    j3d[1, SPIN49.index("rknee"), 3] = 0.0
    db = {
        "vid_name": vid_name, "frame_id": frame_id,
        # The preprocessing machine's absolute paths: resolved under image_root by their tail.
        "img_name": np.array([f"/home/someone/data/h36m/{r}" for r in rel]),
        "joints2D": j2d, "joints3D": j3d,
        "pose": rng.normal(size=(n, 72)) * 0.2, "shape": rng.normal(size=(n, 10)),
        "bbox": np.tile([59.5, 49.5, 60.0, 70.0], (n, 1)), "features": np.zeros((n, 2048)),
    }
    path = root / "db" / f"{name}_train_db.pt"
    path.parent.mkdir(parents=True)
    if use_joblib:
        joblib = pytest.importorskip("joblib")
        joblib.dump(db, path)
    else:
        with path.open("wb") as handle:
            pickle.dump(db, handle, protocol=2)
    _write_images(root / "images_root", rel, j2d, writer)
    return db


def test_video_database_maps_joints_and_labels(tmp_path, marked_image_writer):
    db = write_video_db(tmp_path, marked_image_writer)
    table = read_database(tmp_path / "db" / "h36m_train_db.pt", "h36m")
    left_hip, right_knee = SMPL_JOINT_NAMES.index("left_hip"), SMPL_JOINT_NAMES.index("right_knee")
    np.testing.assert_allclose(table.joints2d[1, left_hip], db["joints2D"][1, SPIN49.index("lhip"), :2])
    np.testing.assert_allclose(table.joints2d[0, left_hip], db["joints2D"][0, SPIN49.index("OP LHip"), :2])
    assert table.joints2d_vis.sum(axis=1).tolist() == [12.0] * len(table)  # the 12 limb joints
    assert table.joints3d_vis[1, right_knee] == 0 and table.joints3d_vis[0, right_knee] == 1
    for slot, source in (("pelvis", "hip"), ("thorax", "neck"), ("head", "Head (H36M)"), ("left_wrist", "lwrist")):
        i = H36M_JOINT_NAMES.index(slot)
        np.testing.assert_allclose(table.joints3d_h36m[:, i], db["joints3D"][:, SPIN49.index(source), :3], rtol=1e-6)
    assert table.joints3d_h36m_vis[0].all()
    assert table.has_pose.all() and table.has_betas.all()
    np.testing.assert_allclose(table.pose, db["pose"].astype(np.float32))
    assert table.frame_index.tolist() == db["frame_id"].tolist()
    resolve = ImagePathResolver(tmp_path / "images_root")
    expected = tmp_path / "images_root" / "images" / "S1_Walking_cam0" / "000000.jpg"
    assert Path(resolve(table.image_paths[0])) == expected
    assert resolve.strip == 4  # home/someone/data/h36m: remembered for the next names
    assert Path(resolve(table.image_paths[5])).parent.name == "S1_Eating_cam0"


def test_video_clips_never_cross_a_video(tmp_path, marked_image_writer):
    write_video_db(tmp_path, marked_image_writer)
    dataset = DatabaseDataset("h36m", db_dir=tmp_path / "db", image_root=tmp_path / "images_root", clip_len=3,
                              stride=2, img_size=32)
    # 5 frames -> clips at 0 and 2; 4 frames -> a clip at 0.
    assert dataset.clips.rows.tolist() == [[0, 1, 2], [2, 3, 4], [5, 6, 7]]
    tail = DatabaseDataset("h36m", db_dir=tmp_path / "db", image_root=tmp_path / "images_root", clip_len=3,
                           stride=2, img_size=32, cover_tail=True)
    assert tail.clips.rows.tolist()[-1] == [6, 7, 8]
    long = DatabaseDataset("h36m", db_dir=tmp_path / "db", image_root=tmp_path / "images_root", clip_len=6,
                           img_size=32)
    assert long.clips.rows.tolist() == [[0, 1, 2, 3, 4, 4], [5, 6, 7, 8, 8, 8]]
    sample = long[1]
    validate_sample(sample)
    assert sample["valid"].tolist() == [1, 1, 1, 1, 0, 0] and sample["sequence"] == "S1_Eating_cam0"


def test_joblib_database_crops_where_the_joints_are(tmp_path, marked_image_writer, crop_brightness):
    write_video_db(tmp_path, marked_image_writer, use_joblib=True)
    dataset = DatabaseDataset("h36m", db_dir=tmp_path / "db", image_root=tmp_path / "images_root", img_size=64,
                              train=False)
    assert len(dataset) == 9
    # Picklable, so that DataLoader workers can be spawned with it.
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(dataset))[3]["frames"], dataset[3]["frames"])
    for index in range(len(dataset)):
        sample = dataset[index]
        validate_sample(sample)
        vis = sample["joints2d_vis"][0] > 0
        assert (np.abs(sample["joints2d"][0][vis]) < 1).all()
        assert (crop_brightness(denormalise_frame(sample["frames"][0]), sample["joints2d"][0][vis]) > 120).all()


def test_2d_only_video_dataset_has_no_3d_or_smpl_labels(tmp_path, marked_image_writer):
    db = write_video_db(tmp_path, marked_image_writer, name="pennaction")
    assert "pose" in db  # present in the file but not labels for this dataset
    table = read_database(tmp_path / "db" / "pennaction_train_db.pt", "pennaction")
    assert not table.has_pose.any() and not table.has_betas.any() and not table.pose.any()
    assert table.joints2d_vis.any()


def test_spin_npz_image_dataset(tmp_path, marked_image_writer, crop_brightness):
    rng = np.random.default_rng(2)
    n = 3
    j2d, j3d = _joints49(rng, n)
    names = [f"train2014/COCO_{i:04d}.jpg" for i in range(n)]
    pose = rng.normal(size=(n, 72)) * 0.2
    np.savez(
        tmp_path / "coco_2014_train_eft.npz", imgname=np.array(names), center=np.tile([59.5, 49.5], (n, 1)),
        scale=np.full(n, 70.0 / 200.0), part=j2d[:, 25:], openpose=j2d[:, :25], S=j3d[:, 25:], pose=pose,
        shape=rng.normal(size=(n, 10)), has_smpl=np.array([1, 0, 1]),
    )
    _write_images(tmp_path / "coco", names, j2d, marked_image_writer)
    dataset = DatabaseDataset("coco", path=tmp_path / "coco_2014_train_eft.npz", image_root=tmp_path / "coco",
                              img_size=64, train=False)
    assert len(dataset) == n
    np.testing.assert_allclose(dataset.table.bbox[0], [59.5, 49.5, 70.0, 70.0])
    assert dataset.table.has_pose.tolist() == [1, 0, 1] and not dataset.table.pose[1].any()
    sample = dataset[2]
    validate_sample(sample)
    assert sample["sequence"] == names[2]
    np.testing.assert_allclose(sample["pose"][0], pose[2].astype(np.float32))
    vis = sample["joints2d_vis"][0] > 0
    assert (crop_brightness(denormalise_frame(sample["frames"][0]), sample["joints2d"][0][vis]) > 120).all()
    with pytest.raises(ValueError, match="clip_len must be 1"):
        DatabaseDataset("coco", path=tmp_path / "coco_2014_train_eft.npz", image_root=tmp_path, clip_len=2)


def test_rotation_matrix_poses_become_axis_angle(tmp_path, marked_image_writer):
    rng = np.random.default_rng(3)
    j2d, _ = _joints49(rng, 2)
    aa = rng.normal(size=(2, 24, 3)) * 0.5
    db = {"img_name": np.array(["a.jpg", "b.jpg"]), "joints2D": j2d, "bbox": np.tile([60, 50, 60, 60], (2, 1)),
          "pose": Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(2, 24, 3, 3),
          "shape": np.zeros((2, 10))}
    with (tmp_path / "lspet_train_db.pt").open("wb") as handle:
        pickle.dump(db, handle)
    table = read_database(tmp_path / "lspet_train_db.pt", "lspet")
    got = axis_angle_to_rotmat(torch.from_numpy(table.pose.reshape(2, 24, 3)).double()).numpy()
    np.testing.assert_allclose(got, db["pose"], atol=1e-5)


def test_instavariety_images_are_crops_already(tmp_path, marked_image_writer, crop_brightness):
    rng = np.random.default_rng(4)
    n = 3
    joints = np.ones((n, 25, 3))
    joints[..., :2] = rng.uniform(10, 90, size=(n, 25, 2))
    names = [f"insta_variety_img/train/rec.tfrecord/0/{i}.jpg" for i in range(n)]
    db = {"vid_name": np.array(["rec.tfrecord-0"] * n), "img_name": np.array(names), "joints2D": joints}
    with (tmp_path / "insta_train_db.pt").open("wb") as handle:
        pickle.dump(db, handle)
    for name, j in zip(names, joints):
        marked_image_writer(tmp_path / name, size=(100, 100), points=j[:, :2])
    dataset = DatabaseDataset("insta", path=tmp_path / "insta_train_db.pt", image_root=tmp_path, clip_len=3,
                              img_size=100, train=False)
    assert len(dataset) == 1
    sample = dataset[0]
    assert sample["frame_index"].tolist() == [0, 1, 2]
    # The whole 100 px image is the crop: normalised coordinates are (x - 49.5) / 50.
    right_ankle = SMPL_JOINT_NAMES.index("right_ankle")
    np.testing.assert_allclose(sample["joints2d"][0, right_ankle], (joints[0, 24, :2] - 49.5) / 50.0, rtol=1e-5)
    vis = sample["joints2d_vis"][1] > 0
    assert vis.sum() == 12
    assert (crop_brightness(denormalise_frame(sample["frames"][1]), sample["joints2d"][1][vis]) > 120).all()


def test_missing_database_file_says_how_it_is_made(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"mpii3d_train_db\.pt not found.*lib/data_utils/\*_utils\.py"):
        DatabaseDataset("mpii3d", db_dir=tmp_path, image_root=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"coco\.npz not found.*SPIN's datasets/preprocess"):
        read_database(tmp_path / "coco.npz", "coco")
    with pytest.raises(ValueError, match="unknown database 'h36'"):
        DatabaseDataset("h36", db_dir=tmp_path, image_root=tmp_path)
