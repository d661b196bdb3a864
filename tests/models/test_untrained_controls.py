"""Untrained controls: the same architecture with weights drawn afresh, reproducibly."""

from __future__ import annotations

import pytest
import torch

from depara_core.errors import ModelError
from depara_core.models.controls import reinitialise, untrained_spec
from depara_core.models.sources import callable_spec
from depara_core.models.spec import load_model


class _Scaled(torch.nn.Module):
    """A module holding a parameter directly (no reset_parameters), like a layer scale."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.gamma = torch.nn.Parameter(torch.full((4,), 5.0) + torch.arange(4.0))

    def forward(self, x):
        return self.bn(self.conv(x)) * self.gamma.view(1, -1, 1, 1)


def _trained() -> torch.nn.Module:
    torch.manual_seed(0)
    m = _Scaled()
    with torch.no_grad():
        m.conv.weight.add_(3.0)
        m.bn.weight.mul_(4.0)
        m.bn.bias.add_(1.0)
        m.bn.running_mean.fill_(7.0)
    return m


def test_every_parameter_is_redrawn_and_the_architecture_kept():
    trained, fresh = _trained(), reinitialise(_trained(), seed=1)
    for (name, a), (_, b) in zip(trained.named_parameters(), fresh.named_parameters()):
        assert a.shape == b.shape and not torch.equal(a, b), name
    assert torch.all(fresh.bn.running_mean == 0)  # normalisation statistics are reset too
    assert float(fresh.conv.weight.abs().mean()) < 1.0  # the conv's own initialiser, not the trained +3
    assert fresh.gamma.std() > 0 and float(fresh.gamma.abs().max()) < 20  # drawn at the trained scale
    again = reinitialise(_trained(), seed=1)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), again.state_dict().values()))  # reproducible
    other = reinitialise(_trained(), seed=2)
    assert not torch.equal(fresh.conv.weight, other.conv.weight)


def test_the_global_random_state_is_left_alone():
    model = _trained()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    reinitialise(model)
    assert torch.equal(torch.rand(3), expected)


def test_untrained_spec_loads_with_its_own_digest_and_refuses_torchscript():
    spec = callable_spec("net", _trained)
    ctrl = load_model(untrained_spec(spec))
    base = load_model(spec)
    assert ctrl.name == "net@untrained" and ctrl.digest != base.digest and ctrl.architecture == base.architecture
    scripted = torch.jit.script(torch.nn.Linear(2, 2))
    with pytest.raises(ModelError, match="TorchScript"):
        reinitialise(scripted)
