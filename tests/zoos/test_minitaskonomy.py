"""Mini-taskonomy: tasks, the shared encoder, a tiny end-to-end build, and the committed zoo."""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from depara_core.errors import DeparaError, ModelError
from depara_core.models.checkpoints import apply_checkpoint
from depara_core.models.spec import load_model
from depara_core.probes.scenes import SceneConfig, render_scenes
from depara_core.zoos import load_zoo
from depara_core.zoos import minitaskonomy as zoo_module
from depara_core.zoos.minitaskonomy.assets import ASSET_DIR, RANDOM, build_model, model_name, parse_model_name, read_manifest
from depara_core.zoos.minitaskonomy.nets import CODE_SHAPE, ENCODER_LAYER, LAYER_NAMES, encoder_net, encoder_params, task_net
from depara_core.zoos.minitaskonomy.tasks import MASK, TASK_NAMES, TASKS, make_input, scene_tensors

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scenes():
    return scene_tensors(render_scenes(6, SceneConfig(resolution=32), seed=7))


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- tasks and networks ----------------------------------------------------------------------
def test_task_registry_covers_every_kind():
    assert len(TASKS) >= 12 and TASK_NAMES == tuple(TASKS)
    kinds = {t.kind for t in TASKS.values()}
    assert kinds == {"dense regression", "dense classification", "image classification", "image regression"}
    assert {t.input for t in TASKS.values()} == {"rgb", "noisy", "grey", "masked"}


@pytest.mark.parametrize("name", TASK_NAMES)
def test_task_input_target_and_net_shapes(scenes, name):
    task = TASKS[name]
    idx = torch.arange(6)
    x, y = task.example(scenes, idx, torch.Generator().manual_seed(0))
    assert x.shape == (6, 3, 32, 32) and x.dtype == torch.float32
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    if task.kind == "dense regression":
        assert y.shape == (6, task.channels, 32, 32) and y.is_floating_point()
    elif task.kind == "dense classification":
        assert y.shape == ((6, 32, 32) if task.loss == "ce" else (6, 1, 32, 32))
    elif task.kind == "image classification":
        assert y.shape == (6,) and y.dtype == torch.int64 and int(y.max()) < task.channels
    else:
        assert y.shape == (6, task.channels)
    assert torch.isfinite(y.float()).all()
    net = task_net(task, seed=0).eval()
    with torch.no_grad():
        pred = net(x)
    assert pred.shape[:2] == (6, task.channels)
    loss = task.compute_loss(pred, y)
    assert loss.ndim == 0 and math.isfinite(float(loss))
    assert task.compute_loss(pred, y, reduce=False).shape == (6,)
    assert math.isfinite(task.compute_metric(pred, y))


def test_input_variants(scenes):
    rgb = scenes["rgb"]
    grey = make_input("grey", rgb)
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])
    masked = make_input("masked", rgb)
    assert torch.all(masked[:, :, MASK[0], MASK[1]] == 0.5) and torch.equal(masked[:, :, :5], rgb[:, :, :5])
    a = make_input("noisy", rgb, torch.Generator().manual_seed(3))
    b = make_input("noisy", rgb, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, rgb)
    assert torch.equal(make_input("rgb", rgb), rgb)


def test_depth_target_is_log_scaled(scenes):
    y = TASKS["depth"].target(scenes, torch.arange(6))
    assert float(y.max()) == pytest.approx(1.0, abs=1e-5) and float(y.min()) > 0


def test_encoder_layer_names_and_shapes():
    net = task_net("normals", seed=1)
    names = [n for n, _ in net.named_modules()]
    assert ENCODER_LAYER == "encoder" and ENCODER_LAYER in names
    assert LAYER_NAMES == ("encoder.block1", "encoder.block2", "encoder.block3", "encoder.block4", "encoder.block5")
    assert all(n in names for n in LAYER_NAMES)
    x = torch.rand(2, 3, 32, 32)
    shapes = [tuple(net.encoder(x, upto=k).shape[1:]) for k in range(1, 6)]
    assert shapes == [(16, 32, 32), (32, 16, 16), (64, 8, 8), (64, 8, 8), CODE_SHAPE]
    assert torch.equal(net.encoder(x, upto=5), net.encoder(x))
    assert 50_000 <= encoder_params() <= 100_000
    assert [n for n, _ in encoder_net(0).named_children()] == ["encoder", "head"]


