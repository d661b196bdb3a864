"""Several processes on one cache: a file lock per entry, clearing under a live writer."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import numpy as np
from conftest import random_probes

from depara_core.cache import CacheWriteWarning, GraphCache
from depara_core.engine.graph import GraphOptions
from depara_core.engine.run import compute_graphs

DRIVER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from conftest import random_probes, tiny_spec
    from depara_core.cache import GraphCache
    from depara_core.engine.run import compute_graphs
    from depara_core.models.spec import load_model

    root, go = Path(sys.argv[1]), Path(sys.argv[2])
    model, probes = load_model(tiny_spec()), random_probes(n=40)
    while not go.exists():  # both drivers start computing at the same moment
        time.sleep(0.01)
    computed = []
    compute_graphs(model, probes, ["conv1", "conv2", "fc"], cache=GraphCache(root), batch_size=4,
                   progress=lambda done, total, msg: computed.append(done) or time.sleep(0.02))
    print("computed" if computed else "read")
    """
)


def test_two_drivers_never_compute_the_same_entry_at_once(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(tests=str(Path(__file__).parent)))
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "cache"), str(go)], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    go.touch()
    outs = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert [p.returncode for p in procs] == [0, 0]
    assert outs == ["computed", "read"]  # the second waited for the first one's locks, then read its entries
    assert len(list((tmp_path / "cache" / "graphs").rglob("*.npz"))) == 3


def test_locks_are_per_key_and_taken_in_sorted_order(tmp_path):
    cache = GraphCache(tmp_path)
    order: list[str] = []
    with cache.locked(["b" * 64, "a" * 64]):
        held = threading.Event()

        def other() -> None:  # another key is free meanwhile; the same key waits
            with cache.locked(["c" * 64]):
                order.append("c")
            with cache.locked(["a" * 64]):
                order.append("a")
            held.set()

        t = threading.Thread(target=other)
        t.start()
        t.join(0.5)
        assert order == ["c"] and not held.is_set()
    t.join(10)
    assert order == ["c", "a"]


def test_clearing_while_another_writer_writes_never_breaks_it(tmp_path, tiny):
    cache = GraphCache(tmp_path)
    graph = compute_graphs(tiny, random_probes(), ["conv2"])["conv2"]
    stop, errors = threading.Event(), []

    def clear_forever() -> None:
        while not stop.is_set():
            GraphCache(tmp_path).clear()

    clearer = threading.Thread(target=clear_forever)
    clearer.start()
    try:
        for seed in range(60):  # every write lands or warns; none raises
            probes = random_probes(seed=seed)
            g = compute_graphs(tiny, probes, ["conv2"])["conv2"] if seed < 3 else graph
            try:
                cache.store_graph(tiny, probes if seed < 3 else random_probes(), g)
            except Exception as exc:  # noqa: BLE001 - the property under test
                errors.append(exc)
    finally:
        stop.set()
        clearer.join()
    assert errors == []
    assert not list(tmp_path.rglob(".*.tmp")), "a live writer's temporary file must end renamed or removed, never left"


def test_a_removed_cache_folder_warns_and_the_result_is_kept(tmp_path, tiny):
    root = tmp_path / "cache"
    cache = GraphCache(root)
    root.rmdir()
    root.write_text("not a folder")  # the folder cannot be recreated
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        g = compute_graphs(tiny, random_probes(), ["conv2"], cache=cache)["conv2"]
    assert np.isfinite(g.edges).all()
    assert any(issubclass(w.category, CacheWriteWarning) for w in seen)


def test_probe_sets_round_trip_by_digest(tmp_path):
    cache = GraphCache(tmp_path)
    probes = random_probes(n=7)
    cache.store_probes(probes)
    back = cache.load_probes(probes.digest)
    assert back.digest == probes.digest and back.ids == probes.ids
    np.testing.assert_array_equal(back.images, probes.images)
    _ = GraphOptions  # options do not enter the probe store
