"""The camera and sensor effects of real footage in the synthetic generator (training.synthetic.effects)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from training.phases import DatasetSpec
from training.synthetic.config import REALISTIC, SyntheticConfig
from training.synthetic.effects import NO_EFFECTS, ImageEffects, apply_effects, sample_effects
from training.synthetic.generate import clip_rng, generate_clip
from training.synthetic.scene import sample_scene

SIZE = 96
CONFIG = dataclasses.replace(SyntheticConfig(), image_size=SIZE)


def _textured(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (SIZE, SIZE, 3)).astype(np.float32)


def _detail(image: np.ndarray) -> float:
    """Mean absolute difference of neighbouring pixels (high-frequency energy)."""
    return float(np.abs(np.diff(image, axis=0)).mean() + np.abs(np.diff(image, axis=1)).mean())


def test_each_effect_does_what_it_says_and_none_changes_nothing():
    image = _textured()
    assert apply_effects(image, NO_EFFECTS) is image
    grey = apply_effects(image, ImageEffects(grey=True))
    assert np.allclose(grey[..., 0], grey[..., 1]) and np.allclose(grey[..., 1], grey[..., 2])
    assert not np.allclose(grey, image)
    for effects in (ImageEffects(low_res=0.3), ImageEffects(blur_px=7.0, blur_angle_deg=30.0)):
        out = apply_effects(image, effects)
        assert out.shape == image.shape and _detail(out) < 0.6 * _detail(image)
        assert abs(float(out.mean()) - float(image.mean())) < 0.02  # blurring keeps the brightness
    np.testing.assert_array_equal(image, _textured())  # the input is not changed


def test_the_default_config_draws_no_effects_and_scenes_stay_as_they_were(body_model):
    # With the effects off, their separate random stream leaves every other draw of the clip unchanged.
    scene = sample_scene(clip_rng(3, 0), config=CONFIG, num_frames=4, num_people=1, body_model=body_model)
    again = sample_scene(clip_rng(3, 0), config=CONFIG, num_frames=4, num_people=1, body_model=body_model)
    assert scene.effects == NO_EFFECTS and not scene.clip_boxes
    np.testing.assert_array_equal(scene.background, again.background)
    realistic = sample_scene(clip_rng(3, 0), config=CONFIG.realistic(), num_frames=4, num_people=1,
                             body_model=body_model)
    assert realistic.people[0].betas.tolist() == scene.people[0].betas.tolist()  # same person, other camera


def test_realistic_clips_are_grey_blurred_small_and_cut_about_as_often_as_configured(body_model):
    config = CONFIG.realistic()
    drawn = [sample_effects(np.random.default_rng(seed), config) for seed in range(400)]
    assert abs(np.mean([e.grey for e in drawn]) - REALISTIC["grey_prob"]) < 0.06
    assert abs(np.mean([e.blur_px > 0 for e in drawn]) - REALISTIC["motion_blur_prob"]) < 0.07
    assert abs(np.mean([e.low_res < 1 for e in drawn]) - REALISTIC["low_res_prob"]) < 0.07


def test_a_truncated_person_gets_a_box_inside_the_frame(body_model, renderer):
    config = dataclasses.replace(CONFIG.realistic(), truncation_prob=1.0, truncation_offset=(0.35, 0.4),
                                 low_res_prob=0.0, motion_blur_prob=0.0)
    cut = 0
    for index in range(4):
        clip = generate_clip(index=index, seed=11, num_frames=1, num_people=1, config=config, body_model=body_model,
                             renderer=renderer)
        cx, cy, w, h = clip.people[0].bbox[0]
        assert cx - w / 2 >= -1e-3 and cy - h / 2 >= -1e-3 and cx + w / 2 <= SIZE + 1e-3 and cy + h / 2 <= SIZE + 1e-3
        cut += int(not clip.people[0].in_image[0].all())  # some joints fall outside the frame
    assert cut >= 3


def test_dataset_specs_take_a_look_and_backgrounds_for_synthetic_data_only():
    assert DatasetSpec(kind="synthetic", name="real-look", look="realistic", backgrounds="backgrounds").look == \
        "realistic"
    with pytest.raises(ValueError, match="look"):
        DatasetSpec(kind="synthetic", name="x", look="shiny")
    with pytest.raises(ValueError, match="only for synthetic"):
        DatasetSpec(kind="database", name="h36m", look="realistic")
