import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from int_model.geometry import (
    axis_angle_to_rotmat,
    rot6d_to_rotmat,
    rotmat_to_axis_angle,
    rotmat_to_rot6d,
    weak_perspective_project,
)


def _assert_rotations(r: torch.Tensor) -> None:
    eye = torch.eye(3, dtype=r.dtype).expand_as(r)
    torch.testing.assert_close(r @ r.transpose(-1, -2), eye, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(r.shape[:-2], dtype=r.dtype), atol=1e-5, rtol=0)


def test_rot6d_gives_orthonormal_matrices_with_det_one(rng):
    x = torch.randn(5, 24, 6, generator=rng) * 3
    _assert_rotations(rot6d_to_rotmat(x))


def test_rot6d_layout_matches_the_public_heads():
    # The 6 numbers are a 3x2 matrix read column-wise: (a1x, a2x, a1y, a2y, a1z, a2z).
    x = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    torch.testing.assert_close(rot6d_to_rotmat(x), torch.eye(3))
    r = torch.from_numpy(Rotation.random(10, random_state=1).as_matrix()).float()
    torch.testing.assert_close(rot6d_to_rotmat(rotmat_to_rot6d(r)), r, atol=1e-5, rtol=0)


def test_axis_angle_matches_scipy_and_round_trips(rng):
    aa = torch.randn(200, 3, generator=rng, dtype=torch.float64)
    aa = aa / aa.norm(dim=-1, keepdim=True) * torch.rand(200, 1, generator=rng, dtype=torch.float64) * (math.pi - 1e-3)
    r = axis_angle_to_rotmat(aa)
    torch.testing.assert_close(r, torch.from_numpy(Rotation.from_rotvec(aa.numpy()).as_matrix()))
    torch.testing.assert_close(rotmat_to_axis_angle(r), aa, atol=1e-7, rtol=0)


@pytest.mark.parametrize("angle", [0.0, 1e-7, 1e-3, math.pi - 1e-6, math.pi])
def test_axis_angle_is_stable_at_zero_and_pi(angle):
    axis = torch.tensor([0.3, -0.5, 0.8], dtype=torch.float64)
    aa = axis / axis.norm() * angle
    back = rotmat_to_axis_angle(axis_angle_to_rotmat(aa))
    assert torch.isfinite(back).all()
    # Rotations by pi about +axis and -axis are the same rotation; compare matrices.
    torch.testing.assert_close(axis_angle_to_rotmat(back), axis_angle_to_rotmat(aa), atol=1e-6, rtol=0)


def test_weak_perspective_projection():
    points = torch.tensor([[[0.0, 0.0, 5.0], [0.5, -0.25, 1.0]]])
    cam = torch.tensor([[2.0, 0.1, 0.2]])
    expected = torch.tensor([[[0.2, 0.4], [1.2, -0.1]]])
    torch.testing.assert_close(weak_perspective_project(points, cam), expected)
    assert np.allclose(weak_perspective_project(points[None], cam[None]).numpy(), expected[None].numpy())
