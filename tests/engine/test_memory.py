"""Memory: the engine's plan for a VGG19-size layer selection, and measured peaks that follow it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torchvision

from depara_core.engine.graph import GraphOptions
from depara_core.engine.plan import plan_computation
from depara_core.models.preprocess import Preprocess
from depara_core.models.sources import callable_spec
from depara_core.models.spec import load_model
from depara_core.probes.probeset import ProbeSet

GIB = 2**30


def vgg19_layers(model: torch.nn.Module) -> list[str]:
    """The 19 weight layers of VGG19 as the paper counts them: 16 conv ReLUs, 2 fc ReLUs, the logits."""
    convs = [f"features.{i}" for i, m in enumerate(model.features) if isinstance(m, torch.nn.ReLU)]
    return convs + ["classifier.1", "classifier.4", "classifier.6"]


@pytest.mark.slow
def test_vgg19_layer_selection_plan_stays_under_4_gb():
    """Layer selection of VGG19-BN (19 layers, 200 probes at 224²) against a VGG19-BN target.

    The original code holds every layer's features and maps at once (about 28 GB); the engine
    holds one group of layers within its memory budget, plus both models' weights. The budget is
    explicit (2 GiB, the default cap), so that the plan does not depend on the memory free now.
    """
    spec = callable_spec("vgg19_bn", lambda: torchvision.models.vgg19_bn(weights=None), preprocess=Preprocess())
    model = load_model(spec)
    layers = vgg19_layers(model.module)
    assert len(layers) == 19
    probes = ProbeSet(np.zeros((200, 224, 224, 3), np.uint8), tuple(map(str, range(200))))
    plan = plan_computation(model, probes, layers, GraphOptions(), memory_budget=2 * GIB)
    weights = sum(p.numel() * 4 for p in model.module.parameters()) + sum(b.numel() * 4 for b in model.module.buffers())
    all_at_once = sum(plan.group_bytes(200, GraphOptions())) + plan.activation_bytes_per_probe * 2 * 200
    peak = plan.peak_bytes(200, GraphOptions())
    runtime = 0.5 * GIB  # interpreter, torch, probes and the target's graph
    print(f"\n  groups={len(plan.groups)} batch={plan.batch_size} engine peak={peak / GIB:.2f} GiB,"
          f" all layers at once={all_at_once / GIB:.1f} GiB, weights x2={2 * weights / GIB:.2f} GiB")  # fmt: skip
    assert peak <= plan.budget
    assert len(plan.groups) > 1 and sorted(sum(plan.groups, ())) == sorted(layers)
    assert peak + 2 * weights + runtime < 4e9
    assert all_at_once > 4 * peak  # what the grouping saves


MEASURE = textwrap.dedent(
    """
    import gc, json, sys, numpy as np, torch, torchvision
    from depara_core.engine.graph import GraphOptions
    from depara_core.engine.plan import plan_computation
    from depara_core.engine.run import iter_graphs
    from depara_core.models.sources import callable_spec
    from depara_core.models.spec import load_model
    from depara_core.models.preprocess import Preprocess
    from depara_core.probes.probeset import ProbeSet
    torch.set_num_threads(1)
    budget = int(sys.argv[1])
    m = load_model(callable_spec("vgg", lambda: torchvision.models.vgg11_bn(weights=None), preprocess=Preprocess()))
    layers = [f"features.{i}" for i, mod in enumerate(m.module.features) if isinstance(mod, torch.nn.ReLU)]
    p = ProbeSet(np.random.default_rng(0).integers(0, 256, (8, 96, 96, 3), dtype=np.uint8), tuple("abcdefgh"))
    plan = plan_computation(m, p, layers, memory_budget=budget)
    def status(field):
        return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(field))
    gc.collect()
    open("/proc/self/clear_refs", "w").write("5")  # reset the peak resident set size
    base = status("VmRSS")
    for g in iter_graphs(m, p, layers, memory_budget=budget):
        del g
    print(json.dumps({"groups": len(plan.groups), "planned": plan.peak_bytes(8, GraphOptions()), "measured": status("VmHWM") - base}))
    """
)


def measure(budget: int) -> dict:
    import json

    out = subprocess.run([sys.executable, "-c", MEASURE, str(budget)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS reset needs Linux /proc")
def test_measured_peak_follows_the_plan_and_the_budget():
    small, large = measure(24 * 2**20), measure(4 * GIB)
    print(f"\n  small budget: {small}\n  large budget: {large}")
    assert small["groups"] > 1 and large["groups"] == 1
    for run in (small, large):
        assert run["measured"] <= 1.3 * run["planned"] + 64 * 2**20
    assert small["planned"] < large["planned"] / 4
    assert small["measured"] < large["measured"] / 2


def test_feature_sketch_keeps_edges_within_its_measured_error():
    """The explicit random-projection option: edges of a 16,384-dimension sketch against exact ones."""
    from scipy.stats import spearmanr

    from depara_core.compare.pairwise import edge_similarity
    from depara_core.engine.run import compute_graphs

    torch.manual_seed(0)
    m = load_model(callable_spec("vgg", lambda: torchvision.models.vgg11_bn(weights=None), preprocess=Preprocess()))
    from depara_core.probes.registry import load_builtin

    probes = load_builtin("scenes", 40).resized((64, 64))  # structured images: edges spread out (noise gives near-equal cosines)
    layer = "features.2"  # 64 × 64 × 64 = 262,144 features per probe
    exact = compute_graphs(m, probes, [layer])[layer]
    sketched = compute_graphs(m, probes, [layer], GraphOptions(feature_sketch_dim=16384))[layer]
    iu = np.triu_indices(40, 1)
    rho = spearmanr(exact.edges[iu], sketched.edges[iu])[0]
    err = np.abs(exact.edges - sketched.edges).max()
    print(f"\n  feature sketch 16384: edge Spearman {rho:.4f}, max |Δedge| {err:.4f}, spread of edges {exact.edges[iu].std():.3f}")
    assert rho > 0.99 and err < 0.05, (rho, err)  # count sketch: per-cosine error ≤ sqrt(2/d) ≈ 0.011 (1 s.d.)
    assert edge_similarity(exact, sketched) > 0.99  # s_E between a graph and its sketch
    assert sketched.feature_dim == exact.feature_dim  # the true dimension is kept
    np.testing.assert_array_equal(exact.nodes, sketched.nodes)  # nodes are untouched
    with pytest.raises(Exception, match="feature_sketch_dim"):
        GraphOptions(feature_sketch_dim=10)
