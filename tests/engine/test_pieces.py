"""A stopped run keeps its layer group's pieces; the next run resumes at that batch with the same graphs."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_probes

from depara_core.cache import GraphCache
from depara_core.engine.graph import Cancelled, GraphOptions
from depara_core.engine.plan import plan_computation
from depara_core.engine.run import compute_graphs

LAYERS = ["conv1", "act2", "fc"]


class StopAfter:
    """A progress callback that records the probe counts it sees and stops after ``limit`` batches."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit, self.seen = limit, []

    def __call__(self, done: int, total: int, message: str) -> bool:
        self.seen.append(done)
        return self.limit is None or len(self.seen) < self.limit


def _partials(cache: GraphCache) -> list:
    return sorted((cache.root / "partial").rglob("*.npz"))


@pytest.fixture
def twenty():
    return random_probes(n=20)


def _same(a, b, exact: bool) -> None:
    for layer in LAYERS:
        if exact:
            np.testing.assert_array_equal(a[layer].nodes, b[layer].nodes)
            np.testing.assert_array_equal(a[layer].gram, b[layer].gram)
        else:  # other batch boundaries: float16 maps, float32 products
            np.testing.assert_allclose(a[layer].nodes.astype(float), b[layer].nodes.astype(float), atol=2e-3)
            np.testing.assert_allclose(a[layer].gram, b[layer].gram, rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(a[layer].node_norms, b[layer].node_norms, rtol=1e-6)
        np.testing.assert_allclose(a[layer].feature_sums, b[layer].feature_sums, rtol=1e-6)


def test_a_stopped_run_resumes_at_its_batch_with_the_same_graphs(tiny, twenty, tmp_path):
    reference = compute_graphs(tiny, twenty, LAYERS, batch_size=4)
    cache = GraphCache(tmp_path)
    stop = StopAfter(limit=4)
    with pytest.raises(Cancelled, match="after probe 12 of 20"):
        compute_graphs(tiny, twenty, LAYERS, cache=cache, batch_size=4, progress=stop)
    assert stop.seen == [0, 4, 8, 12]  # where the group starts, then each batch
    assert len(_partials(cache)) == len(LAYERS)  # one group: every layer's pieces of probes 0..11

    again = StopAfter()
    resumed = compute_graphs(tiny, twenty, LAYERS, cache=cache, batch_size=4, progress=again)
    assert again.seen == [12, 16, 20]  # two batches computed, not five
    _same(resumed, reference, exact=True)
    assert _partials(cache) == []  # the checkpoint goes once its graphs are stored
    assert all(cache.has_graph(tiny, twenty, layer, GraphOptions()) for layer in LAYERS)


def test_a_resumed_run_may_use_other_batches_and_a_spilled_store(tiny, twenty, tmp_path, monkeypatch):
    monkeypatch.setenv("DEPARA_SPILL_DIR", str(tmp_path / "spill"))
    (tmp_path / "spill").mkdir()
    reference = compute_graphs(tiny, twenty, LAYERS, batch_size=4)
    cache = GraphCache(tmp_path / "cache")
    with pytest.raises(Cancelled):
        compute_graphs(tiny, twenty, LAYERS, cache=cache, batch_size=3, progress=StopAfter(limit=3))
    plan = plan_computation(tiny, twenty, LAYERS, batch_size=5, memory_budget=40_000)
    assert "conv1" in plan.spilled and len(plan.groups) == 3  # one group then, three groups now
    again = StopAfter()
    resumed = compute_graphs(tiny, twenty, LAYERS, cache=cache, batch_size=5, memory_budget=40_000, progress=again)
    assert again.seen[0] == 6  # started after the six probes the stopped run kept
    _same(resumed, reference, exact=False)


def test_pieces_that_do_not_fit_or_cannot_be_read_are_ignored(tiny, twenty, tmp_path):
    reference = compute_graphs(tiny, twenty, LAYERS, batch_size=4)
    cache = GraphCache(tmp_path)
    with pytest.raises(Cancelled):
        compute_graphs(tiny, twenty, LAYERS, cache=cache, batch_size=4, progress=StopAfter(limit=3))
    broken = _partials(cache)[0]
    broken.write_bytes(b"not a checkpoint")
    again = StopAfter()
    resumed = compute_graphs(tiny, twenty, LAYERS, cache=cache, batch_size=4, progress=again)
    assert again.seen[0] == 0  # one layer's pieces were unreadable: the group starts at probe 0
    _same(resumed, reference, exact=True)


def test_pieces_resume_only_the_same_graph(tiny, twenty, tmp_path):
    """Checkpoints live under the graph's key: other probes or options start afresh."""
    cache = GraphCache(tmp_path)
    with pytest.raises(Cancelled):
        compute_graphs(tiny, twenty, LAYERS, cache=cache, batch_size=4, progress=StopAfter(limit=3))
    other = StopAfter()
    compute_graphs(tiny, twenty, LAYERS, GraphOptions(objective="sum"), cache=cache, batch_size=4, progress=other)
    assert other.seen[0] == 0
    fewer = StopAfter()
    compute_graphs(tiny, random_probes(n=20, seed=1), LAYERS, cache=cache, batch_size=4, progress=fewer)
    assert fewer.seen[0] == 0
