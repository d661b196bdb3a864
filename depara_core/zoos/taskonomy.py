"""Taskonomy: the 20 task-specific encoders of the DEPARA paper's main benchmark.

Each task of Taskonomy (Zamir et al., CVPR 2018) has its own encoder, all with one architecture:
a ResNet-50 trunk whose last two stages keep 1/16 resolution, then a 3x3 convolution that
compresses the 2048 channels to an 8-channel 16x16 code (256x256 input in [-1, 1]). The
architecture is ``visualpriors.taskonomy_network.TaskonomyEncoder`` (``pip install
visualpriors==0.3.5``, MIT); the weights are the PyTorch conversions that visualpriors downloads
from GitHub, one file per task named like ``normal_encoder-<sha256>.pth``.

Nothing is downloaded here. A task's weights are looked for only on this machine, under the
file name the visualpriors URL downloads to (or the same name with ``.safetensors``), first in
the folder(s) named by ``$DEPARA_TASKONOMY_DIR`` (several separated by ``os.pathsep``), then in
``torch.hub.get_dir()/checkpoints``. They are read with ``torch.load(weights_only=True)`` (or as
safetensors) and loaded strictly. A file that ``weights_only`` refuses can be converted once,
on the user's own trusted copy, with ``scripts/convert_taskonomy_weights.py``.

Specs are named by the paper's task names (:data:`depara_core.evaluation.TASKONOMY_TASKS`), so
that the zoo lines up with :func:`ground_truth`, taskonomy's measured transfer affinities.
The encoder layer is ``relu1``, the compressed code (taskonomy's ``encoder_output``);
``groupnorm``, the same code normalised per image and channel (the representation visualpriors
returns), can be selected as well.

>>> spec = taskonomy_spec("rgb2depth")
>>> spec.name, spec.preprocess.size, spec.preprocess.value_range, spec.encoder
('rgb2depth', (256, 256), (-1.0, 1.0), 'relu1')
>>> weight_file("segmentsemantic_rb").startswith("segment_semantic_encoder-")
True
"""

from __future__ import annotations

import os
import re
import zipfile
import zlib
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from depara_core.errors import ModelError
from depara_core.evaluation.ground_truth import GroundTruth
from depara_core.evaluation.taskonomy import TASKONOMY_ALIASES, TASKONOMY_TASKS, taskonomy_ground_truth
from depara_core.models.checkpoints import apply_checkpoint, load_checkpoint
from depara_core.models.preprocess import Preprocess
from depara_core.models.spec import LayerSpec, ModelSpec
from depara_core.zoos import Zoo, make_zoo

__all__ = [
    "zoo",
    "TASKS",
    "ENV_VAR",
    "REQUIREMENT",
    "INPUT_SIZE",
    "ENCODER_LAYER",
    "canonical_task",
    "visualpriors_name",
    "weight_file",
    "weight_url",
    "search_dirs",
    "find_weights",
    "missing_weights",
    "unreadable_weights",
    "unavailable_reason",
    "prepare_state",
    "random_seed",
    "new_encoder",
    "build_encoder",
    "taskonomy_spec",
    "taskonomy_specs",
    "ground_truth",
]

TASKS: tuple[str, ...] = TASKONOMY_TASKS
"""The 20 tasks, by the paper's names, in the order of its ``sort_gt.npy``."""

ENV_VAR = "DEPARA_TASKONOMY_DIR"
"""Names the folder(s) holding the weight files (several separated by ``os.pathsep``)."""

REQUIREMENT = "visualpriors==0.3.5"
"""The pip requirement that provides the architecture and the weight file names."""

INPUT_SIZE = 256
ENCODER_LAYER = "relu1"
CONVERT_SCRIPT = "scripts/convert_taskonomy_weights.py"

