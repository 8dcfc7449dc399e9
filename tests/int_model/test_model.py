import pytest
import torch

from int_model import build_model, get_config
from int_model.temporal import interpolate_temporal_embedding


@pytest.fixture(scope="module")
def tiny(body_model):
    torch.manual_seed(0)
    return build_model("tiny", body_model=body_model).eval()


def _frames(b: int, t: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, t, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_output_shapes(tiny, body_model):
    out = tiny(_frames(2, 4))
    v = body_model.num_vertices
    expected = {
        "rot6d": (2, 4, 24, 6), "rotmat": (2, 4, 24, 3, 3), "pose": (2, 4, 72), "betas": (2, 4, 10),
        "cam": (2, 4, 3), "vertices": (2, 4, v, 3), "joints3d": (2, 4, 24, 3), "joints2d": (2, 4, 24, 2),
        "joints3d_h36m": (2, 4, 17, 3),
    }
    assert {k: tuple(getattr(out, k).shape) for k in expected} == expected
    assert out.attention is None
    assert all(getattr(out, k).dtype == torch.float32 for k in expected)


def test_rotations_are_orthonormal_with_det_one(tiny):
    r = tiny(_frames(1, 3)).rotmat
    torch.testing.assert_close(r @ r.transpose(-1, -2), torch.eye(3).expand_as(r), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(r.shape[:-2]), atol=1e-5, rtol=0)


def test_every_parameter_gets_a_gradient(body_model):
    torch.manual_seed(1)
    model = build_model("tiny", body_model=body_model).train()
    out = model(_frames(2, 4))
    loss = out.rotmat.square().mean() + out.betas.square().mean() + out.joints2d.square().mean()
    loss = loss + out.vertices.square().mean() + out.cam.square().mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
    assert model.tokens.joints.grad.abs().sum() > 0 and model.temporal_transformer.pos_embed.grad.abs().sum() > 0


def test_image_model_at_one_frame_and_with_temporal_off(tiny):
    clip = _frames(1, 5)
    image_only = tiny(clip, temporal=False)
    with_time = tiny(clip)
    # Without the temporal transformer each frame is its own image: equal to running it alone.
    single = tiny(clip[:, 2:3])
    torch.testing.assert_close(single.rotmat[:, 0], image_only.rotmat[:, 2], atol=1e-5, rtol=0)
    assert not torch.allclose(with_time.rotmat, image_only.rotmat, atol=1e-4)
    # Shape and camera tokens are not modelled over time.
    torch.testing.assert_close(with_time.betas, image_only.betas)
    torch.testing.assert_close(with_time.cam, image_only.cam)


def test_temporal_transformer_keeps_joints_independent(tiny):
    tokens = torch.randn(1, 6, 24, 64, generator=torch.Generator().manual_seed(3))
    base = tiny.temporal(tokens)
    poked = tokens.clone()
    poked[:, :, 5] += 1.0
    changed = (tiny.temporal(poked) - base).abs().amax(dim=(0, 1, 3))
    assert changed[5] > 1e-3
    assert torch.all(changed[torch.arange(24) != 5] == 0)


@pytest.mark.parametrize("length", [1, 5, 16, 40])
def test_temporal_embedding_interpolation_leaves_the_parameter_alone(tiny, length):
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    tiny(_frames(1, length))
    after = tiny.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k
    assert tiny.temporal_transformer.pos_embed.shape == (1, 16, 64)


def test_interpolated_embedding_shape_and_identity_at_stored_length():
    emb = torch.randn(1, 16, 8)
    assert interpolate_temporal_embedding(emb, 16) is emb
    out = interpolate_temporal_embedding(emb, 64)
    assert out.shape == (1, 64, 8)
    # Linear interpolation stays inside the range of neighbouring values.
    assert out.min() >= emb.min() - 1e-6 and out.max() <= emb.max() + 1e-6


def test_t16_equals_the_plain_temporal_path(tiny):
    tokens = torch.randn(2, 16, 24, 64, generator=torch.Generator().manual_seed(4))
    tt = tiny.temporal_transformer
    x = tokens.permute(0, 2, 1, 3).reshape(48, 16, 64) + tt.pos_embed
    for block in tt.blocks:
        x = block(x)
    torch.testing.assert_close(tiny.temporal(tokens), x.reshape(2, 24, 16, 64).permute(0, 2, 1, 3))


def test_capture_equals_fused_and_rows_sum_to_one(tiny):
    clip = _frames(2, 3)
    fused_flags = [block.attn.fused_attn for block in tiny.blocks]
    fused = tiny(clip)
    captured = tiny(clip, capture_attention=True)
    for name in ("rotmat", "betas", "cam", "vertices", "joints2d"):
        torch.testing.assert_close(getattr(captured, name), getattr(fused, name), atol=1e-5, rtol=1e-4)
    cfg = tiny.config
    n = cfg.num_prefix_tokens + cfg.num_patches
    spatial, temporal = captured.attention.spatial, captured.attention.temporal
    assert spatial.shape == (2, 3, cfg.depth, cfg.num_heads, n, n)
    assert temporal.shape == (2, cfg.temporal_depth, cfg.temporal_heads, 24, 3, 3)
    torch.testing.assert_close(spatial.sum(-1), torch.ones(spatial.shape[:-1]), atol=1e-5, rtol=0)
    torch.testing.assert_close(temporal.sum(-1), torch.ones(temporal.shape[:-1]), atol=1e-5, rtol=0)
    # The default (fused) path is restored afterwards.
    assert [block.attn.fused_attn for block in tiny.blocks] == fused_flags


def test_captured_temporal_attention_is_per_joint(tiny):
    clip = _frames(1, 4)
    maps = tiny(clip, capture_attention=True).attention.temporal  # (B, L, H, J, T, T)
    # Different joints attend differently: the maps are not copies of each other.
    assert not torch.allclose(maps[0, 0, 0, 0], maps[0, 0, 0, 1])


def test_wrong_input_size_says_what_is_expected(tiny):
    with pytest.raises(ValueError, match="64 x 64"):
        tiny(torch.zeros(1, 2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        tiny(torch.zeros(2, 3, 64, 64))


def test_prior_decodes_the_token_parameters(tiny):
    prior = tiny.decode_prior()
    assert prior.rotmat.shape == (1, 1, 24, 3, 3) and prior.betas.shape == (1, 1, 10)
    rot6d = tiny.heads.pose(tiny.tokens.joints)[0]
    torch.testing.assert_close(prior.rot6d[0, 0], rot6d)


def test_image_model_variant_has_no_temporal_transformer(body_model):
    model = build_model("tiny", body_model=body_model, temporal_depth=0)
    assert model.temporal_transformer is None
    assert not any(k.startswith("temporal") for k in model.state_dict())
    with pytest.raises(ValueError, match="no temporal transformer"):
        model(_frames(1, 2), temporal=True)


@pytest.mark.slow
def test_paper_variant_matches_the_public_model(body_model):
    cfg = get_config("paper")
    assert (cfg.img_size, cfg.backbone_layers, cfg.depth, cfg.num_heads, cfg.embed_dim) == (224, (3, 4, 9), 6, 12, 768)
    assert (cfg.temporal_depth, cfg.temporal_heads, cfg.temporal_len) == (3, 12, 16)
    model = build_model("paper", body_model=body_model)
    total = model.num_parameters()
    temporal = sum(p.numel() for p in model.temporal_transformer.parameters())
    assert abs(total / 1e6 - 76.7) < 0.1, total
    assert abs((total - temporal) / 1e6 - 55.4) < 0.2, total - temporal
    assert model.patch_embed.num_patches == 196
    assert model.state_dict()["pos_embed"].shape == (1, 197, 768)


def test_small_variant_budget(body_model):
    cfg = get_config("small")
    assert cfg.img_size >= 128
    assert build_model("small", body_model=body_model).num_parameters() <= 15_000_000


def test_config_round_trip_and_errors():
    cfg = get_config("small", temporal_len=32)
    assert type(cfg).from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown model variant"):
        get_config("huge")
    with pytest.raises(ValueError, match="unknown config fields: wings"):
        get_config("tiny", wings=2)
    with pytest.raises(ValueError, match="divisible"):
        get_config("tiny", num_heads=5)


def test_local_backbone_weights_are_loaded(body_model, tmp_path):
    source = build_model("tiny", body_model=body_model)
    path = tmp_path / "resnetv2.pth"
    torch.save({f"patch_embed.backbone.{k}": v for k, v in source.patch_embed.backbone.state_dict().items()}, path)
    model = build_model("tiny", body_model=body_model, backbone_weights=str(path))
    for key, value in source.patch_embed.backbone.state_dict().items():
        assert torch.equal(model.patch_embed.backbone.state_dict()[key], value)
    wrong = tmp_path / "wrong.pth"
    torch.save({"stem.conv.weight": torch.zeros(1, 1, 1, 1)}, wrong)
    with pytest.raises(ValueError, match="stem.conv.weight"):
        build_model("tiny", body_model=body_model, backbone_weights=str(wrong))


def test_whole_pose_baseline_starts_as_the_image_model_and_mixes_joints(body_model):
    torch.manual_seed(0)
    model = build_model("tiny", body_model=body_model, temporal_mode="whole_pose").eval()
    frames = _frames(1, 6)
    with torch.no_grad():
        # Zero output projection: a fresh baseline predicts what the image model predicts.
        torch.testing.assert_close(model(frames).pose, model(frames, temporal=False).pose)
        torch.nn.init.normal_(model.temporal_transformer.proj_out.weight, std=0.02)
        tokens = torch.randn(1, 6, 24, 64)
        base = model.temporal(tokens)
        changed = tokens.clone()
        changed[:, :, 5] += 1.0
        moved = (model.temporal(changed) - base).abs().amax(dim=(0, 1, 3))
    # Unlike the per-joint model, one joint's tokens reach every other joint.
    assert (moved > 1e-4).all()
    captured = model(frames, capture_attention=True).attention.temporal
    assert captured.shape == (1, 1, 4, 24, 6, 6)
    torch.testing.assert_close(captured[:, :, :, 0], captured[:, :, :, 23])
    torch.testing.assert_close(captured.sum(-1), torch.ones_like(captured.sum(-1)))


def test_unknown_temporal_mode_is_refused():
    with pytest.raises(ValueError, match="temporal_mode must be one of"):
        get_config("tiny", temporal_mode="per_body")


def test_auto_precision_picks_bf16_only_where_it_is_native(monkeypatch):
    from int_model import precision

    assert precision.resolve_precision("fp32", "cpu") == "fp32" and precision.resolve_precision("bf16", "cpu") == "bf16"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert precision.resolve_precision("auto", "cpu") == "fp32"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert precision.resolve_precision("auto", "cpu") == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.resolve_precision("fp16", "cpu")


def test_attention_captures_in_several_threads_on_one_model_do_not_mix(body_model):
    """The app shares a model between sessions: overlapping captures each get their own calls only."""
    import threading

    from int_model.attention import capture_attention

    model = build_model("tiny", body_model=body_model).eval()
    fused = [b.attn.fused_attn for b in model.blocks]
    results, errors = {}, []

    def run(length: int) -> None:
        try:
            for _ in range(5):
                with torch.no_grad(), capture_attention(model.blocks) as recorder:
                    model(torch.randn(1, length, 3, 64, 64), temporal=False)
                attention = recorder.stacked()
                assert attention is not None and attention.shape[1] == length, attention
            results[length] = True
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=run, args=(n,)) for n in (1, 3, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 3, errors
    assert [b.attn.fused_attn for b in model.blocks] == fused


def test_model_is_built_from_its_config_and_body_model(tiny, body_model):
    from int_model import FrameTokens, IntModel

    torch.manual_seed(0)
    direct = IntModel(tiny.config, body_model)
    assert direct.config is tiny.config and direct.body_model is body_model
    assert direct.state_dict().keys() == tiny.state_dict().keys()
    assert build_model(tiny.config, temporal_depth=0).temporal_transformer is None
    tokens = tiny.encode_frames(_frames(2, 3).reshape(6, 3, 64, 64))
    assert isinstance(tokens, FrameTokens) and tokens.joints.shape[:2] == (6, tiny.num_joints)
    joined = FrameTokens.cat([tokens, tokens]).sequences(4, 3)
    assert joined.joints.shape[:3] == (4, 3, tiny.num_joints) and joined.cam.shape[:2] == (4, 3)
    assert torch.equal(joined.shape[2, 1], tokens.shape[1])
