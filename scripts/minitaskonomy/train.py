"""Seeded training of the mini-taskonomy task networks on a fixed pool of rendered scenes.

A task network (shared encoder + task head, :mod:`.nets`) is trained with Adam on minibatches
drawn from the pool by ``numpy.random.default_rng(seed)``; its initial weights and the input noise
come from the same seed, so a run is reproducible on one machine. The random-encoder control is an
untrained encoder whose BatchNorm statistics are calibrated on the pool.

>>> from depara_core.probes.scenes import SceneConfig, render_scenes
>>> pool = scene_tensors(render_scenes(32, SceneConfig(resolution=32), seed=0))
>>> net, log = train_task(TASKS["reshading"], pool, seed=1, config=TrainConfig(steps=2, batch_size=8))
>>> log["steps"], len(log["loss_curve"]) > 0
(2, True)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from depara_core.zoos.minitaskonomy.nets import TaskNet, encoder_net, task_net
from depara_core.zoos.minitaskonomy.tasks import TASKS, Scenes, Task, scene_tensors  # noqa: F401  (doctest)

__all__ = ["TrainConfig", "train_task", "random_encoder", "calibrate_batchnorm", "round_to_half", "evaluate_net"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of a task network (recorded in the manifest)."""

    steps: int = 400
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.0
    lr_decay_from: float = 0.7
    """Fraction of the steps after which the learning rate decays linearly to 10%."""
    log_every: int = 25

    def describe(self) -> dict:
        return asdict(self)


def _lr_factor(step: int, config: TrainConfig) -> float:
    start = int(config.steps * config.lr_decay_from)
    if step < start or config.steps <= start:
        return 1.0
    return 1.0 - 0.9 * (step - start) / max(config.steps - start, 1)


def train_task(task: Task, pool: Scenes, seed: int, config: TrainConfig = TrainConfig()) -> tuple[TaskNet, dict]:
    """Train encoder + head for ``task`` from ``seed``; returns the net (eval mode) and a log.

    The log holds the steps, seconds, the mean training loss every ``log_every`` steps and the
    final training loss (mean of the last 10% of steps).
    """
    net = task_net(task, seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, config))
    n = len(pool["rgb"])
    net.train()
    t0 = time.perf_counter()
    losses: list[float] = []
    for _ in range(config.steps):
        idx = torch.from_numpy(rng.integers(0, n, config.batch_size))
        x, y = task.example(pool, idx, gen)
        loss = task.compute_loss(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    net.eval()
    every = max(config.log_every, 1)
    curve = [float(np.mean(losses[i : i + every])) for i in range(0, len(losses), every)]
    tail = losses[-max(len(losses) // 10, 1) :] if losses else [float("nan")]
    return net, {"steps": config.steps, "seconds": time.perf_counter() - t0, "loss_curve": curve, "final_train_loss": float(np.mean(tail))}


@torch.no_grad()
def calibrate_batchnorm(net: TaskNet, pool: Scenes, seed: int, batches: int = 20, batch_size: int = 64) -> TaskNet:
    """Set every BatchNorm's running statistics to the pool's (cumulative average), weights untouched."""
    rng = np.random.default_rng(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    n = len(pool["rgb"])
    for _ in range(batches):
        net.encoder(pool["rgb"][torch.from_numpy(rng.integers(0, n, batch_size))])
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 0.1
    return net.eval()


def random_encoder(pool: Scenes, seed: int) -> TaskNet:
    """The control: a randomly initialised encoder (identity head), BatchNorm calibrated on ``pool``."""
    return calibrate_batchnorm(encoder_net(seed), pool, seed)


@torch.no_grad()
def round_to_half(net: torch.nn.Module) -> torch.nn.Module:
    """Round floating parameters and buffers to float16 and back, as stored in the zoo's files."""
    for t in list(net.parameters()) + list(net.buffers()):
        if t.is_floating_point():
            t.copy_(t.half().float())
    return net


@torch.no_grad()
def evaluate_net(task: Task, net: torch.nn.Module, scenes: Scenes, seed: int = 0, batch_size: int = 250) -> tuple[float, float]:
    """Mean test loss and metric of an end-to-end network on ``scenes`` (input noise from ``seed``)."""
    gen = torch.Generator().manual_seed(seed)
    n = len(scenes["rgb"])
    preds, targets = [], []
    for lo in range(0, n, batch_size):
        idx = torch.arange(lo, min(lo + batch_size, n))
        x, y = task.example(scenes, idx, gen)
        preds.append(net(x))
        targets.append(y)
    pred, target = torch.cat(preds), torch.cat(targets)
    return float(task.compute_loss(pred, target)), task.compute_metric(pred, target)
