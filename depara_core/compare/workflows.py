"""End-to-end workflows over a zoo: encoder graphs → similarity terms, and layer selection, cached.

>>> from depara_core.probes.registry import load_builtin
>>> from depara_core.models.toy import toy_models
>>> nets = toy_models(3)
>>> terms = zoo_terms(nets, load_builtin("noise", 5))
>>> terms.names, terms.s_V.shape
(('m0', 'm1', 'm2'), (3, 3))
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

from depara_core.cache import GraphCache
from depara_core.compare.layers import LayerScores, layer_scores
from depara_core.compare.terms import SimilarityTerms, pairwise_terms
from depara_core.distributed.ray_runner import GraphJob, fill_cache
from depara_core.engine.graph import Graph, GraphOptions, Progress
from depara_core.engine.run import compute_graphs, iter_graphs
from depara_core.errors import DeparaError
from depara_core.models.spec import LoadedModel
from depara_core.probes.probeset import ProbeSet

__all__ = ["zoo_graphs", "zoo_terms", "select_layers"]


def _stage_progress(progress: Progress | None, stage: int, stages: int) -> Progress | None:
    """Map one model's progress onto the whole zoo's."""
    if progress is None:
        return None

    def inner(done: int, total: int, message: str):
        return progress(stage * total + done, stages * total, message)

    return inner


def zoo_graphs(
    models: Sequence[LoadedModel],
    probes: ProbeSet,
    options: GraphOptions = GraphOptions(),
    *,
    layers: Mapping[str, str] | None = None,
    cache: GraphCache | None = None,
    batch_size: int = 16,
    memory_budget: int | None = None,
    progress: Progress | None = None,
    ray_address: str | None = None,
    ray_probe_shard: int | None = None,
) -> dict[str, Graph]:
    """The graph of each model's encoder layer (or ``layers[name]``), keyed by model name.

    With ``ray_address`` the graphs are computed on that Ray cluster into ``cache`` first (see
    :mod:`depara_core.distributed`; ``ray_probe_shard`` probes per task); the same code then reads
    them from the cache.
    """
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise DeparaError("two models have the same name", "give every model its own name")
    chosen = {m.name: (layers or {}).get(m.name, m.spec.encoder) for m in models}
    if ray_address:
        fill_cache(ray_address, [GraphJob(m, (chosen[m.name],)) for m in models], probes, options, cache,
                   batch_size=batch_size, memory_budget=memory_budget, progress=progress, probe_shard=ray_probe_shard)  # fmt: skip
    out = {}
    for i, m in enumerate(models):
        layer = chosen[m.name]
        out[m.name] = compute_graphs(
            m, probes, [layer], options, cache=cache, batch_size=batch_size, memory_budget=memory_budget, progress=_stage_progress(progress, i, len(models))
        )[layer]
    return out


def zoo_terms(
    models: Sequence[LoadedModel],
    probes: ProbeSet,
    options: GraphOptions = GraphOptions(),
    *,
    layers: Mapping[str, str] | None = None,
    cache: GraphCache | None = None,
    baselines: bool = True,
    node_scale: float = 1.0,
    batch_size: int = 16,
    memory_budget: int | None = None,
    progress: Progress | None = None,
    graphs: Mapping[str, Graph] | None = None,
    ray_address: str | None = None,
    ray_probe_shard: int | None = None,
) -> SimilarityTerms:
    """λ-independent similarity terms of a zoo (see the module's example), from the cache when every
    input is unchanged.

    ``graphs`` (keyed by model name) are used instead of computing them when the caller holds them
    already; the cache entry is the same either way.
    """
    chosen = {m.name: (layers or {}).get(m.name, m.spec.encoder) for m in models}
    key = None
    if cache is not None:
        graph_keys = [cache.graph_key(m, probes, chosen[m.name], options) for m in models]
        key = cache.terms_key(graph_keys, [m.name for m in models], options, baselines, node_scale)
        hit = cache.load_terms(key)
        if hit is not None:
            return hit
    if graphs is None:
        graphs = zoo_graphs(models, probes, options, layers=chosen, cache=cache, batch_size=batch_size, memory_budget=memory_budget, progress=progress,
                            ray_address=ray_address, ray_probe_shard=ray_probe_shard)  # fmt: skip
    terms = pairwise_terms({m.name: graphs[m.name] for m in models}, baselines=baselines, node_scale=node_scale)
    if cache is not None and key is not None:
        cache.store_terms(key, terms)
    return terms


def select_layers(
    source: LoadedModel,
    target: LoadedModel,
    probes: ProbeSet,
    layers: Sequence[str] | None = None,
    options: GraphOptions = GraphOptions(),
    *,
    cache: GraphCache | None = None,
    node_scale: float = 1.0,
    batch_size: int = 16,
    memory_budget: int | None = None,
    progress: Progress | None = None,
    target_graph: Graph | None = None,
    ray_address: str | None = None,
    ray_probe_shard: int | None = None,
) -> LayerScores:
    """Score each layer of ``source`` against ``target``'s encoder graph (Eq. 6).

    Layers found in the cache are read from it one at a time; the others stream through the engine
    one memory group at a time and are written to the cache as they come, so that no more than one
    group of layers is held at once. ``target_graph`` is used when the caller holds it already.
    With ``ray_address`` the source's layer groups and the target's encoder are computed on that Ray
    cluster into ``cache`` first.
    """
    layers = list(dict.fromkeys(layers)) if layers else [layer.name for layer in source.selectable_layers()]
    if ray_address:
        jobs = [GraphJob(source, tuple(layers))] + ([GraphJob(target, (target.spec.encoder,))] if target_graph is None else [])
        fill_cache(ray_address, jobs, probes, options, cache, batch_size=batch_size, memory_budget=memory_budget, progress=progress, probe_shard=ray_probe_shard)
    if target_graph is None:
        target_graph = compute_graphs(target, probes, [target.spec.encoder], options, cache=cache, batch_size=batch_size, memory_budget=memory_budget)[target.spec.encoder]

    def missing() -> list[str]:
        return [layer for layer in layers if cache is None or not cache.has_graph(source, probes, layer, options)]

    def graphs() -> Iterator[Graph]:
        keys = [cache.graph_key(source, probes, layer, options) for layer in missing()] if cache is not None else []
        with cache.locked(keys) if cache is not None else contextlib.nullcontext():  # see compute_graphs
            yield from stream(missing())

    def stream(missing: list[str]) -> Iterator[Graph]:
        checkpoints = cache.checkpoints(source, probes, options) if cache is not None else None  # a stopped run resumes at its batch
        fresh = iter_graphs(source, probes, missing, options, batch_size=batch_size, memory_budget=memory_budget, progress=progress, checkpoints=checkpoints) if missing else iter(())
        computed: dict[str, Graph] = {}
        for layer in layers:  # yield in the requested order, computing groups as needed
            if layer not in missing:
                hit = cache.load_graph(source, probes, layer, options) if cache is not None else None
                if hit is not None:
                    yield hit
                    continue
                # the entry vanished (cleared) since the check: compute it alone
                yield from iter_graphs(source, probes, [layer], options, batch_size=batch_size, memory_budget=memory_budget)
                continue
            while layer not in computed:
                g = next(fresh)
                if cache is not None:
                    cache.store_graph(source, probes, g)
                computed[g.layer] = g
            yield computed.pop(layer)

    return layer_scores(graphs(), target_graph, node_scale)
