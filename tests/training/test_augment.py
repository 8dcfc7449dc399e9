import numpy as np
import pytest
import torch

from int_model.constants import H36M_FLIP_PERM, SMPL_FLIP_PERM
from int_model.geometry import axis_angle_to_rotmat
from training.augment import (
    AugmentConfig,
    AugmentParams,
    apply_photometric,
    colour_jitter,
    flip_joints2d,
    flip_joints3d,
    flip_pose,
    flip_sample,
    random_erase,
    sample_augmentation,
)
from training.sample import empty_sample, validate_sample


def _random_sample(seed: int = 0):
    rng = np.random.default_rng(seed)
    s = empty_sample(num_frames=2, img_size=8, dataset="toy", sequence="s")
    for key in ("frames", "pose", "betas", "joints3d", "joints3d_h36m", "joints2d"):
        s[key][:] = rng.normal(size=s[key].shape).astype(np.float32)
    for key in ("joints3d_vis", "joints3d_h36m_vis", "joints2d_vis"):
        s[key][:] = (rng.random(s[key].shape) > 0.5).astype(np.float32)
    return s


def test_flipping_twice_is_the_identity():
    s = _random_sample()
    twice = flip_sample(flip_sample(s))
    validate_sample(twice)
    for key in ("frames", "pose", "joints3d", "joints3d_h36m", "joints2d", "joints3d_vis", "joints2d_vis",
                "joints3d_h36m_vis", "betas"):
        np.testing.assert_allclose(twice[key], s[key], err_msg=key)
    once = flip_sample(s)
    assert not np.allclose(once["frames"], s["frames"]) and not np.allclose(once["pose"], s["pose"])


def test_flip_swaps_left_and_right_and_negates_x():
    joints = np.zeros((24, 2), np.float32)
    joints[16] = [0.5, 0.2]  # left shoulder on the right of the image (the person faces the camera)
    flipped = flip_joints2d(joints, SMPL_FLIP_PERM)
    np.testing.assert_allclose(flipped[17], [-0.5, 0.2])  # it becomes the right shoulder, on the left
    np.testing.assert_allclose(flipped[16], [0.0, 0.0])
    h36m = np.arange(17 * 3, dtype=np.float32).reshape(17, 3)
    np.testing.assert_allclose(flip_joints3d(h36m, H36M_FLIP_PERM)[1], h36m[4] * [-1, 1, 1])


def test_flipped_global_orientation_is_the_mirrored_rotation():
    pose = np.random.default_rng(1).normal(size=72).astype(np.float64)
    mirror = np.diag([-1.0, 1.0, 1.0])
    rot = axis_angle_to_rotmat(torch.from_numpy(pose[:3])).numpy()
    flipped = axis_angle_to_rotmat(torch.from_numpy(flip_pose(pose)[:3])).numpy()
    np.testing.assert_allclose(flipped, mirror @ rot @ mirror, atol=1e-12)


def test_flipped_pose_through_the_body_model_gives_the_mirrored_body(body_model):
    gen = torch.Generator().manual_seed(0)
    pose = torch.randn(3, 72, generator=gen) * 0.4
    pose[:, :3] = torch.tensor([np.pi, 0.0, 0.0]) + 0.3 * torch.randn(3, 3, generator=gen)  # upright-ish
    betas = torch.randn(3, 10, generator=gen)

    def pose_body(p: np.ndarray):
        rotmat = axis_angle_to_rotmat(torch.as_tensor(p, dtype=torch.float32).reshape(-1, 24, 3))
        return body_model(rotmat=rotmat, betas=betas)

    original, mirrored = pose_body(pose.numpy()), pose_body(flip_pose(pose.numpy()))
    # The procedural body is left/right symmetric, so the mirrored pose's joints are the mirrored joints.
    expected = flip_joints3d(original.joints.numpy(), SMPL_FLIP_PERM)
    np.testing.assert_allclose(mirrored.joints.numpy(), expected, atol=1e-4)
    if original.joints_h36m is not None:
        expected_h36m = flip_joints3d(original.joints_h36m.numpy(), H36M_FLIP_PERM)
        np.testing.assert_allclose(mirrored.joints_h36m.numpy(), expected_h36m, atol=2e-3)
    # The mesh as a whole is mirrored: the vertex cloud's bounds are the x-mirrored bounds.
    v, w = original.vertices.numpy(), mirrored.vertices.numpy()
    np.testing.assert_allclose(w[..., 0].max(axis=1), -v[..., 0].min(axis=1), atol=5e-3)
    np.testing.assert_allclose(w[..., 1:].mean(axis=1), v[..., 1:].mean(axis=1), atol=5e-3)


def test_augmentation_is_deterministic_under_a_seed_and_same_for_every_frame():
    config = AugmentConfig()
    draws = [sample_augmentation(config, np.random.default_rng(7)) for _ in range(2)]
    assert draws[0] == draws[1]
    always = AugmentConfig(box_jitter_prob=1.0, colour_prob=1.0, erase_prob=1.0)
    assert len({sample_augmentation(always, np.random.default_rng(seed)) for seed in range(20)}) == 20
    many = [sample_augmentation(config, np.random.default_rng(seed)) for seed in range(40)]
    assert any(p.flip for p in many) and any(not p.flip for p in many)
    assert sample_augmentation(AugmentConfig.none(), np.random.default_rng(0)) == AugmentParams()
    assert AugmentConfig.none().crop_scale == 1.1 and AugmentConfig().crop_scale == 1.3


def test_colour_jitter_and_erasing_keep_shape_and_dtype():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    jittered = colour_jitter(image, (1.2, 0.8, 1.3))
    assert jittered.shape == image.shape and jittered.dtype == np.uint8 and not np.array_equal(jittered, image)
    assert np.array_equal(colour_jitter(image, (1.0, 1.0, 1.0)), image)
    floats = image.astype(np.float32) / 255
    assert colour_jitter(floats, (0.7, 1.1, 0.9)).dtype == np.float32
    erased = random_erase(image, (0.25, 0.5, 0.5, 0.25), (1.0, 0.0, 0.0))
    assert erased.shape == image.shape and erased.dtype == np.uint8
    assert (erased[16:24, 10:30] == [255, 0, 0]).all()
    assert np.array_equal(erased[:16], image[:16])
    params = sample_augmentation(AugmentConfig(colour_prob=1.0, erase_prob=1.0), np.random.default_rng(5))
    a, b = apply_photometric(image, params), apply_photometric(image, params)
    assert np.array_equal(a, b) and a.dtype == np.uint8 and a.shape == image.shape
