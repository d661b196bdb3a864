"""Graphs computed on a Ray cluster: one task per (model, layer group), results in the shared cache.

The driver plans each model's layer groups within the memory budget (as the local engine does),
stores the probe set in the cache under its digest and submits one task per group. A worker reads
the probes by digest, builds the model from its spec, checks that its weights have the driver's
digest, and runs the ordinary engine (:func:`~depara_core.engine.run.compute_graphs`) with the
cache, which takes a file lock per entry. The driver only waits; the workflows then read every
graph from the cache. A worker killed mid-task is retried by Ray; an interrupted driver resumes
from what the cache holds.

>>> GraphJob.__name__
'GraphJob'
"""

from __future__ import annotations

import functools
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from depara_core.cache import GraphCache
from depara_core.distributed.shards import assemble_graph, compute_shard, gram_block, shard_ranges
from depara_core.engine.graph import Cancelled, GraphOptions, Progress
from depara_core.errors import DeparaError, GraphError, ModelError, error_detail
from depara_core.models.spec import LoadedModel, ModelSpec
from depara_core.probes.probeset import ProbeSet

__all__ = ["GraphJob", "fill_cache", "needs_cache", "TASK_RETRIES"]

log = logging.getLogger(__name__)

TASK_RETRIES = 3
"""How often Ray reruns a task whose worker process died (killed, out of memory, node lost)."""


@dataclass(frozen=True)
class GraphJob:
    """The layers of one model whose graphs are wanted."""

    model: LoadedModel
    layers: tuple[str, ...]


_connected: list[str] = []  # the address this process joined


def _connect(address: str) -> None:
    """Join the Ray cluster at ``address`` (``host:port``, ``ray://host:port`` or ``auto``)."""
    try:
        import ray
    except ImportError:
        raise DeparaError("Ray is not installed", "install it with: pip install 'depara-explorer[ray]'") from None

    if ray.is_initialized():
        if _connected == [address]:
            return
        ray.shutdown()  # joined another cluster before
    _connected.clear()
    _check_reachable(address)
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise DeparaError(
            f"no Ray cluster could be reached at {address!r} ({str(exc).splitlines()[0][:200]})",
            "start one with `ray start --head` and pass the address it prints (--ray HOST:PORT), or --ray auto on a cluster node",
        ) from None
    _connected.append(address)


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a Ray address (None for ``auto``); a malformed address is refused."""
    if address == "auto":
        return None
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DeparaError(f"{address!r} is not a Ray address", "write HOST:PORT (as `ray start --head` prints it), ray://HOST:PORT or auto")
    return host, int(port)


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a HOST:PORT nobody listens on (``ray.init`` would retry for minutes)."""
    where = _host_port(address)
    if where is None:
        return
    host, port = where
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise DeparaError(
            f"no Ray cluster answers at {address!r} ({exc.strerror or type(exc).__name__})",
            "start one with `ray start --head` and pass the address it prints (--ray HOST:PORT), or --ray auto on a cluster node",
        ) from None


def _worker_inputs(spec: ModelSpec, digest: str, probe_digest: str, cache_root: str) -> tuple[LoadedModel, ProbeSet, GraphCache]:
    """On a worker: the model built from its spec (checked against the driver's weights), the probes
    read by digest, and the shared cache; torch gets as many threads as Ray gave the task."""
    import ray
    import torch

    from depara_core.models.spec import load_model

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    torch.set_num_threads(max(1, int(cpus)))  # not the node's cores: other tasks share them
    cache = GraphCache(cache_root)
    probes = cache.load_probes(probe_digest)
    model = load_model(spec)
    if model.digest != digest:
        raise ModelError(
            f"the weights of {spec.name!r} on node {ray.util.get_node_ip_address()} differ from the driver's",
            "make the same checkpoint (same path, same file) available on every node",
        )
    return model, probes, cache


def _run_group(spec: ModelSpec, digest: str, probe_digest: str, cache_root: str, layers: tuple[str, ...], options: GraphOptions,
               batch_size: int, memory_budget: int | None) -> int:  # fmt: skip
    """One task: compute ``layers`` of ``spec`` over every probe into the cache at ``cache_root``."""
    from depara_core.engine.run import compute_graphs

    model, probes, cache = _worker_inputs(spec, digest, probe_digest, cache_root)
    compute_graphs(model, probes, list(layers), options, cache=cache, batch_size=batch_size, memory_budget=memory_budget)
    return len(layers)


def _run_shard(spec, digest, probe_digest, cache_root, layers, options, lo, hi, batch_size, memory_budget) -> dict[str, str]:
    """One task: the per-probe pieces of probes ``lo:hi`` (see :mod:`depara_core.distributed.shards`)."""
    model, probes, cache = _worker_inputs(spec, digest, probe_digest, cache_root)
    return compute_shard(model, probes, tuple(layers), options, lo, hi, cache, batch_size, memory_budget)


def _run_block(cache_root: str, layer: str, a: dict[str, str], b: dict[str, str]) -> np.ndarray:
    """One task: the Gram block of two shards at ``layer``."""
    return gram_block(GraphCache(cache_root), a[layer], b[layer])


def _run_assembly(spec, digest, probe_digest, cache_root, layer, options, ranges, pairs, *parts) -> str:
    """One task: join a layer's shards (``parts``: the shards' files, then the blocks of ``pairs``) into its graph."""
    model, probes, cache = _worker_inputs(spec, digest, probe_digest, cache_root)
    files, blocks = parts[: len(ranges)], parts[len(ranges) :]
    assemble_graph(model, probes, layer, options, ranges, [f[layer] for f in files], dict(zip(pairs, blocks, strict=True)), cache)
    return layer


