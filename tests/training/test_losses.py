import math
from dataclasses import replace

import pytest
import torch

from int_model.geometry import axis_angle_to_rotmat, rotmat_to_axis_angle
from int_model.model import IntOutput
from training.losses import TERM_NAMES, IntLoss, LossWeights, compute_loss
from training.sample import collate_samples, empty_sample

B, T = 2, 3


def _output(gen: torch.Generator, *, b: int = B, t: int = T) -> tuple[IntOutput, dict[str, torch.Tensor]]:
    """A fake model output whose tensors are leaves (so that gradients can be inspected)."""
    leaves = {
        "rotmat": axis_angle_to_rotmat(torch.randn(b, t, 24, 3, generator=gen) * 0.3).requires_grad_(),
        "betas": torch.randn(b, t, 10, generator=gen).requires_grad_(),
        "joints3d": torch.randn(b, t, 24, 3, generator=gen).requires_grad_(),
        "joints2d": torch.randn(b, t, 24, 2, generator=gen).requires_grad_(),
        "joints3d_h36m": torch.randn(b, t, 17, 3, generator=gen).requires_grad_(),
    }
    out = IntOutput(
        rot6d=torch.zeros(b, t, 24, 6), rotmat=leaves["rotmat"],
        pose=rotmat_to_axis_angle(leaves["rotmat"]).reshape(b, t, 72), betas=leaves["betas"],
        cam=torch.zeros(b, t, 3), vertices=torch.zeros(b, t, 5, 3), joints3d=leaves["joints3d"],
        joints2d=leaves["joints2d"], joints3d_h36m=leaves["joints3d_h36m"],
    )
    return out, leaves


def _batch(gen: torch.Generator, *, full: tuple[bool, ...] = (True, False), t: int = T) -> dict:
    """Sample i has every label if full[i], else 2D joints only."""
    samples = []
    for i, has_all in enumerate(full):
        s = empty_sample(num_frames=t, img_size=4, dataset="toy", sequence=f"s{i}")
        s["joints2d"][:] = torch.randn(t, 24, 2, generator=gen).numpy()
        s["joints2d_vis"][:] = 1.0
        if has_all:
            s["pose"][:] = (torch.randn(t, 72, generator=gen) * 0.3).numpy()
            s["betas"][:] = torch.randn(t, 10, generator=gen).numpy()
            s["joints3d"][:] = torch.randn(t, 24, 3, generator=gen).numpy()
            s["joints3d_h36m"][:] = torch.randn(t, 17, 3, generator=gen).numpy()
            for key in ("has_pose", "has_betas", "joints3d_vis", "joints3d_h36m_vis"):
                s[key][:] = 1.0
        samples.append(s)
    return collate_samples(samples)


def test_a_2d_only_sample_contributes_no_3d_or_smpl_term(rng):
    out, leaves = _output(rng)
    batch = _batch(rng)
    weights = LossWeights(temporal=600.0)
    reference = compute_loss(out, batch, weights=weights)
    # Garbage (even NaN) in the 2D-only sample's missing labels changes nothing.
    for key in ("pose", "betas", "joints3d", "joints3d_h36m"):
        batch[key][1] = float("nan") if key != "betas" else 1e6
    changed = compute_loss(out, batch, weights=weights)
    assert changed.terms == reference.terms
    torch.testing.assert_close(changed.total, reference.total)
    # Without the prior (which applies to every prediction), sample 1's gradient flows through joints2d only.
    changed = compute_loss(out, batch, weights=LossWeights(temporal=600.0, norm=0.0))
    changed.total.backward()
    for name in ("rotmat", "betas", "joints3d", "joints3d_h36m"):
        assert leaves[name].grad[1].abs().max() == 0, name
        assert leaves[name].grad[0].abs().max() > 0, name
    assert leaves["joints2d"].grad[1].abs().max() > 0