def test_seeded_init_is_reproducible():
    a, b, c = task_net("depth", seed=5), task_net("depth", seed=5), task_net("depth", seed=6)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_model_names_round_trip():
    assert model_name("depth", 1) == "depth" and model_name("depth", 2) == "depth#2"
    assert parse_model_name("depth#2") == ("depth", 2) and parse_model_name(RANDOM) == (RANDOM, 1)


# ---- a tiny build, end to end -----------------------------------------------------------------
TINY_TASKS = ("depth", "segmentation", "largest_class", "denoising")


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("mt") / "zoo"
    build = load_script("build_minitaskonomy")
    assert build.main(["--out", str(out), "--tiny", "--tasks", ",".join(TINY_TASKS), "--jobs", "1"]) == 0
    return out


def check_build_consistency(out: Path) -> dict:
    """Every file the manifest names exists and loads strictly; the CSVs cover exactly its models and tasks."""
    manifest = read_manifest(out)
    names = [m["name"] for m in manifest["models"]]
    tasks = list(manifest["tasks"])
    seeds = manifest["encoder_seeds"]
    assert names == [model_name(t, s) for s in range(1, seeds + 1) for t in tasks] + [RANDOM]
    for m in manifest["models"]:
        net = build_model(m["task"], out / m["file"])  # strict
        assert isinstance(net, torch.nn.Module)
    long = pd.read_csv(out / "transfer_long.csv")
    budgets = manifest["transfer"]["budgets"]
    heads = manifest["transfer"]["head_seeds"]
    assert set(long.columns) >= {"source", "target", "budget", "head_seed", "loss", "metric"}
    expected = {(s, t, b, h) for s in names for t in tasks for b in budgets for h in heads}
    got = set(zip(long["source"], long["target"], long["budget"], long["head_seed"]))
    assert got == expected and len(long) == len(expected)
    assert np.isfinite(long["loss"]).all()
    for b in budgets:
        aff = pd.read_csv(out / f"affinity_{b}.csv")
        assert set(aff["source"]) == set(names)
        kept = manifest["targets"][str(b)]
        assert set(aff["target"]) == set(kept) and set(kept) | set(manifest["dropped_targets"][str(b)]) == set(tasks)
        assert len(aff) == len(names) * len(kept)
        assert np.allclose(aff.loc[aff["source"] == RANDOM, "affinity"], 0.0)
        means = long[long["budget"] == b].groupby(["source", "target"])["loss"].mean()
        for row in aff.itertuples():
            assert row.affinity == pytest.approx(1 - means[row.source, row.target] / means[RANDOM, row.target], rel=1e-4, abs=1e-5)
    agreement = json.loads((out / "agreement.json").read_text())
    assert set(agreement["head_seeds"]) == {str(b) for b in budgets}
    if seeds > 1:
        assert set(agreement["encoder_seeds"]) == {str(b) for b in budgets}
    return manifest


def test_tiny_build_outputs_are_consistent(tiny_build):
    manifest = check_build_consistency(tiny_build)
    assert manifest["tiny"] is True and manifest["encoder_seeds"] == 2
    assert list(manifest["tasks"]) == list(TINY_TASKS)
    assert manifest["code_version"].keys() == {"commit", "dirty", "sources_sha256"}
    assert {"render_s", "train_s", "transfer_s", "total_s"} <= set(manifest["timings"])
    assert not list(tiny_build.parent.glob("*.partial"))


def test_tiny_build_weights_are_float16_and_strict(tiny_build):
    from safetensors.torch import load_file

    state = load_file(str(tiny_build / "depth.safetensors"))
    assert all(v.dtype == torch.float16 for k, v in state.items() if "num_batches" not in k)
    with pytest.raises(ModelError, match="does not fit"):  # an image head cannot take a dense task's weights
        apply_checkpoint(task_net("largest_class"), {k: v.float() for k, v in state.items()})


