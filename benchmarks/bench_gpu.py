"""The GPU path measured against its limits, in one run on one device.

1. VGG19-BN source and target (random weights), 19 layers, 200 probes at 224²: the engine in fp32,
   bf16 and TF32; a bare batched prototype of the same work (one forward per batch with hooks, one
   vector-Jacobian product per layer, cosine edges as a device matrix product); the original code's
   structure (a forward per layer, maps copied to the host, ``pdist`` edges), timed on
   ``--original-probes`` probes and scaled linearly to all (its cost is linear in the probes).
   FLOPs are counted with ``torch.utils.flop_counter``'s formulas on one batch of the prototype,
   giving the achieved fraction of the device's dense bf16 peak.
2. ``--encoders`` taskonomy-size encoders (visualpriors' architecture, random weights) on
   ``--zoo-probes`` probes at 256², through the similarity matrix and the task tree.
3. Errors of bf16 and TF32 against fp32 on s_V and s_E (goal |Δs| ≤ 2e-3).

Goals on an H100-class GPU: engine within 1.2× of the prototype; ≥ 40% of bf16 peak on the VGG
work; the 20-encoder zoo in ≤ 15 s. On a CPU the same comparisons run at small sizes:
``python benchmarks/bench_gpu.py --probes 8 --size 64 --encoders 3 --zoo-probes 8 --original-probes 4``.

Run: ``python benchmarks/bench_gpu.py`` (defaults: the sizes above, about 5 minutes on an H100)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torchvision
from bench_engine import bare_autograd, original_structure
from common import device, interleaved, vgg19_layers
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from depara_core.compare.terms import pairwise_terms
from depara_core.compare.tree import task_tree
from depara_core.compare.workflows import select_layers, zoo_graphs
from depara_core.engine.graph import GraphOptions
from depara_core.models.preprocess import Preprocess
from depara_core.models.sources import callable_spec
from depara_core.models.spec import load_model
from depara_core.probes.probeset import ProbeSet

BF16_PEAK = {"H100": 989e12, "H200": 989e12, "GH200": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12}
"""Dense bf16 tensor-core peak (FLOP/s) by device family, from the vendors' data sheets (SXM parts)."""


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn) -> tuple[float, object]:
    sync()
    t = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - t, out


def random_probes(n: int, size: int, seed: int = 0) -> ProbeSet:
    rng = np.random.default_rng(seed)
    return ProbeSet(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), tuple(map(str, range(n))))


class _CountFlops(TorchDispatchMode):
    """``FlopCounterMode``'s own per-operator formulas (``flop_registry``), without its module tracker,
    whose backward hooks refuse ``torch.autograd.grad`` with respect to a leaf input."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def prototype_flops(model, probes, layers, batch: int) -> float:
    """FLOPs of the prototype's work for all probes, counted on one batch."""
    sub = ProbeSet(probes.images[:batch], probes.ids[:batch])
    with _CountFlops() as counter:
        bare_autograd(model, sub, layers, batch)
    return counter.total * len(probes) / batch


def peak_for(name: str) -> float | None:
    for family, peak in BF16_PEAK.items():
        if family in name:
            return peak
    return None


def vgg_work(args, dev) -> dict:
    make = lambda seed: (torch.manual_seed(seed), torchvision.models.vgg19_bn(weights=None))[1]  # noqa: E731
    source = load_model(callable_spec("source", lambda: make(0), preprocess=Preprocess()), dev)
    target = load_model(callable_spec("target", lambda: make(1), preprocess=Preprocess(), encoder="features.51"), dev)
    layers = vgg19_layers(source.module)
    probes = random_probes(args.probes, args.size)

    def engine(precision: str):
        return select_layers(source, target, probes, layers, GraphOptions(precision=precision), batch_size=args.batch)

    def bare():
        bare_autograd(source, probes, layers, args.batch)
        bare_autograd(target, probes, ["features.51"], args.batch)

    engine("fp32")  # warm-up: cuDNN autotuning, allocator
    t = interleaved({"engine": lambda: engine("fp32"), "prototype": bare}, repeat=args.repeat)
    scores = {}
    for precision in ("fp32", "bf16", "tf32"):
        engine(precision)
        t[f"engine {precision}"], scores[precision] = timed(lambda p=precision: engine(p))
    sub = ProbeSet(probes.images[: args.original_probes], probes.ids[: args.original_probes])
    t_orig, _ = timed(lambda: (original_structure(source, sub, layers, args.batch), original_structure(target, sub, ["features.51"], args.batch)))
    flops = prototype_flops(source, probes, layers, args.batch) + prototype_flops(target, probes, ["features.51"], args.batch)
    errors = {p: (np.abs(scores[p].s_V - scores["fp32"].s_V).max(), np.abs(scores[p].s_E - scores["fp32"].s_E).max()) for p in ("bf16", "tf32")}
    return {"t": t, "original": t_orig * args.probes / args.original_probes, "flops": flops, "errors": errors, "layers": len(layers)}


