"""Mini-taskonomy: an offline zoo of small task networks with measured transfer ground truth.

Fourteen tasks (:mod:`.tasks`) read procedural scenes (:mod:`depara_core.scenes`) at 32x32; every
task trains the same encoder design (:mod:`.nets`, :mod:`.train`); transfer between them is
measured by freezing a source encoder and training a fresh target head on few labels
(:mod:`.transfer`), and summarised as affinities and seed agreement (:mod:`.analysis`). Layer
transfer into a shifted scene domain (:mod:`.layer_transfer`) gives layer-selection ground truth.
``scripts/build_minitaskonomy.py`` and ``scripts/build_layer_transfer.py`` build the stored zoo
(:mod:`.assets`); :mod:`depara_core.zoos.minitaskonomy` serves it.

>>> len(TASK_NAMES), LAYER_NAMES[-1]
(14, 'encoder.block5')
"""

from __future__ import annotations

from depara_core.zoos.minitaskonomy.assets import (
    ASSET_DIR,
    RANDOM,
    build_model,
    load_weights,
    model_name,
    parse_model_name,
    read_manifest,
)
from depara_core.zoos.minitaskonomy.nets import CODE_SHAPE, ENCODER_LAYER, LAYER_NAMES, RESOLUTION, Encoder, TaskNet, encoder_net, task_net
from depara_core.zoos.minitaskonomy.tasks import TASK_NAMES, TASKS, Task, make_input, scene_tensors
from minitaskonomy.analysis import affinity_table, flatness, seed_agreement
from minitaskonomy.store import save_weights
from minitaskonomy.train import TrainConfig, random_encoder, train_task
from minitaskonomy.transfer import TransferConfig, TransferData, measure_source

__all__ = [
    "ASSET_DIR", "CODE_SHAPE", "ENCODER_LAYER", "Encoder", "LAYER_NAMES", "RANDOM", "RESOLUTION", "TASKS", "TASK_NAMES",
    "Task", "TaskNet", "TrainConfig", "TransferConfig", "TransferData", "affinity_table", "build_model", "encoder_net",
    "flatness", "load_weights", "make_input", "measure_source", "model_name", "parse_model_name", "random_encoder",
    "read_manifest", "save_weights", "scene_tensors", "seed_agreement", "task_net", "train_task",
]  # fmt: skip
