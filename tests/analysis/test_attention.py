"""Image attention per token: captured shapes and row sums, head mean, rollout, patch maps, geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from int_model import build_model
from int_model.crops import CropSettings, CropTransform, normalised_to_crop_pixels
from analysis import attention as att


@pytest.fixture(scope="module")
def tiny_outputs(body_model):
    torch.manual_seed(0)
    model = build_model("tiny", body_model=body_model).eval()
    frames = torch.randn(2, 3, 3, model.img_size, model.img_size)
    with torch.no_grad():
        out = model(frames, capture_attention=True)
    return model, out


def test_captured_attention_has_the_documented_shapes_and_rows_sum_to_one(tiny_outputs):
    model, out = tiny_outputs
    config = model.config
    n = config.num_prefix_tokens + config.num_patches
    spatial, temporal = out.attention.spatial, out.attention.temporal
    assert spatial.shape == (2, 3, config.depth, config.num_heads, n, n)
    assert temporal.shape == (2, config.temporal_depth, config.temporal_heads, config.num_joints, 3, 3)
    torch.testing.assert_close(spatial.sum(-1), torch.ones(spatial.shape[:-1]), atol=1e-5, rtol=0)
    torch.testing.assert_close(temporal.sum(-1), torch.ones(temporal.shape[:-1]), atol=1e-5, rtol=0)


def test_layout_matches_the_config(tiny_outputs):
    model, _ = tiny_outputs
    layout = att.TokenLayout.from_config(model.config)
    assert layout.num_independent == 26 and layout.patch_start == 27
    assert layout.num_tokens == 27 + model.config.num_patches
    assert layout.index("left_knee") == 4 and layout.index("shape") == 24 and layout.index("camera") == 25
    with pytest.raises(ValueError):
        layout.index("tail")


def test_views_are_row_stochastic_and_do_not_modify_the_input(tiny_outputs):
    model, out = tiny_outputs
    frame = out.attention.spatial[0, 1].numpy().copy()
    before = frame.copy()
    n = frame.shape[-1]
    for head in (0, att.MEAN, att.ROLLOUT):
        for layer in (0, -1, att.MEAN):
            view = att.spatial_view(frame, layer=layer, head=head)
            assert view.shape == (n, n)
            np.testing.assert_allclose(view.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(frame, before)
    np.testing.assert_allclose(att.select_spatial(frame, layer=1, head=att.MEAN), frame[1].mean(0), rtol=1e-6)
    maps = att.token_patch_maps(att.select_spatial(frame, layer=0, head=0),
                                layout=att.TokenLayout.from_config(model.config))
    assert maps.shape == (26, model.config.grid_size, model.config.grid_size)


def crafted_attention(*, layers: int, heads: int, n: int, token: int, key: int) -> np.ndarray:
    """Every token attends to itself, except ``token``, which attends only to ``key`` (all heads)."""
    a = np.tile(np.eye(n), (layers, heads, 1, 1))
    a[:, :, token, :] = 0.0
    a[:, :, token, key] = 1.0
    return a


def test_rollout_follows_the_documented_formula_on_a_crafted_pattern():
    n, token, key = 12, 0, 9
    a = crafted_attention(layers=2, heads=3, n=n, token=token, key=key)
    one = att.attention_rollout(a, through_layer=0)
    # normalise(0.5 A + 0.5 I): token 0 keeps half of itself and takes half from the key.
    assert one[token, token] == pytest.approx(0.5) and one[token, key] == pytest.approx(0.5)
    two = att.attention_rollout(a)
    # Layer 2 on top: half of token 0's state is layer 1's token 0 (0.5/0.5), half is the key's (itself).
    assert two[token, token] == pytest.approx(0.25) and two[token, key] == pytest.approx(0.75)
    np.testing.assert_allclose(two.sum(-1), 1.0)
    np.testing.assert_allclose(two[1:], np.eye(n)[1:])
    plain = att.attention_rollout(a, residual_weight=0.0)
    assert plain[token, key] == pytest.approx(1.0)


def test_rollout_mixes_heads_by_their_mean():
    n = 6
    a = np.tile(np.eye(n), (1, 2, 1, 1))
    a[0, 0, 0] = np.eye(n)[3]  # head 0: token 0 -> token 3; head 1: token 0 -> itself
    r = att.attention_rollout(a)
    assert r[0, 3] == pytest.approx(0.25) and r[0, 0] == pytest.approx(0.75)


@pytest.mark.parametrize(("row", "col"), [(0, 0), (1, 2), (3, 3), (2, 0)])
def test_a_token_map_lands_on_the_patch_it_attends_to(row, col):
    layout = att.TokenLayout(num_joints=24, grid_size=4, img_size=64)
    token = 7
    key = layout.patch_start + row * layout.grid_size + col
    a = crafted_attention(layers=2, heads=2, n=layout.num_tokens, token=token, key=key)
    for view in (att.select_spatial(a, layer=1, head=0), att.attention_rollout(a)):
        grids = att.token_patch_maps(view, layout=layout)
        assert np.unravel_index(np.argmax(grids[token]), grids[token].shape) == (row, col)
        pixels = att.upsample_map(grids[token], size=layout.img_size)
        y, x = np.unravel_index(np.argmax(pixels), pixels.shape)
        step = layout.patch_pixels
        assert col * step <= x < (col + 1) * step and row * step <= y < (row + 1) * step
        # Bilinear between patch centres: the patch centre holds (nearly) the patch's own value.
        centre = int((col + 0.5) * step)
        assert pixels[int((row + 0.5) * step), centre] == pytest.approx(grids[token][row, col], rel=0.1)


def test_a_crop_map_goes_back_to_where_the_crop_came_from_in_the_frame():
    transform = CropTransform.from_box(np.array([40.0, 30.0, 50.0, 100.0]), settings=CropSettings(size=64, scale=1.1))
    crop_map = np.zeros((64, 64))
    crop_map[10, 50] = 1.0
    frame_map = att.map_to_frame(crop_map, transform=transform, frame_size=(200, 160))
    assert frame_map.shape == (200, 160)
    y, x = np.unravel_index(np.argmax(frame_map), frame_map.shape)
    expected = transform.crop_pixels_to_image(np.array([50.0, 10.0]))
    assert abs(x - expected[0]) <= 1.5 and abs(y - expected[1]) <= 1.5
    # Everything outside the crop square is 0; a uniform map fills the square.
    full = att.map_to_frame(np.ones((64, 64)), transform=transform, frame_size=(200, 160))
    x0, y0 = transform.origin
    assert full[int(y0 + transform.side / 2), int(x0 + transform.side / 2)] == pytest.approx(1.0)
    assert full[5, 5] == 0.0 and full[195, 155] == 0.0
    # A joint at normalised (0, 0) is the crop centre, which is the box centre in the frame.
    centre_px = normalised_to_crop_pixels(np.zeros(2), size=64)
    np.testing.assert_allclose(transform.crop_pixels_to_image(centre_px), transform.centre)


def test_normalise_map_of_a_constant_is_zero():
    np.testing.assert_array_equal(att.normalise_map(np.full((3, 3), 2.0)), np.zeros((3, 3)))
