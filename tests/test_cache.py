"""The disk cache: round trips, keys, and atomic writes under a killed writer."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
from conftest import random_probes, tiny_spec

from depara_core.cache import GraphCache
from depara_core.engine.graph import GraphOptions
from depara_core.engine.run import compute_graphs
from depara_core.models.spec import load_model


def test_round_trip_is_exact(tiny, probes, tmp_path):
    cache = GraphCache(tmp_path)
    assert not cache.has_graph(tiny, probes, "conv2", GraphOptions())
    g = compute_graphs(tiny, probes, ["conv2"], cache=cache)["conv2"]
    assert cache.has_graph(tiny, probes, "conv2", GraphOptions())
    h = cache.load_graph(tiny, probes, "conv2", GraphOptions())
    for field in ("nodes", "node_norms", "gram", "feature_sums"):
        np.testing.assert_array_equal(getattr(g, field), getattr(h, field))
    assert (h.node_shape, h.feature_dim, h.probe_ids) == (g.node_shape, g.feature_dim, g.probe_ids)
    np.testing.assert_array_equal(g.edges, h.edges)


def test_keys_change_with_every_input(tiny, probes, tmp_path):
    cache = GraphCache(tmp_path)
    base = cache.graph_key(tiny, probes, "conv2", GraphOptions())
    other_weights = load_model(tiny_spec(seed=9))
    variants = [
        cache.graph_key(other_weights, probes, "conv2", GraphOptions()),
        cache.graph_key(tiny, random_probes(seed=3), "conv2", GraphOptions()),
        cache.graph_key(tiny, probes, "conv1", GraphOptions()),
        cache.graph_key(tiny, probes, "conv2", GraphOptions(objective="mean")),
        cache.graph_key(tiny, probes, "conv2", GraphOptions(method="integrated_gradients")),
        cache.graph_key(tiny, probes, "conv2", GraphOptions(method="integrated_gradients", method_params=(("n_steps", 4),))),
    ]
    assert len({base, *variants}) == len(variants) + 1
    assert cache.graph_key(load_model(tiny_spec(name="renamed")), probes, "conv2", GraphOptions()) == base


def test_a_broken_entry_is_a_miss_not_an_error(tiny, probes, tmp_path):
    cache = GraphCache(tmp_path)
    compute_graphs(tiny, probes, ["conv2"], cache=cache)
    (entry,) = tmp_path.glob("graphs/*/*.npz")
    entry.write_bytes(entry.read_bytes()[:500])  # as if torn by a non-atomic writer
    assert cache.load_graph(tiny, probes, "conv2", GraphOptions()) is None
    assert not entry.exists()


def test_writer_killed_mid_write_leaves_no_readable_entry(tmp_path):
    """A child process stores a graph but is killed after writing its data, before the rename."""
    child = textwrap.dedent(
        f"""
        import os, sys, time
        from conftest import random_probes, tiny_spec
        from depara_core.cache import GraphCache
        from depara_core.engine.run import compute_graphs
        from depara_core.models.spec import load_model
        m, p = load_model(tiny_spec()), random_probes()
        g = compute_graphs(m, p, ["conv2"])["conv2"]
        def hang(fd):
            print("WRITING", flush=True)
            time.sleep(60)
        os.fsync = hang
        GraphCache({str(tmp_path)!r}).store_graph(m, p, g)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}  # the child imports conftest's helpers
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "WRITING"
        time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
    assert list(tmp_path.glob("graphs/*/*.tmp")), "the writer should have been caught mid-write"
    assert not list(tmp_path.glob("graphs/*/*.npz"))
    m, p = load_model(tiny_spec()), random_probes()
    cache = GraphCache(tmp_path)
    assert cache.load_graph(m, p, "conv2", GraphOptions()) is None
    compute_graphs(m, p, ["conv2"], cache=cache)  # recomputes and stores
    assert cache.load_graph(m, p, "conv2", GraphOptions()) is not None
    cache.clear()
    assert not list(tmp_path.rglob("*.npz"))
