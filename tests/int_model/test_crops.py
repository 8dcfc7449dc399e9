"""Person crops (scale 1.1 squares, resize, ImageNet normalisation) and the crop -> full image camera."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from int_model.constants import IMAGE_MEAN, IMAGE_STD
from int_model.crops import (
    INFERENCE_BBOX_SCALE,
    CropSettings,
    CropTransform,
    crop_camera_to_full,
    crop_people,
    cut_crop,
    default_focal_length,
    normalise_crops,
    normalised_to_crop_pixels,
    project_pinhole,
)
from int_model.geometry import axis_angle_to_rotmat, weak_perspective_project


def dot_image(height: int, width: int, points: list[tuple[int, int]], radius: int = 0) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    for x, y in points:
        image[max(0, y - radius): y + radius + 1, max(0, x - radius): x + radius + 1] = 255
    return image


def centroid(image: np.ndarray) -> np.ndarray:
    weight = image[..., 0].astype(np.float64)
    rows, cols = np.mgrid[: image.shape[0], : image.shape[1]]
    return np.array([(cols * weight).sum(), (rows * weight).sum()]) / weight.sum()


def test_square_at_scale_1_1_around_the_box_centre():
    t = CropTransform.from_box(np.array([100.0, 50.0, 40.0, 80.0]), settings=CropSettings(size=64))
    assert INFERENCE_BBOX_SCALE == pytest.approx(1.1)
    assert t.centre == pytest.approx((120.0, 90.0))
    assert t.side == pytest.approx(1.1 * 80.0)
    # Normalised crop corners are the square's corners; the centre maps to the box centre.
    assert t.to_image(np.array([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]])) == pytest.approx(
        np.array([[120 - 44, 90 - 44], [120 + 44, 90 + 44], [120, 90]]))


@pytest.mark.parametrize("box", [(60.0, 40.0, 30.0, 50.0), (10.0, 5.0, 300.0, 400.0)])
def test_image_points_land_where_the_transform_says(box):
    """A bright spot in the frame appears in the crop at the crop pixel the transform predicts (also for a big
    box, where the region is area-shrunk before warping)."""
    settings = CropSettings(size=64)
    t = CropTransform.from_box(np.array(box), settings=settings)
    spot = np.round(np.array(t.centre) + np.array([0.2, -0.25]) * t.side).astype(int)
    radius = max(1, int(t.side / settings.size * 2))
    frame = dot_image(480, 640, [tuple(spot)], radius=radius)
    crop = cut_crop(frame, t)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    found = t.crop_pixels_to_image(centroid(crop))
    assert found == pytest.approx(spot, abs=0.05 * t.side / 64 * 8 + 0.5)


def test_a_centre_box_crop_round_trips_and_puts_pixels_where_the_coordinates_say():
    image = np.zeros((120, 160, 3), np.uint8)
    point = np.array([100.0, 40.0])
    image[40, 100] = 255
    box = (89.5, 49.5, 40.0, 60.0)  # pixel centres at integers: an even side centres on a .5
    transform = CropTransform.from_centre_box(box, scale=1.3, size=78)
    crop = cut_crop(image, transform)
    assert crop.shape == (78, 78, 3) and crop.dtype == np.uint8
    assert transform.side == pytest.approx(1.3 * 60.0)
    uv = transform.to_crop(point)
    np.testing.assert_allclose(transform.to_image(uv), point, atol=1e-4)
    # The crop is 1:1 here (78 px for 78 image px): the bright pixel lands where the coordinates say.
    col, row = normalised_to_crop_pixels(uv, size=78).round().astype(int)
    assert crop[row, col, 0] == 255 and crop.sum() == 3 * 255
    # Box centre -> crop centre (0, 0); box edges at +-1/1.3 of the half side.
    np.testing.assert_allclose(transform.to_crop(np.array([89.5, 49.5])), [0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(transform.to_crop(np.array([89.5, 79.5])), [0.0, 1 / 1.3], atol=1e-6)


def test_a_crop_of_the_whole_image_at_its_own_size_is_the_image_and_flips_exactly():
    """One crop geometry with no half-pixel offset: a square covering the image at 1:1 reproduces it pixel for
    pixel, and flipping the crop is u -> -u in normalised coordinates (the old inference warp was half a crop
    pixel off here)."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    transform = CropTransform.around_image(image.shape, size=64)
    crop = cut_crop(image, transform)
    np.testing.assert_array_equal(crop, image)
    uv = transform.to_crop(np.array([13.0, 20.0]))
    col, row = normalised_to_crop_pixels(uv * np.array([-1.0, 1.0]), size=64).round().astype(int)
    np.testing.assert_array_equal(crop[:, ::-1][row, col], image[20, 13])


def test_a_detection_box_and_its_centre_box_give_the_same_crop():
    xywh = np.array([60.0, 40.0, 30.0, 50.0])
    a = CropTransform.from_box(xywh, settings=CropSettings(size=64, scale=1.1))
    b = CropTransform.from_centre_box(np.array([75.0, 65.0, 30.0, 50.0]), scale=1.1, size=64)
    assert a == b
    np.testing.assert_allclose(a.crop_pixels_to_image(normalised_to_crop_pixels(np.array([0.3, -0.6]), size=64)),
                               a.to_image(np.array([0.3, -0.6])))


