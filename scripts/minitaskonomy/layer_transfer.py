"""Layer transfer (the paper's Syn2Real protocol): freeze a source up to block k, retrain the rest.

For a source encoder and a target task in another scene domain, each layer k = 1..5 is tried:
blocks 1..k are frozen (their outputs are computed once and cached), blocks k+1..5 start from
the source's weights and are fine-tuned together with a fresh head of the target task on the
labelled target-domain scenes; the test loss and metric are recorded. ``scratch`` rows train the
whole network from random weights on the same labels (the negative-transfer reference).

The seed fixes the head's initial weights and the minibatch order, shared by every source and
layer so that layers are compared on equal terms.

>>> from depara_core.probes.scenes import SceneConfig
>>> from depara_core.zoos.minitaskonomy.nets import encoder_net
>>> from minitaskonomy.transfer import TransferData
>>> data = TransferData.render(SceneConfig(resolution=32), train=16, test=8, train_seed=2, test_seed=3)
>>> cfg = LayerTransferConfig(budgets=(16,), seeds=(0,), steps=1)
>>> [(r["layer"], r["budget"]) for r in measure_layers("random", encoder_net(0).eval(), "depth", data, cfg, layers=(4,))]
[('encoder.block4', 16)]
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from depara_core.zoos.minitaskonomy.nets import CODE_SHAPE, LAYER_NAMES, Encoder, TaskNet, init_seed, make_head
from depara_core.zoos.minitaskonomy.tasks import TASKS, Task
from minitaskonomy.transfer import TransferData, encode, evaluate_head, fit_on_features

__all__ = ["LayerTransferConfig", "Suffix", "finetune_suffix", "measure_layers", "measure_scratch", "measure_constant", "layer_seed", "SCRATCH", "CONSTANT"]

SCRATCH = "scratch"
"""Source name (and layer) of the rows trained from random weights on the target labels alone."""
CONSTANT = "constant"
"""Source name (and layer) of the trivial rows: the best constant prediction (majority class, mean map)."""


@dataclass(frozen=True)
class LayerTransferConfig:
    """How layer transfer is measured (recorded in the manifest)."""

    budgets: tuple[int, ...] = (1000, 100)
    seeds: tuple[int, ...] = (0, 1)
    steps: int = 150
    """The most fine-tuning steps; with ``eval_every`` > 0 (and validation scenes) training stops early."""
    eval_every: int = 0
    """Check the validation loss every this many steps (0: no validation, train ``steps`` steps)."""
    patience: int = 6
    """Stop after this many checks without a better validation loss; the best check's weights are kept."""
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4

    def describe(self) -> dict:
        return asdict(self)


def layer_seed(target: str, budget: int, seed: int) -> int:
    """The seed of the fresh head and minibatch order, shared by every source and layer."""
    return init_seed(f"layer/{target}/{budget}/{seed}")


class Suffix(nn.Module):
    """Encoder blocks after block ``k`` (copied from a source, trainable) followed by a head."""

    def __init__(self, blocks: list[nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*blocks)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))


def _suffix(encoder: Encoder, k: int, task: Task) -> Suffix:
    blocks = [copy.deepcopy(b) for b in list(encoder.children())[k:]]
    return Suffix(blocks, make_head(task))


