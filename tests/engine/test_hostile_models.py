"""Models that exit, mix the batch or return no tensor get a clear error, never a silent exit or a wrong number."""

from __future__ import annotations

import sys

import pytest
import torch
from conftest import random_probes
from torch import nn

from depara_core.engine.run import compute_graphs
from depara_core.errors import GraphError, ModelError
from depara_core.models.sources import callable_spec
from depara_core.models.spec import load_model


def test_a_builder_that_exits_is_reported():
    for fn in (lambda: sys.exit(3), lambda: (_ for _ in ()).throw(KeyboardInterrupt())):
        with pytest.raises(ModelError, match="building model 'x' failed"):
            load_model(callable_spec("x", fn))


class _OneRow(nn.Module):
    """Returns the batch mean: one row copied for every probe (the bug that was accepted silently)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(x).mean(0, keepdim=True)


class _Exits(nn.Module):
    def forward(self, x):
        if x.shape[0] > 1:
            sys.exit(0)
        return x * 2


class _NoTensor(nn.Module):
    def forward(self, x):
        return {"not": "a tensor"}


@pytest.mark.parametrize("net, pattern", [(_OneRow, "gave 1 row\\(s\\) for a batch of 7"), (_Exits, "called exit"), (_NoTensor, "not a tensor")])
def test_bad_forwards_are_reported(net, pattern):
    model = load_model(callable_spec("bad", net))
    with pytest.raises(GraphError, match=pattern):
        compute_graphs(model, random_probes(7), ["output"], batch_size=7)
    assert torch.is_grad_enabled()