def test_tiny_build_serves_a_zoo_with_ground_truth(tiny_build):
    zoo = zoo_module.zoo(48, tiny_build)
    assert zoo.available, zoo.unavailable_reason
    assert [s.name for s in zoo.specs][-1] == RANDOM and len(zoo.specs) == 2 * len(TINY_TASKS) + 1
    model = load_model(zoo.specs[0])
    assert [layer.name for layer in model.selectable_layers()] == list(LAYER_NAMES)
    with torch.no_grad():
        code = model.module.encoder(model.spec.preprocess(np.zeros((2, 64, 64, 3), np.uint8)))
    assert code.shape == (2, *CODE_SHAPE)
    gt = zoo.ground_truth
    assert gt.targets == list(TINY_TASKS)
    assert list(gt.affinity.index) == list(TINY_TASKS)
    for t in TINY_TASKS:
        assert gt.candidates(t) == [s for s in TINY_TASKS if s != t]
        assert np.isnan(gt.affinity.at[t, t])
    gt2 = zoo_module.ground_truth(16, tiny_build, seed=2, include_random=True)
    assert list(gt2.affinity.index) == [f"{t}#2" for t in TINY_TASKS] + [RANDOM]
    assert np.isnan(gt2.affinity.at["depth#2", "depth"]) and np.isfinite(gt2.affinity.at["depth#2", "segmentation"])


def test_missing_zoo_is_unavailable(tmp_path):
    zoo = zoo_module.zoo(1000, tmp_path)
    assert not zoo.available and "not built" in zoo.unavailable_reason and zoo.specs == ()


# ---- the committed zoo --------------------------------------------------------------------------
committed = pytest.mark.skipif(
    not (ASSET_DIR / "manifest.json").is_file(),
    reason=f"the mini-taskonomy zoo is not built in {ASSET_DIR} (python scripts/build_minitaskonomy.py)",
)


@committed
def test_committed_zoo_is_consistent():
    manifest = check_build_consistency(ASSET_DIR)
    assert manifest["tiny"] is False
    assert manifest["encoder_seeds"] >= 2 and len(manifest["tasks"]) >= 12
    assert manifest["transfer"]["budgets"] == [1000, 100] and len(manifest["transfer"]["head_seeds"]) >= 2
    assert sum(p.stat().st_size for p in ASSET_DIR.glob("*.safetensors")) < 15 * 2**20


@committed
def test_committed_zoo_loads_strictly_with_ground_truth():
    zoo = load_zoo("mini-taskonomy")
    assert zoo.available, zoo.unavailable_reason
    manifest = read_manifest()
    assert [s.name for s in zoo.specs] == [m["name"] for m in manifest["models"]]
    for spec in zoo.specs:
        model = load_model(spec)
        assert model.spec.encoder == "encoder" and model.spec.preprocess.size == (32, 32)
    gt = zoo.ground_truth
    assert gt is not None and gt.targets == manifest["targets"]["1000"]
    seed1 = [t for t in manifest["tasks"]]
    assert list(gt.affinity.index) == seed1
    for t in gt.targets:
        assert t not in gt.candidates(t) and len(gt.candidates(t)) == len(seed1) - 1
    gt100 = zoo_module.ground_truth(100)
    assert gt100.targets == manifest["targets"]["100"]


# ---- layer transfer into the shifted domain ------------------------------------------------------
def test_early_stopping_keeps_the_best_check_and_equals_training_that_long():
    """Stopping on validation loss restores the weights of the best check: the same weights as a
    plain run of exactly that many steps (same seed, same minibatches), and better on validation
    than the weights at the step where training stopped."""
    from types import SimpleNamespace

    from minitaskonomy.layer_transfer import LayerTransferConfig
    from minitaskonomy.transfer import evaluate_head, fit_on_features

    torch.manual_seed(0)
    x, w = torch.randn(96, 8), torch.randn(8, 1)
    y = x @ w + 0.5 * torch.randn(96, 1)  # noisy and few: the validation loss turns up
    mse = lambda pred, target: (pred - target).pow(2).mean()  # noqa: E731
    task = SimpleNamespace(compute_loss=mse, compute_metric=lambda p, t: float(mse(p, t)))
    val = (x[64:], y[64:])

    def fit(cfg: LayerTransferConfig, validation=None) -> torch.nn.Module:
        torch.manual_seed(1)
        net = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
        return fit_on_features(task, net, list(net.parameters()), x[:64], y[:64], 7, cfg, validation)

    cfg = LayerTransferConfig(steps=2000, eval_every=5, patience=3, batch_size=8, lr=3e-2)
    stopped = fit(cfg, val)
    k = stopped.stopped_at
    assert 5 <= k and k % 5 == 0 and k + 15 < 2000, "training should stop early"
    for a, b in zip(stopped.state_dict().values(), fit(replace(cfg, steps=k, eval_every=0)).state_dict().values()):
        torch.testing.assert_close(a, b)
    at_stop = fit(replace(cfg, steps=k + 15, eval_every=0))  # the check at which patience ran out
    assert evaluate_head(task, stopped, *val)[0] < evaluate_head(task, at_stop, *val)[0]


