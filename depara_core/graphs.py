"""DEPARA graphs: attribution nodes (Eq. 3) and cosine edges (Eq. 4) of one layer over a probe set.

The engine runs ONE forward pass per batch for a group of layers, with hooks capturing each
layer's output, then one vector-Jacobian product per layer (graph retained) for the nodes. Layers
are grouped so that their stored features fit a memory budget; the forward stops at the deepest
layer of a group.

>>> import torch
>>> from depara_core.models import callable_spec, load_model
>>> from depara_core.probes import load_builtin
>>> net = load_model(callable_spec("net", lambda: torch.nn.Sequential(
...     torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3))))
>>> g = compute_graphs(net, load_builtin("noise", 6), ["2"])["2"]
>>> g.nodes.shape, g.edges.shape
((6, 12288), (6, 6))
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from .attribution import DEFAULT_METHOD, get_method
from .capture import capture_layers, count_calls
from .errors import DeparaError, GraphError, ProbeError
from .models import LoadedModel, model_lock
from .probes import ProbeSet
from .sketch import count_sketch

__all__ = [
    "GraphOptions", "Graph", "Cancelled", "DegenerateGraphWarning", "edges_from_gram", "Progress", "Plan", "iter_graphs", "compute_graphs", "plan_computation",
    "plan_layer_groups", "DEFAULT_MEMORY_BUDGET",
]  # fmt: skip

DEFAULT_MEMORY_BUDGET = 2 * 2**30
"""Bytes the engine may hold at once for stored features and nodes (3/4) and one batch's autograd
graph (1/4), on top of the model itself."""
STORE_SHARE = 0.75

Progress = Callable[[int, int, str], "bool | None"]
"""``progress(done, total, message)``; returning False stops the computation (:class:`Cancelled`)."""


class DegenerateGraphWarning(UserWarning):
    """Some probes have all-zero attribution maps or features at a layer (cosine taken as 0)."""


class Cancelled(DeparaError):
    """The progress callback asked to stop; layers finished before are kept (and cached)."""


@dataclass(frozen=True)
class GraphOptions:
    """How graphs are computed. The defaults are the paper's definitions.

    Reference-compatible choices (the original code's): ``objective="mean"`` (gradient of
    mean(F)) or ``"sum"``; ``node_reduce="channel_mean"`` or ``"channel_abs_mean"``;
    ``center_edges=True`` (features centred over probes before cosine edges).
    """

    method: str = DEFAULT_METHOD
    method_params: tuple[tuple[str, object], ...] = ()
    objective: Literal["sqnorm", "mean", "sum"] = "sqnorm"
    node_reduce: Literal["none", "channel_mean", "channel_abs_mean"] = "none"
    center_edges: bool = False
    node_storage: Literal["auto", "float16", "sketch"] = "auto"
    sketch_dim: int = 16384
    sketch_above: int = 2**27

    def __post_init__(self) -> None:
        get_method(self.method).params(**dict(self.method_params))
        for name, value, allowed in (
            ("objective", self.objective, ("sqnorm", "mean", "sum")),
            ("node_reduce", self.node_reduce, ("none", "channel_mean", "channel_abs_mean")),
            ("node_storage", self.node_storage, ("auto", "float16", "sketch")),
        ):
            if value not in allowed:
                raise DeparaError(f"{name}={value!r} is not supported", f"use one of {', '.join(allowed)}")

    def key(self) -> dict:
        """Everything that changes the stored graph (the cache key part)."""
        return {
            "method": self.method,
            "method_params": sorted((k, repr(v)) for k, v in get_method(self.method).params(**dict(self.method_params)).items()),
            "objective": self.objective,
            "node_reduce": self.node_reduce,
            "node_storage": self.node_storage,
            "sketch_dim": self.sketch_dim,
            "sketch_above": self.sketch_above,
        }

    def stores_sketch(self, n: int, node_dim: int) -> bool:
        return self.node_storage == "sketch" or (self.node_storage == "auto" and n * node_dim > self.sketch_above)


@dataclass(frozen=True)
class Graph:
    """One layer's DEPARA over a probe set.

    ``nodes`` are the attribution maps, each scaled to unit norm (float16), or their count sketch
    (float32, ``sketched``); ``node_norms`` the norms before scaling. ``gram`` is the raw feature
    Gram matrix and ``feature_sums`` the per-probe sums of features (float64): the edges, RSA and
    CKA all derive from these two.
    """

    model: str
    layer: str
    probe_ids: tuple[str, ...]
    probe_digest: str
    nodes: np.ndarray = field(repr=False)
    node_norms: np.ndarray = field(repr=False)
    node_shape: tuple[int, ...]
    gram: np.ndarray = field(repr=False)
    feature_sums: np.ndarray = field(repr=False)
    feature_dim: int
    options: GraphOptions = GraphOptions()
    sketched: bool = False
    model_digest: str = ""

    def __len__(self) -> int:
        return len(self.probe_ids)

    notes: tuple[str, ...] = ()

    @functools.cached_property
    def edges(self) -> np.ndarray:
        """(n, n) cosine similarities of the features (Eq. 4); centred over probes if so configured.

        A probe whose features are all zero has no direction: its edges count as 0 (see ``notes``).
        """
        return edges_from_gram(self.gram, self.options.center_edges)

    def node_map(self, index: int) -> np.ndarray:
        """The unit-norm attribution map of probe ``index`` in its original shape (unsketched graphs)."""
        if self.sketched:
            raise GraphError(f"graph of layer {self.layer!r} stores sketched nodes", "recompute with node_storage='float16' to view maps")
        return self.nodes[index].astype(np.float32).reshape(self.node_shape)


def degenerate_rows(gram: np.ndarray) -> np.ndarray:
    """Indices of probes whose feature vector is (numerically) zero in this Gram matrix."""
    diag = np.diag(gram)
    return np.flatnonzero(diag <= 1e-12 * max(float(np.max(np.abs(diag))), 1e-300))


def edges_from_gram(gram: np.ndarray, center: bool = False) -> np.ndarray:
    """Cosine similarity matrix from a Gram matrix (optionally of probe-centred features).

    Zero feature vectors have no direction: their cosines are set to 0 (1 on the diagonal).
    """
    k = center_gram(gram) if center else np.asarray(gram, np.float64)
    zero = degenerate_rows(k)
    diag = np.diag(k).copy()
    diag[zero] = 1.0
    inv = 1.0 / np.sqrt(diag)
    inv[zero] = 0.0
    e = k * inv[:, None] * inv[None, :]
    np.clip(e, -1.0, 1.0, out=e)
    np.fill_diagonal(e, 1.0)
    return e.astype(np.float32)


def center_gram(gram: np.ndarray) -> np.ndarray:
    """H K H with H the centring matrix: the Gram matrix of features centred over probes."""
    g = np.asarray(gram, np.float64)
    row = g.mean(axis=0, keepdims=True)
    return g - row - row.T + g.mean()


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


# ---- the engine ----------------------------------------------------------------------------
def _objective(feat: torch.Tensor, kind: str) -> torch.Tensor:
    f = feat.flatten(1)
    if kind == "sqnorm":
        return (f * f).sum(1)
    if kind == "mean":
        return f.mean(1)
    return f.sum(1)


def _reduce_node(node: torch.Tensor, how: str) -> torch.Tensor:
    if how == "channel_mean":
        return node.mean(1)
    if how == "channel_abs_mean":
        return node.abs().mean(1)
    return node


def iter_graphs(
    model: LoadedModel,
    probes: ProbeSet,
    layers: Sequence[str],
    options: GraphOptions = GraphOptions(),
    *,
    batch_size: int = 16,
    memory_budget: int | None = None,
    progress: Progress | None = None,
) -> Iterator[Graph]:
    """Compute the graphs of ``layers``, yielding each as soon as its group is done.

    Only one group's features and nodes are held at a time, so a caller that reduces each graph
    (layer selection) never holds every layer at once.
    """
    layers = list(dict.fromkeys(layers))
    if not layers:
        raise DeparaError("no layers were chosen", "choose at least one layer")
    model.check_layers(layers)
    if batch_size < 1:
        raise DeparaError(f"batch size {batch_size} is not positive", "use a batch size of 1 or more")
    module = model.module
    prep = model.spec.preprocess
    n = len(probes)
    method = get_method(options.method)
    params = method.params(**dict(options.method_params))
    fast = options.method == DEFAULT_METHOD

    with model_lock(module):
        plan = plan_computation(model, probes, layers, options, batch_size=batch_size, memory_budget=memory_budget)
        calls, node_shape, feature_dims, groups, sketched = plan.calls, plan.node_shape, plan.feature_dims, plan.groups, plan.sketched
        device = plan.device
        node_dim = math.prod(node_shape)
        batches = [(i, min(i + plan.batch_size, n)) for i in range(0, n, plan.batch_size)]
        total, done = len(groups) * len(batches), 0

        for group in groups:
            feats = {k: torch.empty((n, feature_dims[k]), dtype=torch.float16, device=device) for k in group}
            feat_norms = {k: torch.empty(n, dtype=torch.float64, device=device) for k in group}
            sums = {k: np.empty(n, np.float64) for k in group}
            nodes = {k: np.empty((n, options.sketch_dim if sketched else node_dim), np.float32 if sketched else np.float16) for k in group}
            norms = {k: np.empty(n, np.float64) for k in group}
            group_calls = {k: calls.get(k, 1) for k in group}
            for lo, hi in batches:
                x = prep(probes.images[lo:hi]).to(device).requires_grad_(fast)
                with capture_layers(module, group, group_calls) as run, torch.set_grad_enabled(fast):
                    captured = run(x)
                with torch.set_grad_enabled(fast):  # hooks are gone; the autograd graph is kept
                    for idx, k in enumerate(group):
                        f = captured[k]
                        if fast:
                            obj = _objective(f, options.objective).sum()
                            (grad,) = torch.autograd.grad(obj, x, retain_graph=idx < len(group) - 1)
                            node = x.detach() * grad
                        else:
                            node = _captum_node(model, k, group_calls, x, options, method, params)
                        _store_node(nodes[k], norms[k], lo, _reduce_node(node, options.node_reduce), sketched, options, probes, k)
                        flat = f.detach().flatten(1).float()
                        nrm = torch.linalg.vector_norm(flat, dim=1, dtype=torch.float64)
                        feats[k][lo:hi] = (flat / nrm.clamp_min(1e-30).float()[:, None]).half()  # unit rows: no fp16 overflow
                        feat_norms[k][lo:hi] = nrm
                        sums[k][lo:hi] = flat.sum(1, dtype=torch.float64).cpu().numpy()
                    del captured
                done += 1
                if progress is not None and progress(done, total, f"{model.name}: layers {group[0]}…{group[-1]}, probes {hi}/{n}") is False:
                    raise Cancelled(f"stopped while computing {model.name!r}", "run again to resume from the cache")
            for k in group:
                gram = _gram(feats.pop(k), feat_norms.pop(k))
                yield _make_graph(model, probes, k, nodes.pop(k), norms.pop(k), node_shape, gram, sums.pop(k), feature_dims[k], options, sketched)


def _captum_node(model: LoadedModel, layer: str, calls: dict[str, int], x: torch.Tensor, options: GraphOptions, method, params) -> torch.Tensor:
    """Attribution of one layer's objective through a registered (captum) method."""
    module = model.module

    def scalar(inp: torch.Tensor) -> torch.Tensor:
        with capture_layers(module, [layer], None if method.needs_module else {layer: calls.get(layer, 1)}) as run:
            return _objective(run(inp)[layer], options.objective)

    with torch.enable_grad():
        xi = x.detach().clone().requires_grad_(True)
        return method.attribute(scalar, xi, module=module, **params).detach()


