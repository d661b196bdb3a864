"""The mini-taskonomy zoo: small task networks trained on procedural scenes, with measured transfer.

Every model shares one architecture (:mod:`depara_core.minitaskonomy.nets`): 32x32 input in
[0, 1] (64-px probe sets are resized), five encoder blocks, an 8x8x8 code. Models are named by task
(``depth`` is encoder seed 1, ``depth#2`` seed 2) plus ``random``, an untrained control encoder.
The weights and the measured transfer tables live in ``assets/minitaskonomy`` and are rebuilt by
``scripts/build_minitaskonomy.py``.

Ground truth (:func:`ground_truth`): rows are candidate sources, the seed-1 encoder of every task;
columns are targets, named by task (the same name as the target's seed-1 model, which is how
:func:`~depara_core.evaluation.evaluate` matches them with predicted scores). The affinity is
``1 - loss / loss(random)`` of a fresh head trained on the frozen source code with 1,000 (or 100)
labelled scenes, mean over head seeds. A target's own task is never a candidate (its cells are
NaN), as in taskonomy where each target ranks the other tasks; the random control and the seed-2
encoders are not candidates by default (``include_random=True`` and ``seed=2`` select them).
Targets whose measured ground truth is flat (all sources within seed noise) are left out.

>>> "mini-taskonomy" in list_zoos()
True
>>> spec = minitaskonomy_spec("depth", "depth")
>>> spec.preprocess.size, spec.encoder, spec.layers[-1].name
((32, 32), 'encoder', 'encoder.block5')
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from depara_core.errors import DeparaError, ModelError
from depara_core.evaluation.ground_truth import GroundTruth
from depara_core.evaluation.layers import LayerTruth
from depara_core.models.preprocess import Preprocess
from depara_core.models.spec import LayerSpec, ModelSpec
from depara_core.zoos import Zoo, list_zoos, make_zoo  # noqa: F401  (list_zoos: doctest)
from depara_core.zoos.minitaskonomy.assets import ASSET_DIR, RANDOM, build_model, model_name, read_manifest
from depara_core.zoos.minitaskonomy.nets import LAYER_NAMES, RESOLUTION, STRIDES, WIDTHS
from depara_core.zoos.minitaskonomy.tasks import TASKS

__all__ = [
    "ZOO_NAME",
    "SHIFTED_ZOO_NAME",
    "PREPROCESS",
    "LAYERS",
    "minitaskonomy_spec",
    "minitaskonomy_specs",
    "shifted_specs",
    "layer_ground_truth",
    "ground_truth",
    "zoo",
    "shifted_zoo",
    "layer_truth",
    "missing_assets",
    "SHIFTED_DIR",
]

ZOO_NAME = "mini-taskonomy"
SHIFTED_ZOO_NAME = "mini-taskonomy-shifted"
SHIFTED_DIR = ASSET_DIR / "shifted"
"""Target models trained on the shifted scene domain (layer-selection ground truth)."""
PREPROCESS = Preprocess(size=(RESOLUTION, RESOLUTION))


def _layers() -> tuple[LayerSpec, ...]:
    res, out = RESOLUTION, []
    for name, width, stride in zip(LAYER_NAMES, WIDTHS, STRIDES):
        res //= stride
        out.append(LayerSpec(name, f"block {name[-1]}: {width} ch, {res}x{res}" + (" (code)" if name == LAYER_NAMES[-1] else "")))
    return tuple(out)


LAYERS = _layers()


def minitaskonomy_spec(name: str, task: str | None, path: str | Path | None = None, description: str = "") -> ModelSpec:
    """The spec of one stored network (``task`` None or ``random`` for the control); without ``path``, untrained."""
    file = Path(path) if path is not None else None
    what = "random control encoder (untrained, BatchNorm calibrated)" if task in (None, RANDOM) else f"{task}: {TASKS[task].description}"

    def build():
        if file is not None and not file.is_file():
            raise ModelError(f"the weights of {name!r} ({file.name}) are missing", "rebuild with python scripts/build_minitaskonomy.py")
        return build_model(task, file)

    return ModelSpec(
        name=name,
        build=build,
        task=task or RANDOM,
        preprocess=PREPROCESS,
        layers=LAYERS,
        encoder="encoder",
        source=f"{ZOO_NAME}:{file.parent.name}/{file.name}" if file else f"{ZOO_NAME}:untrained",
        description=description or f"mini-taskonomy {what}",
    )


def _describe(entry: dict, domain: str = "DEFAULT") -> str:
    task = entry.get("task")
    if not task:
        return "mini-taskonomy random control: untrained encoder, BatchNorm statistics calibrated on the scene pool"
    quality = f"; test {TASKS[task].metric} {entry['test_metric']:.3f}" if "test_metric" in entry else ""
    return f"mini-taskonomy {task} (encoder seed {entry['encoder_seed']}, {domain} scenes): {TASKS[task].description}{quality}"


def minitaskonomy_specs(directory: str | Path = ASSET_DIR) -> tuple[ModelSpec, ...]:
    """Specs of every stored network, in the manifest's order (tasks of seed 1, seed 2, ..., random)."""
    directory = Path(directory)
    try:
        manifest = read_manifest(directory)
    except ModelError as exc:
        raise DeparaError(exc.problem, exc.hint) from None
    return tuple(minitaskonomy_spec(m["name"], m["task"], directory / m["file"], _describe(m)) for m in manifest["models"])