def test_no_labels_give_exact_zero_terms_not_nan(rng):
    out, _ = _output(rng)
    batch = _batch(rng, full=(False, False))
    batch["joints2d_vis"][:] = 0.0
    batch["joints2d"][:] = float("nan")
    result = compute_loss(out, batch, weights=LossWeights(temporal=600.0))
    for name in ("theta", "beta", "joints3d", "joints3d_h36m", "joints2d", "temporal"):
        assert result.terms[name] == 0.0, name
    assert math.isfinite(result.total.item()) and result.terms["norm"] > 0


def _identity_output(b: int, t: int) -> IntOutput:
    return IntOutput(
        rot6d=torch.zeros(b, t, 24, 6), rotmat=torch.eye(3).expand(b, t, 24, 3, 3).clone(),
        pose=torch.zeros(b, t, 72), betas=torch.zeros(b, t, 10), cam=torch.zeros(b, t, 3),
        vertices=torch.zeros(b, t, 5, 3), joints3d=torch.zeros(b, t, 24, 3), joints2d=torch.zeros(b, t, 24, 2),
        joints3d_h36m=torch.zeros(b, t, 17, 3),
    )


def _empty_batch(b: int = 1, t: int = 1) -> dict:
    return collate_samples([empty_sample(num_frames=t, img_size=4, dataset="toy", sequence=f"s{i}")
                            for i in range(b)])


def test_joints2d_term_known_value():
    batch = _empty_batch()
    batch["joints2d"][0, 0, 3] = torch.tensor([1.0, 1.0])
    batch["joints2d"][0, 0, 7] = torch.tensor([3.0, 3.0])
    batch["joints2d"][0, 0, 9] = torch.tensor([100.0, 100.0])  # invisible
    batch["joints2d_vis"][0, 0, [3, 7]] = 1.0
    terms = compute_loss(_identity_output(1, 1), batch, weights=LossWeights()).terms
    assert terms["joints2d"] == pytest.approx((1 + 9) / 2)


def test_joints3d_term_is_pelvis_aligned_with_known_value():
    batch = _empty_batch()
    out = _identity_output(1, 1)
    gt = torch.randn(24, 3, generator=torch.Generator().manual_seed(3))
    batch["joints3d"][0, 0] = gt
    batch["joints3d_vis"][0, 0] = 1.0
    out = replace(out, joints3d=(gt + torch.tensor([5.0, -2.0, 9.0]))[None, None])
    assert compute_loss(out, batch, weights=LossWeights()).terms["joints3d"] == pytest.approx(0.0, abs=1e-10)
    moved = gt.clone()
    moved[15, 0] += 0.3  # the head, not a hip: the pelvis stays
    out = replace(out, joints3d=moved[None, None])
    assert compute_loss(out, batch, weights=LossWeights()).terms["joints3d"] == pytest.approx(0.09 / 3 / 24)
    # Without both hips labelled the frame cannot be aligned: no term.
    batch["joints3d_vis"][0, 0, 1] = 0.0
    assert compute_loss(out, batch, weights=LossWeights()).terms["joints3d"] == 0.0


def test_theta_term_compares_rotation_matrices():
    angle = 0.7
    batch = _empty_batch()
    batch["has_pose"][:] = 1.0
    out = _identity_output(1, 1)
    rotmat = out.rotmat.clone()
    rotmat[0, 0, 5] = axis_angle_to_rotmat(torch.tensor([0.0, 0.0, angle]))
    out = replace(out, rotmat=rotmat)
    expected = 4 * (1 - math.cos(angle)) / (24 * 9)  # ||R - I||_F^2 = 4 (1 - cos angle)
    assert compute_loss(out, batch, weights=LossWeights()).terms["theta"] == pytest.approx(expected, rel=1e-5)
    # The same rotation as a label gives zero (axis-angle labels become rotation matrices).
    batch["pose"][0, 0, 15:18] = torch.tensor([0.0, 0.0, angle])
    assert compute_loss(out, batch, weights=LossWeights()).terms["theta"] == pytest.approx(0.0, abs=1e-10)


