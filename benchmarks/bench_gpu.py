"""Layer selection at the paper's scale on a GPU: VGG19-BN source and target, 19 layers, 200 probes at 224².

Random weights (the cost does not depend on them). Compares the engine with a bare batched
implementation of the same work (one forward per batch with hooks, one vector-Jacobian product per
layer, cosine edges as a GPU matrix product) — the prototype the engine must stay within 1.2× of.
On an H100 the original code's structure took about 1,246 s for this work and such a batched
prototype 1.7–2.4 s. Also runs on the CPU with smaller sizes: ``--probes 16 --size 112``.

Run: ``python benchmarks/bench_gpu.py [--probes 200 --size 224 --batch 20]``
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torchvision
from bench_engine import bare_autograd
from common import device, interleaved, vgg19_layers

from depara_core.compare.workflows import select_layers
from depara_core.models.preprocess import Preprocess
from depara_core.models.sources import callable_spec
from depara_core.models.spec import load_model
from depara_core.probes.probeset import ProbeSet


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    dev = device()
    make = lambda seed: (torch.manual_seed(seed), torchvision.models.vgg19_bn(weights=None))[1]  # noqa: E731
    source = load_model(callable_spec("source", lambda: make(0), preprocess=Preprocess()))
    target = load_model(callable_spec("target", lambda: make(1), preprocess=Preprocess(), encoder="features.51"))
    source.module.to(dev)
    target.module.to(dev)
    layers = vgg19_layers(source.module)
    rng = np.random.default_rng(0)
    probes = ProbeSet(rng.integers(0, 256, (args.probes, args.size, args.size, 3), dtype=np.uint8), tuple(map(str, range(args.probes))))

    def engine():
        scores = select_layers(source, target, probes, layers, batch_size=args.batch, memory_budget=None)
        return scores.best(1.0)

    def bare():
        bare_autograd(source, probes, layers, args.batch)
        bare_autograd(target, probes, ["features.51"], args.batch)

    engine()  # warm-up (cuDNN autotuning, allocator)
    t = interleaved({"engine": engine, "prototype": bare}, repeat=args.repeat)
    name = torch.cuda.get_device_name() if dev.type == "cuda" else "CPU"
    peak = torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else float("nan")
    print(f"device: {name}; VGG19-BN x2, {len(layers)} layers, {args.probes} probes at {args.size}², batch {args.batch}")
    print(f"engine {t['engine']:.2f} s | batched prototype {t['prototype']:.2f} s | ratio {t['engine'] / t['prototype']:.2f} (goal ≤ 1.2) | peak GPU memory {peak:.1f} GiB")


if __name__ == "__main__":
    main()
