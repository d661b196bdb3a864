"""The engine's memory plan: layer groups and batch size within a memory budget."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from depara_core.engine.capture import count_calls
from depara_core.engine.graph import GraphOptions
from depara_core.errors import DeparaError, ProbeError
from depara_core.models.spec import LoadedModel
from depara_core.probes.probeset import ProbeSet

__all__ = ["parse_size", "format_size", "DEFAULT_MEMORY_BUDGET", "STORE_SHARE", "plan_layer_groups", "default_memory_budget", "available_memory", "Plan", "plan_computation"]


DEFAULT_MEMORY_BUDGET = 2 * 2**30
"""Bytes the engine may hold at once for stored features and nodes (3/4) and one batch's autograd
graph (1/4), on top of the model itself."""


STORE_SHARE = 0.75

_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 10**3, "kib": 2**10, "m": 2**20, "mb": 10**6, "mib": 2**20, "g": 2**30, "gb": 10**9, "gib": 2**30}


def parse_size(text: str) -> int:
    """A memory budget written ``512MiB``, ``2GiB``, ``1.5G`` or as a number of bytes (1 MiB to 1 PiB).

    >>> parse_size("512MiB"), parse_size("1.5 GiB")
    (536870912, 1610612736)
    """
    raw = str(text).strip().lower().replace(" ", "")
    number = raw.rstrip("kmgib")
    unit = raw[len(number) :]
    hint = "write a size such as 512MiB or 2GiB"
    try:
        value = float(number) * _UNITS[unit]
    except (ValueError, KeyError):
        raise DeparaError(f"{text!r} is not a size such as 512MiB or 2GiB", hint) from None
    if not math.isfinite(value):
        raise DeparaError(f"{text!r} is not a size such as 512MiB or 2GiB", hint)
    if value < 2**20:
        raise DeparaError(f"{text!r} is below 1 MiB", "give at least 1MiB; the engine needs room for one probe's maps")
    if value > 2**50:
        raise DeparaError(f"{text!r} is more than 1 PiB; give the memory the engine may really use", hint)
    return int(value)


def format_size(count: float) -> str:
    """Bytes in the largest binary unit that keeps the number at 1 or more, to three digits.

    >>> format_size(1536), format_size(306 * 2**20), format_size(1.25 * 2**30), format_size(300)
    ('1.5 KiB', '306 MiB', '1.25 GiB', '300 B')
    """
    value, unit = float(count), "B"
    for next_unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024:
            break
        value, unit = value / 1024, next_unit
    return f"{value:.3g} {unit}" if value < 1000 else f"{value:,.0f} {unit}"


# ---- planning ------------------------------------------------------------------------------
def _layer_bytes(n: int, feature_dim: int, node_dim: int, options: GraphOptions, spilled: bool = False) -> int:
    """Memory one layer's graph holds while its group runs; a spilled layer keeps its features on disk."""
    node_bytes = n * (options.sketch_dim * 4 if options.stores_sketch(n, node_dim) else node_dim * 2)
    return (0 if spilled else n * options.stored_feature_dim(feature_dim) * 2) + node_bytes + n * n * 8


def plan_layer_groups(
    layers: Sequence[str], feature_dims: dict[str, int], node_dim: int, n: int, options: GraphOptions, budget: int
) -> tuple[list[list[str]], set[str]]:
    """Split ``layers`` (in forward order) into groups whose stored features and nodes fit ``budget``.

    A layer whose features alone do not fit is never refused: it runs in a group of its own with
    its features spilled to a float16 memory-mapped file, and its Gram matrix is formed block by
    block from there (exact, slower). Returns the groups and the spilled layers.
    """
    groups: list[list[str]] = []
    spilled: set[str] = set()
    used = budget + 1
    for layer in layers:
        need = _layer_bytes(n, feature_dims[layer], node_dim, options)
        if need > budget:
            spilled.add(layer)
            in_memory = _layer_bytes(n, feature_dims[layer], node_dim, options, spilled=True)
            if in_memory > budget:
                raise ProbeError(
                    f"{n} probes need {format_size(in_memory)} for the attribution maps and Gram matrix of layer {layer!r},"
                    f" more than the memory budget of {format_size(budget)} even with its features on disk",
                    "raise the memory budget (--memory-budget), use fewer probes, or store sketched nodes (node_storage='sketch')",
                )
            groups.append([layer])
            used = budget + 1  # the next layer starts a new group
            continue
        if used + need > budget:
            groups.append([])
            used = 0
        groups[-1].append(layer)
        used += need
    return groups, spilled


def default_memory_budget(device: torch.device | None = None) -> int:
    """The smaller of :data:`DEFAULT_MEMORY_BUDGET` and half the memory available now.

    On a GPU the budget is half its free memory: stores and activations live there.
    """
    if device is not None and device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free // 2)
    avail = available_memory()
    return DEFAULT_MEMORY_BUDGET if avail is None else int(min(DEFAULT_MEMORY_BUDGET, avail // 2))


def available_memory() -> int | None:
    """Bytes of memory available to new work: Linux's ``MemAvailable`` (free memory plus what the page
    cache would give back), not ``MemFree``, which shrinks whenever the OS caches files."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


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
    spilled: frozenset[str] = frozenset()

    def group_bytes(self, n: int, options: GraphOptions) -> list[int]:
        """Bytes of stored features (in memory), nodes and Gram matrices held while each group runs."""
        dim = math.prod(self.node_shape)
        return [sum(_layer_bytes(n, self.feature_dims[k], dim, options, k in self.spilled) for k in g) for g in self.groups]

    def describe(self, n: int, options: GraphOptions) -> str:
        """The plan in one line (the command line prints it; tests read it)."""
        peak = self.peak_bytes(n, options)
        spill = f"; features of {', '.join(sorted(self.spilled))} on disk" if self.spilled else ""
        return (f"memory budget {format_size(self.budget)}: {len(self.groups)} layer group(s), batch {self.batch_size},"
                f" planned peak {format_size(peak)}{spill}")  # fmt: skip

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
    device = model.device
    first = model.spec.preprocess(probes.images[:1]).to(device)
    calls, shapes, act_bytes = count_calls(module, list(layers), first)
    budget = memory_budget or default_memory_budget(device)
    # the retained autograd graph of a batch holds about twice the layers' outputs
    batch = max(1, min(batch_size, int(budget * (1 - STORE_SHARE) // max(2 * act_bytes, 1))))
    node_shape = tuple(first.shape[1:]) if options.node_reduce == "none" else tuple(first.shape[2:])
    feature_dims = {k: math.prod(shapes[k]) for k in layers}
    order = [k for k in dict.fromkeys(list(calls)) if k in feature_dims]  # forward order
    order += [k for k in layers if k not in order]
    groups, spilled = plan_layer_groups(order, feature_dims, math.prod(node_shape), len(probes), options, int(budget * STORE_SHARE))
    return Plan(
        tuple(tuple(g) for g in groups), batch, calls, feature_dims, node_shape,
        options.stores_sketch(len(probes), math.prod(node_shape)), act_bytes, budget, device, frozenset(spilled),
    )  # fmt: skip
