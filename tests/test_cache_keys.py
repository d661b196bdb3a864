"""Cache keys cover everything that changes a stored result: terms options, model code, sources."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from conftest import random_probes
from torch import nn

from depara_core.cache import GraphCache
from depara_core.compare import workflows
from depara_core.compare.workflows import zoo_terms
from depara_core.engine.graph import GraphOptions
from depara_core.engine.run import compute_graphs
from depara_core.models.sources import callable_spec
from depara_core.models.spec import load_model


def _nets(k: int = 3):
    return [load_model(callable_spec(f"m{i}", lambda i=i: torch.manual_seed(i) and nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh(), nn.Conv2d(4, 4, 3)))) for i in range(k)]


def test_terms_are_not_served_across_edge_centring(tmp_path):
    """A centred run's s_E and RSA must not be served to a later uncentred run on the same cache."""
    nets, probes, cache = _nets(), random_probes(9), GraphCache(tmp_path)
    centred = zoo_terms(nets, probes, GraphOptions(center_edges=True), cache=cache)
    plain = zoo_terms(nets, probes, GraphOptions(), cache=cache)
    fresh = zoo_terms(nets, probes, GraphOptions())
    np.testing.assert_allclose(plain.s_E, fresh.s_E, atol=1e-9)
    assert not np.allclose(plain.s_E, centred.s_E)


@pytest.mark.parametrize("change", [{"baselines": False}, {"node_scale": 1e-3}])
def test_terms_options_have_their_own_entries(tmp_path, change):
    nets, probes, cache = _nets(), random_probes(9), GraphCache(tmp_path)
    base = zoo_terms(nets, probes, cache=cache)
    other = zoo_terms(nets, probes, cache=cache, **change)
    if "node_scale" in change:
        assert other.node_scale == 1e-3 and base.node_scale == 1.0
    else:
        assert other.rsa is None and base.rsa is not None


def test_every_option_is_in_the_graph_key_or_the_terms_key():
    """A new GraphOptions field must be placed in one of the two keys (or this test fails)."""
    opts = GraphOptions()
    # options added later enter the key only away from their defaults (older entries stay valid)
    later = GraphOptions(feature_sketch_dim=1024, precision="bf16", input_space="pixels", compile=True)
    covered = set(opts.key()) | set(opts.terms_key()) | set(later.key())
    assert {f.name for f in dataclasses.fields(GraphOptions)} == covered
    for change in ({"feature_sketch_dim": 1024}, {"precision": "bf16"}, {"precision": "tf32"}, {"input_space": "pixels"}, {"compile": True}):
        assert dataclasses.replace(opts, **change).key() != opts.key()


class _Doubling(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(x) * 2


class _Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return torch.tanh(self.conv(x))


def _same_weights(cls):
    net = cls()
    with torch.no_grad():
        net.conv.weight.copy_(torch.linspace(-1, 1, net.conv.weight.numel()).view_as(net.conv.weight))
        net.conv.bias.zero_()
    return net


def test_models_sharing_weights_but_not_code_get_their_own_graphs(tmp_path):
    a = load_model(callable_spec("net", lambda: _same_weights(_Doubling)))
    b = load_model(callable_spec("net", lambda: _same_weights(_Plain)))
    assert a.digest == b.digest and a.architecture != b.architecture
    probes, cache = random_probes(6), GraphCache(tmp_path)
    assert cache.graph_key(a, probes, "output", GraphOptions()) != cache.graph_key(b, probes, "output", GraphOptions())
    ga = compute_graphs(a, probes, ["output"], cache=cache)["output"]
    gb = compute_graphs(b, probes, ["output"], cache=cache)["output"]
    assert not np.allclose(ga.gram, gb.gram)


def test_architecture_variants_with_identical_parameters_differ():
    """Two Sequentials with the same state_dict and different parameter-free modules."""
    a = load_model(callable_spec("x", lambda: torch.manual_seed(0) and nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())))
    b = load_model(callable_spec("x", lambda: torch.manual_seed(0) and nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh())))
    c = load_model(callable_spec("x", lambda: torch.manual_seed(0) and nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())))
    assert a.digest == b.digest == c.digest
    assert len({a.architecture, b.architecture, c.architecture}) == 3


def test_second_call_is_served_from_the_cache(tmp_path, monkeypatch):
    """Cache use is asserted by counting engine runs, not by equal numbers."""
    nets, probes, cache = _nets(), random_probes(8), GraphCache(tmp_path)
    calls = []
    real = workflows.compute_graphs

    def counting(*args, **kwargs):
        calls.append(args[0].name)
        return real(*args, **kwargs)

    monkeypatch.setattr(workflows, "compute_graphs", counting)
    zoo_terms(nets, probes, cache=cache)
    assert calls == ["m0", "m1", "m2"]
    zoo_terms(nets, probes, cache=cache)
    assert calls == ["m0", "m1", "m2"]  # the terms entry answered: no engine run at all
