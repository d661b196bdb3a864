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

import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from depara_core.cache import GraphCache
from depara_core.engine.graph import Cancelled, GraphOptions, Progress
from depara_core.errors import DeparaError, GraphError, ModelError
from depara_core.models.spec import LoadedModel, ModelSpec
from depara_core.probes.probeset import ProbeSet

__all__ = ["GraphJob", "fill_cache", "TASK_RETRIES"]

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


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a HOST:PORT nobody listens on (``ray.init`` would retry for minutes)."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise DeparaError(f"{address!r} is not a Ray address", "write HOST:PORT (as `ray start --head` prints it), ray://HOST:PORT or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise DeparaError(
            f"no Ray cluster answers at {address!r} ({exc.strerror or type(exc).__name__})",
            "start one with `ray start --head` and pass the address it prints (--ray HOST:PORT), or --ray auto on a cluster node",
        ) from None


def _run_group(spec: ModelSpec, digest: str, probe_digest: str, cache_root: str, layers: tuple[str, ...], options: GraphOptions,
               batch_size: int, memory_budget: int | None) -> int:  # fmt: skip
    """One task, on a worker: compute ``layers`` of ``spec`` into the cache at ``cache_root``."""
    import ray
    import torch

    from depara_core.engine.run import compute_graphs
    from depara_core.models.spec import load_model

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    torch.set_num_threads(max(1, int(cpus)))  # as many threads as Ray gave the task, not the node's cores
    cache = GraphCache(cache_root)
    probes = cache.load_probes(probe_digest)
    model = load_model(spec)
    if model.digest != digest:
        raise ModelError(
            f"the weights of {spec.name!r} on node {ray.util.get_node_ip_address()} differ from the driver's",
            "make the same checkpoint (same path, same file) available on every node",
        )
    compute_graphs(model, probes, list(layers), options, cache=cache, batch_size=batch_size, memory_budget=memory_budget)
    return len(layers)


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
) -> int:
    """Compute every graph of ``jobs`` missing from ``cache`` on the Ray cluster at ``address``.

    Returns the number of tasks run. ``cache`` must be a folder every node sees (workers write
    there; the driver reads the results from it).
    """
    if cache is None:
        raise DeparaError("a Ray run needs the cache: workers write the graphs there", "drop --no-cache and give a --cache-dir every node sees")
    from depara_core.engine.plan import plan_computation
    from depara_core.models.spec import model_lock

    todo = []
    for job in jobs:
        missing = [k for k in dict.fromkeys(job.layers) if not cache.has_graph(job.model, probes, k, options)]
        if not missing:
            continue
        job.model.check_layers(missing)
        with model_lock(job.model.module):
            plan = plan_computation(job.model, probes, missing, options, batch_size=batch_size, memory_budget=memory_budget)
        todo += [(job.model, group) for group in plan.groups]
    if not todo:
        return 0
    _connect(address)
    import ray

    cache.store_probes(probes)
    remote = ray.remote(_run_group).options(num_cpus=1, max_retries=TASK_RETRIES, retry_exceptions=False)
    pending = {
        remote.remote(m.spec, m.digest, probes.digest, str(cache.root.resolve()), tuple(group), options, batch_size, memory_budget): (m.name, group)
        for m, group in todo
    }
    log.info("%d Ray task(s) for %d model(s) on %s", len(pending), len({m.name for m, _ in todo}), address)
    done = 0
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in ready:
                name, group = pending.pop(ref)
                _result(ray, ref, name, group)
                done += 1
            if progress is not None and progress(done, len(todo), f"Ray: {done}/{len(todo)} task(s) done") is False:
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
        raise GraphError(f"a Ray task for {where} failed: {str(cause or exc).strip().splitlines()[-1][:300]}", "see the worker's log on the cluster") from None
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError) as exc:
        raise GraphError(
            f"the Ray workers computing {where} died {TASK_RETRIES + 1} times ({type(exc).__name__})",
            "check the nodes' memory (lower --memory-budget) and logs, then run again: finished graphs are kept",
        ) from None
