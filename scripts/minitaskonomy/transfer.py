"""Measured transfer: freeze a source encoder, train a fresh target head on few labels, test it.

For each (source encoder, target task) the source's codes for the labelled training scenes and the
test scenes are computed once (the encoder is frozen), then a fresh head of the target task's own
design is trained on the cached codes at each label budget and head seed, and its mean test loss
and metric are recorded. A head seed fixes the head's initial weights and its minibatch order and
is the same for every source, so sources are compared on equal terms (paired).

>>> from depara_core.probes.scenes import SceneConfig, render_scenes
>>> from depara_core.zoos.minitaskonomy.nets import encoder_net
>>> cfg = SceneConfig(resolution=32)
>>> data = TransferData.render(cfg, train=16, test=8, train_seed=2, test_seed=3)
>>> rows = measure_source("random", encoder_net(0).eval(), ["depth"], data, TransferConfig(budgets=(16, 8), head_seeds=(0,), steps=2))
>>> [(r["target"], r["budget"]) for r in rows]
[('depth', 16), ('depth', 8)]
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from depara_core.probes.scenes import SceneConfig, render_scenes
from depara_core.zoos.minitaskonomy.nets import TaskNet, init_seed, make_head
from depara_core.zoos.minitaskonomy.tasks import TASKS, InputKind, Scenes, Task, make_input, scene_tensors

__all__ = ["TransferConfig", "TransferData", "encode", "train_head", "fit_on_features", "evaluate_head", "measure_source", "head_seed", "INPUT_SEEDS"]

INPUT_SEEDS = {"train": 101, "test": 202, "val": 303}
"""Seeds of the input noise (denoising) on the labelled training, test and validation scenes, shared by all sources."""


@dataclass(frozen=True)
class TransferConfig:
    """How transfer is measured (recorded in the manifest).

    ``budgets`` are numbers of labelled scenes (the first ``b`` of the training scenes); each head
    is trained for ``steps`` Adam steps on minibatches of ``min(batch_size, b)`` codes.
    """

    budgets: tuple[int, ...] = (1000, 100)
    head_seeds: tuple[int, ...] = (0, 1)
    steps: int = 150
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4

    def describe(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TransferData:
    """The labelled training scenes, the test scenes and (optionally) validation scenes, as tensors."""

    train: Scenes = field(repr=False)
    test: Scenes = field(repr=False)
    val: Scenes | None = field(default=None, repr=False)

    @classmethod
    def render(cls, config: SceneConfig, train: int, test: int, train_seed: int, test_seed: int, val: int = 0, val_seed: int | None = None) -> TransferData:
        val_scenes = scene_tensors(render_scenes(val, config, val_seed)) if val else None
        return cls(scene_tensors(render_scenes(train, config, train_seed)), scene_tensors(render_scenes(test, config, test_seed)), val_scenes)

    def scenes(self, split: str) -> Scenes:
        scenes = {"train": self.train, "test": self.test, "val": self.val}[split]
        if scenes is None:
            raise ValueError(f"no {split} scenes were rendered")
        return scenes

    def inputs(self, kind: InputKind, split: str) -> torch.Tensor:
        return make_input(kind, self.scenes(split)["rgb"], torch.Generator().manual_seed(INPUT_SEEDS[split]))


def head_seed(target: str, budget: int, seed: int) -> int:
    """The head seed used for every source: depends on the target, the budget and the head seed index."""
    return init_seed(f"head/{target}/{budget}/{seed}")


@torch.no_grad()
def encode(net: TaskNet, x: torch.Tensor, upto: int | None = None, batch_size: int = 250) -> torch.Tensor:
    """The frozen encoder's code (or block ``upto``'s output) for images ``x``, in eval mode."""
    net.eval()
    return torch.cat([net.encoder(x[i : i + batch_size], upto) for i in range(0, len(x), batch_size)])


def train_head(task: Task, feats: torch.Tensor, target: torch.Tensor, seed: int, config: TransferConfig, head: torch.nn.Module | None = None) -> torch.nn.Module:
    """Train a fresh head of ``task`` (or ``head``) on cached features; returns it in eval mode."""
    torch.manual_seed(seed)
    head = make_head(task) if head is None else head
    return fit_on_features(task, head, list(head.parameters()), feats, target, seed, config)


def fit_on_features(
    task: Task, module: torch.nn.Module, params: list, feats: torch.Tensor, target: torch.Tensor, seed: int, config,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.nn.Module:  # fmt: skip
    """Adam on ``params`` of ``module`` over seeded minibatches of cached features; returns it in eval mode.

    ``config`` needs ``lr``, ``weight_decay``, ``batch_size`` and ``steps``. With ``validation``
    (features, targets) and ``config.eval_every``, training stops early: the validation loss is
    checked every ``eval_every`` steps, training ends after ``patience`` checks without improvement
    (or at ``steps``), and the weights of the best check are restored. ``module.stopped_at`` records
    that check's step.
    """
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    n = len(feats)
    bs = min(config.batch_size, n)
    every = getattr(config, "eval_every", 0) if validation is not None else 0
    best, best_state, best_step, stale = math.inf, None, config.steps, 0
    module.train()
    for step in range(1, config.steps + 1):
        idx = torch.from_numpy(rng.integers(0, n, bs))
        loss = task.compute_loss(module(feats[idx]), target[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if every and (step % every == 0 or step == config.steps):
            val_loss, _ = evaluate_head(task, module.eval(), *validation)
            module.train()
            if val_loss < best:
                best, best_step, stale = val_loss, step, 0
                best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
            else:
                stale += 1
                if stale >= config.patience:
                    break
    if best_state is not None:
        module.load_state_dict(best_state)
    module.stopped_at = best_step
    return module.eval()


@torch.no_grad()
def evaluate_head(task: Task, head: torch.nn.Module, feats: torch.Tensor, target: torch.Tensor, batch_size: int = 500) -> tuple[float, float]:
    """Mean test loss and the task metric of a trained head on cached test features."""
    pred = torch.cat([head(feats[i : i + batch_size]) for i in range(0, len(feats), batch_size)])
    return float(task.compute_loss(pred, target)), task.compute_metric(pred, target)


def measure_source(source: str, net: TaskNet, targets: list[str], data: TransferData, config: TransferConfig) -> list[dict]:
    """Rows (source, target, budget, head_seed, loss, metric, seconds) for every target, budget and head seed."""
    feats: dict[tuple[str, str], torch.Tensor] = {}
    rows = []
    for name in targets:
        task = TASKS[name]
        for split in ("train", "test"):
            if (task.input, split) not in feats:
                feats[task.input, split] = encode(net, data.inputs(task.input, split))
        n_train = len(data.train["rgb"])
        y_train = task.target(data.train, torch.arange(n_train))
        y_test = task.target(data.test, torch.arange(len(data.test["rgb"])))
        for budget in config.budgets:
            if budget > n_train:
                raise ValueError(f"budget {budget} exceeds the {n_train} labelled training scenes")
            for h in config.head_seeds:
                t0 = time.perf_counter()
                head = train_head(task, feats[task.input, "train"][:budget], y_train[:budget], head_seed(name, budget, h), config)
                loss, metric = evaluate_head(task, head, feats[task.input, "test"], y_test)
                rows.append({
                    "source": source, "target": name, "budget": budget, "head_seed": h, "loss": loss, "metric": metric,
                    "seconds": round(time.perf_counter() - t0, 3),
                })  # fmt: skip
    return rows
