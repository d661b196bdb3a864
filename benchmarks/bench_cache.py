"""Loading a cached graph vs computing it (goal: ≥ 20× faster). Run: ``python benchmarks/bench_cache.py``"""

from __future__ import annotations

import tempfile

from common import best_of, resnet_setup

from depara_core.cache import GraphCache
from depara_core.engine.graph import GraphOptions
from depara_core.engine.run import compute_graphs


def main() -> None:
    model, probes, layers = resnet_setup(32, 112)
    with tempfile.TemporaryDirectory() as tmp:
        cache = GraphCache(tmp)
        compute = best_of(lambda: compute_graphs(model, probes, layers), repeat=2)
        compute_graphs(model, probes, layers, cache=cache)
        load = best_of(lambda: [cache.load_graph(model, probes, k, GraphOptions()) for k in layers], repeat=5)
    print(f"{len(layers)} graphs of {len(probes)} probes: compute {compute:.2f} s, load from cache {load * 1e3:.1f} ms, ratio {compute / load:.0f}x (goal ≥ 20x)")


if __name__ == "__main__":
    main()
