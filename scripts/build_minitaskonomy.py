#!/usr/bin/env python
"""Build the mini-taskonomy zoo from scratch: task networks, a random control, measured transfer.

    python scripts/build_minitaskonomy.py --out assets/minitaskonomy            # full build
    python scripts/build_minitaskonomy.py --out /tmp/mt --tiny                  # seconds-long smoke build

Steps: render a fixed pool of 32x32 scenes (DEFAULT domain); train every task at each encoder seed
(plus a randomly initialised, BatchNorm-calibrated control encoder); store float16 safetensors;
freeze every encoder and train fresh target heads on cached codes at each label budget and head
seed; write ``transfer_long.csv``, ``affinity_<budget>.csv`` (targets whose ground truth is flat
are left out and listed), ``agreement.json`` and ``manifest.json`` (written last). The build is
staged in ``<out>.partial`` and moved into ``<out>`` when complete.

Work runs in ``--jobs`` processes with ``--threads`` torch threads each: on a small shared CPU,
several single-threaded processes beat one multi-threaded one by far.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import torch
from minitaskonomy.analysis import FLAT_SNR, FLAT_SPEARMAN, affinity_table, flatness, seed_agreement
from minitaskonomy.build import fresh_dir, log, render_data, run_record, run_units
from minitaskonomy.store import code_version, save_weights, write_json
from minitaskonomy.train import TrainConfig, evaluate_net, random_encoder, round_to_half, train_task
from minitaskonomy.transfer import TransferConfig, measure_source

from depara_core.probes.scenes import DEFAULT
from depara_core.zoos.minitaskonomy.assets import (
    MANIFEST,
    RANDOM,
    build_model,
    model_file,
    model_name,
    read_manifest,
)
from depara_core.zoos.minitaskonomy.nets import CODE_SHAPE, ENCODER_LAYER, LAYER_NAMES, RESOLUTION, WIDTHS, encoder_params, init_seed
from depara_core.zoos.minitaskonomy.tasks import TASK_NAMES, TASKS

FORMAT = 1
POOL_SEED, TRANSFER_TRAIN_SEED, TEST_SEED = 1, 2, 3
OWNED = ("manifest.json", "agreement.json", "transfer_long.csv")  # plus affinity_*.csv and the weights in the manifest

# Shared with forked workers (set in main before the pool starts).
_STATE: dict = {}


def _train_unit(unit: tuple[str, int]) -> dict:
    task, seed = unit
    out: Path = _STATE["stage"]
    pool, test = _STATE["pool"], _STATE["data"].test
    t0 = time.perf_counter()
    if task == RANDOM:
        seed_value = init_seed(f"{RANDOM}/{seed}")
        net = random_encoder(pool, seed_value)
        train_log: dict = {"steps": 0, "batchnorm_calibration": "20 batches of 64 pool scenes"}
        quality = {}
    else:
        seed_value = init_seed(f"{task}/{seed}")
        net, train_log = train_task(TASKS[task], pool, seed_value, _STATE["train_config"])
        round_to_half(net)  # measured as stored
        loss, metric = evaluate_net(TASKS[task], net, test, seed=TEST_SEED)
        quality = {"test_loss": loss, "test_metric": metric}
    round_to_half(net)
    name = RANDOM if task == RANDOM else model_name(task, seed)
    stored = save_weights(net, out / model_file(name))
    entry = {
        "name": name, "task": None if task == RANDOM else task, "encoder_seed": seed, "init_seed": seed_value,
        **stored, **quality, "train": train_log, "seconds": round(time.perf_counter() - t0, 2),
    }  # fmt: skip
    log(f"trained {name:24s} {entry['seconds']:7.1f} s  " + (f"test loss {quality['test_loss']:.4f}  metric {quality['test_metric']:.4f}" if quality else "(control)"))
    return entry


def _transfer_unit(name: str) -> list[dict]:
    t0 = time.perf_counter()
    entry = _STATE["models"][name]
    net = build_model(entry["task"], _STATE["stage"] / entry["file"])
    rows = measure_source(name, net, _STATE["targets"], _STATE["data"], _STATE["transfer_config"])
    log(f"transfer from {name:24s} {time.perf_counter() - t0:7.1f} s")
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="assets/minitaskonomy", help="output folder (default: assets/minitaskonomy)")
    p.add_argument("--tiny", action="store_true", help="a seconds-long smoke build (tiny pools, a few steps)")
    p.add_argument("--steps", type=int, help="training steps per task network (full: 400, tiny: 3)")
    p.add_argument("--head-steps", type=int, help="training steps per transfer head (full: 100, tiny: 2)")
    p.add_argument("--seeds", type=int, default=2, help="encoder seeds per task (default 2)")
    p.add_argument("--head-seeds", type=int, default=2, help="head seeds per (source, target, budget) (default 2)")
    p.add_argument("--budgets", help="comma-separated label budgets (full: 1000,100; tiny: 48,16)")
    p.add_argument("--tasks", help="comma-separated subset of tasks (default: all)")
    p.add_argument("--pool", type=int, help="scenes in the training pool (full: 12000, tiny: 256)")
    p.add_argument("--test", type=int, help="test scenes (full: 500, tiny: 32)")
    p.add_argument("--keep-flat", action=argparse.BooleanOptionalAction, default=None,
                   help="keep targets whose ground truth is flat in the affinity tables (default: drop them; tiny builds keep them)")
    p.add_argument("--reanalyse", action="store_true", help="only recompute the ground-truth tables of the build in --out from its transfer_long.csv")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.reanalyse:
        return reanalyse(Path(args.out))
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    version = code_version()  # before anything runs
    tiny = args.tiny
    keep_flat = tiny if args.keep_flat is None else args.keep_flat
    tasks = [t.strip() for t in args.tasks.split(",")] if args.tasks else list(TASK_NAMES)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise SystemExit(f"unknown task(s) {unknown}; choose among {', '.join(TASK_NAMES)}")
    budgets = tuple(int(b) for b in args.budgets.split(",")) if args.budgets else ((48, 16) if tiny else (1000, 100))
    pool_n = args.pool or (256 if tiny else 12000)
    test_n = args.test or (32 if tiny else 500)
    train_cfg = TrainConfig(steps=args.steps if args.steps is not None else (3 if tiny else 400), batch_size=32 if tiny else 64)
    transfer_cfg = TransferConfig(
        budgets=budgets, head_seeds=tuple(range(args.head_seeds)), steps=args.head_steps if args.head_steps is not None else (2 if tiny else 100)
    )
    scene_cfg = replace(DEFAULT, resolution=RESOLUTION)
    out = Path(args.out)
    stage = fresh_dir(out.with_name(out.name + ".partial"))
    timings: dict[str, float] = {}

    pool, data, timings["render_s"] = render_data(scene_cfg, pool_n, max(budgets), test_n, (POOL_SEED, TRANSFER_TRAIN_SEED, TEST_SEED))
    log(f"rendered {pool_n} pool + {max(budgets)} labelled + {test_n} test scenes in {timings['render_s']} s")
    _STATE.update(stage=stage, pool=pool, data=data, train_config=train_cfg, transfer_config=transfer_cfg, targets=tasks)

    units = [(t, s) for s in range(1, args.seeds + 1) for t in tasks] + [(RANDOM, 1)]
    units.sort(key=lambda u: (u[0] == RANDOM, not TASKS[u[0]].dense if u[0] in TASKS else True))  # long units first
    t0 = time.perf_counter()
    entries = run_units(_train_unit, units, args.jobs, args.threads)
    timings["train_s"] = round(time.perf_counter() - t0, 2)
    order = {name: i for i, name in enumerate([model_name(t, s) for s in range(1, args.seeds + 1) for t in tasks] + [RANDOM])}
    entries.sort(key=lambda e: order[e["name"]])
    models = {e["name"]: e for e in entries}
    _STATE["models"] = models
    log(f"trained {len(entries)} networks in {timings['train_s']} s")

    t0 = time.perf_counter()
    rows = [r for chunk in run_units(_transfer_unit, list(models), args.jobs, args.threads) for r in chunk]
    timings["transfer_s"] = round(time.perf_counter() - t0, 2)
    log(f"measured {len(rows)} transfers in {timings['transfer_s']} s")

    long = pd.DataFrame(rows)
    long.to_csv(stage / "transfer_long.csv", index=False, float_format="%.6g")
    analysis = analyse(long, tasks, budgets, keep_flat, stage)
    timings["total_s"] = round(time.perf_counter() - t_start, 2)

    manifest = {
        "format": FORMAT,
        "name": "mini-taskonomy",
        "tiny": tiny,
        **run_record(version, args.jobs, args.threads, argv),
        "resolution": RESOLUTION,
        "scene_config": asdict(scene_cfg),
        "scenes": {"pool": {"seed": POOL_SEED, "count": pool_n}, "labelled": {"seed": TRANSFER_TRAIN_SEED, "count": max(budgets)},
                   "test": {"seed": TEST_SEED, "count": test_n}},
        "architecture": {"widths": list(WIDTHS), "code_shape": list(CODE_SHAPE), "encoder_params": encoder_params(),
                         "layers": list(LAYER_NAMES), "encoder_layer": ENCODER_LAYER},
        "tasks": {t: {k: v for k, v in asdict(TASKS[t]).items() if k != "target_fn"} for t in tasks},
        "encoder_seeds": args.seeds,
        "training": train_cfg.describe(),
        "transfer": {**transfer_cfg.describe(), "affinity": "1 - mean test loss / mean test loss of the random control (per target and budget)"},
        **analysis,
        "models": list(models.values()),
        "timings": timings,
    }  # fmt: skip
    write_json(stage / MANIFEST, manifest)
    _publish(stage, out)
    log(f"done in {timings['total_s']} s: {out}")
    report(manifest, out)
    return 0


def analyse(long: pd.DataFrame, tasks: list[str], budgets: tuple[int, ...], keep_flat: bool, folder: Path) -> dict:
    """Write ``affinity_<budget>.csv`` and ``agreement.json`` into ``folder``; return the manifest's analysis fields."""
    flat = {str(b): flatness(long, b) for b in budgets}
    kept: dict[str, list[str]] = {}
    for b in budgets:
        aff = affinity_table(long, b)
        kept[str(b)] = [t for t in tasks if keep_flat or not flat[str(b)][t]["flat"]]
        aff[aff["target"].isin(kept[str(b)])].to_csv(folder / f"affinity_{b}.csv", index=False, float_format="%.6g")
    agreement = seed_agreement(long)
    agreement["flatness"] = flat
    agreement["flat_rule"] = FLAT_RULE
    write_json(folder / "agreement.json", agreement)

    def why(f: dict) -> str:
        return f"flat ground truth (signal/noise {f['snr']:.2f}, head-seed Spearman {f['head_seed_spearman']:.2f}, encoder-seed Spearman {f['encoder_seed_spearman']:.2f})"

    return {
        "targets": kept,
        "dropped_targets": {b: {t: why(flat[b][t]) for t in tasks if t not in kept[b]} for b in map(str, budgets)},
        "flat_targets": {b: [t for t in tasks if flat[b][t]["flat"]] for b in map(str, budgets)},
        "flat_rule": FLAT_RULE,
    }


