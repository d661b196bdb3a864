"""How accurate the app's "about N s left" is: each progress report's estimate against the time the
computation then actually took (goal: within 30% once the first batch is done). The computation runs
as the app runs it, a session :class:`~depara_core.session.jobs.Job` over a :class:`Workspace`;
reports in the last 10% of the run are left out (a few seconds' error there is a large fraction of
almost nothing). A third run is stopped halfway and resumed: the resumed run's estimates must not
count the kept half as work done in it.

Run: ``python benchmarks/bench_progress.py``
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch
import torchvision

from depara_core.cache import GraphCache
from depara_core.models.preprocess import Preprocess
from depara_core.models.sources import callable_spec
from depara_core.models.spec import load_model
from depara_core.probes.probeset import ProbeSet
from depara_core.probes.registry import load_builtin
from depara_core.session.config import Config, ProbeChoice, resolve_specs
from depara_core.session.jobs import Job
from depara_core.session.progress import ProgressReport
from depara_core.session.workspace import Workspace
from depara_core.zoos import load_zoo


@dataclass(frozen=True)
class Accuracy:
    reports: int
    median: float
    worst: float
    within_30: float

    def __str__(self) -> str:
        return f"{self.reports} estimates: median error {self.median:.0%}, worst {self.worst:.0%}, within 30%: {self.within_30:.0%}"


def timed_run(ws: Workspace, stop_at: float | None = None) -> tuple[list[tuple[float, ProgressReport]], float, str]:
    """Run the workspace's computation as a job; every report with its time, the end time and the state."""
    seen: list[tuple[float, ProgressReport]] = []

    def run(sink):
        def record(r: ProgressReport):
            seen.append((time.perf_counter(), r))
            return sink(r)

        return ws.compute(record, build_terms=False)

    job = Job("bench", ("bench",), run)
    while not job.wait(0.05):
        if stop_at is not None and job.report is not None and job.report.fraction >= stop_at:
            job.stop()
    return seen, time.perf_counter(), job.state


def accuracy(seen: list[tuple[float, ProgressReport]], end: float) -> Accuracy:
    start = seen[0][0]
    errors = []
    for t, r in seen:
        left = end - t
        if r.eta is None or left < 0.1 * (end - start):
            continue
        errors.append(abs(r.eta - left) / left)
    e = np.asarray(errors)
    return Accuracy(len(e), float(np.median(e)), float(e.max()), float(np.mean(e <= 0.3)))


def mini_taskonomy(cache: GraphCache, probes: int) -> Workspace:
    z = load_zoo("mini-taskonomy")
    config = Config(z.name, z.names, ProbeChoice("builtin", z.default_probes[0], probes))
    models = [load_model(s) for s in resolve_specs(config, z)]
    return Workspace(config, models, load_builtin(z.default_probes[0], probes), cache)


def mixed_architectures(cache: GraphCache, probes: int) -> Workspace:
    """Models of very different cost per probe (a ResNet-18, a VGG-11 and a MobileNet-V3, random weights)."""
    torch.manual_seed(0)
    nets = {"resnet18": torchvision.models.resnet18, "vgg11": torchvision.models.vgg11, "mobilenet_v3_small": torchvision.models.mobilenet_v3_small}
    encoders = {"resnet18": "layer4", "vgg11": "features.20", "mobilenet_v3_small": "features.12"}
    models = [load_model(callable_spec(n, lambda f=f: f(weights=None), encoder=encoders[n], preprocess=Preprocess())) for n, f in nets.items()]
    rng = np.random.default_rng(0)
    ps = ProbeSet(rng.integers(0, 256, (probes, 112, 112, 3), dtype=np.uint8), tuple(f"p{i}" for i in range(probes)), "noise112")
    config = Config("", tuple(nets), ProbeChoice("builtin", "noise112", probes))
    return Workspace(config, models, ps, cache)


def main(repeat: int = 3) -> None:
    """Each scenario ``repeat`` times (in fresh caches): the machine's load moves single runs a lot."""
    for name, make, n in (("mini-taskonomy, 29 models", mini_taskonomy, 160), ("ResNet-18 + VGG-11 + MobileNet-V3 at 112 px", mixed_architectures, 64)):
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as tmp:
                seen, end, _ = timed_run(make(GraphCache(tmp), n))
                print(f"{name}, {n} probes, {end - seen[0][0]:.1f} s: {accuracy(seen, end)}")
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            stopped, _, state = timed_run(mini_taskonomy(GraphCache(tmp), 160), stop_at=0.5)
            assert state == "stopped", state
            seen, end = timed_run(mini_taskonomy(GraphCache(tmp), 160))[:2]
            print(f"mini-taskonomy stopped at {stopped[-1][1].fraction:.0%} and resumed, {end - seen[0][0]:.1f} s: {accuracy(seen, end)}")


if __name__ == "__main__":
    # As in the app, where pages run in Streamlit's script threads: torch work in the process's main
    # thread would keep its OpenMP team alive and slow the job's thread (measured ~3x on 2 cores).
    page = threading.Thread(target=main)
    page.start()
    page.join()