def shifted_specs(directory: str | Path = SHIFTED_DIR, zoo_directory: str | Path = ASSET_DIR) -> tuple[ModelSpec, ...]:
    """The shifted-domain target networks (``<task>@shifted``), then the DEFAULT-domain sources they were measured with.

    Raises :class:`DeparaError` when a source's weights in ``zoo_directory`` are not the ones the
    layer-transfer table was measured with (the zoo was rebuilt since).
    """
    directory, zoo_directory = Path(directory), Path(zoo_directory)
    try:
        manifest = read_manifest(directory)
        base = {m["name"]: m for m in read_manifest(zoo_directory)["models"]}
    except ModelError as exc:
        raise DeparaError(exc.problem, "run python scripts/build_minitaskonomy.py, then python scripts/build_layer_transfer.py") from None
    specs = [minitaskonomy_spec(m["name"], m["task"], directory / m["file"], _describe(m, "SHIFTED")) for m in manifest["models"]]
    for name in manifest.get("sources", []):
        entry = base.get(name)
        if entry is None or entry.get("sha256") != manifest.get("source_sha256", {}).get(name):
            raise DeparaError(f"source {name!r} of the layer-transfer table no longer matches the zoo's weights", "rerun python scripts/build_layer_transfer.py")
        specs.append(minitaskonomy_spec(name, entry["task"], zoo_directory / entry["file"], _describe(entry)))
    return tuple(specs)


def layer_ground_truth(directory: str | Path = ASSET_DIR) -> pd.DataFrame:
    """The measured layer transfer (``layer_transfer.csv``): source, target, layer, budget, seed, loss, metric.

    Targets are the shifted-domain models (``<task>@shifted``); ``scratch`` rows train the whole
    network on the target labels alone, ``constant`` rows are the trivial predictor (the best
    single output for every image). Lower loss is better.
    """
    path = Path(directory) / "layer_transfer.csv"
    if not path.is_file():
        raise DeparaError(f"no layer-transfer ground truth ({path} is missing)", "run python scripts/build_layer_transfer.py")
    return pd.read_csv(path)


