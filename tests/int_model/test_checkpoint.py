import pickle
import re

import numpy as np
import pytest
import torch

from int_model import CheckpointError, build_model, load_checkpoint, save_checkpoint
from int_model.checkpoint import remap_public_int_state_dict, server_checkpoint


def _clip(size: int, t: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, t, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_round_trip_keeps_weights_config_and_meta(tmp_path, body_model):
    torch.manual_seed(0)
    model = build_model("tiny", body_model=body_model, temporal_len=8).eval()
    path = save_checkpoint(tmp_path / "run" / "model.pt", model, meta={"phase": 2, "metrics": {"pa_mpjpe": 71.5}})
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary file left behind
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "int-studio" and raw["config"]["temporal_len"] == 8
    assert not any(k.startswith("body_model") for k in raw["state_dict"])

    loaded = load_checkpoint(path, body_model=body_model)
    assert loaded.source == "int-studio" and loaded.config == model.config
    assert loaded.meta["phase"] == 2 and loaded.meta["metrics"]["pa_mpjpe"] == 71.5
    assert loaded.meta["body_model"] == body_model.identity and loaded.warnings == []
    clip = _clip(64, t=3)
    torch.testing.assert_close(loaded.model(clip).vertices, model(clip).vertices)


def test_overwrite_is_atomic_and_readable(tmp_path, body_model):
    model = build_model("tiny", body_model=body_model)
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, meta={"step": 1})
    save_checkpoint(path, model, meta={"step": 2})
    assert load_checkpoint(path, body_model=body_model).meta["step"] == 2



def test_same_body_model_from_another_machine_is_recognised_by_its_fingerprint(tmp_path, body_model):
    """Another CPU's float noise changes the identity hash but not the fingerprint: no warning then; a body
    model that differs by a millimetre, or one recorded with no fingerprint, is warned about."""
    model = build_model("tiny", body_model=body_model)
    fingerprint = np.asarray(body_model.fingerprint)
    assert fingerprint.shape == (11 * 24 * 3,) and np.ptp(fingerprint) > 0.1  # joints spread over the body
    other = "procedural-v1:000000000000"
    cases = {"noise": (fingerprint + 2e-6).tolist(), "1 mm": (fingerprint + 1e-3).tolist(), "none": None}
    warnings = {}
    for name, recorded in cases.items():
        meta = {"body_model": other} | ({} if recorded is None else {"body_model_fingerprint": recorded})
        path = save_checkpoint(tmp_path / f"{name.replace(' ', '')}.pt", model, meta=meta)
        loaded = load_checkpoint(path, body_model=body_model)
        assert loaded.meta["body_model"] == other
        warnings[name] = loaded.warnings
    assert warnings["noise"] == []
    assert len(warnings["1 mm"]) == 1 and other in warnings["1 mm"][0]
    assert len(warnings["none"]) == 1  # an unknown body model: its fingerprint was not made up from ours
    assert "body_model_fingerprint" not in torch.load(tmp_path / "none.pt", weights_only=True)["meta"]

# --- the public INT layout, written here by name (not through our remapping function) -------------------
def _public_int_layout(state: dict[str, torch.Tensor], temporal_len: int | None = None) -> dict[str, torch.Tensor]:
    names = {
        "tokens.joints": "joint3d_tokens", "tokens.shape": "shape_token", "tokens.cam": "cam_token",
        "temporal_transformer.pos_embed": "temporal_pos_embedding",
    }
    out = {}
    for key, value in state.items():
        if key in names:
            new = names[key]
        elif key.startswith("heads."):
            part, rest = key[len("heads."):].split(".", 1)
            new = {"pose": "joint3d_head", "shape": "shape_head", "cam": "cam_head"}[part] + "." + rest
        elif key.startswith("temporal_transformer.blocks."):
            new = "temporal_transformer." + key[len("temporal_transformer.blocks."):]
        else:
            new = key  # patch_embed.backbone.*, patch_embed.proj.*, cls_token, pos_embed, blocks.*, norm.*
        out["module." + new] = value.clone()
    if temporal_len is not None:
        emb = out["module.temporal_pos_embedding"]
        out["module.temporal_pos_embedding"] = torch.nn.functional.interpolate(
            emb.transpose(1, 2), size=temporal_len, mode="linear").transpose(1, 2)
    # What the public code also saves: the SMPL buffers of its body model.
    out["module.smpl.shapedirs"] = torch.zeros(6890, 3, 10)
    out["module.smpl.J_regressor"] = torch.zeros(24, 6890)
    return out