def test_beta_and_norm_terms_known_values():
    batch = _empty_batch()
    batch["betas"][0, 0, 0] = 2.0
    batch["has_betas"][:] = 1.0
    out = _identity_output(1, 1)
    pose = torch.zeros(1, 1, 72)
    pose[0, 0, :3] = torch.tensor([math.pi, 0.0, 0.0])  # global orientation: not in the prior
    pose[0, 0, 3] = 0.5
    out = replace(out, pose=pose, betas=torch.ones(1, 1, 10))
    terms = compute_loss(out, batch, weights=LossWeights()).terms
    assert terms["beta"] == pytest.approx((1.0 + 9 * 1.0) / 10)  # (1-2)^2 once, (1-0)^2 nine times
    assert terms["norm"] == pytest.approx(0.25 / 69 + 1.0)


def test_temporal_term_uses_consecutive_labelled_valid_frames_only():
    t = 4
    batch = _empty_batch(t=t)
    gt = torch.zeros(t, 24, 3)
    gt[:, 15, 1] = torch.arange(t, dtype=torch.float32) * 0.1  # the head moves down 0.1 per frame
    batch["joints3d"][0] = gt
    batch["joints3d_vis"][:] = 1.0
    out = _identity_output(1, t)  # the prediction stands still
    assert compute_loss(out, batch, weights=LossWeights()).terms["temporal"] == pytest.approx(0.01 / 3 / 24)
    # A constant offset has the label's velocity: zero.
    out = replace(out, joints3d=(gt + 1.0)[None])
    assert compute_loss(out, batch, weights=LossWeights()).terms["temporal"] == pytest.approx(0.0, abs=1e-12)
    # Only pairs of frames that are both valid and labelled count.
    out = _identity_output(1, t)
    batch["valid"][0, 1] = 0.0
    batch["joints3d_vis"][0, 3, 15] = 0.0
    # Pairs (0,1), (1,2) lose frame 1; pair (2,3) keeps 23 joints, the head is unlabelled in frame 3: all zero error.
    assert compute_loss(out, batch, weights=LossWeights()).terms["temporal"] == 0.0
    single = _empty_batch(t=1)
    single["joints3d_vis"][:] = 1.0
    assert compute_loss(_identity_output(1, 1), single, weights=LossWeights()).terms["temporal"] == 0.0


def test_total_is_the_weighted_sum_of_the_terms(rng):
    out, _ = _output(rng)
    batch = _batch(rng, full=(True, True))
    weights = LossWeights(theta=2.0, beta=3.0, norm=0.5, joints3d=7.0, joints2d=11.0, temporal=13.0,
                          joints3d_h36m=17.0)
    result = IntLoss(weights)(out, batch)
    expected = sum(weights.weight(name) * result.terms[name] for name in TERM_NAMES)
    assert result.total.item() == pytest.approx(expected, rel=1e-5)
    assert set(result.terms) == set(TERM_NAMES) and all(isinstance(v, float) for v in result.terms.values())
    assert LossWeights().weight("joints3d_h36m") == 600.0


def test_loss_weights_from_dict_rejects_unknown_names():
    assert LossWeights.from_dict({"norm": 0.01, "temporal": 600}).norm == 0.01
    with pytest.raises(ValueError, match="unknown loss weights: w_3d"):
        LossWeights.from_dict({"w_3d": 1.0})


def test_h36m_labels_without_h36m_output_are_an_error(rng):
    out, _ = _output(rng)
    out = replace(out, joints3d_h36m=None)
    with pytest.raises(ValueError, match="no joints3d_h36m"):
        compute_loss(out, _batch(rng), weights=LossWeights())
    result = compute_loss(out, _batch(rng, full=(False, False)), weights=LossWeights())
    assert result.terms["joints3d_h36m"] == 0.0


@pytest.mark.slow
def test_loss_on_the_tiny_model_backpropagates(body_model):
    from int_model import build_model

    model = build_model("tiny", body_model=body_model)
    gen = torch.Generator().manual_seed(0)
    batch = _batch(gen, t=2)
    batch["frames"] = torch.randn(2, 2, 3, 64, 64, generator=gen)
    result = compute_loss(model(batch["frames"]), batch, weights=LossWeights(temporal=600.0))
    result.total.backward()
    assert math.isfinite(result.total.item())
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