_TITLES = {
    "autoencoder": "autoencoding",
    "curvature": "curvature estimation",
    "denoise": "denoising autoencoding",
    "edge2d": "2D (texture) edge detection",
    "edge3d": "3D (occlusion) edge detection",
    "keypoint2d": "2D keypoint detection",
    "keypoint3d": "3D keypoint detection",
    "colorization": "colorization",
    "reshade": "reshading",
    "rgb2depth": "z-buffer depth estimation",
    "rgb2mist": "euclidean distance (depth) estimation",
    "rgb2sfnorm": "surface normal estimation",
    "room_layout": "room layout estimation",
    "segment25d": "2.5D unsupervised segmentation",
    "segment2d": "2D unsupervised segmentation",
    "vanishing_point": "vanishing point estimation",
    "segmentsemantic": "semantic segmentation",
    "class_1000": "object classification (ImageNet 1000)",
    "class_places": "scene classification (Places)",
    "inpainting_whole": "inpainting",
}

# (module, label) for a 256x256 input; the resolution is relative to the input.
_LAYERS = (
    ("relu", "stem (7x7 conv, BN, ReLU): 64 ch, 1/2 res"),
    ("maxpool", "stem max-pool: 64 ch, 1/4 res"),
    ("layer1", "stage 1 (3 bottlenecks): 256 ch, 1/8 res"),
    ("layer2", "stage 2 (4 bottlenecks): 512 ch, 1/16 res"),
    ("layer3", "stage 3 (6 bottlenecks): 1024 ch, 1/16 res"),
    ("layer4", "stage 4 (3 bottlenecks): 2048 ch, 1/16 res"),
    (ENCODER_LAYER, "code (3x3 conv, BN, ReLU): 8 ch, 1/16 res (encoder)"),
    ("groupnorm", "code, group-normalised per image: 8 ch, 1/16 res (visualpriors' representation)"),
)


def _visualpriors() -> ModuleType:
    try:
        from visualpriors import taskonomy_network
    except ImportError:
        raise ModelError(
            "visualpriors is not installed; it provides the taskonomy encoder architecture and weight file names",
            f"pip install {REQUIREMENT}",
        ) from None
    return taskonomy_network


def canonical_task(task: str) -> str:
    """The paper's name of ``task``, given by its paper name, taskonomy key or visualpriors name.

    >>> canonical_task("impainting_whole"), canonical_task("depth_zbuffer")
    ('inpainting_whole', 'rgb2depth')
    """
    if task in TASKS:
        return task
    if task in TASKONOMY_ALIASES:
        return TASKONOMY_ALIASES[task]
    try:
        mapping = _visualpriors().task_mapping
    except ModelError:
        mapping = {}
    for paper, vp in mapping.items():
        if vp == task and paper in TASKS:
            return paper
    raise ModelError(f"taskonomy has no task {task!r} among the paper's 20", f"choose one of: {', '.join(TASKS)}")


def visualpriors_name(task: str) -> str:
    """The name visualpriors gives the task (``rgb2sfnorm`` → ``normal``)."""
    return _visualpriors().task_mapping[canonical_task(task)]


def weight_url(task: str) -> str:
    """The URL visualpriors downloads the task's encoder weights from."""
    network = _visualpriors()
    key = f"{visualpriors_name(task)}_encoder"
    if key not in network.TASKONOMY_PRETRAINED_URLS:
        raise ModelError(f"visualpriors lists no encoder weights for {task!r}", f"install {REQUIREMENT}")
    return network.TASKONOMY_PRETRAINED_URLS[key]


def weight_file(task: str) -> str:
    """The file name the task's weights have once downloaded (``torch.hub`` keeps the URL's name)."""
    return weight_url(task).rsplit("/", 1)[-1]


def search_dirs() -> list[Path]:
    """Where weights are looked for, in order: ``$DEPARA_TASKONOMY_DIR``, then the torch hub cache."""
    dirs = [Path(p).expanduser() for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p.strip()]
    return dirs + [Path(torch.hub.get_dir()) / "checkpoints"]


def find_weights(task: str) -> Path | None:
    """The local weights file of ``task`` (a ``.safetensors`` twin first), or None."""
    name = weight_file(task)
    for folder in search_dirs():
        for candidate in (folder / f"{Path(name).stem}.safetensors", folder / name):
            if candidate.is_file():
                return candidate
    return None


