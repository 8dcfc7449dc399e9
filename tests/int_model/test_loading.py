"""ModelKey's text form round-trips, and load_model's demo fallback: the shipped model, else the untrained one."""

import pytest
import torch

import int_model.checkpoint as checkpoint_module
from int_model import build_model, save_checkpoint
from int_model.loading import UNTRAINED_VARIANT, ModelKey, load_model


def test_keys_round_trip_through_their_text(tmp_path):
    path = tmp_path / "a.pt"
    for key in (ModelKey.checkpoint(path), ModelKey.variant("tiny"), ModelKey.demo()):
        assert ModelKey.parse(str(key)) == key
    assert str(ModelKey.variant("tiny")) == "fresh:tiny"
    assert ModelKey.checkpoint(tmp_path / "x" / ".." / "a.pt") == ModelKey.checkpoint(path)
    for bad in ("tiny", "fresh:nope", "checkpoint:", "model:a.pt"):
        with pytest.raises(ValueError):
            ModelKey.parse(bad)


def test_demo_key_loads_the_shipped_model_else_the_untrained_one(tmp_path, monkeypatch, body_model):
    demo = save_checkpoint(tmp_path / "demo.pt", build_model("tiny", body_model=body_model), meta={"phase": "demo"})
    monkeypatch.setattr(checkpoint_module, "DEMO_CHECKPOINT", demo)
    loaded = load_model(ModelKey.demo(), body_model=body_model)
    assert loaded.demo and not loaded.untrained and loaded.checkpoint == demo.resolve()
    assert loaded.meta["phase"] == "demo" and not loaded.model.training

    monkeypatch.setattr(checkpoint_module, "DEMO_CHECKPOINT", tmp_path / "missing.pt")
    state = torch.random.get_rng_state()
    first = load_model(ModelKey.demo(), body_model=body_model)
    assert first.untrained and first.key == ModelKey.variant(UNTRAINED_VARIANT) and first.checkpoint is None
    assert torch.equal(torch.random.get_rng_state(), state)  # the global random state is left alone
    again = load_model(ModelKey.variant(UNTRAINED_VARIANT), body_model=body_model)
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()))


def test_a_command_line_chooses_checkpoint_then_variant_then_demo():
    assert ModelKey.choose(checkpoint="a.pt", variant="tiny") == ModelKey.checkpoint("a.pt")
    assert ModelKey.choose(variant="tiny") == ModelKey.variant("tiny")
    assert ModelKey.choose() == ModelKey.demo()
