"""The compile option: segments compiled per captured layer give eager's graphs, compile once per
shape, keep captured outputs from later in-place operations, and refuse untraceable models clearly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from depara_core.cache import GraphCache
from depara_core.compare.terms import pairwise_terms
from depara_core.engine.graph import GraphOptions
from depara_core.engine.run import compute_graphs
from depara_core.errors import DeparaError, GraphError
from depara_core.models.preprocess import Preprocess
from depara_core.models.sources import callable_spec
from depara_core.models.spec import OUTPUT, load_model
from depara_core.probes.registry import load_builtin


class _Block(nn.Module):
    def __init__(self, c: int, drop_in_trace: bool = False) -> None:
        super().__init__()
        self.drop_in_trace = drop_in_trace
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.drop_in_trace:
            out.add_(x)  # in place, result unused: torch.fx drops it as dead code
        else:
            out = out.add_(x)  # in place on the captured output of bn2 (the loader turns off only inplace=True modules)
        return self.relu(out)


class _SmallResNet(nn.Module):
    def __init__(self, drop_in_trace: bool = False) -> None:
        super().__init__()
        self.conv, self.bn, self.relu = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True)
        self.block1, self.pool, self.block2 = _Block(8, drop_in_trace), nn.MaxPool2d(2), _Block(8)
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.pool(self.block1(self.relu(self.bn(self.conv(x))))))
        return self.head(x.mean((2, 3)))


def _model(seed: int, drop_in_trace: bool = False):
    def make() -> nn.Module:
        torch.manual_seed(seed)
        net = _SmallResNet(drop_in_trace)
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):  # non-trivial running statistics, as a trained network's
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
        return net

    return load_model(callable_spec(f"resnet{seed}{'-dropping' if drop_in_trace else ''}", make, preprocess=Preprocess()))


LAYERS = ["bn", "block1", "block2.bn2", "block2"]
"""``block2.bn2``'s output is overwritten in place by the residual sum after it."""


@pytest.mark.slow
def test_compiled_graphs_equal_eager_ones_and_each_segment_compiles_once(monkeypatch):
    models, probes = [_model(0), _model(1)], load_builtin("scenes", 10).resized((32, 32))
    eager = {m.name: compute_graphs(m, probes, LAYERS, GraphOptions(), batch_size=4) for m in models}
    # 10 probes in batches of 4: the last batch of 2 is padded, so nothing compiles twice
    monkeypatch.setattr(torch._dynamo.config, "error_on_recompile", True)
    compiled = {m.name: compute_graphs(m, probes, LAYERS, GraphOptions(compile=True), batch_size=4) for m in models}
    for name in eager:
        for layer in LAYERS:
            a, b = eager[name][layer], compiled[name][layer]
            cos = np.sum(a.nodes.astype(np.float64) * b.nodes.astype(np.float64), axis=1)
            assert cos.min() > 0.999, (name, layer, cos.min())  # float16 unit maps: 1e-3 is their rounding
            np.testing.assert_allclose(b.node_norms, a.node_norms, rtol=1e-4)
            np.testing.assert_allclose(b.gram, a.gram, rtol=1e-4, atol=1e-6 * np.abs(a.gram).max())
    for layer in LAYERS:
        te = pairwise_terms({n: g[layer] for n, g in eager.items()})
        tc = pairwise_terms({n: g[layer] for n, g in compiled.items()})
        d_v, d_e = np.abs(tc.s_V - te.s_V).max(), np.abs(tc.s_E - te.s_E).max()
        print(f"\n  compile vs eager fp32 at {layer} (CPU): max |Δs_V| {d_v:.1e}, max |Δs_E| {d_e:.1e}")
        assert d_v <= 2e-3 and d_e <= 2e-3


def test_compile_refuses_an_untraceable_model_with_a_way_out():
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            y = self.conv(x)
            return y if y.sum() > 0 else -y  # control flow on values: torch.fx cannot trace it

    model = load_model(callable_spec("branchy", Branchy, preprocess=Preprocess()))
    probes = load_builtin("noise", 4).resized((16, 16))
    with pytest.raises(GraphError, match="cannot be traced for torch.compile") as err:
        compute_graphs(model, probes, ["conv"], GraphOptions(compile=True))
    assert "without the compile option" in err.value.hint
    assert not any(m.training for m in model.module.modules())  # tracing visits train mode; it is left as it was
    assert compute_graphs(model, probes, ["conv"], GraphOptions())["conv"].nodes.shape[0] == 4  # eager still works


def test_the_models_output_runs_eagerly_under_compile_with_eagers_numbers():
    model, probes = _model(2), load_builtin("noise", 6).resized((16, 16))
    a = compute_graphs(model, probes, [OUTPUT], GraphOptions())[OUTPUT]
    b = compute_graphs(model, probes, [OUTPUT], GraphOptions(compile=True))[OUTPUT]
    np.testing.assert_array_equal(a.nodes, b.nodes)
    np.testing.assert_array_equal(a.gram, b.gram)


def test_compile_is_keyed_checked_and_defined_for_gradient_x_input_only():
    model, probes = _model(3), load_builtin("noise", 4)
    assert GraphCache.graph_key(model, probes, "bn", GraphOptions(compile=True)) != GraphCache.graph_key(model, probes, "bn", GraphOptions())
    assert "compile" not in GraphOptions().key()  # keys written before the option existed stay valid
    with pytest.raises(DeparaError, match="Gradient\\*Input only"):
        GraphOptions(compile=True, method="saliency")
    with pytest.raises(DeparaError, match="yes/no"):
        GraphOptions(compile="yes")


def test_compile_refuses_a_trace_that_drops_an_in_place_operation():
    """torch.fx removes ``out.add_(x)`` as dead code; the graphs would silently lose the residual."""
    model, probes = _model(4, drop_in_trace=True), load_builtin("noise", 4).resized((16, 16))
    with pytest.raises(GraphError, match="computes other values at layer 'block1'") as err:
        compute_graphs(model, probes, ["block1"], GraphOptions(compile=True))
    assert "without the compile option" in err.value.hint


def test_timm_models_trace_with_timms_own_leaf_modules():
    """timm's "SAME" padding computes pads from shapes, which torch.fx cannot trace through; kept
    whole as timm's feature extraction does, the split computes what the model does."""
    from timm.layers import create_conv2d

    from depara_core.engine.compiled import split_at_layers

    torch.manual_seed(0)
    net = nn.Sequential(create_conv2d(3, 4, 3, stride=2, padding="same"), nn.ReLU(), create_conv2d(4, 4, 3, stride=2, padding="same")).eval()
    assert type(net[0]).__name__ == "Conv2dSame"  # the dynamic-padding module, not a plain Conv2d
    split, x = split_at_layers(net, ["1", "2"]), torch.rand(2, 3, 17, 17)
    with torch.no_grad():
        out = split(x)
        np.testing.assert_array_equal(out["2"].numpy(), net(x).numpy())
        assert torch.equal(out["1"], net[1](net[0](x)))