def missing_assets(directory: str | Path = ASSET_DIR) -> str:
    """"" when the zoo's manifest and every weights file exist, else what is missing."""
    directory = Path(directory)
    try:
        manifest = read_manifest(directory)
    except ModelError as exc:
        return str(exc)
    missing = [m["file"] for m in manifest["models"] if not (directory / m["file"]).is_file()]
    return f"missing weights files in {directory}: {', '.join(missing[:5])} (rebuild with python scripts/build_minitaskonomy.py)" if missing else ""


def ground_truth(budget: int = 1000, directory: str | Path = ASSET_DIR, seed: int = 1, include_random: bool = False) -> GroundTruth:
    """Measured transfer at a label ``budget`` (1000 or 100) as a :class:`GroundTruth` (see the module docstring).

    Rows: the encoders of seed ``seed`` of every task (plus ``random`` when ``include_random``);
    columns: the kept targets (task names); own-task cells are NaN.
    """
    directory = Path(directory)
    path = directory / f"affinity_{budget}.csv"
    if not path.is_file():
        raise DeparaError(f"no mini-taskonomy ground truth at budget {budget} ({path.name} is missing)", "choose a measured budget or rebuild the zoo")
    manifest = read_manifest(directory)
    df = pd.read_csv(path)
    tasks = [t for t in manifest["tasks"]]
    targets = [t for t in tasks if t in set(df["target"])]
    rows = [model_name(t, seed) for t in tasks] + ([RANDOM] if include_random else [])
    mat = df.pivot_table(index="source", columns="target", values="affinity", aggfunc="mean").reindex(index=rows, columns=targets)
    for t in targets:
        own = model_name(t, seed)
        if own in mat.index:
            mat.loc[own, t] = np.nan
    suffix = "" if seed == 1 else f"-seed{seed}"
    return GroundTruth(mat.astype(float), f"{ZOO_NAME}-{budget}{suffix}")


def _shifted_missing() -> str:
    try:
        manifest = read_manifest(SHIFTED_DIR)
    except ModelError as exc:
        return f"{exc.problem} (run python scripts/build_layer_transfer.py)"
    missing = [m["file"] for m in manifest["models"] if not (SHIFTED_DIR / m["file"]).is_file()]
    return f"missing weights files: {', '.join(missing)}" if missing else missing_assets()



def _zoo_ground_truth(budget: int = 1000, directory: str | Path = ASSET_DIR) -> GroundTruth | None:
    """The zoo's ground truth at ``budget`` labelled scenes, or None while the zoo is not built."""
    try:
        return ground_truth(budget, directory)
    except (DeparaError, OSError, KeyError):
        return None


def layer_truth(directory: str | Path = ASSET_DIR) -> LayerTruth | None:
    """The measured layer transfer at the largest label budget (mean over seeds) as a
    :class:`~depara_core.evaluation.layers.LayerTruth`; None while it is not built."""
    try:
        df = layer_ground_truth(directory)
        df = df[df["budget"] == df["budget"].max()]
        truth = LayerTruth.from_frame(df)
    except (DeparaError, OSError, KeyError, ValueError):
        return None
    return dataclasses.replace(truth, name=f"{truth.name} (measured, {int(df['budget'].max())} labels)")


def zoo(budget: int = 1000, directory: str | Path = ASSET_DIR) -> Zoo:
    """The ``mini-taskonomy`` zoo stored in ``directory``: 200 scenes by default, ground truth at
    ``budget`` labels (the registry's entry uses the defaults). Unavailable, with the reason, when the
    zoo is not built there."""
    return make_zoo(
        ZOO_NAME, lambda: minitaskonomy_specs(directory), lambda: missing_assets(directory),
        lambda: _zoo_ground_truth(budget, directory), ("scenes", 200), lambda: layer_truth(directory),
    )  # fmt: skip


def shifted_zoo() -> Zoo:
    """The registry's ``mini-taskonomy-shifted`` zoo (layer selection on the shifted domain)."""
    return make_zoo(SHIFTED_ZOO_NAME, shifted_specs, _shifted_missing, None, ("scenes-shifted", 200), layer_truth)
