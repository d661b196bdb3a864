"""Shared fixtures: tiny deterministic models and probe sets that run in milliseconds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from depara_core.models.sources import callable_spec
from depara_core.models.spec import LayerSpec, load_model
from depara_core.probes.probeset import ProbeSet

torch.set_num_threads(1)


class TinyNet(nn.Module):
    """conv → relu → conv → relu → pool → linear, with readable names."""

    def __init__(self, seed: int = 0, width: int = 6, inplace: bool = False) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(3, width, 3, padding=1)
        self.relu1 = nn.ReLU(inplace=inplace)
        self.conv2 = nn.Conv2d(width, width, 3, stride=2, padding=1)
        self.act2 = nn.Tanh()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(width * 4, 5)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act2(self.conv2(self.relu1(self.conv1(x))))
        return self.fc(self.pool(x).flatten(1))


TINY_LAYERS = ("conv1", "relu1", "conv2", "act2", "fc")


def tiny_spec(name: str = "tiny", seed: int = 0, **kwargs):
    return callable_spec(
        name,
        lambda: TinyNet(seed, **kwargs),
        layers=tuple(LayerSpec(n, n.upper()) for n in TINY_LAYERS),
        encoder="act2",
    )


@pytest.fixture
def tiny():
    return load_model(tiny_spec())


@pytest.fixture
def zoo():
    return [load_model(tiny_spec(f"m{i}", seed=i)) for i in range(4)]


def random_probes(n: int = 7, size: int = 12, seed: int = 0, name: str = "rand") -> ProbeSet:
    rng = np.random.default_rng(seed)
    return ProbeSet(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), tuple(f"{name}{i}" for i in range(n)), name)


@pytest.fixture
def probes():
    return random_probes()


def tiny_zoo():
    """A zoo of four tiny random networks (registered by tests as ``conftest:tiny_zoo``)."""
    from depara_core.zoos import make_zoo

    return make_zoo("tiny-test", lambda: [tiny_spec(f"tiny{i}", seed=i) for i in range(4)], default_probes=("noise", 6))