FLAT_RULE = (
    f"flat if signal/noise < {FLAT_SNR} or the head-seed or encoder-seed Spearman agreement < {FLAT_SPEARMAN}; signal = std of the "
    "seed-1 candidates' mean test loss; noise = hypot(head-seed std of a mean, median over candidate tasks of the encoder-seed std)"
)


def reanalyse(out: Path) -> int:
    """Recompute the affinity tables, agreement and flat targets of an existing build from its transfer_long.csv."""
    manifest = read_manifest(out)
    long = pd.read_csv(out / "transfer_long.csv")
    budgets = tuple(manifest["transfer"]["budgets"])
    for p in out.glob("affinity_*.csv"):
        p.unlink()
    manifest.update(analyse(long, list(manifest["tasks"]), budgets, manifest["tiny"], out))
    manifest["reanalysed"] = {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "code_version": code_version()}
    write_json(out / MANIFEST, manifest)
    report(manifest, out)
    return 0


def report(manifest: dict, out: Path) -> None:
    import json

    agreement = json.loads((out / "agreement.json").read_text())
    for b, kept in manifest["targets"].items():
        dropped = manifest["dropped_targets"][b]
        log(f"budget {b}: {len(kept)} targets kept" + (f", dropped (flat): {', '.join(dropped)}" if dropped else ""))
    for key in ("head_seeds", "encoder_seeds", "budgets"):
        for b, s in agreement[key].items():
            log(f"agreement {key} {b}: mean Spearman {s['mean']:.3f} (min {s['min']:.3f})")


def _publish(stage: Path, out: Path) -> None:
    """Move the staged build into ``out``, removing files of the previous build that are no longer produced."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        old = read_manifest(out)
        stale = {m["file"] for m in old.get("models", [])} | set(OWNED) | {p.name for p in out.glob("affinity_*.csv")}
    except Exception:
        stale = set()
    fresh = {p.name for p in stage.iterdir()}
    for name in stale - fresh:
        (out / name).unlink(missing_ok=True)
    for p in sorted(stage.iterdir(), key=lambda p: p.name == MANIFEST):  # manifest last
        os.replace(p, out / p.name)
    stage.rmdir()


if __name__ == "__main__":
    raise SystemExit(main())
