"""Arithmetic options: bf16 autocast and TF32 against float32, on s_V and s_E.

The goal is |Δs| ≤ 2e-3. bf16 meets it on s_E; on s_V (attribution maps from a bf16 backward pass
through random-weight VGG11-BN) it measures about 1.4e-2 on this CPU, so the test holds s_V to
3e-2 and the option's documentation says so.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
import torchvision

from depara_core.cache import GraphCache
from depara_core.compare.terms import pairwise_terms
from depara_core.engine.graph import GraphOptions
from depara_core.engine.run import compute_graphs
from depara_core.models.preprocess import Preprocess
from depara_core.models.sources import callable_spec
from depara_core.models.spec import load_model
from depara_core.probes.registry import load_builtin


def _models():
    def make(seed: int):
        torch.manual_seed(seed)
        return torchvision.models.vgg11_bn(weights=None)

    return [load_model(callable_spec(f"vgg{s}", lambda s=s: make(s), preprocess=Preprocess(), encoder="features.14")) for s in range(3)]


@pytest.mark.parametrize("precision, tol_v, tol_e", [("bf16", 3e-2, 2e-3), ("tf32", 0.0, 0.0)])
def test_precision_changes_the_terms_within_its_measured_error(precision, tol_v, tol_e):
    models, probes = _models(), load_builtin("scenes", 16).resized((64, 64))
    terms = {}
    for p in ("fp32", precision):
        opts = GraphOptions(precision=p)
        terms[p] = pairwise_terms({m.name: compute_graphs(m, probes, [m.spec.encoder], opts)[m.spec.encoder] for m in models})
    d_v = np.abs(terms[precision].s_V - terms["fp32"].s_V).max()
    d_e = np.abs(terms[precision].s_E - terms["fp32"].s_E).max()
    print(f"\n  {precision} vs fp32 (CPU): max |Δs_V| {d_v:.1e}, max |Δs_E| {d_e:.1e}")
    assert d_v <= tol_v and d_e <= tol_e
    if precision == "bf16":
        assert d_v > 0 or d_e > 0, "bf16 autocast did not take effect"


def _flags() -> tuple[bool, bool]:
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32


def _compute_with_hook(model, probes, precision: str, hook) -> None:
    """The graph of ``model``'s conv2 with ``hook`` on that layer's forward."""
    handle = dict(model.module.named_modules())["conv2"].register_forward_hook(hook)
    try:
        compute_graphs(model, probes, ["conv2"], GraphOptions(precision=precision))
    finally:
        handle.remove()


@pytest.mark.parametrize("precision", ["fp32", "tf32", "bf16"])
@pytest.mark.parametrize("process_default", [True, False])
def test_tf32_is_on_in_forward_and_backward_exactly_when_chosen(tiny, probes, precision, process_default):
    """torch lets cuDNN convolutions use TF32 by default; the engine's fp32 must not inherit that,
    in the forward nor in the VJPs, and the process's flags come back as they were."""
    seen = []

    def record(_mod, _inp, out):
        if out.requires_grad:  # a pass that computes maps, not one that measures layer sizes
            seen.append(("forward", _flags()))
            out.register_hook(lambda grad: seen.append(("backward", _flags())))

    saved = _flags()
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = process_default
    try:
        _compute_with_hook(tiny, probes, precision, record)
        after = _flags()
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    on = precision == "tf32"
    assert {"forward", "backward"} <= {where for where, _ in seen}
    assert all(f == (on, on) for _, f in seen), seen
    assert after == (process_default, process_default)


def test_concurrent_runs_never_compute_under_each_others_tf32_flags(zoo, probes):
    """The flags are global to the process: a TF32 run and an fp32 run in two threads (two sessions
    of the app) each see only their own flags. The TF32 run's forward waits for the fp32 run to
    switch the flags (up to 1 s); without the engine's lock the fp32 run would switch them then."""
    other_switched = threading.Event()
    seen: dict[str, list] = {"tf32": [], "fp32": []}

    def recorder(precision: str):
        def record(_mod, _inp, out):
            if not out.requires_grad:
                return
            if precision == "tf32":
                other_switched.wait(1.0)  # let the fp32 run in, if anything does
            else:
                other_switched.set()
            seen[precision].append(_flags())
            out.register_hook(lambda grad: seen[precision].append(_flags()))

        return record

    def run(model, precision: str) -> None:
        _compute_with_hook(model, probes, precision, recorder(precision))

    saved = _flags()
    try:
        first = threading.Thread(target=run, args=(zoo[0], "tf32"))
        first.start()
        time.sleep(0.2)  # the TF32 run is inside its forward, waiting
        second = threading.Thread(target=run, args=(zoo[1], "fp32"))
        second.start()
        first.join(60)
        second.join(60)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    assert seen["tf32"] and seen["fp32"]
    assert set(seen["tf32"]) == {(True, True)} and set(seen["fp32"]) == {(False, False)}, seen


def test_precision_is_part_of_the_cache_key_and_flags_are_restored(tiny, probes):
    keys = {p: GraphCache.graph_key(tiny, probes, "conv2", GraphOptions(precision=p)) for p in ("fp32", "bf16", "tf32")}
    assert len(set(keys.values())) == 3
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    compute_graphs(tiny, probes, ["conv2"], GraphOptions(precision="tf32"))
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
    with pytest.raises(Exception, match="precision"):
        GraphOptions(precision="fp8")
