"""DEPARA graphs: attribution nodes (Eq. 3) and cosine edges (Eq. 4) of one layer over a probe set.

The engine runs ONE forward pass per batch for a group of layers, with hooks capturing each
layer's output, then one vector-Jacobian product per layer (graph retained) for the nodes. Layers
are grouped so that their stored features fit a memory budget; the forward stops at the deepest
layer of a group.

>>> import torch
>>> from depara_core.models.sources import callable_spec
>>> from depara_core.models.spec import load_model
>>> from depara_core.probes.registry import load_builtin
>>> net = load_model(callable_spec("net", lambda: torch.nn.Sequential(
...     torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3))))
>>> g = compute_graphs(net, load_builtin("noise", 6), ["2"])["2"]
>>> g.nodes.shape, g.edges.shape
((6, 12288), (6, 6))
"""

from __future__ import annotations

import contextlib
import logging
import math
import mmap
import os
import tempfile
import threading
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from depara_core.engine.attribution import get_method
from depara_core.engine.capture import capture_layers
from depara_core.engine.checks import behaviour_notes
from depara_core.engine.compiled import compilable, compiled_layers
from depara_core.engine.gram import center_gram, degenerate_rows
from depara_core.engine.graph import DEFAULT_METHOD, Cancelled, DegenerateGraphWarning, Graph, GraphOptions, Progress
from depara_core.engine.pieces import Checkpoints, LayerPieces
from depara_core.engine.plan import plan_computation
from depara_core.engine.sketch import count_sketch
from depara_core.errors import DeparaError, GraphError
from depara_core.models.spec import LoadedModel, model_lock
from depara_core.probes.probeset import ProbeSet

__all__ = ['iter_graphs', 'iter_pieces', 'LayerPieces', 'feature_gram', 'make_graph', 'compute_graphs', 'arithmetic', 'tf32_switch']

log = logging.getLogger(__name__)
"""Reports each run's memory plan (the command line shows it unless --quiet)."""


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
    checkpoints: Checkpoints | None = None,
) -> Iterator[Graph]:
    """Compute the graphs of ``layers``, yielding each as soon as its group is done.

    Only one group's features and nodes are held at a time, so a caller that reduces each graph
    (layer selection) never holds every layer at once. ``checkpoints``: see :func:`iter_pieces`.
    """
    for p in iter_pieces(model, probes, layers, options, batch_size=batch_size, memory_budget=memory_budget, progress=progress, checkpoints=checkpoints):
        gram = feature_gram(p.units, p.feature_norms, p.units, p.feature_norms, p.block_bytes)
        graph = make_graph(model, probes, p.layer, p.nodes, p.node_norms, p.node_shape, gram, p.feature_sums, p.feature_dim, options, p.sketched, p.notes)
        del p  # the features go before the caller gets the graph
        yield graph


