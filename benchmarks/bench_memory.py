"""Layer selection under shrinking memory budgets: same numbers, measured peak memory against the plan.

VGG19-BN source and target (random weights; the cost does not depend on them), 19 layers, 200
procedural scene probes at 224² by default (``--size`` and budgets can be scaled down together on
a small CPU: the memory per probe follows the pixel count). Each budget runs in its own process, which reports its peak resident
set size above the level of the warmed-up process before the run (``VmHWM`` after resetting it through
``/proc/self/clear_refs``) and the engine's planned peak: the largest of the target's plan and the
source's plan plus the target graph it holds meanwhile. Every budget must give the same scores
(|Δs| ≤ 1e-4 against the largest budget) with a measured peak within 1.3× of its plan. A last run
uses the explicit random-projection option (``feature_sketch_dim``) and prints its error on s_E.

Run: ``python benchmarks/bench_memory.py [--probes 200 --size 224 --budgets 4GiB 1GiB 256MiB]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

CHILD = r"""
import gc, json, sys, time
import numpy as np, torch, torchvision
from common import vgg19_layers
from depara_core.compare.workflows import select_layers
from depara_core.engine.graph import GraphOptions
from depara_core.engine.plan import plan_computation
from depara_core.models.preprocess import Preprocess
from depara_core.models.sources import callable_spec
from depara_core.models.spec import load_model
from depara_core.probes.registry import load_builtin

n, size, budget, sketch = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
options = GraphOptions(feature_sketch_dim=sketch)
make = lambda seed: (torch.manual_seed(seed), torchvision.models.vgg19_bn(weights=None))[1]
source = load_model(callable_spec("source", lambda: make(0), preprocess=Preprocess()))
target = load_model(callable_spec("target", lambda: make(1), preprocess=Preprocess(), encoder="features.51"))
layers = vgg19_layers(source.module)
probes = load_builtin("scenes", n).resized((size, size))  # structured images: random noise gives near-equal edges
src_plan = plan_computation(source, probes, layers, options, memory_budget=budget)
tgt_plan = plan_computation(target, probes, ["features.51"], options, memory_budget=budget)
node_dim = 3 * size * size
target_graph = n * (options.sketch_dim * 4 if src_plan.sketched else node_dim * 2) + n * n * 8 + n * 16
planned = max(tgt_plan.peak_bytes(n, options), src_plan.peak_bytes(n, options) + target_graph)

def status(field):
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(field))

# warm up on 3 small probes: library code pages and allocator arenas are touched once per process
select_layers(source, target, load_builtin("scenes", 3).resized((32, 32)), layers[:2], options)
gc.collect()
open("/proc/self/clear_refs", "w").write("5")  # reset the peak resident set size
base = status("VmRSS")
t = time.perf_counter()
scores = select_layers(source, target, probes, layers, options, memory_budget=budget)
seconds = time.perf_counter() - t
print(json.dumps({"budget": budget, "groups": len(src_plan.groups), "spilled": sorted(src_plan.spilled), "batch": src_plan.batch_size,
                  "planned": planned, "measured": status("VmHWM") - base, "seconds": seconds,
                  "s_V": scores.s_V.tolist(), "s_E": scores.s_E.tolist(), "best": scores.best(1.0)}))
"""


def parse_bytes(text: str) -> int:
    from depara_core.cli import parse_bytes as parse

    return parse(text)


def run(n: int, size: int, budget: int, sketch: int = 0) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(size), str(budget), str(sketch)],
                         capture_output=True, text=True, cwd=__file__.rsplit("/", 1)[0], check=False)  # fmt: skip
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--budgets", nargs="+", default=["4GiB", "1GiB", "256MiB"])
    ap.add_argument("--sketch", type=int, default=16384, help="feature sketch dimension of the last run (0: skip it)")
    args = ap.parse_args()
    t0 = time.time()
    print(f"VGG19-BN x2, 19 layers, {args.probes} probes at {args.size}² (CPU, random weights)")
    print(f"{'budget':>8} {'groups':>6} {'batch':>5} {'spilled':>7} {'planned MiB':>11} {'measured MiB':>12} {'measured/plan':>13} {'max|Δs|':>9} {'s':>7}", flush=True)
    ref = None
    for label in args.budgets:
        r = run(args.probes, args.size, parse_bytes(label))
        ref = ref or r
        ds = max(np.abs(np.array(r["s_V"]) - ref["s_V"]).max(), np.abs(np.array(r["s_E"]) - ref["s_E"]).max())
        print(f"{label:>8} {r['groups']:>6} {r['batch']:>5} {len(r['spilled']):>7} {r['planned'] / 2**20:>11,.0f} {r['measured'] / 2**20:>12,.0f}"
              f" {r['measured'] / r['planned']:>13.2f} {ds:>9.1e} {r['seconds']:>7.0f}", flush=True)  # fmt: skip
        if r["best"] != ref["best"]:
            print(f"         best layer {r['best']} differs from {ref['best']} under the first budget", flush=True)
    if args.sketch:
        r = run(args.probes, args.size, parse_bytes(args.budgets[-1]), args.sketch)
        d_e = np.abs(np.array(r["s_E"]) - ref["s_E"])
        print(f"feature sketch {args.sketch} under {args.budgets[-1]}: max|Δs_E| {d_e.max():.1e} (mean {d_e.mean():.1e}),"
              f" planned {r['planned'] / 2**20:,.0f} MiB, measured {r['measured'] / 2**20:,.0f} MiB, {r['seconds']:.0f} s, best layer {r['best']} (exact: {ref['best']})")  # fmt: skip
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
