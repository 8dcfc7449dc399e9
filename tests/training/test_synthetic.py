"""Synthetic data: motions, scenes and labels, deterministic shards, the dataset reader."""

from __future__ import annotations

import dataclasses
import json
import math

import cv2
import numpy as np
import pytest
import torch

from int_model.constants import SMPL_JOINT_NAMES
from int_model.geometry import axis_angle_to_rotmat
from int_model.crops import INFERENCE_BBOX_SCALE
from training.augment import flip_pose
from training.sample import collate_samples, validate_sample
from training.synthetic import backgrounds as bg
from cli.synthetic import main
from training.synthetic.camera import TRUNK_JOINTS, Camera, focal_for_fov
from training.synthetic.clothing import sample_clothing
from training.synthetic.config import SyntheticConfig
from training.synthetic.dataset import SyntheticDataset
from training.synthetic.generate import decode_jpeg, generate_clip, generate_dataset, read_manifest
from int_model.joint_ranges import HIGH, JOINT_RANGES, LEFT_RIGHT, LOW, angles_to_axis_angle, angles_to_rotmat
from training.synthetic.motions import PERIODIC_MOTIONS, periodic_motion, random_motion
from training.synthetic.occluders import Occluder
from training.synthetic.scene import PersonSpec, render_clip

J = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}
SIZE, FRAMES, CLIPS, SEED = 96, 6, 3, 7
CONFIG = dataclasses.replace(SyntheticConfig(), image_size=SIZE)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory, renderer):
    """A small dataset made by the command: 3 clips of 6 frames, 2 clips per shard (so 2 shards)."""
    out = tmp_path_factory.mktemp("synthetic") / "data"
    assert main(["--out", str(out), "--clips", str(CLIPS), "--frames", str(FRAMES), "--seed", str(SEED),
                 "--size", str(SIZE), "--clips-per-shard", "2", "--quiet"]) == 0
    return out


def _shard(root, index):
    with np.load(root / f"shard_{index:05d}.npz") as data:
        return {key: data[key] for key in data.files}


def _rotation_gap(pose_a: np.ndarray, pose_b: np.ndarray) -> np.ndarray:
    """Largest rotation-matrix difference per frame between two (T, 72) poses."""
    ra = axis_angle_to_rotmat(torch.from_numpy(pose_a.reshape(-1, 24, 3)))
    rb = axis_angle_to_rotmat(torch.from_numpy(pose_b.reshape(-1, 24, 3)))
    return (ra - rb).abs().flatten(1).max(dim=1).values.numpy()


# ---------------------------------------------------------------------------------------------- motions
@pytest.mark.parametrize("name", PERIODIC_MOTIONS)
def test_periodic_motions_repeat_with_their_stored_period(name):
    for seed in range(3):
        motion = periodic_motion(name, rng=np.random.default_rng(seed), travel=1.0)
        times = np.linspace(0.0, 3.0, 50)
        assert _rotation_gap(motion.pose(times), motion.pose(times + motion.period_s)).max() < 1e-6
        # ... and not with half the period: the period is the fundamental one, and the motion moves.
        assert _rotation_gap(motion.pose(times), motion.pose(times + motion.period_s / 2)).max() > 0.05
        assert motion.period_frames(30.0) == pytest.approx(motion.period_s * 30.0)
        assert 0.6 <= motion.period_s <= 2.0


def test_non_periodic_motion_does_not_repeat_at_any_period():
    motion = random_motion(rng=np.random.default_rng(3), duration_s=6.0)
    times = np.linspace(0.0, 3.0, 60)
    for period in np.arange(0.3, 3.0, 0.05):
        assert np.mean(_rotation_gap(motion.pose(times), motion.pose(times + period))) > 0.05
    assert math.isnan(motion.period_frames(30.0))