def missing_weights(tasks: tuple[str, ...] | list[str] = TASKS) -> list[str]:
    """The tasks (paper names) whose weights are not on this machine."""
    return [canonical_task(t) for t in tasks if find_weights(t) is None]


def _where() -> str:
    env = os.environ.get(ENV_VAR, "").strip()
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    return f"${ENV_VAR} ({env if env else 'not set'}) and the torch hub cache {hub}"


def _read_problem(path: Path) -> str:
    """Why ``path`` cannot be read with the safe loader ("" when it can), without reading its tensors."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _READ_PROBLEMS:
        _READ_PROBLEMS[key] = _probe_file(path)
    return _READ_PROBLEMS[key]


_READ_PROBLEMS: dict[tuple[str, int, int], str] = {}


def _probe_file(path: Path) -> str:
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                f.keys()
            return ""
        # A zip-format file is memory-mapped: only its pickle is read. A legacy one is read whole.
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as exc:
        return _short_error(exc)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        return "it holds no state_dict of tensors"
    return ""


def _short_error(exc: Exception) -> str:
    """The informative part of a loading error (torch's weights-only refusals are long)."""
    text = str(exc)
    found = re.search(r"WeightsUnpickler error: (.*?)(?: was not an allowed global| Please |\n|$)", text)
    if found:
        text = found[1]
    text = " ".join(text.split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def unreadable_weights(tasks: tuple[str, ...] | list[str] = TASKS) -> dict[str, tuple[Path, str]]:
    """The tasks whose local weights file the safe loader refuses: ``{task: (path, why)}``.

    Only the pickle's structure is read (tensors are memory-mapped); results are remembered per
    file size and modification time.
    """
    out = {}
    for task in tasks:
        path = find_weights(task)
        if path is not None:
            problem = _read_problem(path)
            if problem:
                out[canonical_task(task)] = (path, problem)
    return out


def unavailable_reason(tasks: tuple[str, ...] | list[str] = TASKS) -> str:
    """Why the zoo cannot be used yet ("" when every weights file is here and readable)."""
    try:
        missing = missing_weights(tasks)
        unreadable = unreadable_weights(tasks)
    except ModelError as exc:
        return str(exc)
    if not missing and not unreadable:
        return ""
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    lines = []
    if missing:
        lines.append(f"the taskonomy encoder weights are missing for {len(missing)} of {len(tasks)} tasks:")
        lines += [f"  {task}: {weight_url(task)}" for task in missing]
        lines += [
            f"Looked for these file names (or the same name ending in .safetensors) in {_where()}.",
            "Nothing is downloaded at run time. On a machine with internet access, download the URLs above "
            "(e.g. curl -LO URL), then copy the files, with their names unchanged, into "
            f"{hub} or into a folder that {ENV_VAR} names.",
        ]
    if unreadable:
        lines.append(
            f"{len(unreadable)} taskonomy weights file(s) are here but cannot be read safely "
            "(torch.load(weights_only=True) refuses them):"
        )
        lines += [f"  {task}: {path} ({why})" for task, (path, why) in unreadable.items()]
        files = " ".join(str(path) for path, _ in unreadable.values())
        lines.append(
            "If you downloaded them yourself from the visualpriors URLs and trust them, convert them once to "
            f"safetensors (this unpickles them): python {CONVERT_SCRIPT} --allow-pickle {files}"
        )
    return "\n".join(lines)


def prepare_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Add the BatchNorm ``num_batches_tracked`` counters that checkpoints older than torch 0.4.1 lack.

    They are not used in eval mode; every other key must still match exactly.
    """
    out = dict(state)
    for key in list(state):
        if key.endswith(".running_mean"):
            counter = key[: -len("running_mean")] + "num_batches_tracked"
            out.setdefault(counter, torch.tensor(0, dtype=torch.long))
    return out


def random_seed(task: str) -> int:
    """The seed of the task's random initialisation (``random_init=True``): stable across runs."""
    return zlib.crc32(canonical_task(task).encode())


def new_encoder() -> nn.Module:
    """A taskonomy encoder as visualpriors builds it (PyTorch's default initialisation).

    Its output is visualpriors' representation (layer ``groupnorm``); the encoder layer of the
    specs is the code before that normalisation (``relu1``).
    """
    return _visualpriors().TaskonomyEncoder(normalize_outputs=True, eval_only=True)


def build_encoder(task: str, weights: str | Path | None = None, random_init: bool = False) -> nn.Module:
    """The encoder of ``task`` with its local weights (or ``weights``), or randomly initialised.

    Raises :class:`ModelError` naming the file and where it was looked for when it is missing,
    and how to convert it when it cannot be read without unpickling code.
    """
    task = canonical_task(task)
    if random_init:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(random_seed(task))
            return new_encoder()
    path = Path(weights).expanduser() if weights is not None else find_weights(task)
    if path is None:
        raise ModelError(
            f"the taskonomy weights of {task!r} ({weight_file(task)}) are not on this machine; looked in {_where()}",
            f"download {weight_url(task)} on a machine with internet access and copy it into one of those folders",
        )
    if not path.is_file():
        raise ModelError(f"the taskonomy weights file {str(path)!r} does not exist", "give an existing file")
    problem = _read_problem(path)
    try:
        if problem:
            raise ModelError(f"{path.name!r} cannot be read safely ({problem})")
        state = load_checkpoint(path)
    except ModelError as exc:
        hint = (
            f"re-create it from your download of {weight_url(task)} with python {CONVERT_SCRIPT}"
            if path.suffix == ".safetensors"
            else f"if this is your own download of {weight_url(task)} and you trust it, convert it once with "
            f"'python {CONVERT_SCRIPT} --allow-pickle {path}' (this unpickles it); "
            "the .safetensors file written next to it is then used"
        )
        raise ModelError(f"taskonomy weights of {task!r}: {exc.problem}", hint) from None
    return apply_checkpoint(new_encoder(), prepare_state(state), f"taskonomy weights {path.name!r}")


def taskonomy_spec(task: str, *, weights: str | Path | None = None, random_init: bool = False, size: int = INPUT_SIZE) -> ModelSpec:
    """The spec of one task's encoder, named by the paper's task name.

    ``random_init=True`` builds it randomly initialised (seeded per task, see :func:`random_seed`)
    to exercise the pipeline without weights. ``size`` other than 256 is for quick runs (the
    encoder is fully convolutional; the layer labels give resolutions relative to the input).
    """
    task = canonical_task(task)
    file = weight_file(task)
    if random_init:
        origin = f"random init, seed {random_seed(task)}"
        source = f"visualpriors:TaskonomyEncoder@random-{random_seed(task)}"
    else:
        origin = f"weights {file}" if weights is None else f"weights {Path(weights).name}"
        source = f"visualpriors:TaskonomyEncoder@{file if weights is None else Path(weights).name}"
    return ModelSpec(
        name=task,
        build=lambda: build_encoder(task, weights, random_init),
        task=f"taskonomy: {_TITLES[task]}",
        preprocess=Preprocess(size=(size, size), value_range=(-1.0, 1.0)),
        layers=tuple(LayerSpec(name, label) for name, label in _LAYERS),
        encoder=ENCODER_LAYER,
        source=source,
        description=(
            f"Taskonomy {_TITLES[task]} encoder ({visualpriors_name(task)}): ResNet-50 trunk + 8-channel code, "
            f"23.7M parameters, {size}x{size} input in [-1, 1]; {origin}"
        ),
    )


def taskonomy_specs(random_init: bool = False, *, size: int = INPUT_SIZE) -> tuple[ModelSpec, ...]:
    """Specs of the 20 task encoders, in the paper's order."""
    return tuple(taskonomy_spec(task, random_init=random_init, size=size) for task in TASKS)


def ground_truth() -> GroundTruth:
    """Taskonomy's measured first-order transfer affinities at 16k images (the paper's top-5 relevant)."""
    return taskonomy_ground_truth("16k")


def zoo() -> Zoo:
    """The registry's ``taskonomy`` zoo, with taskonomy's measured affinities as ground truth."""
    return make_zoo("taskonomy", taskonomy_specs, unavailable_reason, ground_truth, default_probes=("photos", 64))
