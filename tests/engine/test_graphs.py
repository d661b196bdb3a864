"""The graph engine against plain autograd, captum and numpy, and its invariances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from captum.attr import InputXGradient
from conftest import TINY_LAYERS, TinyNet, random_probes, tiny_spec
from torch import nn

from depara_core.engine.capture import capture_layers
from depara_core.engine.graph import Cancelled, GraphOptions
from depara_core.engine.run import compute_graphs, iter_graphs
from depara_core.engine.sketch import count_sketch
from depara_core.errors import GraphError, LayerError, ProbeError
from depara_core.models.preprocess import Preprocess
from depara_core.models.sources import callable_spec
from depara_core.models.spec import LayerSpec, load_model


def layer_output(model: nn.Module, name: str, x: torch.Tensor) -> torch.Tensor:
    """The output of a named module, with a plain forward hook (independent of the engine)."""
    store = {}
    h = dict(model.named_modules())[name].register_forward_hook(lambda m, i, o: store.setdefault("f", o))
    try:
        model(x)
    finally:
        h.remove()
    return store["f"]


def autograd_node(model: nn.Module, name: str, x1: torch.Tensor, objective: str = "sqnorm") -> np.ndarray:
    """x * d obj(F(x))/dx for ONE probe, with nothing but torch.autograd."""
    x1 = x1.clone().requires_grad_(True)
    f = layer_output(model, name, x1).flatten()
    obj = {"sqnorm": (f * f).sum(), "mean": f.mean(), "sum": f.sum()}[objective]
    (g,) = torch.autograd.grad(obj, x1)
    return (x1 * g).detach().double().flatten().numpy()


def cosine_matrix(feats: np.ndarray) -> np.ndarray:
    u = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    return u @ u.T


@pytest.mark.parametrize("objective", ["sqnorm", "mean", "sum"])
def test_nodes_match_plain_autograd_per_probe(tiny, probes, objective):
    graphs = compute_graphs(tiny, probes, list(TINY_LAYERS), GraphOptions(objective=objective), batch_size=3)
    x = tiny.spec.preprocess(probes.images)
    for layer in TINY_LAYERS:
        g = graphs[layer]
        for i in range(len(probes)):
            ref = autograd_node(tiny.module, layer, x[i : i + 1], objective)
            assert g.node_norms[i] == pytest.approx(np.linalg.norm(ref), rel=1e-4)
            np.testing.assert_allclose(g.nodes[i].astype(np.float64), ref / np.linalg.norm(ref), atol=2e-3)


def test_default_method_equals_captum_input_x_gradient(tiny, probes):
    fast = compute_graphs(tiny, probes, ["conv2"])["conv2"]
    x = tiny.spec.preprocess(probes.images).requires_grad_(True)

    def scalar(inp):
        f = layer_output(tiny.module, "conv2", inp).flatten(1)
        return (f * f).sum(1)

    ref = InputXGradient(scalar).attribute(x).detach().flatten(1).double().numpy()
    np.testing.assert_allclose(fast.node_norms, np.linalg.norm(ref, axis=1), rtol=1e-4)
    np.testing.assert_allclose(fast.nodes.astype(np.float64), ref / np.linalg.norm(ref, axis=1, keepdims=True), atol=2e-3)


def test_registry_path_equals_fast_path(tiny, probes):
    """The captum-backed registry entry of the default method gives the engine's own nodes."""
    fast = compute_graphs(tiny, probes, ["conv2"])["conv2"]
    via_registry = next(iter_graphs(tiny, probes, ["conv2"], GraphOptions(method="gradient_x_input"), batch_size=2))
    assert np.array_equal(fast.nodes, via_registry.nodes)


