"""The distributed path on a real local Ray cluster (a head and two worker nodes on 127.0.0.1).

The cluster is started and stopped by this module. Results computed by Ray tasks must match the
local engine's; a worker killed mid-task is retried; a stopped driver resumes from the cache.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from depara_core.cache import GraphCache
from depara_core.cli import main
from depara_core.compare.workflows import zoo_terms
from depara_core.distributed import GraphJob, LocalRayCluster, fill_cache
from depara_core.engine.graph import Cancelled, GraphOptions
from depara_core.models.sources import parse_source
from depara_core.models.spec import load_model
from depara_core.probes.registry import load_builtin

ZOO = [f"zoo:mini-taskonomy/{task}" for task in ("depth", "normals", "albedo", "segmentation")]
MODELS = [arg for m in ZOO for arg in ("--model", m)]


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray")
    with LocalRayCluster(workers=2, cpus_per_node=1) as address:
        yield address
        import ray

        ray.shutdown()


def _close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], list) and a[key] and isinstance(a[key][0], (list, float)):
            np.testing.assert_allclose(np.array(a[key], float), np.array(b[key], float), atol=1e-6, err_msg=key)
        else:
            assert a[key] == b[key], key


def _run(tmp_path: Path, name: str, argv: list[str]) -> dict:
    out = tmp_path / f"{name}.json"
    assert main([*argv, "--json", str(out), "--quiet"]) == 0
    return json.loads(out.read_text())


@pytest.mark.slow
def test_similarity_layers_and_graphs_on_ray_match_the_local_engine(cluster, tmp_path):
    cache = ["--cache-dir", str(tmp_path / "shared")]
    probes = ["--probes", "builtin:scenes", "--count", "24"]
    for name, argv in {
        "similarity": ["similarity", *MODELS, *probes, "--baselines"],
        "layers": ["layers", "--source", ZOO[0], "--target", ZOO[1], *probes, "--layers", "all"],
        "graphs": ["graphs", *MODELS[:4], *probes, "--layers", "all"],
    }.items():
        distributed = _run(tmp_path, f"{name}-ray", [*argv, *cache, "--ray", cluster])
        local = _run(tmp_path, f"{name}-local", [*argv, "--no-cache"] if name != "graphs" else [*argv, "--cache-dir", str(tmp_path / name)])
        if name == "graphs":  # one row per (model, layer)
            rows, expected = distributed["graphs"], local["graphs"]
            assert len(rows) == len(expected) > 4
            for row, want in zip(rows, expected, strict=True):
                assert row.pop("mean_edge") == pytest.approx(want.pop("mean_edge"), abs=1e-6) and row == want
            continue
        _close(distributed, local)
    assert (tmp_path / "shared" / "probes").is_dir(), "workers read the probes from the shared cache"


def _task_pids() -> list[int]:
    """Processes running one of our Ray tasks (Ray titles them after the task's function)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "cmdline").read_bytes().startswith(b"ray::_run_group"):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


@pytest.mark.slow
def test_a_worker_killed_mid_task_is_retried_with_the_same_numbers(cluster, tmp_path):
    models = [load_model(parse_source(m)) for m in ZOO]
    probes = load_builtin("scenes", 24)
    killed: list[int] = []

    def kill_first_task() -> None:
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for pid in _task_pids():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            time.sleep(0.02)

    killer = threading.Thread(target=kill_first_task)
    killer.start()
    distributed = zoo_terms(models, probes, cache=GraphCache(tmp_path / "shared"), ray_address=cluster)
    killer.join()
    assert killed, "no task was seen running"
    local = zoo_terms(models, probes)
    np.testing.assert_allclose(distributed.s_V, local.s_V, atol=1e-6)
    np.testing.assert_allclose(distributed.s_E, local.s_E, atol=1e-6)


@pytest.mark.slow
def test_a_stopped_driver_resumes_from_the_cache(cluster, tmp_path):
    models = [load_model(parse_source(m)) for m in ZOO]
    probes = load_builtin("scenes", 12)
    cache = GraphCache(tmp_path / "shared")
    jobs = [GraphJob(m, (m.spec.encoder,)) for m in models]
    with pytest.raises(Cancelled):
        fill_cache(cluster, jobs, probes, GraphOptions(), cache, progress=lambda done, total, msg: done == 0)
    # tasks stopped after the first one: whatever finished is kept, the rest is computed now
    done_before = sum(cache.has_graph(m, probes, m.spec.encoder, GraphOptions()) for m in models)
    assert 1 <= done_before <= len(models)
    assert fill_cache(cluster, jobs, probes, GraphOptions(), cache) == len(models) - done_before
    assert fill_cache(cluster, jobs, probes, GraphOptions(), cache) == 0


def test_without_ray_nothing_imports_it(tmp_path):
    code = (
        "import sys; from depara_core.cli import main; "
        f"assert main(['similarity', '--model', {ZOO[0]!r}, '--model', {ZOO[1]!r}, '--probes', 'builtin:noise', '--count', '4', '--no-cache', '--quiet']) == 0; "
        "assert 'ray' not in sys.modules, 'ray was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, capture_output=True, timeout=300)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--ray", "127.0.0.1:1"], "no Ray cluster answers at '127.0.0.1:1'"),
        (["--ray", "nonsense"], "is not a Ray address"),
        (["--ray", "127.0.0.1:1", "--no-cache"], "a Ray run needs the cache"),
    ],
)
def test_bad_ray_settings_get_a_clear_message(extra, message, tmp_path, capsys):
    argv = ["similarity", *MODELS[:4], "--probes", "builtin:noise", "--count", "4", "--quiet", *extra]
    if "--no-cache" not in extra:
        argv += ["--cache-dir", str(tmp_path)]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_probe_shards_on_ray_match_the_local_engine(cluster, tmp_path):
    """24 probes in shards of 8: 3 piece tasks, 6 Gram blocks and an assembly per layer, combined exactly."""
    probes = ["--probes", "builtin:scenes", "--count", "24"]
    argv = ["layers", "--source", ZOO[0], "--target", ZOO[1], *probes, "--layers", "all"]
    sharded = _run(tmp_path, "sharded", [*argv, "--cache-dir", str(tmp_path / "shared"), "--ray", cluster, "--ray-shard", "8"])
    local = _run(tmp_path, "local", [*argv, "--no-cache"])
    _close({k: v for k, v in sharded.items() if k != "layers"}, {k: v for k, v in local.items() if k != "layers"})
    for got, want in zip(sharded["layers"], local["layers"], strict=True):
        assert got["layer"] == want["layer"]
        assert got["s_V"] == pytest.approx(want["s_V"], abs=1e-4) and got["s_E"] == pytest.approx(want["s_E"], abs=1e-4)
    assert not list((tmp_path / "shared" / "shards").rglob("*.npz")), "shard files are removed once assembled"


@pytest.mark.slow
def test_two_sharding_drivers_never_compute_the_same_graph_at_once(cluster, tmp_path):
    models = [load_model(parse_source(m)) for m in ZOO[:2]]
    probes = load_builtin("scenes", 18)
    cache = GraphCache(tmp_path / "shared")
    jobs = [GraphJob(m, (m.spec.encoder,)) for m in models]
    runs: list[int] = []
    drivers = [threading.Thread(target=lambda: runs.append(fill_cache(cluster, jobs, probes, GraphOptions(), cache, probe_shard=6))) for _ in range(2)]
    for d in drivers:
        d.start()
    for d in drivers:
        d.join(300)
    assert sorted(runs) == [0, len(models)]  # the second driver waited for the first one's locks, then found the graphs
    assert all(cache.has_graph(m, probes, m.spec.encoder, GraphOptions()) for m in models)
