"""Token priors: fresh versus learned, renders, joint-token similarity."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from int_model import build_model
from int_model.constants import SMPL_JOINT_NAMES
from analysis import priors
from viz.priors import render_prior


@pytest.fixture(scope="module")
def model(body_model):
    torch.manual_seed(3)
    return build_model("tiny", body_model=body_model).eval()


def test_fresh_model_is_reproducible_and_leaves_the_global_rng_alone(model):
    state = torch.get_rng_state()
    fresh, again = priors.fresh_model(model), priors.fresh_model(model)
    assert torch.equal(state, torch.get_rng_state())
    torch.testing.assert_close(fresh.tokens.joints, again.tokens.joints)
    assert not torch.equal(fresh.tokens.joints, model.tokens.joints)
    assert fresh.config == model.config and fresh.body_model is model.body_model and not fresh.training


def test_learned_tokens_change_the_prior_pose(model):
    trained = priors.fresh_model(model, seed=5)
    with torch.no_grad():  # stand-in for training: the left knee token pushes its 6D output away from identity
        trained.heads.pose.weight.zero_()
        trained.tokens.joints[0, 4] = 0.0
        trained.tokens.joints[0, 4, 0] = 1.0
        trained.heads.pose.weight[4, 0] = -1.5  # 6D[4] (second column, z) -> bend about x
    fresh_prior = priors.prior_mesh(priors.fresh_model(model), keep_orientation=False)
    learned_prior = priors.prior_mesh(trained, keep_orientation=False)
    assert fresh_prior.joint_angles_deg[4] < 5.0
    assert learned_prior.joint_angles_deg[4] > 30.0
    angles = priors.prior_angles(learned_prior)
    assert list(angles) == list(SMPL_JOINT_NAMES)
    assert angles["left_knee"] == pytest.approx(float(learned_prior.joint_angles_deg[4]))


def test_joint_token_similarity(model):
    sim = priors.joint_token_similarity(model)
    assert sim.shape == (24, 24)
    np.testing.assert_allclose(sim, sim.T, atol=1e-6)
    np.testing.assert_allclose(np.diag(sim), 1.0, atol=1e-5)
    tokens = model.tokens.joints[0].detach().numpy().astype(np.float64)
    expected = tokens[2] @ tokens[7] / np.linalg.norm(tokens[2]) / np.linalg.norm(tokens[7])
    assert sim[2, 7] == pytest.approx(expected, abs=1e-5)


def test_prior_renders_show_a_body(model, renderer):
    prior = priors.prior_mesh(model, keep_orientation=False)
    renders = render_prior(prior, size=96, renderer=renderer)
    for image in (renders.front, renders.side):
        assert image.shape == (96, 96, 3) and image.dtype == np.uint8
        background = np.all(image == image[0, 0], axis=-1)
        assert 0.05 < 1.0 - background.mean() < 0.8  # a body, not an empty or full image
    # The side view of a T-pose is narrower than the front view.
    width = lambda img: np.any(~np.all(img == img[0, 0], axis=-1), axis=0).sum()  # noqa: E731
    assert width(renders.side) < width(renders.front)