def test_motions_stay_inside_the_joint_ranges_and_bend_knees_and_elbows_one_way():
    times = np.linspace(0.0, 4.0, 121)
    motions = [periodic_motion(name, rng=np.random.default_rng(s)) for name in PERIODIC_MOTIONS for s in range(4)]
    motions += [random_motion(rng=np.random.default_rng(s), duration_s=4.0) for s in range(6)]
    for motion in motions:
        angles = motion.angles(times)
        assert (angles >= LOW - 1e-9).all() and (angles <= HIGH + 1e-9).all(), motion.name
        rot = angles_to_rotmat(angles)
        for side in ("left", "right"):
            shin = rot[:, J[f"{side}_knee"]] @ np.array([0.0, -1.0, 0.0])
            assert (shin[:, 2] <= 0.05).all(), f"{motion.name}: {side} knee bends forward"
            forearm = rot[:, J[f"{side}_elbow"]] @ np.array([1.0 if side == "left" else -1.0, 0.0, 0.0])
            assert (forearm[:, 2] >= -0.05).all(), f"{motion.name}: {side} elbow bends backward"
        speed = np.abs(np.diff(angles, axis=0)).max() / (times[1] - times[0])
        assert speed < 1000.0, f"{motion.name} turns a joint at {speed} degrees/s (sprinters' knees: ~1000)"


def test_right_joints_mirror_the_left_ones():
    rng = np.random.default_rng(0)
    angles = LOW + rng.uniform(size=LOW.shape) * (HIGH - LOW)
    for left, right in LEFT_RIGHT:
        angles[right] = angles[left]
    centre = [j for j in range(24) if j not in {i for pair in LEFT_RIGHT for i in pair}]
    angles[centre] = 0.0
    for j in centre:  # forward bends (about x) are their own mirror image
        angles[j, JOINT_RANGES[j].axes.index("x")] = 10.0
    pose = angles_to_axis_angle(angles)
    np.testing.assert_allclose(flip_pose(pose), pose, atol=1e-9)


# ---------------------------------------------------------------------------------------------- scenes
def _facing_camera(renderer, body_model, *, occluders=(), people=None, frames=4):
    rng = np.random.default_rng(1)
    if people is None:
        people = [PersonSpec(motion=periodic_motion("walk", rng=rng), betas=np.zeros(10, np.float32),
                             clothing=sample_clothing(rng, CONFIG))]
    camera = Camera.look_at(target=np.array([0.0, 0.85, 0.0]), distance=4.0, elevation_deg=5.0, roll_deg=0.0,
                            focal_length=focal_for_fov(40.0, SIZE), width=SIZE, height=SIZE)
    background = np.full((SIZE, SIZE, 3), 30, np.uint8)
    return render_clip(people=people, camera=camera, background=background, num_frames=frames, fps=30.0,
                       body_model=body_model, renderer=renderer, occluders=occluders), background


def test_a_person_facing_the_camera_is_upright_with_the_left_side_on_the_image_right(renderer, body_model):
    clip, background = _facing_camera(renderer, body_model)
    person = clip.people[0]
    assert (person.joints2d[:, J["left_shoulder"], 0] > person.joints2d[:, J["right_shoulder"], 0]).all()
    assert (person.joints2d[:, J["head"], 1] < person.joints2d[:, J["left_ankle"], 1]).all()
    root = axis_angle_to_rotmat(torch.from_numpy(person.pose[:, :3].astype(np.float64))).numpy()
    assert ((root @ np.array([0.0, 1.0, 0.0]))[:, 1] < -0.9).all()  # body up = image up (camera y down)
    assert ((root @ np.array([0.0, 0.0, 1.0]))[:, 2] < -0.9).all()  # facing the camera
    # Frames are not blank, and the person differs from the background.
    frames = clip.frames.astype(np.float64)
    assert frames.std() > 10.0
    changed = np.abs(frames - background).max(axis=-1) > 20
    cx, cy, w, h = person.bbox[0]
    assert changed[0].sum() > 0.3 * w * h
    assert not changed[0][:, : int(cx - w / 2) - 2].any()  # nothing drawn left of the box