@functools.lru_cache(maxsize=8)
def _remote(ray, fn):
    """``fn`` as a Ray remote function: one CPU, rerun when its worker dies (not on a raised error)."""
    return ray.remote(num_cpus=1, max_retries=TASK_RETRIES, retry_exceptions=False)(fn)


def _submit(ray, model: LoadedModel, probes: ProbeSet, group: tuple[str, ...], options: GraphOptions, cache: GraphCache,
            batch_size: int, memory_budget: int | None, shard: int | None) -> dict:  # fmt: skip
    """Submit one layer group's tasks; returns {ref: (model name, group)} of every task, to wait on."""
    args = (model.spec, model.digest, probes.digest, str(cache.root.resolve()))
    run = functools.partial(_remote, ray)
    ranges = shard_ranges(len(probes), shard) if shard else [(0, len(probes))]
    if len(ranges) == 1:
        return {run(_run_group).remote(*args, group, options, batch_size, memory_budget): (model.name, group)}
    refs = {}
    shards = [run(_run_shard).remote(*args, group, options, lo, hi, batch_size, memory_budget) for lo, hi in ranges]
    refs.update({r: (model.name, group) for r in shards})
    pairs = [(i, j) for i in range(len(ranges)) for j in range(i, len(ranges))]
    for layer in group:
        blocks = [run(_run_block).remote(args[3], layer, shards[i], shards[j]) for i, j in pairs]
        refs.update({b: (model.name, (layer,)) for b in blocks})
        refs[run(_run_assembly).remote(*args, layer, options, ranges, pairs, *shards, *blocks)] = (model.name, (layer,))
    return refs


def needs_cache() -> DeparaError:
    """The error for a Ray run without a cache folder."""
    return DeparaError("a Ray run needs the cache: workers write the graphs there", "drop --no-cache and give a --cache-dir every node sees")


def fill_cache(
    address: str,
    jobs: Sequence[GraphJob],
    probes: ProbeSet,
    options: GraphOptions,
    cache: GraphCache | None,
    *,
    batch_size: int = 16,
    memory_budget: int | None = None,
    progress: Progress | None = None,
    probe_shard: int | None = None,
) -> int:
    """Compute every graph of ``jobs`` missing from ``cache`` on the Ray cluster at ``address``.

    Returns the number of layer groups run. ``cache`` must be a folder every node sees (workers
    write there; the driver reads the results from it). ``probe_shard``: probes per task; a larger
    set is split into shards whose pieces and Gram blocks are separate tasks, combined exactly.
    """
    if cache is None:
        raise needs_cache()
    _host_port(address)  # a malformed address is refused even when the cache holds everything
    args = (address, jobs, probes, options, cache, batch_size, memory_budget, progress, probe_shard)
    if not probe_shard or len(shard_ranges(len(probes), probe_shard)) == 1:
        return _fill(*args)  # each task's compute_graphs takes its entries' locks on the worker
    # shard, block and assembly tasks take no locks of their own: the driver holds them for the run,
    # so that a second driver waits and then finds the graphs instead of sharding them again
    keys = [cache.graph_key(job.model, probes, k, options) for job in jobs for k in dict.fromkeys(job.layers) if not cache.has_graph(job.model, probes, k, options)]
    with cache.locked(keys):
        return _fill(*args)


def _fill(address, jobs, probes, options, cache, batch_size, memory_budget, progress, probe_shard) -> int:
    """:func:`fill_cache` after its checks: plan the missing layer groups, submit, wait."""
    from depara_core.engine.plan import plan_computation
    from depara_core.models.spec import model_lock

    todo = []
    for job in jobs:
        missing = [k for k in dict.fromkeys(job.layers) if not cache.has_graph(job.model, probes, k, options)]
        if not missing:
            continue
        job.model.check_layers(missing)
        first = probes if not probe_shard else ProbeSet(probes.images[: max(probe_shard, 3)], probes.ids[: max(probe_shard, 3)])
        with model_lock(job.model.module):  # groups sized for the probes one task holds
            plan = plan_computation(job.model, first, missing, options, batch_size=batch_size, memory_budget=memory_budget)
        todo += [(job.model, group) for group in plan.groups]
    if not todo:
        return 0
    _connect(address)
    import ray

    cache.store_probes(probes)
    pending: dict = {}
    for m, group in todo:
        pending.update(_submit(ray, m, probes, tuple(group), options, cache, batch_size, memory_budget, probe_shard))
    tasks = len(pending)
    log.info("%d Ray task(s) for %d layer group(s) of %d model(s) on %s", tasks, len(todo), len({m.name for m, _ in todo}), address)
    done = 0
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in ready:
                name, group = pending.pop(ref)
                _result(ray, ref, name, group)
                done += 1
            if progress is not None and progress(done, tasks, f"Ray: {done}/{tasks} task(s) done") is False:
                raise Cancelled("stopped while the cluster was computing", "run again to resume from the cache")
    finally:
        for ref in pending:  # stopped or failed: the other tasks are not needed now
            ray.cancel(ref, force=True)
    return len(todo)


def _result(ray, ref, name: str, group: Sequence[str]) -> None:
    """Raise a task's failure as the project's own error."""
    where = f"{name!r} (layers {group[0]}…{group[-1]})"
    try:
        ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, DeparaError):
            raise cause from None
        raise GraphError(f"a Ray task for {where} failed: {error_detail(cause or exc)}", "see the worker's log on the cluster") from None
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError) as exc:
        raise GraphError(
            f"the Ray workers computing {where} died {TASK_RETRIES + 1} times ({type(exc).__name__})",
            "check the nodes' memory (lower --memory-budget) and logs, then run again: finished graphs are kept",
        ) from None
