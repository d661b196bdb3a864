"""The zoo's files: float16 safetensors weights, the manifest, and rebuilding networks from them.

Weights are stored as float16 (integer buffers as they are) and cast back to float32 on loading;
the transfer ground truth is measured with the float16-rounded networks, so the stored files
reproduce the measurement exactly.

>>> model_name("depth", 1), model_name("depth", 2), model_file("depth#2")
('depth', 'depth#2', 'depth.seed2.safetensors')
>>> parse_model_name("normals#3")
('normals', 3)
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from depara_core.errors import ModelError
from depara_core.models.checkpoints import apply_checkpoint, as_float32, load_checkpoint
from depara_core.resources import asset_dir
from depara_core.zoos.minitaskonomy.nets import TaskNet, encoder_net, task_net

__all__ = [
    "ASSET_DIR",
    "MANIFEST",
    "RANDOM",
    "model_name",
    "parse_model_name",
    "model_file",
    "load_weights",
    "build_model",
    "read_manifest",
]

ASSET_DIR = asset_dir("minitaskonomy")
"""Where the committed zoo lives (``assets/minitaskonomy``, package data of the wheel)."""
MANIFEST = "manifest.json"
RANDOM = "random"
"""Name of the randomly initialised control encoder."""


def model_name(task: str, seed: int) -> str:
    """``task`` for encoder seed 1, ``task#k`` for seed k."""
    return task if seed == 1 else f"{task}#{seed}"


def parse_model_name(name: str) -> tuple[str, int]:
    """(task, encoder seed) of a model name; the control is (``random``, 1)."""
    task, _, seed = name.partition("#")
    return task, int(seed) if seed else 1


def model_file(name: str) -> str:
    task, seed = parse_model_name(name)
    return f"{task}.safetensors" if seed == 1 else f"{task}.seed{seed}.safetensors"


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A stored state_dict with floating tensors cast back to float32."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"mini-taskonomy weights {path.name!r} are missing", "rebuild with python scripts/build_minitaskonomy.py")
    return as_float32(load_checkpoint(path))


def build_model(task: str | None, path: str | Path | None = None) -> TaskNet:
    """The network of ``task`` (None or ``random``: the control's encoder with an identity head), strictly loaded from ``path``."""
    net = encoder_net() if task in (None, RANDOM) else task_net(task)
    if path is not None:
        apply_checkpoint(net, load_weights(path), f"weights {Path(path).name!r}")
    return net.eval()


def read_manifest(directory: str | Path = ASSET_DIR) -> dict:
    """The manifest of a built zoo; raises :class:`ModelError` when the zoo has not been built."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ModelError(f"the mini-taskonomy zoo is not built ({path} is missing)", "run python scripts/build_minitaskonomy.py")
    return json.loads(path.read_text())