def test_an_occluder_hides_the_joints_under_it_only_in_its_frames(renderer, body_model):
    cover = Occluder(shape="rect", centre=(SIZE / 2, SIZE / 2), size=(3 * SIZE, 3 * SIZE), velocity=(0.0, 0.0),
                     angle_deg=0.0, start=1, stop=3)
    clip, _ = _facing_camera(renderer, body_model, occluders=[cover])
    person = clip.people[0]
    assert person.occluded[1:3].all() and not person.occluded[[0, 3]].any()
    assert person.in_image.all()
    assert (person.visible_fraction[1:3] == 0).all() and (person.visible_fraction[[0, 3]] > 0.9).all()
    assert np.abs(clip.frames[1].astype(int) - clip.frames[1, 0, 0].astype(int)).max() <= 1  # all occluder


def test_a_person_behind_another_has_the_covered_joints_occluded(renderer, body_model):
    rng = np.random.default_rng(2)
    stand = periodic_motion("squat", rng=rng, period_s=100.0)  # nearly still
    near = PersonSpec(motion=stand, betas=np.zeros(10, np.float32), position=(0.0, 1.0),
                      clothing=sample_clothing(rng, CONFIG))
    far = PersonSpec(motion=stand, betas=np.zeros(10, np.float32), position=(0.0, -1.5),
                     clothing=sample_clothing(rng, CONFIG))
    clip, _ = _facing_camera(renderer, body_model, people=[near, far], frames=1)
    near_labels, far_labels = clip.people
    assert not near_labels.occluded.any()
    torso = [J[name] for name in ("spine1", "spine2", "spine3", "pelvis")]
    assert far_labels.occluded[0, torso].all()
    assert far_labels.visible_fraction[0] < near_labels.visible_fraction[0]


@pytest.mark.parametrize("kind", bg.BACKGROUND_KINDS)
def test_backgrounds_are_textured_and_deterministic(kind):
    camera = Camera.look_at(target=np.array([0.0, 0.9, 0.0]), distance=4.0, elevation_deg=20.0, roll_deg=5.0,
                            focal_length=focal_for_fov(45.0, 64), width=64, height=48)
    args = dict(intrinsics=camera.intrinsics, rotation=camera.rotation, camera_height=float(camera.centre[1]))
    a = bg.procedural_background(kind, np.random.default_rng(5), 48, 64, **args)
    b = bg.procedural_background(kind, np.random.default_rng(5), 48, 64, **args)
    assert a.shape == (48, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert a.astype(float).std() > 1.0


# ---------------------------------------------------------------------------------------------- generation
def test_a_clip_regenerated_alone_equals_the_clip_in_the_dataset(dataset_dir, renderer, body_model):
    shard = _shard(dataset_dir, 1)  # clip 2 is the only clip of the second shard
    assert shard["clip_index"].tolist() == [2]
    frames = np.load(dataset_dir / "shard_00001.frames.npy")
    clip = generate_clip(index=2, seed=SEED, num_frames=FRAMES, num_people=1, config=CONFIG, body_model=body_model,
                         renderer=renderer)
    again = generate_clip(index=2, seed=SEED, num_frames=FRAMES, num_people=1, config=CONFIG, body_model=body_model,
                          renderer=renderer)
    np.testing.assert_array_equal(clip.frames, again.frames)
    person = clip.people[0]
    for key in ("pose", "betas", "transl", "joints3d", "joints3d_h36m", "joints2d", "bbox", "crop_cam", "occluded"):
        np.testing.assert_array_equal(shard[key][0], getattr(person, key), err_msg=key)
    offsets = shard["frame_offsets"]
    for t in range(FRAMES):
        stored = decode_jpeg(frames[offsets[t]:offsets[t + 1]])
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(clip.frames[t], cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, CONFIG.jpeg_quality])
        np.testing.assert_array_equal(stored, decode_jpeg(data.tobytes()))
        assert np.abs(stored.astype(int) - clip.frames[t]).mean() < 4.0  # JPEG is close to the render
    other = generate_clip(index=1, seed=SEED, num_frames=FRAMES, num_people=1, config=CONFIG, body_model=body_model,
                          renderer=renderer)
    assert not np.array_equal(other.frames, clip.frames)


