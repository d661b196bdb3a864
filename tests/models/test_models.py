"""Model specs and loaders: eval mode, digests, checkpoints (safe loading only), sources."""

from __future__ import annotations

import pickle

import pytest
import torch
import torchvision
from conftest import TinyNet, tiny_spec
from safetensors.torch import save_file

from depara_core.errors import LayerError, ModelError
from depara_core.models.checkpoints import apply_checkpoint, load_checkpoint
from depara_core.models.sources import callable_spec, parse_source, torchscript_spec, torchvision_spec
from depara_core.models.spec import OUTPUT, load_model


def test_loaded_model_is_frozen_in_eval_mode(tiny):
    assert not tiny.module.training
    assert not any(p.requires_grad for p in tiny.module.parameters())
    assert tiny.layer_names()[-1] == OUTPUT and "conv1" in tiny.layer_names()
    assert [layer.title for layer in tiny.selectable_layers()][:2] == ["CONV1", "RELU1"]


def test_digest_follows_the_weights():
    a, b, c = load_model(tiny_spec(seed=0)), load_model(tiny_spec(seed=0)), load_model(tiny_spec(seed=1))
    assert a.digest == b.digest != c.digest


def test_default_layers_are_the_top_two_levels():
    spec = callable_spec("seq", lambda: torch.nn.Sequential(torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.ReLU()), torch.nn.Flatten()))
    assert [layer.name for layer in load_model(spec).selectable_layers()] == ["0.0", "0.1", "1"]


def test_state_dict_and_safetensors_round_trip(tmp_path):
    net = TinyNet(3)
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "w.pth")
    save_file(net.state_dict(), str(tmp_path / "w.safetensors"))
    for name in ("w.pth", "w.safetensors"):
        fresh = apply_checkpoint(TinyNet(0), load_checkpoint(tmp_path / name))
        assert all(torch.equal(fresh.state_dict()[k], v) for k, v in net.state_dict().items())


def test_pickled_code_is_never_run(tmp_path):
    class Payload:
        def __reduce__(self):
            return (exec, ("open('%s', 'w').write('pwned')" % (tmp_path / "pwned").as_posix(),))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"w": Payload()}))
    with pytest.raises(ModelError, match="cannot be read safely"):
        load_checkpoint(tmp_path / "evil.pth")
    assert not (tmp_path / "pwned").exists()


def test_checkpoint_that_does_not_fit_names_the_keys(tmp_path):
    state = TinyNet(0).state_dict()
    state.pop("fc.bias")
    state["extra.weight"] = torch.zeros(2)
    state["conv1.weight"] = torch.zeros(1, 3, 3, 3)
    with pytest.raises(ModelError, match=r"missing keys \(1\): fc.bias.*unexpected keys \(1\): extra.weight.*shape mismatches \(1\): conv1.weight"):
        apply_checkpoint(TinyNet(0), state)
    with pytest.raises(ModelError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pth")


def test_torchvision_checkpoint_and_missing_hub_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(ModelError, match="not on this machine"):
        load_model(torchvision_spec("resnet18"))
    net = torchvision.models.get_model("resnet18", weights=None, num_classes=7)
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    m = load_model(torchvision_spec("resnet18", tmp_path / "r18.pth", num_classes=7))
    assert m.spec.preprocess.size == (224, 224) and m.module.fc.out_features == 7
    with pytest.raises(ModelError, match="does not fit the architecture.*fc.weight"):
        load_model(torchvision_spec("resnet18", tmp_path / "r18.pth"))
    with pytest.raises(ModelError, match="no architecture 'resnet9000'"):
        torchvision_spec("resnet9000")


def test_torchscript_models_expose_only_their_output(tmp_path):
    torch.jit.save(torch.jit.script(TinyNet(0)), tmp_path / "net.pt")
    m = load_model(torchscript_spec(tmp_path / "net.pt"))
    assert m.layer_names() == [OUTPUT] and m.scripted
    with pytest.raises(LayerError, match="TorchScript"):
        m.check_layers(["conv1"])


def test_callable_specs_and_their_errors():
    spec = parse_source("tv=torchvision.models:resnet18")
    assert spec.name == "tv" and spec.source == "callable:torchvision.models:resnet18"
    for arg, pattern in (
        ("noequals", "not understood"),
        ("=mod:fn", "empty name"),
        ("", "empty"),
    ):
        with pytest.raises(ModelError, match=pattern):
            parse_source(arg)
    for target, pattern in (("nomodule_xyz:f", "cannot import"), ("torch:not_there", "no attribute"), ("json:__doc__", "not callable")):
        with pytest.raises(ModelError, match=pattern):
            load_model(callable_spec("x", target))
    with pytest.raises(ModelError, match="returned int"):
        load_model(callable_spec("x", lambda: 3))
    with pytest.raises(ModelError, match="building model 'x' failed: ZeroDivisionError"):
        load_model(callable_spec("x", lambda: 1 / 0))