def test_edges_are_cosines_of_features(tiny, probes):
    g = compute_graphs(tiny, probes, ["relu1"])["relu1"]
    x = tiny.spec.preprocess(probes.images)
    with torch.no_grad():
        feats = layer_output(tiny.module, "relu1", x).flatten(1).double().numpy()
    np.testing.assert_allclose(g.edges, cosine_matrix(feats), atol=1e-4)  # features are stored as float16 unit rows
    np.testing.assert_allclose(g.feature_sums, feats.sum(1), rtol=1e-5)
    assert g.feature_dim == feats.shape[1]
    centred = GraphOptions(center_edges=True)
    gc = compute_graphs(tiny, probes, ["relu1"], centred)["relu1"]
    np.testing.assert_allclose(gc.edges, cosine_matrix(feats - feats.mean(0)), atol=1e-3)


def test_batch_size_and_memory_groups_do_not_change_results(tiny, probes):
    one = compute_graphs(tiny, probes, list(TINY_LAYERS), batch_size=16)
    # a budget that fits about one large layer at a time forces several groups (forward passes)
    from depara_core.engine.plan import plan_layer_groups

    dims = {"conv1": 864, "relu1": 864, "conv2": 216, "act2": 216, "fc": 5}
    groups, spilled = plan_layer_groups(list(TINY_LAYERS), dims, 432, len(probes), GraphOptions(), 35_000)
    assert len(groups) == 3 and not spilled
    grouped = compute_graphs(tiny, probes, list(TINY_LAYERS), batch_size=2, memory_budget=35_000)
    for layer in TINY_LAYERS:
        np.testing.assert_allclose(one[layer].gram, grouped[layer].gram, rtol=1e-5)
        np.testing.assert_allclose(one[layer].nodes.astype(float), grouped[layer].nodes.astype(float), atol=1e-3)


def test_edges_invariant_to_feature_scale(probes):
    class Scaled(nn.Module):
        def __init__(self, k):
            super().__init__()
            self.net, self.k = TinyNet(3), k

        def forward(self, x):
            return self.net(x) * self.k

    a = load_model(callable_spec("a", lambda: Scaled(1.0)))
    b = load_model(callable_spec("b", lambda: Scaled(37.0)))
    ga = compute_graphs(a, probes, ["output"])["output"]
    gb = compute_graphs(b, probes, ["output"])["output"]
    np.testing.assert_allclose(ga.edges, gb.edges, atol=1e-4)
    np.testing.assert_allclose(ga.nodes.astype(float), gb.nodes.astype(float), atol=1e-3)
    np.testing.assert_allclose(gb.node_norms / ga.node_norms, 37.0**2, rtol=1e-3)