def test_the_same_request_gives_identical_shards(dataset_dir, tmp_path):
    generate_dataset(out_dir=tmp_path, num_clips=2, num_frames=FRAMES, seed=SEED, config=CONFIG, clips_per_shard=2,
                     progress=False)
    a, b = _shard(dataset_dir, 0), _shard(tmp_path, 0)
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert (np.load(dataset_dir / "shard_00000.frames.npy") == np.load(tmp_path / "shard_00000.frames.npy")).all()


def test_labels_are_consistent(dataset_dir, body_model):
    for index in (0, 1):
        lab = _shard(dataset_dir, index)
        intrinsics = lab["intrinsics"][lab["track_clip"]]
        n, t = lab["pose"].shape[:2]
        # 3D joints projected with the intrinsics are the 2D pixel joints.
        proj = np.einsum("nij,ntkj->ntki", intrinsics.astype(np.float64), lab["joints3d"].astype(np.float64))
        np.testing.assert_allclose(proj[..., :2] / proj[..., 2:], lab["joints2d"], atol=1e-3)
        # SMPL(pose, betas) + transl gives the 3D joints (SMPL-24 and H36M-17): theta is in the camera frame.
        rot = axis_angle_to_rotmat(torch.from_numpy(lab["pose"].reshape(-1, 24, 3).astype(np.float64))).float()
        with torch.no_grad():
            out = body_model(rot, torch.from_numpy(np.repeat(lab["betas"], t, axis=0)))
        transl = lab["transl"].reshape(n * t, 1, 3)
        np.testing.assert_allclose(out.joints.numpy() + transl, lab["joints3d"].reshape(n * t, 24, 3), atol=1e-4)
        np.testing.assert_allclose(out.joints_h36m.numpy() + transl, lab["joints3d_h36m"].reshape(n * t, 17, 3),
                                   atol=1e-4)
        # The box (of the projected vertices) contains the joints.
        box = lab["bbox"]
        low, high = box[..., None, :2] - box[..., None, 2:] / 2, box[..., None, :2] + box[..., None, 2:] / 2
        assert ((lab["joints2d"] >= low - 0.5) & (lab["joints2d"] <= high + 0.5)).all()
        # The crop camera projects the SMPL joints (no translation) onto the crop joints within a few pixels.
        smpl_joints = lab["joints3d"] - lab["transl"][:, :, None]
        cam = lab["crop_cam"]
        weak = cam[..., None, :1] * (smpl_joints[..., :2] + cam[..., None, 1:])
        side = INFERENCE_BBOX_SCALE * box[..., 2:].max(axis=-1)
        crop = (lab["joints2d"] - box[..., None, :2]) / (side[..., None, None] / 2)
        error_px = np.linalg.norm(weak - crop, axis=-1) * 224 / 2  # in pixels of a 224 crop
        # Weak perspective is exact only at one depth: hands held toward the camera and close-ups deviate more.
        assert np.median(error_px) < 3.0
        usual = lab["joints3d"][..., 2].mean(axis=-1) > 3.0
        assert error_px[usual][:, TRUNK_JOINTS].max(initial=0.0) < 6.0
        # Visibility: in_image is the image bounds.
        inside = ((lab["joints2d"] > -0.5) & (lab["joints2d"] < SIZE - 0.5)).all(axis=-1)
        np.testing.assert_array_equal(inside, lab["in_image"])
        assert (lab["period"][lab["motion"] != "random"] > 0).all()
        assert np.isnan(lab["period"][lab["motion"] == "random"]).all()


