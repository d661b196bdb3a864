"""The engine's memory plan: layer groups and batch size within a memory budget."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from depara_core.engine.capture import count_calls
from depara_core.engine.graph import GraphOptions
from depara_core.errors import ProbeError
from depara_core.models.spec import LoadedModel
from depara_core.probes.probeset import ProbeSet

__all__ = ['DEFAULT_MEMORY_BUDGET', 'STORE_SHARE', 'plan_layer_groups', 'default_memory_budget', 'Plan', 'plan_computation']


DEFAULT_MEMORY_BUDGET = 2 * 2**30
"""Bytes the engine may hold at once for stored features and nodes (3/4) and one batch's autograd
graph (1/4), on top of the model itself."""


STORE_SHARE = 0.75


# ---- planning ------------------------------------------------------------------------------
def _layer_bytes(n: int, feature_dim: int, node_dim: int, options: GraphOptions) -> int:
    node_bytes = n * (options.sketch_dim * 4 if options.stores_sketch(n, node_dim) else node_dim * 2)
    return n * feature_dim * 2 + node_bytes + n * n * 8


def plan_layer_groups(
    layers: Sequence[str], feature_dims: dict[str, int], node_dim: int, n: int, options: GraphOptions, budget: int
) -> list[list[str]]:
    """Split ``layers`` (in forward order) into groups whose stored features and nodes fit ``budget``."""
    groups: list[list[str]] = []
    used = budget + 1
    for layer in layers:
        need = _layer_bytes(n, feature_dims[layer], node_dim, options)
        if need > budget:
            per_probe = max(_layer_bytes(1, feature_dims[layer], node_dim, options), 1)
            fit = max(int(budget // per_probe), 0)
            raise ProbeError(
                f"{n} probes need {need / 2**30:.2f} GiB at layer {layer!r} ({feature_dims[layer]:,} features per probe),"
                f" more than the memory budget of {budget / 2**30:.2f} GiB; about {fit} probes fit",
                f"use at most {fit} probes, a smaller probe size, or raise the memory budget",
            )
        if used + need > budget:
            groups.append([])
            used = 0
        groups[-1].append(layer)
        used += need
    return groups


def default_memory_budget(device: torch.device | None = None) -> int:
    """The smaller of :data:`DEFAULT_MEMORY_BUDGET` and half the memory available now.

    On a GPU the budget is half its free memory: stores and activations live there.
    """
    if device is not None and device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free // 2)
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return DEFAULT_MEMORY_BUDGET
    return int(min(DEFAULT_MEMORY_BUDGET, avail // 2))


@dataclass(frozen=True)
class Plan:
    """How the engine will run: layer groups (one forward pass per batch each) and the batch size."""

    groups: tuple[tuple[str, ...], ...]
    batch_size: int
    calls: dict[str, int]
    feature_dims: dict[str, int]
    node_shape: tuple[int, ...]
    sketched: bool
    activation_bytes_per_probe: int
    budget: int
    device: torch.device

    def group_bytes(self, n: int, options: GraphOptions) -> list[int]:
        """Bytes of stored features, nodes and Gram matrices held while each group runs."""
        dim = math.prod(self.node_shape)
        return [sum(_layer_bytes(n, self.feature_dims[k], dim, options) for k in g) for g in self.groups]

    def peak_bytes(self, n: int, options: GraphOptions) -> int:
        """Planned peak of the engine's own memory: the largest group plus one batch's autograd graph."""
        return max(self.group_bytes(n, options)) + 2 * self.activation_bytes_per_probe * self.batch_size


def plan_computation(
    model: LoadedModel,
    probes: ProbeSet,
    layers: Sequence[str],
    options: GraphOptions = GraphOptions(),
    *,
    batch_size: int = 16,
    memory_budget: int | None = None,
) -> Plan:
    """Measure the layers' sizes with one probe and plan groups and batch size within the budget."""
    module = model.module
    device = next(iter(module.parameters()), torch.empty(0)).device
    first = model.spec.preprocess(probes.images[:1]).to(device)
    calls, shapes, act_bytes = count_calls(module, list(layers), first)
    budget = memory_budget or default_memory_budget(device)
    # the retained autograd graph of a batch holds about twice the layers' outputs
    batch = max(1, min(batch_size, int(budget * (1 - STORE_SHARE) // max(2 * act_bytes, 1))))
    node_shape = tuple(first.shape[1:]) if options.node_reduce == "none" else tuple(first.shape[2:])
    feature_dims = {k: math.prod(shapes[k]) for k in layers}
    order = [k for k in dict.fromkeys(list(calls)) if k in feature_dims]  # forward order
    order += [k for k in layers if k not in order]
    groups = plan_layer_groups(order, feature_dims, math.prod(node_shape), len(probes), options, int(budget * STORE_SHARE))
    return Plan(
        tuple(tuple(g) for g in groups), batch, calls, feature_dims, node_shape,
        options.stores_sketch(len(probes), math.prod(node_shape)), act_bytes, budget, device,
    )  # fmt: skip