def iter_pieces(
    model: LoadedModel,
    probes: ProbeSet,
    layers: Sequence[str],
    options: GraphOptions = GraphOptions(),
    *,
    batch_size: int = 16,
    memory_budget: int | None = None,
    progress: Progress | None = None,
    sketch_count: int | None = None,
    checkpoints: Checkpoints | None = None,
) -> Iterator[LayerPieces]:
    """The engine's run: one forward per batch and group of layers, one VJP per layer; yields each
    layer's :class:`LayerPieces` when its group is done. ``sketch_count``: the number of probes the
    node-sketch decision counts, when ``probes`` is one shard of a larger set. With ``checkpoints``,
    a run stopped through ``progress`` keeps its group's pieces so far, and a later run of the same
    group starts after the probes they hold."""
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
        log.info("plan for %s on %d probes: %s", model.name, len(probes), plan.describe(len(probes), options))
        calls, node_shape, feature_dims, groups = plan.calls, plan.node_shape, plan.feature_dims, plan.groups
        device = plan.device
        node_dim = math.prod(node_shape)
        sketched = plan.sketched if sketch_count is None else options.stores_sketch(sketch_count, node_dim)
        model_notes = behaviour_notes(module, prep(probes.images[:2], device), repr(model.name))
        total = len(groups) * n  # progress counts probes: a resumed group starts where it stopped

        def capture(group: list[str], group_calls: dict[str, int]):
            if options.compile and compilable(group, group_calls):
                return compiled_layers(module, group, min(plan.batch_size, n))
            if options.compile:
                log.info("%s: layers %s run eagerly (the model's output or a module called more than once)", model.name, ", ".join(group))
            return capture_layers(module, group, group_calls)

        for g, group in enumerate(groups):
            stored = {k: options.stored_feature_dim(feature_dims[k]) for k in group}
            pieces = {
                k: LayerPieces(
                    k, np.empty((n, options.sketch_dim if sketched else node_dim), np.float32 if sketched else np.float16), np.empty(n, np.float64),
                    _spill_store(n, stored[k]) if k in plan.spilled else torch.empty((n, stored[k]), dtype=torch.float16, device=device),
                    torch.empty(n, dtype=torch.float64, device=device), np.empty(n, np.float64), node_shape, feature_dims[k], sketched, model_notes, plan.budget // 8,
                )  # fmt: skip
                for k in group
            }
            start = _resume(pieces, checkpoints)
            where = f"{model.name}: " + (f"layer {group[0]}" if len(group) == 1 else f"layers {group[0]}…{group[-1]}")
            if progress is not None and progress(g * n + start, total, f"{where}, starting at probe {start}/{n}") is False:
                raise Cancelled(f"stopped before computing {model.name!r}", "run again to resume from the cache")
            group_calls = {k: calls.get(k, 1) for k in group}
            for lo in range(start, n, plan.batch_size):
                hi = min(lo + plan.batch_size, n)
                x = prep(probes.images[lo:hi], device).requires_grad_(fast)
                with capture(group, group_calls) as run, torch.set_grad_enabled(fast), arithmetic(options.precision, device):
                    captured = run(x)
                with torch.set_grad_enabled(fast), tf32_switch(options.precision):  # hooks are gone; the autograd graph is kept
                    for idx, k in enumerate(group):
                        f = captured[k]
                        if fast:
                            if not f.requires_grad:
                                raise GraphError(
                                    f"the output of {model.name}/{k} does not depend differentiably on the input (no gradient path)",
                                    "choose a layer the input flows into, without detach(), no_grad or integer steps on the way",
                                )
                            obj = _objective(f.float(), options.objective).sum()  # float32 sums also under bf16
                            (grad,) = torch.autograd.grad(obj, x, retain_graph=idx < len(group) - 1)
                            node = prep.pixel_attribution(x.detach(), grad) if options.input_space == "pixels" else x.detach() * grad
                        else:
                            node = _captum_node(model, k, group_calls, x, options, method, params)
                        _store_node(pieces[k].nodes, pieces[k].node_norms, lo, _reduce_node(node, options.node_reduce), sketched, options, probes, k)
                        flat = f.detach().flatten(1).float()
                        nrm = torch.linalg.vector_norm(flat, dim=1, dtype=torch.float64)
                        units = flat / nrm.clamp_min(1e-30).float()[:, None]  # unit rows: no fp16 overflow
                        if stored[k] < feature_dims[k]:  # the explicit random-projection option
                            units = count_sketch(units, stored[k], seed=1)
                        units = units.half()
                        if isinstance(pieces[k].units, np.ndarray):
                            pieces[k].units[lo:hi] = units.cpu().numpy()  # spilled: written to the memory-mapped file
                            _unmap_pages(pieces[k].units)
                        else:
                            pieces[k].units[lo:hi] = units
                        pieces[k].feature_norms[lo:hi] = nrm
                        pieces[k].feature_sums[lo:hi] = flat.sum(1, dtype=torch.float64).cpu().numpy()
                    del captured
                if progress is not None and progress(g * n + hi, total, f"{where}, probes {hi}/{n}") is False:
                    if checkpoints is not None:
                        for p in pieces.values():
                            checkpoints.save(p.head(hi))
                        raise Cancelled(f"stopped while computing {model.name!r} after probe {hi} of {n}", "run again to resume from there")
                    raise Cancelled(f"stopped while computing {model.name!r}", "run again to resume from the cache")
            for k in group:  # a spilled store's file is unlinked already: its space goes with the mapping
                yield pieces.pop(k)
                if checkpoints is not None:
                    checkpoints.discard(k)