def test_manifest_counts_and_resume_keeps_complete_shards(dataset_dir, tmp_path):
    manifest = read_manifest(dataset_dir)
    assert manifest["counts"]["clips"] == CLIPS and manifest["counts"]["frames"] == CLIPS * FRAMES
    assert manifest["image_size"] == SIZE and manifest["seed"] == SEED
    assert manifest["request"]["config"] == json.loads(json.dumps(CONFIG.to_dict()))
    assert SyntheticConfig.from_dict(manifest["request"]["config"]) == CONFIG
    assert [s["clips"] for s in manifest["shards"]] == [[0, 2], [2, 3]]

    generate_dataset(out_dir=tmp_path, num_clips=2, num_frames=2, seed=1, config=CONFIG, clips_per_shard=1,
                     progress=False)
    first = (tmp_path / "shard_00000.npz").stat().st_mtime_ns
    again = generate_dataset(out_dir=tmp_path, num_clips=3, num_frames=2, seed=1, config=CONFIG, clips_per_shard=1,
                             progress=False)
    assert (tmp_path / "shard_00000.npz").stat().st_mtime_ns == first  # kept, not rendered again
    assert again["run"]["clips_rendered"] == 1 and again["counts"]["clips"] == 3
    assert not list(tmp_path.glob("*.tmp"))


def test_user_backgrounds_are_used(tmp_path, renderer):
    folder = tmp_path / "backgrounds"
    folder.mkdir()
    for i in range(2):
        image = np.zeros((40, 60, 3), np.uint8)
        image[:, :, i] = 200
        assert cv2.imwrite(str(folder / f"bg{i}.png"), image)
    config = dataclasses.replace(CONFIG, user_background_prob=1.0)
    manifest = generate_dataset(out_dir=tmp_path / "data", num_clips=1, num_frames=1, seed=0, config=config,
                                backgrounds=folder, progress=False)
    assert manifest["request"]["backgrounds"]["count"] == 2
    assert _shard(tmp_path / "data", 0)["background_kind"].tolist() == ["user"]


# ---------------------------------------------------------------------------------------------- dataset
def test_dataset_samples_follow_the_contract(dataset_dir):
    clips = SyntheticDataset(dataset_dir, clip_len=4, stride=2, img_size=64, train=True)
    assert len(clips) == CLIPS * 2  # starts 0 and 2 in each 6-frame clip
    samples = [clips[i] for i in range(len(clips))]
    for sample in samples:
        validate_sample(sample)
        assert sample["dataset"] == "synthetic" and sample["has_pose"].all() and sample["joints3d_vis"].all()
    validate_sample(collate_samples(samples), batched=True)
    periods = {s["sequence"]: s["period"] for s in samples}
    lab = _shard(dataset_dir, 0)
    for clip_number, period in zip(lab["clip_index"], lab["period"], strict=True):
        stored = periods[f"clip{clip_number:06d}/person0"]
        assert (math.isnan(stored) and math.isnan(period)) or stored == pytest.approx(float(period))
    images = SyntheticDataset(dataset_dir, clip_len=1, img_size=64, train=False)
    assert len(images) == CLIPS * FRAMES
    held_out = SyntheticDataset(dataset_dir, clip_len=1, img_size=64, train=False, clips=[2])
    assert len(held_out) == FRAMES and held_out[0]["sequence"] == "clip000002/person0"


def test_dataset_round_trip_and_crop_cameras(dataset_dir):
    lab = _shard(dataset_dir, 0)
    evaluation = SyntheticDataset(dataset_dir, clip_len=FRAMES, img_size=224, train=False, with_camera=True)
    sample = evaluation[0]
    np.testing.assert_array_equal(sample["pose"], lab["pose"][0])
    np.testing.assert_array_equal(sample["joints3d"], lab["joints3d"][0])
    np.testing.assert_array_equal(sample["betas"], np.repeat(lab["betas"][:1], FRAMES, axis=0))
    np.testing.assert_allclose(sample["cam"], lab["crop_cam"][0], rtol=1e-4, atol=1e-4)  # eval crop = scale 1.1
    vis = lab["in_image"][0] & ~lab["occluded"][0]
    np.testing.assert_array_equal(sample["joints2d_vis"], vis.astype(np.float32))
    # With augmentation (box jitter, flips), the camera still projects the joints onto the crop joints.
    train = SyntheticDataset(dataset_dir, clip_len=FRAMES, img_size=224, train=True, with_camera=True, seed=3)
    flips = 0
    for index in range(len(train)):
        s = train[index]
        flips += train.augmentation(index).flip
        smpl_joints = s["joints3d"] - s["transl"][:, None]
        weak = s["cam"][:, None, :1] * (smpl_joints[..., :2] + s["cam"][:, None, 1:])
        vis = s["joints2d_vis"] > 0
        error_px = np.linalg.norm(weak - s["joints2d"], axis=-1)[vis] * 224 / 2
        assert np.median(error_px) < 3.0
    assert 0 < flips < len(train) or len(train) < 3


