#!/usr/bin/env python
"""Layer-selection ground truth: mini-taskonomy sources transferred layer by layer into shifted scenes.

    python scripts/build_layer_transfer.py --out assets/minitaskonomy          # full build (needs the zoo)
    python scripts/build_layer_transfer.py --out /tmp/mt --tiny                # seconds-long smoke build
    python scripts/build_layer_transfer.py --out assets/minitaskonomy --add-constant   # only the trivial rows

In the spirit of the paper's Syn2Real experiment: sources are mini-taskonomy encoders trained on
DEFAULT scenes; targets are tasks in the SHIFTED domain (more, smaller, saturated objects, plain
ground, steep camera, low light). For every layer k the source is frozen up to block k and the
rest is fine-tuned with a fresh target head on labelled shifted scenes, at two label budgets and
several seeds, until the loss on separate validation scenes stops improving (the best check's
weights are kept; its step is the ``steps`` column); ``scratch`` rows train the whole network on the labels alone, and ``constant``
rows are the trivial predictor (one output for every image, fitted to the labels: the majority
class, the mean map) that a target must beat clearly for its layer ranking to mean anything. Each target's own
network is also trained on the shifted domain (the target graph of Eq. 6), stored in
``<out>/shifted/`` and served as the zoo ``mini-taskonomy-shifted``.

Writes ``<out>/layer_transfer.csv`` (source, target, layer, budget, seed, loss, metric, seconds)
and ``<out>/shifted/{manifest.json, <task>.safetensors}``. EfficientNet-Lite0 is not among the
sources: fine-tuning its later stages on CPU costs about a minute per run even at 32 px, an
hour for one target, far beyond this build's budget.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import torch
from minitaskonomy.build import fresh_dir, log, render_data, run_record, run_units
from minitaskonomy.layer_transfer import CONSTANT, SCRATCH, LayerTransferConfig, measure_constant, measure_layers, measure_scratch
from minitaskonomy.store import code_version, save_weights, write_json
from minitaskonomy.train import TrainConfig, evaluate_net, round_to_half, train_task
from minitaskonomy.transfer import TransferData

from depara_core.probes.scenes import SHIFTED
from depara_core.zoos.minitaskonomy.assets import MANIFEST, build_model, read_manifest
from depara_core.zoos.minitaskonomy.nets import RESOLUTION, init_seed
from depara_core.zoos.minitaskonomy.tasks import TASKS

FORMAT = 1
POOL_SEED, TRAIN_SEED, TEST_SEED, VAL_SEED = 11, 12, 13, 14
SUFFIX = "@shifted"
CSV = "layer_transfer.csv"
CONSTANT_ROWS = "one output for every image fitted to each budget's labels with the task's loss (400 Adam steps), scored on the test scenes"
_STATE: dict = {}


def target_name(task: str) -> str:
    """The shifted-domain model of ``task``: ``<task>@shifted``."""
    return task + SUFFIX


def _unit(unit: tuple[str, str, str]) -> dict:
    kind, a, b = unit
    t0 = time.perf_counter()
    if kind == "target":
        task = a
        seed = init_seed(f"shifted/{task}/1")
        net, train_log = train_task(TASKS[task], _STATE["pool"], seed, _STATE["train_config"])
        round_to_half(net)
        loss, metric = evaluate_net(TASKS[task], net, _STATE["data"].test, seed=TEST_SEED)
        stored = save_weights(net, _STATE["stage"] / f"{task}.safetensors")
        entry = {"name": target_name(task), "task": task, "encoder_seed": 1, "init_seed": seed, **stored, "test_loss": loss,
                 "test_metric": metric, "train": train_log, "seconds": round(time.perf_counter() - t0, 2)}  # fmt: skip
        log(f"trained {entry['name']:28s} {entry['seconds']:7.1f} s  test loss {loss:.4f}  metric {metric:.4f}")
        return {"model": entry}
    if kind == "scratch":
        rows = measure_scratch(a, _STATE["data"], _STATE["config"])
    elif kind == "constant":
        rows = measure_constant(a, _STATE["data"], _STATE["config"])
    else:
        entry = _STATE["sources"][a]
        net = build_model(entry["task"], _STATE["zoo"] / entry["file"])
        rows = measure_layers(a, net, b, _STATE["data"], _STATE["config"])
    for r in rows:
        r["target"] = target_name(r["target"])
    log(f"{kind} {a:>14s} -> {b or a:16s} {time.perf_counter() - t0:7.1f} s")
    return {"rows": rows}


def _cost(unit: tuple[str, str, str]) -> int:
    return {"constant": 0, "scratch": 0, "layers": 1, "target": 2}[unit[0]]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="assets/minitaskonomy", help="where layer_transfer.csv and shifted/ go (default: assets/minitaskonomy)")
    p.add_argument("--zoo", help="the built mini-taskonomy zoo holding the sources (default: --out; tiny: a tiny zoo built on the fly)")
    p.add_argument("--tiny", action="store_true", help="a seconds-long smoke build")
    p.add_argument("--sources", default="segmentation,depth,autoencoding", help="source models of the zoo (DEFAULT domain)")
    p.add_argument("--targets", default="segmentation,depth,normals", help="target tasks in the SHIFTED domain")
    p.add_argument("--steps", type=int, help="training steps of each target's own network (full: 400, tiny: 3)")
    p.add_argument("--finetune-steps", type=int, help="the most fine-tuning steps per (source, layer, budget, seed) (full: 1500, tiny: 4)")
    p.add_argument("--eval-every", type=int, help="check the validation loss every N steps; 0 trains all steps without validation (full: 50, tiny: 2)")
    p.add_argument("--patience", type=int, default=6, help="stop after this many checks without improvement (default 6)")
    p.add_argument("--val", type=int, help="shifted validation scenes for early stopping (full: 250, tiny: 16)")
    p.add_argument("--seeds", type=int, default=2, help="seeds per (source, target, layer, budget) (default 2)")
    p.add_argument("--budgets", help="comma-separated label budgets (full: 1000,100; tiny: 48,16)")
    p.add_argument("--pool", type=int, help="shifted scenes for training the target networks (full: 12000, tiny: 256)")
    p.add_argument("--test", type=int, help="shifted test scenes (full: 500, tiny: 32)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    p.add_argument("--add-constant", action="store_true", help="only (re)compute the constant-predictor rows of an existing build, in place")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.add_constant:
        return add_constant(Path(args.out))
    t_start = time.perf_counter()
    version = code_version()  # before anything runs
    out = Path(args.out)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    bad = [t for t in targets if t not in TASKS]
    if bad:
        raise SystemExit(f"unknown target task(s) {bad}")
    zoo = Path(args.zoo) if args.zoo else out
    if args.tiny and not args.zoo and not (zoo / MANIFEST).is_file():
        import importlib.util

        spec = importlib.util.spec_from_file_location("build_minitaskonomy", Path(__file__).with_name("build_minitaskonomy.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        source_tasks = sorted({s.partition("#")[0] for s in sources if s != "random"})
        mod.main(["--out", str(zoo), "--tiny", "--tasks", ",".join(source_tasks), "--seeds", "1", "--head-seeds", "1", "--jobs", "1"])
    zoo_manifest = read_manifest(zoo)
    by_name = {m["name"]: m for m in zoo_manifest["models"]}
    missing = [s for s in sources if s not in by_name]
    if missing:
        raise SystemExit(f"source(s) {missing} are not in the zoo at {zoo}; choose among {', '.join(by_name)}")
    budgets = tuple(int(b) for b in args.budgets.split(",")) if args.budgets else ((48, 16) if args.tiny else (1000, 100))
    pool_n = args.pool or (256 if args.tiny else 12000)
    test_n = args.test or (32 if args.tiny else 500)
    train_cfg = TrainConfig(steps=args.steps if args.steps is not None else (3 if args.tiny else 400), batch_size=32 if args.tiny else 64)
    val_n = args.val if args.val is not None else (16 if args.tiny else 250)
    config = LayerTransferConfig(
        budgets=budgets, seeds=tuple(range(args.seeds)), steps=args.finetune_steps if args.finetune_steps is not None else (4 if args.tiny else 1500),
        eval_every=(args.eval_every if args.eval_every is not None else (2 if args.tiny else 50)) if val_n else 0, patience=args.patience,
    )  # fmt: skip
    scene_cfg = replace(SHIFTED, resolution=RESOLUTION)
    stage = fresh_dir(out / "shifted.partial")

    timings: dict[str, float] = {}
    pool, data, timings["render_s"] = render_data(scene_cfg, pool_n, max(budgets), test_n, (POOL_SEED, TRAIN_SEED, TEST_SEED), val_n, VAL_SEED)
    log(f"rendered {pool_n} + {max(budgets)} + {test_n} + {val_n} shifted scenes in {timings['render_s']} s")
    _STATE.update(pool=pool, data=data, train_config=train_cfg, config=config, stage=stage, zoo=zoo, sources=by_name)

    units = [("target", t, "") for t in targets] + [("layers", s, t) for t in targets for s in sources] + [("scratch", t, "") for t in targets]
    units += [("constant", t, "") for t in targets]
    units.sort(key=_cost, reverse=True)
    t0 = time.perf_counter()
    results = run_units(_unit, units, args.jobs, args.threads)
    timings["runs_s"] = round(time.perf_counter() - t0, 2)
    models = sorted((r["model"] for r in results if "model" in r), key=lambda m: targets.index(m["task"]))
    rows = [row for r in results for row in r.get("rows", [])]
    table = pd.DataFrame(rows)
    table = _sorted(table, sources)
    timings["total_s"] = round(time.perf_counter() - t_start, 2)

    manifest = {
        "format": FORMAT,
        "name": "mini-taskonomy-shifted",
        "tiny": args.tiny,
        **run_record(version, args.jobs, args.threads, argv),
        "resolution": RESOLUTION,
        "scene_config": asdict(scene_cfg),
        "scenes": {"pool": {"seed": POOL_SEED, "count": pool_n}, "labelled": {"seed": TRAIN_SEED, "count": max(budgets)},
                   "test": {"seed": TEST_SEED, "count": test_n}, "validation": {"seed": VAL_SEED, "count": val_n}},
        "training": train_cfg.describe(),
        "layer_transfer": {**config.describe(), "csv": CSV,
                           "protocol": "freeze blocks 1..k of the source, fine-tune blocks k+1..5 from the source's weights with a fresh head",
                           "stopping": (f"the validation loss on {val_n} separate shifted scenes is checked every {config.eval_every} steps; training stops "
                                        f"after {config.patience} checks without improvement or at {config.steps} steps, and the best check's weights are "
                                        "tested (its step: the steps column)") if config.eval_every else f"a fixed {config.steps} steps"},
        "constant_rows": CONSTANT_ROWS,
        "sources": sources,
        "source_sha256": {s: by_name[s]["sha256"] for s in sources},
        "targets": [target_name(t) for t in targets],
        "models": models,
        "efficientnet_lite0": "not included: fine-tuning its later stages costs about a minute per run on this CPU, even at 32 px",
        "timings": timings,
    }  # fmt: skip
    table.to_csv(stage / CSV, index=False, float_format="%.6g")
    write_json(stage / MANIFEST, manifest)
    _publish(stage, out)
    log(f"done in {timings['total_s']} s: {out / CSV}, {out / 'shifted'}")
    summary = table[~table["source"].isin([SCRATCH, CONSTANT])].groupby(["target", "source", "budget", "layer"])["loss"].mean().reset_index()
    for (t, s, b), g in summary.groupby(["target", "source", "budget"], sort=False):
        best = g.loc[g["loss"].idxmin(), "layer"]
        log(f"{t:26s} from {s:14s} budget {b:5d}: best {best}  losses " + " ".join(f"{v:.4f}" for v in g["loss"]))
    return 0


def _sorted(table: pd.DataFrame, sources: list[str]) -> pd.DataFrame:
    order = {n: i for i, n in enumerate(sources + [SCRATCH, CONSTANT])}
    return table.sort_values(["target", "source", "layer", "budget", "seed"], key=lambda c: c.map(order) if c.name == "source" else c, kind="stable")


def add_constant(out: Path) -> int:
    """Recompute the constant-predictor rows of the build in ``out`` from its recorded scenes and budgets."""
    manifest = read_manifest(out / "shifted")
    scenes, transfer = manifest["scenes"], manifest["layer_transfer"]
    data = TransferData.render(replace(SHIFTED, resolution=RESOLUTION), scenes["labelled"]["count"], scenes["test"]["count"],
                               scenes["labelled"]["seed"], scenes["test"]["seed"])  # fmt: skip
    config = LayerTransferConfig(budgets=tuple(transfer["budgets"]))
    table = pd.read_csv(out / CSV)
    rows = [r for t in manifest["targets"] for r in measure_constant(t.removesuffix(SUFFIX), data, config)]
    for r in rows:
        r["target"] = target_name(r["target"])
    table = pd.concat([table[table["source"] != CONSTANT], pd.DataFrame(rows)], ignore_index=True)
    table = _sorted(table, list(manifest["sources"]))
    table.to_csv(out / CSV, index=False, float_format="%.6g")
    manifest["constant_rows"] = CONSTANT_ROWS
    write_json(out / "shifted" / MANIFEST, manifest)
    for r in rows:
        log(f"constant {r['target']:26s} budget {r['budget']:5d}: loss {r['loss']:.4f}  metric {r['metric']:.4f}")
    return 0


def _publish(stage: Path, out: Path) -> None:
    """Move the CSV into ``out`` and the rest into ``out/shifted`` (replacing a previous build)."""
    dest = out / "shifted"
    os.replace(stage / CSV, out / CSV)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(stage, dest)


if __name__ == "__main__":
    raise SystemExit(main())