def _resume(pieces: dict[str, LayerPieces], checkpoints: Checkpoints | None) -> int:
    """Seed a group's stores from the pieces a stopped run kept; the first probe still to compute
    (0 unless every layer of the group has pieces that fit)."""
    if checkpoints is None:
        return 0
    saved = {k: checkpoints.load(k) for k in pieces}
    if not all(s is not None and s.fits(pieces[k]) for k, s in saved.items()):
        return 0
    start = min(s.done for s in saved.values())
    for k, s in saved.items():
        run = pieces[k]
        run.nodes[:start], run.node_norms[:start], run.feature_sums[:start] = s.nodes[:start], s.node_norms[:start], s.feature_sums[:start]
        run.feature_norms[:start] = torch.as_tensor(s.feature_norms[:start]).to(run.feature_norms.device)
        if isinstance(run.units, np.ndarray):  # spilled: the memory-mapped file
            run.units[:start] = np.asarray(s.units[:start])
        else:
            run.units[:start] = torch.as_tensor(s.units[:start]).to(run.units.device)
    log.info("resuming %s at probe %d (kept by a stopped run)", ", ".join(pieces), start)
    return start


_TF32_FLAGS = threading.RLock()
"""Held while the TF32 flags are switched: they are global to the process, so two runs in threads of
one process (two sessions of the app) must not interleave their switches, or one run's fp32 batch
would compute under the other's TF32 (and be cached as fp32). Re-entrant: a run's own nested
switches (the Gram matrices' fp32 inside a TF32 run) go through."""


@contextlib.contextmanager
def tf32_switch(precision: str) -> Iterator[None]:
    """TensorFloat-32 in CUDA matrix products and cuDNN convolutions exactly when ``precision`` is
    ``"tf32"``, for everything run inside (forward and backward alike). torch's own default lets
    cuDNN convolutions use TF32, so without this switch ``"fp32"`` would not be fp32 on a GPU. The
    flags are global to the process: they are restored after (and do nothing on a CPU), and other
    threads' switches wait meanwhile (:data:`_TF32_FLAGS`)."""
    with _TF32_FLAGS:
        saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@contextlib.contextmanager
def arithmetic(precision: str, device: torch.device) -> Iterator[None]:
    """The forward's arithmetic (see :class:`GraphOptions`): bf16 autocast, or TF32 switched on
    (:func:`tf32_switch`, which the engine also keeps around each batch's backward passes)."""
    with tf32_switch(precision):
        if precision == "bf16":
            with torch.autocast(device.type, dtype=torch.bfloat16):
                yield
        else:
            yield


def _captum_node(model: LoadedModel, layer: str, calls: dict[str, int], x: torch.Tensor, options: GraphOptions, method, params) -> torch.Tensor:
    """Attribution of one layer's objective through a registered (captum) method."""
    module = model.module

    def scalar(inp: torch.Tensor) -> torch.Tensor:
        with capture_layers(module, [layer], None if method.needs_module else {layer: calls.get(layer, 1)}) as run:
            return _objective(run(inp)[layer], options.objective)

    with torch.enable_grad(), arithmetic(options.precision, x.device):
        xi = x.detach().clone().requires_grad_(True)
        return method.attribute(scalar, xi, module=module, **params).detach().float()


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
    # float16 on the device before the copy: half the bytes over the bus, and torch's conversion
    # gives numpy's bits (round to nearest even) about 30x faster than ndarray.astype
    store[lo:hi] = count_sketch(unit, options.sketch_dim).cpu().numpy() if sketched else unit.half().cpu().numpy()


