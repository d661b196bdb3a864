"""The GPU path measured against its limits, in one run on one device.

1. VGG19-BN source and target (random weights), 19 layers, 200 probes at 224²: the engine in fp32,
   TF32 and bf16, each against a bare batched prototype of the same work under the same arithmetic
   (one forward per batch with hooks, one vector-Jacobian product per layer, cosine edges as a
   device matrix product); the original code's structure (a forward per layer, maps copied to the
   host, ``pdist`` edges), timed on ``--original-probes`` probes and scaled linearly to all (a lower
   bound: its edges grow with the square of the probes). FLOPs are counted with
   ``torch.utils.flop_counter``'s formulas on one batch of the prototype, giving the achieved
   fraction of the device's dense bf16 peak for the engine's bf16 run.
2. ``--encoders`` taskonomy-size encoders (visualpriors' architecture, random weights) on
   ``--zoo-probes`` probes at 256², through the similarity matrix and the task tree.
3. Errors of bf16, TF32 and the compile option against fp32 on s_V and s_E (goal |Δs| ≤ 2e-3).

Goals on an H100-class GPU: engine within 1.2× of the prototype; ≥ 40% of bf16 peak on the VGG
work; the 20-encoder zoo in ≤ 15 s. On a CPU the same comparisons run at small sizes:
``python benchmarks/bench_gpu.py --probes 8 --size 64 --encoders 3 --zoo-probes 8 --original-probes 4``.

Run: ``python benchmarks/bench_gpu.py`` (defaults: the sizes above, about 6–8 minutes on an H200);
``--precisions fp32,bf16`` (``fp32+compile`` adds torch.compile to an arithmetic), ``--skip-vgg``, ``--skip-zoo`` and ``--original-probes 0`` shorten it.
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
from depara_core.engine.run import arithmetic, tf32_switch
from depara_core.models.preprocess import Preprocess
from depara_core.models.sources import callable_spec
from depara_core.models.spec import load_model
from depara_core.probes.probeset import ProbeSet

START = time.perf_counter()

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


PRECISIONS = ("fp32", "tf32", "bf16")
"""Arithmetics compared by default, fp32 first (the reference). ``+compile`` adds the engine's compile
option to one (``--precisions fp32,bf16,bf16+compile``); it is left out of the default because
compiling every segment of 40 networks would take minutes of a short GPU session."""


def graph_options(arithmetic_name: str) -> GraphOptions:
    """``"bf16+compile"`` → bf16 with the compile option; ``"fp32"`` → fp32, eager."""
    precision, _, extra = arithmetic_name.partition("+")
    if extra not in ("", "compile"):
        raise SystemExit(f"unknown arithmetic {arithmetic_name!r}: use fp32, tf32 or bf16, optionally with +compile")
    return GraphOptions(precision=precision, compile=extra == "compile")


def vgg_work(args, dev) -> dict:
    make = lambda seed: (torch.manual_seed(seed), torchvision.models.vgg19_bn(weights=None))[1]  # noqa: E731
    source = load_model(callable_spec("source", lambda: make(0), preprocess=Preprocess()), dev)
    target = load_model(callable_spec("target", lambda: make(1), preprocess=Preprocess(), encoder="features.51"), dev)
    layers = vgg19_layers(source.module)
    probes = random_probes(args.probes, args.size)

    def engine(precision: str):
        return select_layers(source, target, probes, layers, graph_options(precision), batch_size=args.batch)

    def bare(precision: str):
        with arithmetic(graph_options(precision).precision, dev):  # the same arithmetic as the engine's, forward and backward (eager)
            bare_autograd(source, probes, layers, args.batch)
            bare_autograd(target, probes, ["features.51"], args.batch)

    t, scores = {}, {}
    for precision in args.precisions:
        first, scores[precision] = timed(lambda p=precision: engine(p))  # warm-up: cuDNN's choice of kernels, the allocator, compiling
        bare(precision)
        best = interleaved({"engine": lambda p=precision: engine(p), "prototype": lambda p=precision: bare(p)}, repeat=args.repeat)
        t[precision] = best
        print(f"  [{time.perf_counter() - START:.0f} s] {precision}: engine {best['engine']:.2f} s (first run {first:.1f} s), prototype {best['prototype']:.2f} s", flush=True)
    t_orig = float("nan")
    if args.original_probes:
        sub = ProbeSet(probes.images[: args.original_probes], probes.ids[: args.original_probes])
        with tf32_switch("fp32"):
            t_orig, _ = timed(lambda: (original_structure(source, sub, layers, args.batch), original_structure(target, sub, ["features.51"], args.batch)))
    with arithmetic("bf16", dev):
        flops = prototype_flops(source, probes, layers, args.batch) + prototype_flops(target, probes, ["features.51"], args.batch)
    errors = {p: (np.abs(scores[p].s_V - scores["fp32"].s_V).max(), np.abs(scores[p].s_E - scores["fp32"].s_E).max()) for p in args.precisions if p != "fp32"}
    return {"t": t, "original": t_orig * args.probes / max(args.original_probes, 1), "flops": flops, "errors": errors, "layers": len(layers)}


def zoo_work(args, dev) -> dict:
    from depara_core.zoos.taskonomy import TASKS, taskonomy_spec

    specs = [taskonomy_spec(task, random_init=True) for task in TASKS[: args.encoders]]
    models = [load_model(s, dev) for s in specs]
    probes = random_probes(args.zoo_probes, 256, seed=1)

    def run(precision: str, probes: ProbeSet = probes):
        graphs = zoo_graphs(models, probes, graph_options(precision), batch_size=args.batch)
        terms = pairwise_terms(graphs, baselines=False)  # DEPARA's matrix; the baselines are timed apart
        task_tree(terms.combined(1.0), terms.names)
        return terms, graphs

    out = {}
    for precision in args.precisions:
        run(precision, ProbeSet(probes.images[: 2 * args.batch], probes.ids[: 2 * args.batch]))  # warm-up on two batches
        out[precision] = timed(lambda p=precision: run(p))
        print(f"  [{time.perf_counter() - START:.0f} s] {precision}: {out[precision][0]:.1f} s", flush=True)
    graphs = out[args.precisions[0]][1][1]
    t_baselines, _ = timed(lambda: pairwise_terms(graphs))
    errors = {p: (np.abs(out[p][1][0].s_V - out["fp32"][1][0].s_V).max(), np.abs(out[p][1][0].s_E - out["fp32"][1][0].s_E).max()) for p in args.precisions if p != "fp32"}
    return {"t": {p: out[p][0] for p in out}, "errors": errors, "models": len(models), "baselines": t_baselines}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--original-probes", type=int, default=20, help="probes the original structure is timed on (scaled to --probes)")
    ap.add_argument("--encoders", type=int, default=20)
    ap.add_argument("--zoo-probes", type=int, default=1000)
    ap.add_argument("--precisions", type=lambda v: tuple(v.split(",")), default=PRECISIONS, help="comma-separated, fp32 first (the reference)")
    ap.add_argument("--skip-zoo", action="store_true")
    ap.add_argument("--skip-vgg", action="store_true")
    args = ap.parse_args()
    dev = device()
    name = torch.cuda.get_device_name() if dev.type == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__}")

    if not args.skip_vgg:
        vgg_report(args, dev, name)
    if not args.skip_zoo:
        zoo_report(args, dev)
    if dev.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


def vgg_report(args, dev, name: str) -> None:
    print(f"VGG19-BN x2, {args.probes} probes at {args.size}², batch {args.batch}", flush=True)
    v = vgg_work(args, dev)
    t = v["t"]
    print(f"  {v['layers']} source layers against the target's features.51")
    for p in args.precisions:
        print(f"  engine {p} {t[p]['engine']:.2f} s | prototype {p} {t[p]['prototype']:.2f} s | ratio {t[p]['engine'] / t[p]['prototype']:.2f} (goal ≤ 1.2)")
    if args.original_probes:
        lower = " (a lower bound: its pdist edges grow with the square of the probes)" if args.original_probes < args.probes else ""
        print(f"  original structure (fp32) ≈ {v['original']:.1f} s, timed on {args.original_probes} probes and scaled linearly{lower} → engine fp32 speed-up {v['original'] / t['fp32']['engine']:.0f}x")
    peak = peak_for(name)
    fastest = min(args.precisions, key=lambda p: t[p]["engine"])
    achieved = v["flops"] / t[fastest]["engine"]
    fraction = f", {achieved / peak:.0%} of the bf16 peak ({peak / 1e12:.0f} TFLOP/s; goal ≥ 40%)" if peak else ""
    print(f"  {v['flops'] / 1e12:.2f} TFLOP of work; engine {fastest} {achieved / 1e12:.1f} TFLOP/s{fraction}")
    for p, (dv, de) in v["errors"].items():
        print(f"  {p} vs fp32: max |Δs_V| {dv:.1e}, max |Δs_E| {de:.1e} (goal ≤ 2e-3)")



def zoo_report(args, dev) -> None:
    print(f"{args.encoders} taskonomy encoders (random weights), {args.zoo_probes} probes at 256², matrix and tree", flush=True)
    z = zoo_work(args, dev)
    print("  " + " | ".join(f"{p} {s:.1f} s" for p, s in z["t"].items()) + " (goal ≤ 15 s on an H100)")
    print(f"  the baselines' matrices beside DEPARA's (RSA, CKA, PL-LogME, …): {z['baselines']:.1f} s more")
    for p, (dv, de) in z["errors"].items():
        print(f"  {p} vs fp32: max |Δs_V| {dv:.1e}, max |Δs_E| {de:.1e}")


if __name__ == "__main__":
    main()