def test_inplace_operations_after_a_hooked_layer_are_safe(probes):
    class InplaceAfter(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            torch.manual_seed(0)

        def forward(self, x):
            y = self.conv(x)
            y.mul_(2.0)  # functional in-place op on the captured output
            return torch.relu_(y)

    plain = nn.Conv2d(3, 4, 3)
    m = load_model(callable_spec("inplace", InplaceAfter))
    plain.load_state_dict(m.module.conv.state_dict())
    g = compute_graphs(m, probes, ["conv"])["conv"]
    x = m.spec.preprocess(probes.images)
    with torch.no_grad():
        ref = plain(x).flatten(1).double().numpy()
    np.testing.assert_allclose(g.edges, cosine_matrix(ref), atol=1e-4)


def test_inplace_relu_modules_are_switched_off(probes):
    m = load_model(tiny_spec(inplace=True))
    assert m.module.relu1.inplace is False
    ref = load_model(tiny_spec(inplace=False))
    a = compute_graphs(m, probes, ["conv1"])["conv1"]
    b = compute_graphs(ref, probes, ["conv1"])["conv1"]
    assert np.array_equal(a.nodes, b.nodes)


def test_module_called_twice_captures_its_last_call(probes):
    class Reuse(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2, self.act = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3), nn.Tanh()

        def forward(self, x):
            return self.act(self.c2(self.act(self.c1(x))))

    m = load_model(callable_spec("reuse", Reuse))
    g = compute_graphs(m, probes, ["act"])["act"]
    x = m.spec.preprocess(probes.images)
    with torch.no_grad():
        ref = m.module(x).flatten(1).double().numpy()
    np.testing.assert_allclose(g.edges, cosine_matrix(ref), atol=1e-4)


def test_forward_stops_after_the_deepest_requested_layer(probes):
    class Explodes(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.calls = 0

        def forward(self, x):
            y = self.conv(x)
            self.calls += 1
            if self.calls > 4:  # the shape-discovery pass and the three behaviour checks run the whole model
                raise AssertionError("ran past the requested layer")
            return y

    m = load_model(callable_spec("x", Explodes))
    compute_graphs(m, probes, ["conv"])  # would raise if the forward ran on after "conv"


def test_hooks_are_removed_after_use(tiny, probes):
    compute_graphs(tiny, probes, list(TINY_LAYERS))
    assert all(not mod._forward_hooks for mod in tiny.module.modules())
    with pytest.raises(RuntimeError):
        with capture_layers(tiny.module, ["conv1"]):
            raise RuntimeError("boom")
    assert all(not mod._forward_hooks for mod in tiny.module.modules())


class _UpToAct2(nn.Module):
    """TinyNet's ||act2(x)||² per probe as a module of its own modules: the reference scalar function."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.conv1, self.relu1, self.conv2, self.act2 = net.conv1, net.relu1, net.conv2, net.act2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.act2(self.conv2(self.relu1(self.conv1(x))))
        return (f * f).flatten(1).sum(1)


def _captum_reference(method: str, ref: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The captum class of each registered method, called directly on the reference function."""
    from captum.attr import DeepLift, GuidedBackprop, InputXGradient, IntegratedGradients, NoiseTunnel, Saliency

    x = x.clone().requires_grad_(True)
    if method == "saliency":
        return Saliency(ref).attribute(x, abs=True)
    if method == "integrated_gradients":
        return IntegratedGradients(ref).attribute(x, baselines=torch.zeros_like(x), n_steps=16, internal_batch_size=16)
    if method == "smoothgrad":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return NoiseTunnel(InputXGradient(ref)).attribute(x, nt_type="smoothgrad", nt_samples=8, stdevs=0.1, nt_samples_batch_size=8)
    if method == "deeplift":
        return DeepLift(ref).attribute(x, baselines=torch.zeros_like(x))
    return GuidedBackprop(ref).attribute(x)


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients", "smoothgrad", "deeplift", "guided_backprop"])
def test_other_attribution_methods_equal_their_captum_class(tiny, probes, method):
    """Every captum-backed method's nodes equal captum's class on the same scalar function (all probes
    in one batch, so that SmoothGrad draws the same noise)."""
    g = compute_graphs(tiny, probes, ["act2"], GraphOptions(method=method), batch_size=len(probes))["act2"]
    x = tiny.spec.preprocess(probes.images)
    want = _captum_reference(method, _UpToAct2(tiny.module), x).detach().flatten(1).double().numpy()
    want_units = want / np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(g.nodes.astype(float), want_units, atol=2e-3)
    np.testing.assert_allclose(g.node_norms, np.linalg.norm(want, axis=1), rtol=1e-4)
    base = compute_graphs(tiny, probes, ["act2"])["act2"]
    np.testing.assert_allclose(g.gram, base.gram, rtol=1e-5)  # edges do not depend on the method


def test_integrated_gradients_is_complete(tiny, probes):
    """An axiom checked without captum: IG attributions sum to f(x) − f(0) (up to the quadrature)."""
    opts = GraphOptions(method="integrated_gradients", method_params=(("n_steps", 64),))
    g = compute_graphs(tiny, probes, ["act2"], opts)["act2"]
    ref = _UpToAct2(tiny.module)
    x = tiny.spec.preprocess(probes.images)
    with torch.no_grad():
        gap = (ref(x) - ref(torch.zeros_like(x))).double().numpy()
    sums = (g.nodes.astype(np.float64) * g.node_norms[:, None]).sum(1)
    np.testing.assert_allclose(sums, gap, rtol=2e-2, atol=1e-3 * np.abs(gap).max())


def test_channel_reductions(tiny, probes):
    full = compute_graphs(tiny, probes, ["conv2"])["conv2"]
    mean = compute_graphs(tiny, probes, ["conv2"], GraphOptions(node_reduce="channel_mean"))["conv2"]
    absm = compute_graphs(tiny, probes, ["conv2"], GraphOptions(node_reduce="channel_abs_mean"))["conv2"]
    raw = full.nodes.astype(np.float64).reshape(len(probes), 3, 12, 12) * full.node_norms[:, None, None, None]
    for g, ref in ((mean, raw.mean(1)), (absm, np.abs(raw).mean(1))):
        assert g.node_shape == (12, 12)
        ref = ref.reshape(len(probes), -1)
        np.testing.assert_allclose(g.nodes.astype(float), ref / np.linalg.norm(ref, axis=1, keepdims=True), atol=3e-3)


def test_sketched_nodes_keep_node_similarity():
    probes = random_probes(24, 32)
    a = load_model(tiny_spec("a", seed=1))
    b = load_model(tiny_spec("b", seed=2))
    exact = [compute_graphs(m, probes, ["conv2"])["conv2"] for m in (a, b)]
    sk = [compute_graphs(m, probes, ["conv2"], GraphOptions(node_storage="sketch", sketch_dim=2048))["conv2"] for m in (a, b)]
    from depara_core.compare.pairwise import node_cosines

    assert sk[0].sketched and sk[0].nodes.shape == (24, 2048)
    err = node_cosines(*sk) - node_cosines(*exact)
    assert abs(err.mean()) < 0.01  # s_V error, measured
    assert err.std() < 2 * np.sqrt(2 / 2048)


def test_count_sketch_is_unbiased_with_bounded_error():
    gen = torch.Generator().manual_seed(0)
    u = torch.nn.functional.normalize(torch.randn(200, 5000, generator=gen, dtype=torch.float64), dim=1)
    v = torch.nn.functional.normalize(u + 0.7 * torch.randn(200, 5000, generator=gen, dtype=torch.float64), dim=1)
    true = (u * v).sum(1)
    est = (count_sketch(u, 1024) * count_sketch(v, 1024)).sum(1)
    err = (est - true).numpy()
    assert abs(err.mean()) < 3 * np.sqrt(2 / 1024) / np.sqrt(200)
    assert err.std() < np.sqrt(2 / 1024)


def test_unknown_layer_lists_valid_names(tiny, probes):
    with pytest.raises(LayerError, match=r"no layer named 'conv9'.*conv1, relu1, conv2"):
        compute_graphs(tiny, probes, ["conv9"])


def test_all_zero_features_are_reported(probes):
    class Dead(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3)
            nn.init.zeros_(self.conv.weight)
            nn.init.zeros_(self.conv.bias)

        def forward(self, x):
            return self.conv(x)

    m = load_model(callable_spec("dead", Dead))
    with pytest.raises(GraphError, match="all zero"):
        compute_graphs(m, probes, ["conv"])


def test_nan_attributions_are_reported(probes):
    class Nan(nn.Module):
        def forward(self, x):
            return x * torch.tensor(float("nan"))

    with pytest.raises(GraphError, match="NaN or Inf"):
        compute_graphs(load_model(callable_spec("nan", Nan)), probes, ["output"])


def test_a_layer_over_the_budget_is_spilled_not_refused(tiny, probes, tmp_path, monkeypatch):
    """Features that do not fit go to a memory-mapped file; the graphs are the same."""
    from depara_core.engine.plan import plan_computation

    monkeypatch.setenv("DEPARA_SPILL_DIR", str(tmp_path))
    free = compute_graphs(tiny, probes, ["conv1", "act2"])
    plan = plan_computation(tiny, probes, ["conv1", "act2"], memory_budget=20_000)
    assert "conv1" in plan.spilled and "on disk" in plan.describe(len(probes), GraphOptions())
    tight = compute_graphs(tiny, probes, ["conv1", "act2"], memory_budget=20_000)
    for layer in ("conv1", "act2"):
        np.testing.assert_allclose(tight[layer].gram, free[layer].gram, rtol=1e-6)
        np.testing.assert_allclose(tight[layer].nodes.astype(float), free[layer].nodes.astype(float), atol=2e-4)  # float16 maps; batch sizes differ
    assert list(tmp_path.iterdir()) == []  # the spill file is unlinked


def _resident_bytes(array: np.ndarray) -> int:
    """Rss of the mapping that holds ``array`` (``/proc/self/smaps``)."""
    where, rss, inside = array.ctypes.data, 0, False
    for line in open("/proc/self/smaps"):
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            lo, hi = (int(x, 16) for x in head.split("-"))
            inside = lo <= where < hi
        elif inside and head == "Rss:":
            rss = int(line.split()[1]) * 1024
    return rss


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="resident pages are read from Linux /proc")
def test_spilled_features_leave_the_resident_set_and_keep_their_values(tmp_path, monkeypatch):
    from depara_core.engine.run import _spill_store, _unmap_pages

    monkeypatch.setenv("DEPARA_SPILL_DIR", str(tmp_path))
    store = _spill_store(64, 2**16)  # 8 MiB
    values = np.random.default_rng(0).standard_normal((64, 2**16)).astype(np.float16)
    store[:] = values
    assert _resident_bytes(store) >= 8 * 2**20 * 0.9
    _unmap_pages(store)
    assert _resident_bytes(store) < 2**20
    np.testing.assert_array_equal(store, values)  # the written values come back from the file


def test_a_budget_too_small_even_for_the_maps_says_what_to_do(tiny, probes):
    with pytest.raises(ProbeError, match="even with its features on disk.*--memory-budget"):
        compute_graphs(tiny, probes, ["conv1"], memory_budget=2_000)


def test_progress_can_cancel_and_finished_layers_are_kept(tiny, probes, tmp_path):
    from depara_core.cache import GraphCache

    cache = GraphCache(tmp_path)
    seen = []

    def stop_in_second_group(done, total, message):  # progress counts probes over both groups
        seen.append((done, total))
        return done <= total // 2

    # 3/4 of the budget holds stored layers: conv1 alone (18.5 kB) fills it, so fc is a second group
    with pytest.raises(Cancelled):
        compute_graphs(tiny, probes, ["conv1", "fc"], cache=cache, batch_size=4, memory_budget=26_700, progress=stop_in_second_group)
    done, total = seen[-1]
    assert total == 2 * len(probes) and len(probes) < done < total  # stopped after fc's first batch
    assert (len(probes), total) in seen  # where the second group started
    assert cache.load_graph(tiny, probes, "conv1", GraphOptions()) is not None
    assert cache.load_graph(tiny, probes, "fc", GraphOptions()) is None
    assert cache.checkpoints(tiny, probes, GraphOptions()).load("fc").done == done - len(probes)  # its batches so far are kept


def test_some_zero_features_are_reported_and_count_as_zero_cosine():
    import numpy as np

    from depara_core.compare.pairwise import node_cosines
    from depara_core.engine.graph import DegenerateGraphWarning
    from depara_core.probes.probeset import ProbeSet

    class Gate(nn.Module):
        """Passes bright images, zeroes dark ones (like a dead ReLU code)."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.conv(x) * (x.mean(dim=(1, 2, 3), keepdim=True) > 0.5)

    rng = np.random.default_rng(0)
    imgs = rng.integers(150, 256, (6, 10, 10, 3), dtype=np.uint8)
    imgs[[1, 4]] //= 4  # two dark probes
    probes = ProbeSet(imgs, tuple(f"p{i}" for i in range(6)))
    m = load_model(callable_spec("gate", Gate))
    with pytest.warns(DegenerateGraphWarning, match=r"gate/output: the attribution maps of 2 of 6 probes are all zero \(p1, p4\)"):
        g = compute_graphs(m, probes, ["output"])["output"]
    assert len(g.notes) == 2 and "features of 2 of 6 probes" in g.notes[1]
    e = g.edges
    assert np.all(e[1, [0, 2, 3, 4, 5]] == 0) and e[1, 1] == 1 and np.all(np.abs(e[0, [2, 3, 5]]) > 0)
    other = compute_graphs(load_model(tiny_spec()), probes, ["conv1"])["conv1"]
    cos = node_cosines(g, other)
    assert cos[1] == 0 and cos[4] == 0 and np.all(cos[[0, 2, 3, 5]] != 0)


# ---- Gradient*Input in the probes' pixel space --------------------------------------------------
class _Normalise(nn.Module):
    def __init__(self, mean, std) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


_MEAN, _STD, _RANGE = (0.4, 0.5, 0.6), (0.2, 0.3, 0.25), (-1.0, 2.0)


def _normalised_outside():
    prep = Preprocess(value_range=_RANGE, mean=_MEAN, std=_STD)
    return load_model(callable_spec("outside", lambda: TinyNet(3), preprocess=prep, layers=(LayerSpec("conv2", "c"),), encoder="conv2"))


def test_pixel_space_nodes_match_autograd_through_the_preprocessing(probes):
    model = _normalised_outside()
    g = compute_graphs(model, probes, ["conv2"], GraphOptions(input_space="pixels"))["conv2"]
    net = model.module
    lo, hi = _RANGE
    for i in range(len(probes)):
        p = torch.from_numpy(probes.images[i : i + 1].astype(np.float32) / 255).permute(0, 3, 1, 2).requires_grad_(True)
        x = _Normalise(_MEAN, _STD)(p * (hi - lo) + lo)
        f = layer_output(net, "conv2", x).flatten()
        (grad,) = torch.autograd.grad((f * f).sum(), p)
        ref = (p * grad).detach().double().flatten().numpy()
        np.testing.assert_allclose(g.nodes[i].astype(np.float64), ref / np.linalg.norm(ref), atol=2e-3)
        assert g.node_norms[i] == pytest.approx(np.linalg.norm(ref), rel=1e-4)


def test_pixel_space_nodes_do_not_depend_on_where_the_normalisation_is(probes):
    outside = _normalised_outside()
    lo, hi = _RANGE

    def inside_net():
        net = TinyNet(3)
        return nn.Sequential(nn.Identity(), _Scale(hi - lo, lo), _Normalise(_MEAN, _STD), net)

    inside = load_model(callable_spec("inside", inside_net, layers=(LayerSpec("3.conv2", "c"),), encoder="3.conv2"))
    pixels = GraphOptions(input_space="pixels")
    a = compute_graphs(outside, probes, ["conv2"], pixels)["conv2"]
    b = compute_graphs(inside, probes, ["3.conv2"], pixels)["3.conv2"]
    b_model = compute_graphs(inside, probes, ["3.conv2"])["3.conv2"]
    a_model = compute_graphs(outside, probes, ["conv2"])["conv2"]
    np.testing.assert_allclose(a.nodes.astype(np.float32), b.nodes.astype(np.float32), atol=2e-3)
    np.testing.assert_allclose(b.nodes.astype(np.float32), b_model.nodes.astype(np.float32), atol=2e-3)  # its input is pixels already
    assert np.abs(a_model.nodes.astype(np.float32) - b_model.nodes.astype(np.float32)).max() > 0.05  # the paper's input space differs


class _Scale(nn.Module):
    def __init__(self, scale: float, shift: float) -> None:
        super().__init__()
        self.scale, self.shift = scale, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


def test_pixel_space_is_part_of_the_key_and_only_for_gradient_x_input():
    assert GraphOptions(input_space="pixels").key() != GraphOptions().key()
    assert "input_space" not in GraphOptions().key()  # keys written before the option stay valid
    with pytest.raises(Exception, match="Gradient\\*Input only"):
        GraphOptions(input_space="pixels", method="saliency")
    with pytest.raises(Exception, match="not supported"):
        GraphOptions(input_space="raw")
