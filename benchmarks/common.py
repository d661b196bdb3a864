"""Shared set-up for the benchmarks: a model, probes and layers, and a timer.

Benchmarks print ratios measured within one run (both sides on the same machine, same inputs),
so that a noisy shared machine still gives comparable figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
import torchvision

from depara_core.models.preprocess import Preprocess
from depara_core.models.sources import callable_spec
from depara_core.models.spec import LoadedModel, load_model
from depara_core.probes.probeset import ProbeSet

__all__ = ["resnet_setup", "vgg19_layers", "best_of", "interleaved", "device"]


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resnet_setup(n: int = 32, size: int = 112, seed: int = 0) -> tuple[LoadedModel, ProbeSet, list[str]]:
    """A randomly initialised ResNet-18, ``n`` random probes of ``size``², and five layers."""
    torch.manual_seed(seed)
    model = load_model(callable_spec("resnet18", lambda: torchvision.models.resnet18(weights=None), preprocess=Preprocess()))
    model.module.to(device())
    rng = np.random.default_rng(seed)
    probes = ProbeSet(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), tuple(f"p{i}" for i in range(n)))
    return model, probes, ["layer1", "layer2", "layer3", "layer4", "avgpool"]


def vgg19_layers(model: torch.nn.Module) -> list[str]:
    """VGG19's 19 weight layers as the paper counts them: 16 conv ReLUs, 2 fc ReLUs, the logits."""
    convs = [f"features.{i}" for i, m in enumerate(model.features) if isinstance(m, torch.nn.ReLU)]
    return convs + ["classifier.1", "classifier.4", "classifier.6"]


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """The fastest of ``repeat`` runs, in seconds (synchronising the GPU when there is one)."""
    times = []
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return min(times)


def interleaved(fns: dict[str, Callable[[], object]], repeat: int = 3) -> dict[str, float]:
    """Best time of each function, run in alternation so that machine load hits all alike."""
    best = {k: float("inf") for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            best[k] = min(best[k], best_of(fn, repeat=1))
    return best