def test_outside_the_image_is_black_and_crop_people_batches():
    frame = np.full((100, 100, 3), 200, np.uint8)
    crops, transforms = crop_people(frame, np.array([[-50.0, -50.0, 100.0, 100.0], [20.0, 20.0, 30.0, 30.0]]),
                                    settings=CropSettings(size=32))
    assert crops.shape == (2, 32, 32, 3) and len(transforms) == 2
    assert crops[0, :8, :8].max() == 0  # top-left of the first square is outside the frame
    assert crops[0, -4:, -4:].min() == 200
    assert crops[1].min() == 200  # entirely inside
    empty, none = crop_people(frame, np.zeros((0, 4)), settings=CropSettings(size=32))
    assert empty.shape == (0, 32, 32, 3) and none == []


def test_normalisation_uses_the_imagenet_statistics():
    crops = np.zeros((2, 4, 4, 3), np.uint8)
    crops[1] = 255
    x = normalise_crops(crops)
    assert x.shape == (2, 3, 4, 4) and x.dtype == torch.float32
    mean, std = torch.tensor(IMAGE_MEAN), torch.tensor(IMAGE_STD)
    assert torch.allclose(x[0, :, 0, 0], -mean / std)
    assert torch.allclose(x[1, :, 0, 0], (1 - mean) / std)


def test_focal_length_default_is_spin_scaled_to_the_image():
    assert default_focal_length(640, 480) == pytest.approx(5000.0 / 224.0 * 640)


@pytest.mark.parametrize("image_size", [(640, 360), (1920, 1080), (300, 500)])
def test_cam_t_projects_the_joints_where_the_crop_camera_put_them(body_model, image_size):
    """Joints + cam_t seen by the full-image pinhole camera land on the crop camera's 2D joints mapped back to
    image pixels, for people anywhere in the frame and of any size, in random poses: within 2 px on a 640 px
    frame and 0.4 % of the image size on larger ones (the long focal length leaves a little perspective, which
    grows with the person's size in pixels and distance from the image centre), under a pixel on average."""
    rng = np.random.default_rng(0)
    width, height = image_size
    pose = torch.as_tensor(rng.normal(0.0, 0.3, (4, 24, 3)), dtype=torch.float32)
    pose[:, 0] = torch.tensor([np.pi, 0.0, 0.0])  # upright in the camera frame
    with torch.no_grad():
        joints = body_model(rotmat=axis_angle_to_rotmat(pose), betas=torch.zeros(4, 10)).joints.double()
    settings = CropSettings(size=224)
    focal = default_focal_length(width, height)
    for k in range(4):
        side_px = rng.uniform(0.1, 0.9) * height
        box = np.array([rng.uniform(0, width - side_px / 2), rng.uniform(0, height - side_px), side_px / 2, side_px])
        t = CropTransform.from_box(box, settings=settings)
        cam = torch.tensor([rng.uniform(0.7, 1.1), rng.uniform(-0.2, 0.2), rng.uniform(-0.1, 0.3)], dtype=torch.float64)
        crop_2d = weak_perspective_project(joints[k], cam).numpy()
        expected = t.to_image(crop_2d)
        cam_t = crop_camera_to_full(cam.numpy()[None], np.array([t.centre]), np.array([t.side]),
                                    image_size=image_size, focal_length=focal)[0]
        assert cam_t[2] > 0
        projected = project_pinhole(joints[k].numpy(), cam_t, focal_length=focal, image_size=image_size)
        error = np.linalg.norm(projected - expected, axis=-1)
        longer = max(image_size)
        assert error.max() < max(2.0, 0.004 * longer) and error.mean() < max(0.5, 0.001 * longer)


def test_a_short_focal_length_breaks_the_agreement(body_model):
    """The test above can fail: with a normal lens (focal = image width) perspective moves the limbs off the
    weak-perspective positions by several pixels."""
    rotmat = axis_angle_to_rotmat(torch.tensor([[np.pi, 0.0, 0.0]] + [[0.0, 0.0, 0.0]] * 23))[None]
    with torch.no_grad():
        joints = body_model(rotmat=rotmat, betas=torch.zeros(1, 10)).joints[0].double()
    size = (640, 480)
    t = CropTransform.from_box(np.array([450.0, 40.0, 150.0, 400.0]), settings=CropSettings(size=224))
    cam = torch.tensor([1.0, 0.0, 0.1], dtype=torch.float64)
    expected = t.to_image(weak_perspective_project(joints, cam).numpy())
    errors = {}
    for focal in (640.0, default_focal_length(*size)):
        cam_t = crop_camera_to_full(cam.numpy()[None], np.array([t.centre]), np.array([t.side]), image_size=size,
                                    focal_length=focal)[0]
        errors[focal] = np.abs(project_pinhole(joints.numpy(), cam_t, focal_length=focal, image_size=size)
                               - expected).max()
    assert errors[640.0] > 3.0 > 1.0 > errors[default_focal_length(*size)]
