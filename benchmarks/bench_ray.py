"""A 12-model zoo on a local Ray cluster with 1 and with 2 worker nodes (one CPU each), against the
local engine on the same inputs (ratios from one run).

Each measured run starts from an empty cache after a warm-up run on 4 probes (which imports torch
in the worker processes), so the times count the graph work and Ray's scheduling, not start-up.

Run: ``python benchmarks/bench_ray.py [--probes 200 --models 12]``
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from depara_core.cache import GraphCache
from depara_core.compare.workflows import zoo_graphs
from depara_core.distributed import GraphJob, LocalRayCluster, fill_cache
from depara_core.engine.graph import GraphOptions
from depara_core.models.spec import load_model
from depara_core.probes.registry import load_builtin
from depara_core.zoos import load_zoo


def on_cluster(workers: int, models, probes) -> float:
    import ray

    jobs = [GraphJob(m, (m.spec.encoder,)) for m in models]
    with LocalRayCluster(workers=workers, cpus_per_node=1) as address:
        fill_cache(address, jobs, load_builtin("scenes", 4), GraphOptions(), GraphCache(tempfile.mkdtemp()))  # warm-up
        t = time.perf_counter()
        tasks = fill_cache(address, jobs, probes, GraphOptions(), GraphCache(tempfile.mkdtemp()))
        seconds = time.perf_counter() - t
        ray.shutdown()
    assert tasks == len(models)
    return seconds


def local(threads: int, models, probes) -> float:
    torch.set_num_threads(threads)
    t = time.perf_counter()
    zoo_graphs(models, probes)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--models", type=int, default=12)
    args = ap.parse_args()
    zoo = load_zoo("mini-taskonomy")
    models = [load_model(spec) for spec in zoo.specs[: args.models]]
    probes = load_builtin("scenes", args.probes)
    times = {"local, 1 thread": local(1, models, probes), "local, 2 threads": local(2, models, probes)}
    for workers in (1, 2):
        times[f"Ray, {workers} worker node(s) x 1 CPU"] = on_cluster(workers, models, probes)
    print(f"{len(models)} mini-taskonomy encoders, {len(probes)} scene probes, one task per model")
    for label, seconds in times.items():
        print(f"  {label:<32} {seconds:7.1f} s")
    one, two = times["Ray, 1 worker node(s) x 1 CPU"], times["Ray, 2 worker node(s) x 1 CPU"]
    print(f"speed-up of 2 vs 1 Ray workers: {one / two:.2f}x; Ray (1 worker) vs local (1 thread): {one / times['local, 1 thread']:.2f}x")


if __name__ == "__main__":
    main()