def test_crops_show_the_person_where_the_joints_are(dataset_dir):
    data = SyntheticDataset(dataset_dir, clip_len=1, img_size=64, train=False)
    from int_model.crops import denormalise_frame

    for index in range(0, len(data), 5):
        sample = data[index]
        crop = denormalise_frame(sample["frames"][0]).astype(float)
        assert crop.std() > 5.0
        inside = (np.abs(sample["joints2d"][0]) < 0.95).all(axis=-1)
        assert inside.mean() > 0.8  # the crop is around the person


@pytest.mark.slow
def test_worker_processes_give_the_same_dataset(dataset_dir, tmp_path):
    generate_dataset(out_dir=tmp_path, num_clips=2, num_frames=FRAMES, seed=SEED, config=CONFIG, clips_per_shard=2,
                     workers=2, progress=False)
    a, b = _shard(dataset_dir, 0), _shard(tmp_path, 0)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    np.testing.assert_array_equal(np.load(dataset_dir / "shard_00000.frames.npy"),
                                  np.load(tmp_path / "shard_00000.frames.npy"))


def test_rotations_go_back_to_the_anatomical_angles_that_made_them() -> None:
    from int_model.joint_ranges import HIGH, LOW, angles_to_rotmat, range_excess, rotmat_to_angles

    rng = np.random.default_rng(0)
    angles = LOW + (HIGH - LOW) * rng.uniform(0.02, 0.98, size=(200, 24, 3))
    back = rotmat_to_angles(angles_to_rotmat(angles))
    np.testing.assert_allclose(back, angles, atol=1e-8)
    assert range_excess(back).max() == 0.0
    # A knee bent backwards has no in-range solution: the excess says by how much.
    bent = np.zeros((24, 3))
    bent[4, 0] = -30.0  # left knee, hyper-extended
    assert range_excess(rotmat_to_angles(angles_to_rotmat(bent)))[4].sum() == pytest.approx(30.0)


def test_a_shoulder_near_the_t_pose_is_not_read_as_twisted_out_of_range() -> None:
    """At the T-pose the shoulder's x-z-x angles are in gimbal lock: a rotation 2 degrees from it once came back
    as (77.8, 0.8, -79.5), 28 degrees outside the flexion range. It now reads as in range, close to the input."""
    from scipy.spatial.transform import Rotation

    from int_model.constants import SMPL_JOINT_NAMES
    from int_model.joint_ranges import angles_to_rotmat, range_excess, rotmat_to_angles

    shoulder = SMPL_JOINT_NAMES.index("left_shoulder")
    twisted = np.zeros((24, 3))
    twisted[shoulder] = (77.8, 0.8, -79.5)  # what the demo model's prior read as
    rotmat = angles_to_rotmat(twisted)
    assert np.degrees(Rotation.from_matrix(rotmat[shoulder]).magnitude()) < 2.5  # it is nearly the T-pose
    angles = rotmat_to_angles(rotmat)
    assert range_excess(angles)[shoulder].sum() == 0.0
    assert np.abs(angles[shoulder]).max() < 5.0
    back = angles_to_rotmat(angles)[shoulder]
    assert np.degrees(Rotation.from_matrix(back.T @ rotmat[shoulder]).magnitude()) < 2 * 0.8 + 0.1
    # Far from the lock, an out-of-range shoulder still reads as out of range.
    raised = np.zeros((24, 3))
    raised[shoulder] = (80.0, -40.0, 0.0)  # flexed 30 degrees past the range, arm half down
    assert range_excess(rotmat_to_angles(angles_to_rotmat(raised)))[shoulder].sum() == pytest.approx(30.0)
