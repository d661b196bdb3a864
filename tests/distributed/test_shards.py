"""Probe shards combine exactly: pieces per shard and Gram blocks per pair give the engine's graph."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_probes

from depara_core.cache import GraphCache
from depara_core.distributed.shards import assemble_graph, compute_shard, gram_block, shard_ranges
from depara_core.engine.graph import GraphOptions
from depara_core.engine.run import compute_graphs


@pytest.mark.parametrize("n, size, expected", [(10, 4, [(0, 4), (4, 10)]), (9, 3, [(0, 3), (3, 6), (6, 9)]), (5, 8, [(0, 5)]), (7, 1, [(0, 3), (3, 7)])])
def test_shard_ranges_cover_every_probe_once_with_at_least_three_each(n, size, expected):
    assert shard_ranges(n, size) == expected


@pytest.mark.parametrize("options", [GraphOptions(), GraphOptions(node_storage="sketch", sketch_dim=512), GraphOptions(objective="mean")])
def test_shards_and_blocks_assemble_into_the_engines_graph(tiny, tmp_path, options):
    probes, layers = random_probes(n=11), ("conv1", "act2", "fc")
    cache = GraphCache(tmp_path)
    ranges = shard_ranges(len(probes), 4)
    files = [compute_shard(tiny, probes, layers, options, lo, hi, cache, 3, None) for lo, hi in ranges]
    pairs = [(i, j) for i in range(len(ranges)) for j in range(i, len(ranges))]
    whole = compute_graphs(tiny, probes, list(layers), options)
    for layer in layers:
        blocks = {(i, j): gram_block(cache, files[i][layer], files[j][layer]) for i, j in pairs}
        assemble_graph(tiny, probes, layer, options, ranges, [f[layer] for f in files], blocks, cache)
        got, want = cache.load_graph(tiny, probes, layer, options), whole[layer]
        np.testing.assert_allclose(got.gram, want.gram, rtol=1e-5, atol=1e-9 * np.abs(want.gram).max())
        # per probe: the same maps whatever the shard (up to float16 rounding of different batchings)
        np.testing.assert_allclose(got.nodes.astype(np.float32), want.nodes.astype(np.float32), rtol=2e-3, atol=1e-6)
        np.testing.assert_allclose(got.node_norms, want.node_norms, rtol=1e-6)
        np.testing.assert_allclose(got.feature_sums, want.feature_sums, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(got.edges, want.edges, atol=1e-5)
        assert got.sketched == want.sketched and got.probe_ids == probes.ids
    assert not list((tmp_path / "shards").rglob("*.npz")), "shard files are removed once assembled"
