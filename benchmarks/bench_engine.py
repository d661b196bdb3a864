"""Engine speed against two baselines on the same inputs (ratios from one run).

1. Overhead: the engine vs bare autograd doing the same passes (one forward per batch with hooks,
   one vector-Jacobian product per layer, a Gram matrix per layer). Goal: ratio ≤ 1.2.
2. Speed-up over the original code's structure: one forward to each layer per batch, gradients
   and features copied to host, edges with ``scipy.spatial.distance.pdist``.

Run: ``python benchmarks/bench_engine.py [--probes 32 --size 112]``
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from common import best_of, device, interleaved, resnet_setup
from scipy.spatial.distance import pdist, squareform

from depara_core.engine.run import iter_graphs


def bare_autograd(model, probes, layers, batch_size):
    """The same computation written directly against torch: the floor the engine is measured on."""
    module, n = model.module, len(probes)
    mods = dict(module.named_modules())
    feats = {k: [] for k in layers}
    nodes = {k: [] for k in layers}
    for lo in range(0, n, batch_size):
        x = model.spec.preprocess(probes.images[lo : lo + batch_size], device()).requires_grad_(True)
        out = {}
        hooks = [mods[k].register_forward_hook(lambda m, i, o, k=k: out.__setitem__(k, o)) for k in layers]
        module(x)
        for h in hooks:
            h.remove()
        for j, k in enumerate(layers):
            f = out[k].flatten(1)
            (g,) = torch.autograd.grad((f * f).sum(), x, retain_graph=j < len(layers) - 1)
            nodes[k].append((x * g).detach().flatten(1).half().cpu())
            feats[k].append(f.detach())
    for k in layers:
        f = torch.cat(feats[k])
        u = f / f.norm(dim=1, keepdim=True)
        (u @ u.T).cpu()


def original_structure(model, probes, layers, batch_size):
    """Per layer: forward to that layer for every batch, copy to host, edges by pdist."""
    module, n = model.module, len(probes)
    mods = dict(module.named_modules())

    class Stop(Exception):
        pass

    for k in layers:
        feats, nodes = [], []
        for lo in range(0, n, batch_size):
            x = model.spec.preprocess(probes.images[lo : lo + batch_size]).to(device()).requires_grad_(True)
            out = {}

            def hook(m, i, o):
                out["f"] = o
                raise Stop

            h = mods[k].register_forward_hook(hook)
            try:
                module(x)
            except Stop:
                pass
            h.remove()
            f = out["f"].flatten(1)
            (g,) = torch.autograd.grad((f * f).sum(), x)
            nodes.append((x * g).detach().cpu().numpy())
            feats.append(f.detach().cpu().numpy())
        squareform(1 - pdist(np.concatenate(feats), "cosine"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--probes", type=int, default=32)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    model, probes, layers = resnet_setup(args.probes, args.size)
    t = interleaved(
        {
            "engine": lambda: list(iter_graphs(model, probes, layers, batch_size=args.batch, memory_budget=2**33)),
            "bare": lambda: bare_autograd(model, probes, layers, args.batch),
        }
    )
    engine, bare = t["engine"], t["bare"]
    orig = best_of(lambda: original_structure(model, probes, layers, args.batch), repeat=1)
    print(f"device={device()} model=resnet18 probes={args.probes}x{args.size}² layers={len(layers)} batch={args.batch}")
    print(f"engine {engine:.2f} s | bare autograd {bare:.2f} s | original structure {orig:.2f} s")
    print(f"overhead engine/bare = {engine / bare:.2f} (goal ≤ 1.2)")
    print(f"speed-up original/engine = {orig / engine:.1f}x")


if __name__ == "__main__":
    main()