@pytest.fixture(scope="module")
def paper_pair(body_model, tmp_path_factory):
    torch.manual_seed(7)
    reference = build_model("paper", body_model=body_model).eval()
    with torch.no_grad():  # make the heads and tokens clearly non-trivial
        for p in (reference.tokens.joints, reference.heads.pose.weight):
            p.normal_(0, 0.2)
    path = tmp_path_factory.mktemp("public") / "int_public.pth.tar"
    torch.save({"epoch": 30, "performance": np.float64(51.2), "state_dict": _public_int_layout(reference.state_dict())}, path)
    return reference, path


@pytest.mark.slow
def test_public_int_checkpoint_loads_strictly_and_reproduces_outputs(paper_pair, body_model):
    reference, path = paper_pair
    loaded = load_checkpoint(path, body_model=body_model)
    assert loaded.source == "public-int" and loaded.config.variant == "paper"
    assert loaded.meta["epoch"] == 30
    clip = _clip(224, t=2, seed=1)
    with torch.no_grad():
        expected, got = reference(clip), loaded.model(clip)
    for name in ("rotmat", "betas", "cam", "vertices", "joints2d"):
        torch.testing.assert_close(getattr(got, name), getattr(expected, name), atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_public_int_checkpoint_with_a_64_frame_embedding(paper_pair, body_model, tmp_path):
    reference, _ = paper_pair
    path = tmp_path / "int_64.pth"
    torch.save({"state_dict": _public_int_layout(reference.state_dict(), temporal_len=64)}, path)
    loaded = load_checkpoint(path, body_model=body_model)
    assert loaded.config.temporal_len == 64
    assert loaded.model.temporal_transformer.pos_embed.shape == (1, 64, 768)


def test_remap_is_pure_and_drops_foreign_buffers():
    state = {"module.joint3d_tokens": torch.zeros(1, 24, 4), "module.smpl.v_template": torch.zeros(3),
             "module.temporal_transformer.0.attn.qkv.weight": torch.zeros(2)}
    before = dict(state)
    out = remap_public_int_state_dict(state)
    assert state == before
    assert sorted(out) == ["temporal_transformer.blocks.0.attn.qkv.weight", "tokens.joints"]


@pytest.mark.slow
def test_a_checkpoint_that_does_not_fit_names_keys_and_shapes(paper_pair, body_model, tmp_path):
    reference, _ = paper_pair
    state = _public_int_layout(reference.state_dict())
    state["module.joint3d_head.weight"] = torch.zeros(9, 768)
    del state["module.norm.bias"]
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, body_model=body_model)
    message = str(info.value)
    assert "missing: norm.bias" in message
    assert re.search(r"heads\.pose\.weight: checkpoint \(9, 768\) vs model \(6, 768\)", message)


def test_unreadable_and_foreign_files_give_clear_errors(tmp_path, body_model):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="is not a PyTorch checkpoint .damaged"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"fc.weight": torch.zeros(2)}}, other)
    with pytest.raises(CheckpointError, match="neither an INT Studio checkpoint nor a public INT"):
        load_checkpoint(other)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_a_pickle_with_code_is_refused_in_our_words(tmp_path, writer):
    path = tmp_path / "evil.pt"
    if writer == "pickle":
        with open(path, "wb") as handle:
            pickle.dump({"state_dict": _Evil()}, handle)
        expected = "is not a PyTorch checkpoint"
    else:
        torch.save({"state_dict": _Evil()}, path)
        expected = "could run code when loaded, so INT Studio refuses it"
    with pytest.raises(CheckpointError, match=expected) as info:
        load_checkpoint(path)
    # torch's own message advises weights_only=False: the one advice a user must never follow.
    assert "weights_only" not in str(info.value) and "will likely succeed" not in str(info.value)


def test_server_checkpoint_paths_stay_in_their_folders(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    ckpt = runs / "a" / "final.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"x")
    (tmp_path / "secret.pt").write_bytes(b"x")
    (runs / "link").symlink_to(tmp_path)
    assert server_checkpoint("a/final.pt", [runs]) == ckpt.resolve()
    assert server_checkpoint(str(ckpt), [runs]) == ckpt.resolve()
    monkeypatch.chdir(tmp_path)  # relative to the working folder, as a checkout's "runs/a/final.pt"
    assert server_checkpoint("runs/a/final.pt", [runs]) == ckpt.resolve()
    outside = "must lie in one of the checkpoint folders"
    for text in (str(tmp_path / "secret.pt"), "../secret.pt", "link/secret.pt", str(tmp_path / "absent.pt")):
        with pytest.raises(CheckpointError, match=outside):
            server_checkpoint(text, [runs])
    with pytest.raises(CheckpointError, match="no checkpoint 'a/other.pt' in the checkpoint folders"):
        server_checkpoint("a/other.pt", [runs])
    with pytest.raises(CheckpointError, match="is not a checkpoint: expected a file ending in"):
        server_checkpoint("/etc/passwd", [runs])