def zoo_work(args, dev) -> dict:
    from depara_core.zoos.taskonomy import TASKS, taskonomy_spec

    specs = [taskonomy_spec(task, random_init=True) for task in TASKS[: args.encoders]]
    models = [load_model(s, dev) for s in specs]
    probes = random_probes(args.zoo_probes, 256, seed=1)

    def run(precision: str):
        graphs = zoo_graphs(models, probes, GraphOptions(precision=precision), batch_size=args.batch)
        terms = pairwise_terms(graphs)
        task_tree(terms.combined(1.0), terms.names)
        return terms

    run("fp32")  # warm-up
    out = {}
    for precision in ("fp32", "bf16", "tf32"):
        out[precision] = timed(lambda p=precision: run(p))
    errors = {p: (np.abs(out[p][1].s_V - out["fp32"][1].s_V).max(), np.abs(out[p][1].s_E - out["fp32"][1].s_E).max()) for p in ("bf16", "tf32")}
    return {"t": {p: out[p][0] for p in out}, "errors": errors, "models": len(models)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--original-probes", type=int, default=20, help="probes the original structure is timed on (scaled to --probes)")
    ap.add_argument("--encoders", type=int, default=20)
    ap.add_argument("--zoo-probes", type=int, default=1000)
    args = ap.parse_args()
    dev = device()
    name = torch.cuda.get_device_name() if dev.type == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__}")

    v = vgg_work(args, dev)
    t = v["t"]
    print(f"VGG19-BN x2, {v['layers']} layers, {args.probes} probes at {args.size}², batch {args.batch}")
    print(f"  engine fp32 {t['engine']:.2f} s | prototype {t['prototype']:.2f} s | ratio {t['engine'] / t['prototype']:.2f} (goal ≤ 1.2)")
    print(f"  engine bf16 {t['engine bf16']:.2f} s | engine tf32 {t['engine tf32']:.2f} s")
    print(f"  original structure ≈ {v['original']:.1f} s (timed on {args.original_probes} probes) → engine speed-up {v['original'] / t['engine']:.0f}x")
    peak = peak_for(name)
    best = min(t["engine"], t["engine bf16"], t["engine tf32"])
    achieved = v["flops"] / best
    fraction = f", {achieved / peak:.0%} of the bf16 peak ({peak / 1e12:.0f} TFLOP/s; goal ≥ 40%)" if peak else ""
    print(f"  {v['flops'] / 1e12:.2f} TFLOP of work; fastest engine run {achieved / 1e12:.1f} TFLOP/s{fraction}")
    for p, (dv, de) in v["errors"].items():
        print(f"  {p} vs fp32: max |Δs_V| {dv:.1e}, max |Δs_E| {de:.1e} (goal ≤ 2e-3)")

    z = zoo_work(args, dev)
    print(f"{z['models']} taskonomy encoders (random weights), {args.zoo_probes} probes at 256², matrix and tree")
    print("  " + " | ".join(f"{p} {s:.1f} s" for p, s in z["t"].items()) + " (goal ≤ 15 s on an H100)")
    for p, (dv, de) in z["errors"].items():
        print(f"  {p} vs fp32: max |Δs_V| {dv:.1e}, max |Δs_E| {de:.1e}")
    if dev.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