def _store_node(store, norms, lo, node: torch.Tensor, sketched: bool, options: GraphOptions, probes: ProbeSet, layer: str) -> None:
    flat = node.detach().flatten(1).float()
    nrm = torch.linalg.vector_norm(flat, dim=1, dtype=torch.float64)
    bad = ~torch.isfinite(nrm)  # a NaN or Inf anywhere in a map makes its norm non-finite
    if bad.any():
        ids = [probes.ids[lo + int(i)] for i in torch.nonzero(bad).flatten()[:5]]
        raise GraphError(f"attributions at layer {layer!r} contain NaN or Inf for probe(s) {', '.join(ids)}", "check the model's numerics (use float32) or choose another layer")
    unit = flat / nrm.clamp_min(1e-30).float()[:, None]  # an all-zero map stays all zero
    hi = lo + unit.shape[0]
    norms[lo:hi] = nrm.cpu().numpy()
    store[lo:hi] = count_sketch(unit, options.sketch_dim).cpu().numpy() if sketched else unit.cpu().numpy().astype(np.float16)


def _gram(units: torch.Tensor, norms: torch.Tensor, chunk: int = 2**18) -> np.ndarray:
    """X Xᵀ from unit rows (float16) and their norms: float32 blocks of columns, float64 sums."""
    n, d = units.shape
    out = torch.zeros((n, n), dtype=torch.float64, device=units.device)
    for c in range(0, d, chunk):
        block = units[:, c : c + chunk].float()
        out += (block @ block.T).double()
    return (out * norms[:, None] * norms[None, :]).cpu().numpy()