def feature_gram(a: torch.Tensor | np.ndarray, norms_a: torch.Tensor, b: torch.Tensor | np.ndarray, norms_b: torch.Tensor, block_bytes: int = 2**30) -> np.ndarray:
    """A Bᵀ scaled by the rows' norms: the Gram matrix (or, for two probe shards, one block of it) of
    features kept as float16 unit rows in memory or spilled to disk. Columns are read in blocks of at
    most ``block_bytes`` (float32); products in float32, sums in float64."""
    (na, d), nb = a.shape, b.shape[0]
    chunk = max(1, min(2**18, block_bytes // max(4 * (na + nb), 1)))
    dev = norms_a.device

    def cols(x, c):
        block = x[:, c : c + chunk]
        if not isinstance(block, np.ndarray):
            return block.to(dev).float()
        out = torch.from_numpy(np.array(block, dtype=np.float32))  # a copy: the file's pages can go
        _unmap_pages(x)
        return out.to(dev)

    out = torch.zeros((na, nb), dtype=torch.float64, device=dev)
    with tf32_switch("fp32"):  # float32 products whatever the process's TF32 flags say
        for c in range(0, d, chunk):
            ca = cols(a, c)
            out += (ca @ (ca if b is a else cols(b, c)).T).double()
    return (out * norms_a.to(dev)[:, None] * norms_b.to(dev)[None, :]).cpu().numpy()


def _unmap_pages(store: np.ndarray) -> None:
    """Take a spilled store's pages out of this process's resident set once they are written or read
    (Linux, ``MADV_DONTNEED`` on the shared file mapping: the data stays in the file and its page
    cache, which the kernel writes back and frees as it needs; without this every page touched counts
    as resident until the layer is done, e.g. 108 MiB for one VGG layer of 96 probes at 96²)."""
    mapping = getattr(store, "_mmap", None)
    if mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)


def _spill_store(n: int, dim: int) -> np.ndarray:
    """A float16 (n, dim) array in an unlinked temporary file (``$DEPARA_SPILL_DIR``, else the system's
    temporary folder): features of a layer too large for the memory budget. The file vanishes with
    the mapping, also when the process is killed."""
    folder = os.environ.get("DEPARA_SPILL_DIR") or None
    with tempfile.TemporaryFile(dir=folder) as fh:
        fh.truncate(n * dim * 2)
        return np.memmap(fh, dtype=np.float16, mode="r+", shape=(n, dim))


def make_graph(model, probes, layer, nodes, norms, node_shape, gram, sums, feature_dim, options, sketched, model_notes=()) -> Graph:
    """The :class:`Graph` from a layer's pieces and Gram matrix, with its degenerate probes checked and noted."""
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
    return Graph(model.name, layer, probes.ids, probes.digest, nodes, norms, node_shape, gram, sums, feature_dim, options, sketched, model.digest, (*model_notes, *notes))


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
    """Graphs of every layer in ``layers``: from ``cache`` where present, computed (and stored) otherwise.

    The missing entries' locks are held while they are computed: another process sharing the cache
    waits for them and then reads them instead of computing them too. A run stopped through
    ``progress`` keeps its unfinished layers' pieces in the cache, and the next run resumes after
    the last batch it finished."""
    result: dict[str, Graph] = {}
    missing = list(dict.fromkeys(layers))

    def read_hits() -> None:
        for layer in list(missing):
            hit = cache.load_graph(model, probes, layer, options)
            if hit is not None:
                result[layer] = hit
                missing.remove(layer)

    if cache is not None:
        read_hits()
    if missing:
        keys = [cache.graph_key(model, probes, layer, options) for layer in missing] if cache is not None else []
        with cache.locked(keys) if cache is not None else contextlib.nullcontext():
            if cache is not None:
                read_hits()  # another process may have computed some while we waited for the locks
            if missing:
                checkpoints = cache.checkpoints(model, probes, options) if cache is not None else None
                for graph in iter_graphs(model, probes, missing, options, batch_size=batch_size, memory_budget=memory_budget, progress=progress, checkpoints=checkpoints):
                    if cache is not None:
                        cache.store_graph(model, probes, graph)
                    result[graph.layer] = graph
    return {layer: result[layer] for layer in dict.fromkeys(layers)}
