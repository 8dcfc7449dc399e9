"""How much the temporal transformer changes the joint tokens."""

from __future__ import annotations

import pytest
import torch

from analysis.temporal_blocks import mean_changes, temporal_block_changes
from int_model import build_model


@pytest.fixture(scope="module")
def model(body_model):
    torch.manual_seed(0)
    return build_model("tiny", body_model=body_model).eval()


def test_each_block_is_measured_and_an_identity_transformer_changes_nothing(model):
    tokens = torch.randn(2, 8, model.num_joints, model.config.embed_dim)
    changes = temporal_block_changes(model, tokens)
    assert len(changes.per_block) == len(model.temporal_transformer.blocks)
    assert all(c > 0 for c in changes.per_block) and changes.whole > 0
    # Zeroed block outputs and position embedding: the transformer is the identity.
    twin = build_model("tiny", body_model=model.body_model).eval()
    with torch.no_grad():
        twin.temporal_transformer.pos_embed.zero_()
        for block in twin.temporal_transformer.blocks:
            block.attn.proj.weight.zero_(); block.attn.proj.bias.zero_()
            block.mlp.fc2.weight.zero_(); block.mlp.fc2.bias.zero_()
    same = temporal_block_changes(twin, tokens)
    assert same.whole == pytest.approx(0.0, abs=1e-6) and max(same.per_block) == pytest.approx(0.0, abs=1e-6)
    assert same.accel_reduction == pytest.approx(0.0, abs=1e-5)


def test_smooth_tokens_have_less_acceleration_than_jittery_ones(model):
    t = torch.linspace(0, 1, 12)[None, :, None, None]
    smooth = torch.ones(1, 12, model.num_joints, model.config.embed_dim) + t
    jitter = smooth + 0.3 * torch.randn_like(smooth)
    assert temporal_block_changes(model, smooth).accel_in < temporal_block_changes(model, jitter).accel_in
    both = mean_changes([temporal_block_changes(model, smooth), temporal_block_changes(model, jitter)])
    assert len(both.per_block) == len(model.temporal_transformer.blocks)
    with pytest.raises(ValueError, match="at least 3"):
        temporal_block_changes(model, smooth[:, :2])
