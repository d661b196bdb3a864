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

from common import device, interleaved, vgg19_layers
from depara_core.models import callable_spec, load_model
from depara_core.pipeline import select_layers
from depara_core.preprocess import Preprocess
from depara_core.probes import ProbeSet


def prototype(module, probes, layers, batch, target_layer_feats=None):
    """Bare batched computation of every layer's nodes and edges, kept on the device."""
    mods = dict(module.named_modules())
    dev = device()
    n = len(probes)
    x_all = torch.from_numpy(np.array(probes.images)).to(dev).permute(0, 3, 1, 2).float() / 255
    feats = {k: [] for k in layers}
    nodes = {k: [] for k in layers}
    for lo in range(0, n, batch):
        x = x_all[lo : lo + batch].clone().requires_grad_(True)
        out = {}
        hooks = [mods[k].register_forward_hook(lambda m, i, o, k=k: out.__setitem__(k, o)) for k in layers]
        module(x)
        for h in hooks:
            h.remove()
        for j, k in enumerate(layers):
            f = out[k].flatten(1)
            (g,) = torch.autograd.grad((f * f).sum(), x, retain_graph=j < len(layers) - 1)
            nodes[k].append((x * g).detach().flatten(1).half())
            feats[k].append(torch.nn.functional.normalize(f.detach(), dim=1).half())
    edges = {k: (torch.cat(v).float() @ torch.cat(v).float().T) for k, v in feats.items()}
    return nodes, edges


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
        prototype(source.module, probes, layers, args.batch)
        prototype(target.module, probes, ["features.51"], args.batch)

    engine()  # warm-up (cuDNN autotuning, allocator)
    t = interleaved({"engine": engine, "prototype": bare}, repeat=args.repeat)
    name = torch.cuda.get_device_name() if dev.type == "cuda" else "CPU"
    peak = torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else float("nan")
    print(f"device: {name}; VGG19-BN x2, {len(layers)} layers, {args.probes} probes at {args.size}², batch {args.batch}")
    print(f"engine {t['engine']:.2f} s | batched prototype {t['prototype']:.2f} s | ratio {t['engine'] / t['prototype']:.2f} (goal ≤ 1.2) | peak GPU memory {peak:.1f} GiB")


if __name__ == "__main__":
    main()
