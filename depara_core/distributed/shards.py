"""Probe shards: one layer group's graphs over a large probe set, computed by several Ray tasks and
combined exactly.

Nodes, their norms and the feature sums are per probe, so each shard's task computes them for its
own probes (:func:`~depara_core.engine.run.iter_pieces`) and writes them, with its unit feature
rows, into the shared cache. The Gram matrix is assembled from blocks: one task per pair of shards
multiplies their feature rows (:func:`~depara_core.engine.run.feature_gram`, the engine's own
arithmetic). A last task per layer joins the pieces into the graph, checks it as the engine does
(:func:`~depara_core.engine.run.make_graph`) and stores it; the shard files are then removed.

>>> shard_ranges(10, 4)
[(0, 4), (4, 10)]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from depara_core.cache import GraphCache
from depara_core.engine.graph import GraphOptions
from depara_core.engine.pieces import LayerPieces
from depara_core.engine.run import feature_gram, iter_pieces, make_graph
from depara_core.errors import CacheError
from depara_core.models.spec import LoadedModel
from depara_core.probes.probeset import MIN_PROBES, ProbeSet

__all__ = ["shard_ranges", "compute_shard", "gram_block", "assemble_graph"]


def shard_ranges(n: int, size: int) -> list[tuple[int, int]]:
    """Consecutive probe ranges of ``size`` (the last one takes a remainder too small to stand alone)."""
    size = max(size, MIN_PROBES)
    bounds = list(range(0, n, size)) + [n]
    ranges = list(zip(bounds[:-1], bounds[1:], strict=True))
    if len(ranges) > 1 and ranges[-1][1] - ranges[-1][0] < MIN_PROBES:
        ranges[-2:] = [(ranges[-2][0], n)]
    return ranges


def _shard_path(cache: GraphCache, key: str, lo: int, hi: int) -> Path:
    return cache.pieces_path("shards", key, f"{lo}-{hi}")


def compute_shard(model: LoadedModel, probes: ProbeSet, layers: tuple[str, ...], options: GraphOptions, lo: int, hi: int, cache: GraphCache,
                  batch_size: int, memory_budget: int | None) -> dict[str, str]:  # fmt: skip
    """Compute probes ``lo:hi`` of ``layers`` and write each layer's pieces; returns ``{layer: file}``."""
    sub = ProbeSet(probes.images[lo:hi], probes.ids[lo:hi], probes.name)
    out = {}
    for p in iter_pieces(model, sub, layers, options, batch_size=batch_size, memory_budget=memory_budget, sketch_count=len(probes)):
        path = _shard_path(cache, cache.graph_key(model, probes, p.layer, options), lo, hi)
        cache.store_pieces(path, p)
        out[p.layer] = str(path)
        del p
    return out


def _load(cache: GraphCache, path: str) -> LayerPieces:
    pieces = cache.load_pieces(Path(path))
    if pieces is None:
        raise CacheError(f"the probe shard {Path(path).name} is missing from the cache folder", "use a cache folder that every node sees, and run again")
    return pieces


def gram_block(cache: GraphCache, path_a: str, path_b: str, block_bytes: int = 2**28) -> np.ndarray:
    """The Gram block between two shards' features of one layer."""
    a = _load(cache, path_a)
    b = a if path_b == path_a else _load(cache, path_b)  # the same tensor: feature_gram reads a diagonal block once
    return feature_gram(a.units, a.feature_norms, b.units, b.feature_norms, block_bytes)


def assemble_graph(model: LoadedModel, probes: ProbeSet, layer: str, options: GraphOptions, ranges: list[tuple[int, int]],
                   paths: list[str], blocks: dict[tuple[int, int], np.ndarray], cache: GraphCache) -> None:  # fmt: skip
    """Join one layer's shards and Gram blocks into its graph, store it, and remove the shard files."""
    parts = [_load(cache, p) for p in paths]
    first = parts[0]
    n = len(probes)
    gram = np.empty((n, n), np.float64)
    for (i, j), block in blocks.items():
        (lo_i, hi_i), (lo_j, hi_j) = ranges[i], ranges[j]
        gram[lo_i:hi_i, lo_j:hi_j] = block
        gram[lo_j:hi_j, lo_i:hi_i] = block.T
    nodes, node_norms, sums = (np.concatenate([getattr(p, k) for p in parts]) for k in ("nodes", "node_norms", "feature_sums"))
    graph = make_graph(model, probes, layer, nodes, node_norms, first.node_shape, gram, sums, first.feature_dim, options, first.sketched, first.notes)
    cache.store_graph(model, probes, graph)
    for p in paths:
        Path(p).unlink(missing_ok=True)