def _make_graph(model, probes, layer, nodes, norms, node_shape, gram, sums, feature_dim, options, sketched) -> Graph:
    if not np.isfinite(gram).all():
        raise GraphError(f"features at layer {layer!r} contain NaN or Inf", "check the model's numerics or choose another layer")
    n, notes = len(probes), []
    where = f"{model.name}/{layer}"
    zero_maps = np.flatnonzero(norms <= 0)
    zero_feats = degenerate_rows(center_gram(gram) if options.center_edges else gram)
    if len(zero_maps) == n or len(zero_feats) == n:
        what = "attribution maps" if len(zero_maps) == n else ("features" if not options.center_edges else "centred features")
        raise GraphError(
            f"the {what} of every probe are all zero at {where}: cosine similarity is undefined",
            "choose another layer, other probes, or another attribution method",
        )
    for idx, what in ((zero_maps, "attribution maps"), (zero_feats, "features")):
        if len(idx):
            ids = ", ".join(probes.ids[i] for i in idx[:5]) + (f" (+{len(idx) - 5} more)" if len(idx) > 5 else "")
            notes.append(f"{where}: the {what} of {len(idx)} of {n} probes are all zero ({ids}); their cosines count as 0")
    for note in notes:
        warnings.warn(note, DegenerateGraphWarning, stacklevel=3)
    return Graph(model.name, layer, probes.ids, probes.digest, nodes, norms, node_shape, gram, sums, feature_dim, options, sketched, model.digest, tuple(notes))


def compute_graphs(
    model: LoadedModel,
    probes: ProbeSet,
    layers: Sequence[str],
    options: GraphOptions = GraphOptions(),
    *,
    cache=None,
    batch_size: int = 16,
    memory_budget: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Graph]:
    """Graphs of every layer in ``layers``: from ``cache`` where present, computed (and stored) otherwise."""
    result: dict[str, Graph] = {}
    missing = list(dict.fromkeys(layers))
    if cache is not None:
        for layer in list(missing):
            hit = cache.load_graph(model, probes, layer, options)
            if hit is not None:
                result[layer] = hit
                missing.remove(layer)
    if missing:
        for graph in iter_graphs(model, probes, missing, options, batch_size=batch_size, memory_budget=memory_budget, progress=progress):
            if cache is not None:
                cache.store_graph(model, probes, graph)
            result[graph.layer] = graph
    return {layer: result[layer] for layer in dict.fromkeys(layers)}