def check_layer_build(out: Path, zoo: Path) -> dict:
    """The shifted manifest, its weights and layer_transfer.csv agree with each other and with the zoo."""
    from minitaskonomy.layer_transfer import CONSTANT, SCRATCH

    manifest = read_manifest(out / "shifted")
    table = pd.read_csv(out / "layer_transfer.csv")
    assert list(table.columns[:7]) == ["source", "target", "layer", "budget", "seed", "loss", "metric"]
    cfg = manifest["layer_transfer"]
    expected = {(s, t, layer, b, k) for s in manifest["sources"] for t in manifest["targets"] for layer in LAYER_NAMES
                for b in cfg["budgets"] for k in cfg["seeds"]}  # fmt: skip
    expected |= {(SCRATCH, t, SCRATCH, b, k) for t in manifest["targets"] for b in cfg["budgets"] for k in cfg["seeds"]}
    expected |= {(CONSTANT, t, CONSTANT, b, 0) for t in manifest["targets"] for b in cfg["budgets"]}  # the trivial predictor
    assert set(zip(table["source"], table["target"], table["layer"], table["budget"], table["seed"])) == expected
    assert len(table) == len(expected) and np.isfinite(table["loss"]).all()
    if cfg.get("eval_every"):  # stopped early on validation scenes: the step of the kept weights
        trained = table[table["source"] != CONSTANT]
        assert trained["steps"].between(1, cfg["steps"]).all() and manifest["scenes"]["validation"]["count"] > 0
    assert [m["name"] for m in manifest["models"]] == manifest["targets"]
    specs = zoo_module.shifted_specs(out / "shifted", zoo)
    assert [s.name for s in specs] == manifest["targets"] + manifest["sources"]
    for spec in specs:
        load_model(spec)  # strict
    return manifest


def test_tiny_layer_transfer_build(tiny_build, tmp_path):
    build = load_script("build_layer_transfer")
    argv = ["--out", str(tmp_path), "--zoo", str(tiny_build), "--tiny", "--sources", "segmentation,depth",
            "--targets", "depth,largest_class", "--seeds", "1", "--budgets", "16", "--jobs", "1"]  # fmt: skip
    assert build.main(argv) == 0
    manifest = check_layer_build(tmp_path, tiny_build)
    assert manifest["targets"] == ["depth@shifted", "largest_class@shifted"] and manifest["scene_config"]["textured_ground"] is False
    assert not (tmp_path / "shifted.partial").exists()
    # the constant rows are recomputed in place, identically, from the recorded scenes
    before = pd.read_csv(tmp_path / "layer_transfer.csv")
    assert build.main(["--out", str(tmp_path), "--add-constant"]) == 0
    after = pd.read_csv(tmp_path / "layer_transfer.csv")
    pd.testing.assert_frame_equal(before.drop(columns="seconds"), after.drop(columns="seconds"), atol=1e-5)
    # a source whose weights changed since the measurement is refused
    import shutil

    changed = shutil.copytree(tiny_build, tmp_path / "changed-zoo")
    m = read_manifest(changed)
    next(e for e in m["models"] if e["name"] == "depth")["sha256"] = "0" * 64
    (changed / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(DeparaError, match="no longer matches"):
        zoo_module.shifted_specs(tmp_path / "shifted", changed)


@pytest.mark.skipif(not (ASSET_DIR / "shifted" / "manifest.json").is_file(), reason="the layer-transfer ground truth is not built (python scripts/build_layer_transfer.py)")
def test_committed_layer_transfer_is_consistent():
    manifest = check_layer_build(ASSET_DIR, ASSET_DIR)
    assert manifest["tiny"] is False and manifest["layer_transfer"]["budgets"] == [1000, 100]
    zoo = load_zoo("mini-taskonomy-shifted")
    assert zoo.available, zoo.unavailable_reason