def finetune_suffix(
    task: Task, suffix: Suffix, feats: torch.Tensor, target: torch.Tensor, seed: int, config: LayerTransferConfig,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> Suffix:  # fmt: skip
    """Train ``suffix`` (its blocks and head) on cached block-k outputs, stopping early on
    ``validation`` when the config asks for it; returns it in eval mode."""
    params = [p for p in suffix.parameters()]
    for p in params:
        p.requires_grad_(True)
    return fit_on_features(task, suffix, params, feats, target, seed, config, validation if config.eval_every else None)


def _targets(task: Task, data: TransferData) -> tuple[torch.Tensor, torch.Tensor]:
    return task.target(data.train, torch.arange(len(data.train["rgb"]))), task.target(data.test, torch.arange(len(data.test["rgb"])))


def _validation(task: Task, data: TransferData, config: LayerTransferConfig, encode_val) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(inputs of the validation scenes through ``encode_val``, their targets), when early stopping is on."""
    if not config.eval_every:
        return None
    scenes = data.scenes("val")
    return encode_val(data.inputs(task.input, "val")), task.target(scenes, torch.arange(len(scenes["rgb"])))


def measure_layers(
    source: str, net: TaskNet, target: str, data: TransferData, config: LayerTransferConfig, layers: tuple[int, ...] = (1, 2, 3, 4, 5)
) -> list[dict]:
    """Rows (source, target, layer, budget, seed, loss, metric, seconds) for every layer k of ``net``."""
    task = TASKS[target]
    y_train, y_test = _targets(task, data)
    x_train, x_test = data.inputs(task.input, "train"), data.inputs(task.input, "test")
    rows = []
    for k in layers:
        f_train, f_test = encode(net, x_train, upto=k), encode(net, x_test, upto=k)
        val = _validation(task, data, config, lambda x, k=k: encode(net, x, upto=k))
        for budget in config.budgets:
            for s in config.seeds:
                t0 = time.perf_counter()
                seed = layer_seed(target, budget, s)
                torch.manual_seed(seed)
                suffix = finetune_suffix(task, _suffix(net.encoder, k, task), f_train[:budget], y_train[:budget], seed, config, val)
                loss, metric = evaluate_head(task, suffix, f_test, y_test)
                rows.append({
                    "source": source, "target": target, "layer": LAYER_NAMES[k - 1], "budget": budget, "seed": s,
                    "loss": loss, "metric": metric, "seconds": round(time.perf_counter() - t0, 3), "steps": suffix.stopped_at,
                })  # fmt: skip
    return rows


def measure_scratch(target: str, data: TransferData, config: LayerTransferConfig) -> list[dict]:
    """Rows for the whole network trained from random weights on the target labels (source and layer ``scratch``)."""
    task = TASKS[target]
    y_train, y_test = _targets(task, data)
    x_train, x_test = data.inputs(task.input, "train"), data.inputs(task.input, "test")
    val = _validation(task, data, config, lambda x: x)
    rows = []
    for budget in config.budgets:
        for s in config.seeds:
            t0 = time.perf_counter()
            seed = layer_seed(target, budget, s)
            torch.manual_seed(init_seed(f"scratch/{target}/{budget}/{s}"))
            blocks = list(Encoder().children())
            torch.manual_seed(seed)
            suffix = finetune_suffix(task, Suffix(blocks, make_head(task)), x_train[:budget], y_train[:budget], seed, config, val)
            loss, metric = evaluate_head(task, suffix, x_test, y_test)
            rows.append({
                "source": SCRATCH, "target": target, "layer": SCRATCH, "budget": budget, "seed": s,
                "loss": loss, "metric": metric, "seconds": round(time.perf_counter() - t0, 3), "steps": suffix.stopped_at,
            })  # fmt: skip
    return rows


def measure_constant(target: str, data: TransferData, config: LayerTransferConfig, steps: int = 400) -> list[dict]:
    """Rows of the trivial predictor per budget: one output, the same for every image, fitted to the
    budget's labels with the task's own loss (the majority class or class prior, the mean map),
    then scored on the test scenes. A target worth ranking layers for must beat it clearly."""
    task = TASKS[target]
    y_train, y_test = _targets(task, data)
    with torch.no_grad():
        shape = make_head(task)(torch.zeros(1, *CODE_SHAPE)).shape[1:]
    rows = []
    for budget in config.budgets:
        t0 = time.perf_counter()
        const = torch.zeros(shape, requires_grad=True)
        opt = torch.optim.Adam([const], lr=0.05)
        y = y_train[:budget]
        for _ in range(steps):
            loss = task.compute_loss(const.expand(len(y), *shape), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            pred = const.expand(len(y_test), *shape)
            rows.append({
                "source": CONSTANT, "target": target, "layer": CONSTANT, "budget": budget, "seed": 0,
                "loss": float(task.compute_loss(pred, y_test)), "metric": task.compute_metric(pred, y_test),
                "seconds": round(time.perf_counter() - t0, 3),
            })  # fmt: skip
    return rows
