import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from training.metrics import accel_error, align_pelvis, mpjpe, pa_mpjpe, procrustes_align, pve


def _joints(n: int = 4, j: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, j, 3)) * 0.3


def test_identical_joints_give_zero_everywhere():
    x = _joints()
    assert mpjpe(x, x) == 0.0
    assert pa_mpjpe(x, x) == pytest.approx(0.0, abs=1e-9)
    assert pve(x, x) == 0.0
    assert accel_error(x, x, sequence_ids=np.zeros(4)) == 0.0


def test_a_translation_is_removed_by_pelvis_alignment():
    x = _joints()
    assert mpjpe(x + np.array([1.0, -2.0, 3.0]), x) == pytest.approx(0.0, abs=1e-9)
    h36m = _joints(j=17)
    assert mpjpe(h36m + 5.0, h36m) == pytest.approx(0.0, abs=1e-9)
    assert pve(x + 0.5, x) == pytest.approx(0.0, abs=1e-9)


def test_similarity_transform_is_removed_by_procrustes_only():
    x = _joints(n=5)
    rot = Rotation.from_euler("xyz", [30, -50, 110], degrees=True).as_matrix()
    y = 1.7 * x @ rot.T + np.array([0.3, 0.1, -2.0])
    assert pa_mpjpe(y, x) == pytest.approx(0.0, abs=1e-6)
    assert mpjpe(y, x) > 100.0
    np.testing.assert_allclose(procrustes_align(y, x), x, atol=1e-9)


def test_procrustes_never_uses_a_reflection():
    x = _joints(n=3)
    mirrored = x * np.array([-1.0, 1.0, 1.0])
    aligned = procrustes_align(mirrored, x)
    # The best proper rotation cannot undo a mirror image: a real error remains.
    assert pa_mpjpe(mirrored, x) > 10.0
    # ... and what it applied is a rotation (det +1) with positive scale: recover it by least squares.
    centred = mirrored - mirrored.mean(axis=1, keepdims=True)
    for i in range(3):
        transform, *_ = np.linalg.lstsq(centred[i], aligned[i] - aligned[i].mean(axis=0), rcond=None)
        assert np.linalg.det(transform) > 0


def test_hand_computed_example():
    # Two SMPL-24 skeletons whose hips coincide; the head (joint 15) is 3 cm off and joint 20 is 4 cm off.
    gt = np.zeros((1, 24, 3))
    gt[0, 1] = [0.1, 0.0, 0.0]
    gt[0, 2] = [-0.1, 0.0, 0.0]
    pred = gt.copy()
    pred[0, 15] += [0.03, 0.0, 0.0]
    pred[0, 20] += [0.0, 0.0, 0.04]
    assert mpjpe(pred, gt) == pytest.approx((30.0 + 40.0) / 24)
    assert pve(pred, gt, pred_joints=pred, gt_joints=gt) == pytest.approx((30.0 + 40.0) / 24)


def test_pve_aligns_with_the_joint_pelvis_or_the_vertex_mean():
    rng = np.random.default_rng(1)
    verts = rng.normal(size=(2, 50, 3))
    joints = rng.normal(size=(2, 24, 3))
    shift = np.array([0.2, 0.0, 0.0])
    # Moving one mesh and its joints together is removed either way.
    assert pve(verts + shift, verts, pred_joints=joints + shift, gt_joints=joints) == pytest.approx(0.0, abs=1e-9)
    # Moving the joints but not the mesh is a real 200 mm error with the joint pelvis.
    assert pve(verts, verts, pred_joints=joints + shift, gt_joints=joints) == pytest.approx(200.0)
    with pytest.raises(ValueError, match="both"):
        pve(verts, verts, pred_joints=joints)


def test_metrics_accept_tensors_and_per_frame_output():
    x = torch.from_numpy(_joints(n=3)).float()
    per_frame = mpjpe(x + 0.01 * torch.arange(3.0)[:, None, None] * torch.eye(3)[0].expand(24, 3), x,
                      reduction="none")
    assert per_frame.shape == (3,)
    assert isinstance(pa_mpjpe(x, x), float)


def test_constant_velocity_has_zero_acceleration_error():
    base = _joints(n=1)[0]
    velocity = np.random.default_rng(2).normal(size=(24, 3)) * 0.01
    pred = np.stack([base + i * velocity for i in range(10)])
    gt = np.stack([base for _ in range(10)])
    assert accel_error(pred, gt, sequence_ids=np.zeros(10), align=False) == pytest.approx(0.0, abs=1e-9)


def test_acceleration_error_known_value():
    gt = np.zeros((3, 24, 3))
    pred = gt.copy()
    pred[1, 15, 1] = 0.01  # the head jumps 1 cm in the middle frame: second difference -2 cm
    assert accel_error(pred, gt, sequence_ids=[0, 0, 0], align=False) == pytest.approx(20.0 / 24)


def test_acceleration_error_never_crosses_a_sequence_boundary():
    a = np.zeros((5, 24, 3))
    b = np.zeros((5, 24, 3)) + np.array([0.0, 0.0, 0.0])
    pred = np.concatenate([a, b + 0.0])
    gt = np.concatenate([a, b])
    pred[5:, 3] += [0.5, 0.0, 0.0]  # sequence 2's prediction is offset: a jump between the sequences only
    ids = np.array(["s1"] * 5 + ["s2"] * 5)
    assert accel_error(pred, gt, sequence_ids=ids, align=False) == 0.0
    # Counting across the boundary would see it.
    assert accel_error(pred, gt, sequence_ids=np.zeros(10), align=False) > 0.0
    assert len(accel_error(pred, gt, sequence_ids=ids, reduction="none")) == 2 * 3


def test_acceleration_error_respects_the_valid_mask():
    gt = np.zeros((6, 24, 3))
    pred = gt.copy()
    pred[2, 7] += [0.3, 0.0, 0.0]
    ids = np.zeros(6)
    valid = np.array([1, 1, 0, 1, 1, 1])
    assert accel_error(pred, gt, sequence_ids=ids, valid=valid, align=False) == 0.0
    assert math.isnan(accel_error(pred[:2], gt[:2], sequence_ids=ids[:2]))


def test_align_pelvis_uses_mid_hip_for_smpl_and_joint_zero_for_h36m():
    smpl = _joints(n=1)
    aligned = align_pelvis(smpl)
    np.testing.assert_allclose(aligned[0, 1] + aligned[0, 2], 0.0, atol=1e-12)
    h36m = _joints(n=1, j=17)
    np.testing.assert_allclose(align_pelvis(h36m)[0, 0], 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="cannot infer the joint set"):
        mpjpe(_joints(j=14), _joints(j=14))
