"""What the two build scripts share: a timestamped log, a fresh staging folder, the rendered scene
pools, and running work units in forked worker processes.

>>> import tempfile, pathlib
>>> stage = fresh_dir(pathlib.Path(tempfile.mkdtemp()) / "stage")
>>> stage.is_dir(), list(stage.iterdir())
(True, [])
"""

from __future__ import annotations

import multiprocessing as mp
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from depara_core.probes.scenes import SceneConfig, render_scenes
from depara_core.zoos.minitaskonomy.tasks import scene_tensors
from minitaskonomy.transfer import TransferData

__all__ = ["log", "fresh_dir", "render_data", "run_units", "run_record"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def fresh_dir(path: Path) -> Path:
    """``path`` as a new empty folder (a previous one is removed)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def render_data(
    config: SceneConfig, pool_n: int, labelled_n: int, test_n: int, seeds: tuple[int, int, int], val_n: int = 0, val_seed: int | None = None
) -> tuple[dict, TransferData, float]:
    """The training pool and the labelled/test (and ``val_n`` validation) scenes, rendered with
    ``seeds`` = (pool, labelled, test) and ``val_seed``.

    Returns them with the seconds it took.
    """
    pool_seed, train_seed, test_seed = seeds
    t0 = time.perf_counter()
    pool = scene_tensors(render_scenes(pool_n, config, pool_seed))
    data = TransferData.render(config, labelled_n, test_n, train_seed, test_seed, val_n, val_seed)
    return pool, data, round(time.perf_counter() - t0, 2)


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def run_units(fn: Callable, units: Sequence, jobs: int, threads: int) -> list:
    """``[fn(u) for u in units]``, in ``jobs`` forked processes of ``threads`` torch threads each."""
    if jobs <= 1:
        return [fn(u) for u in units]
    with mp.get_context("fork").Pool(jobs, initializer=_init_worker, initargs=(threads,)) as pool:
        return pool.map(fn, units, chunksize=1)


def run_record(version: dict, jobs: int, threads: int, argv: Sequence[str] | None) -> dict:
    """The manifest's record of a build run: when, with which code, on what, by which command."""
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "code_version": version,
        "environment": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__, "machine": platform.machine(),
                        "jobs": jobs, "threads_per_job": threads, "cpus": os.cpu_count()},
        "command": " ".join([Path(sys.argv[0]).name] + list(argv if argv is not None else sys.argv[1:])),
    }  # fmt: skip
