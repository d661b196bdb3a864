"""Taskonomy zoo: names and files, missing and present weights, unsafe pickles, random encoders end to end.

No real taskonomy weights are needed: fake weight files are randomly initialised encoders saved
under the names the visualpriors URLs download to.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from depara_core.compare.workflows import zoo_terms
from depara_core.errors import ModelError
from depara_core.evaluation.taskonomy import TASKONOMY_TARGETS, TASKONOMY_TASKS
from depara_core.models.spec import load_model
from depara_core.probes.registry import load_builtin
from depara_core.zoos import load_zoo
from depara_core.zoos import taskonomy as tk

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "relu1", "groupnorm"]


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    """An empty torch hub cache and no $DEPARA_TASKONOMY_DIR; any download attempt fails the test."""
    folder = tmp_path / "hub"
    (folder / "checkpoints").mkdir(parents=True)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(folder))
    monkeypatch.delenv(tk.ENV_VAR, raising=False)

    def no_download(*args, **kwargs):
        raise AssertionError("the taskonomy zoo tried to download something")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setattr(urllib.request, "urlopen", no_download)
    return folder / "checkpoints"


def fake_state(seed: int) -> dict[str, torch.Tensor]:
    """A randomly initialised encoder's state_dict, with non-trivial BatchNorm statistics."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        state = tk.new_encoder().state_dict()
        for key, value in state.items():
            if key.endswith("running_mean"):
                value.normal_(0, 0.1)
    return state


def same_weights(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> bool:
    own = module.state_dict()
    return set(own) == set(state) and all(torch.equal(own[k], state[k]) for k in own)


def load_script():
    spec = importlib.util.spec_from_file_location("convert_taskonomy_weights", ROOT / "scripts" / "convert_taskonomy_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- names and files -----------------------------------------------------------------------
def test_zoo_lists_the_papers_twenty_tasks(hub):
    zoo = load_zoo("taskonomy")
    assert zoo.names == TASKONOMY_TASKS and len(zoo.specs) == 20
    for spec in zoo.specs:
        assert spec.preprocess.size == (256, 256) and spec.preprocess.value_range == (-1.0, 1.0)
        assert spec.preprocess.mean == (0.0, 0.0, 0.0) and spec.preprocess.std == (1.0, 1.0, 1.0)
        assert spec.encoder == "relu1" and [layer.name for layer in spec.layers] == LAYERS
        assert spec.task.startswith("taskonomy: ")
    files = [tk.weight_file(t) for t in TASKONOMY_TASKS]
    assert len(set(files)) == 20
    assert all(re.fullmatch(r"[a-z0-9_]+_encoder-[0-9a-f]{64}\.pth", f) for f in files)
    assert all(tk.weight_url(t).endswith("/" + tk.weight_file(t)) and tk.weight_url(t).startswith("https://") for t in TASKONOMY_TASKS)


@pytest.mark.parametrize(
    "name, paper, prefix",
    [
        ("rgb2sfnorm", "rgb2sfnorm", "normal_encoder-"),
        ("rgb2depth", "rgb2depth", "depth_zbuffer_encoder-"),
        ("rgb2mist", "rgb2mist", "depth_euclidean_encoder-"),
        ("class_1000", "class_1000", "class_object_encoder-"),
        ("class_places", "class_places", "class_scene_encoder-"),
        ("edge2d", "edge2d", "edge_texture_encoder-"),
        ("segmentsemantic_rb", "segmentsemantic", "segment_semantic_encoder-"),
        ("vanishing_point_well_defined", "vanishing_point", "vanishing_point_encoder-"),
        ("impainting_whole", "inpainting_whole", "inpainting_encoder-"),
        ("depth_zbuffer", "rgb2depth", "depth_zbuffer_encoder-"),
    ],
)
def test_task_names_aliases_and_file_names(name, paper, prefix):
    assert tk.canonical_task(name) == paper
    assert tk.weight_file(name).startswith(prefix)
    assert tk.taskonomy_spec(name).name == paper


def test_unknown_task_names_the_valid_ones():
    with pytest.raises(ModelError, match="rgb2sfnorm") as err:
        tk.canonical_task("jigsaw")  # a taskonomy task, but not one of the paper's 20
    assert "no task 'jigsaw'" in str(err.value)


# ---- missing weights -----------------------------------------------------------------------
def test_unavailable_without_weights_says_what_where_and_how(hub):
    zoo = load_zoo("taskonomy")
    assert not zoo.available and len(zoo.specs) == 20
    reason = zoo.unavailable_reason
    assert "missing for 20 of 20 tasks" in reason
    for task in TASKONOMY_TASKS:
        assert f"  {task}: {tk.weight_url(task)}" in reason
    assert str(hub) in reason and tk.ENV_VAR in reason and "not set" in reason
    assert "internet" in reason and ".safetensors" in reason
    with pytest.raises(ModelError, match="not on this machine") as err:
        load_model(zoo.specs[TASKONOMY_TASKS.index("rgb2sfnorm")])
    assert tk.weight_url("rgb2sfnorm") in str(err.value)


# ---- present weights -----------------------------------------------------------------------
def test_fake_weights_dir_loads_strictly_and_lists_only_the_missing(hub, tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv(tk.ENV_VAR, str(folder))
    states = {"rgb2depth": fake_state(101), "class_1000": fake_state(102), "segmentsemantic": fake_state(103)}
    # visualpriors' layout: {"state_dict": ...} in a zip-format torch file.
    torch.save({"state_dict": states["rgb2depth"], "epoch": 7}, folder / tk.weight_file("rgb2depth"))
    # An old-style checkpoint: legacy torch format, no BatchNorm num_batches_tracked counters.
    old = {k: v for k, v in states["class_1000"].items() if not k.endswith("num_batches_tracked")}
    torch.save(old, hub / tk.weight_file("class_1000"), _use_new_zipfile_serialization=False)
    # A converted file: the .safetensors twin of the download's name.
    stem = Path(tk.weight_file("segmentsemantic")).stem
    save_file(states["segmentsemantic"], str(folder / f"{stem}.safetensors"))

    zoo = load_zoo("taskonomy")
    assert not zoo.available
    assert "missing for 17 of 20 tasks" in zoo.unavailable_reason
    listed = re.findall(r"^  (\w+): https://", zoo.unavailable_reason, flags=re.M)
    assert listed == [t for t in TASKONOMY_TASKS if t not in states]
    assert str(folder) in zoo.unavailable_reason and "cannot be read safely" not in zoo.unavailable_reason

    for task, state in states.items():
        model = load_model(zoo.specs[TASKONOMY_TASKS.index(task)])
        expected = tk.prepare_state(state)
        if task == "class_1000":
            expected = {k: (torch.tensor(0) if k.endswith("num_batches_tracked") else v) for k, v in state.items()}
        assert same_weights(model.module, expected), task
    assert tk.find_weights("class_1000") == hub / tk.weight_file("class_1000")
    with pytest.raises(ModelError, match="not on this machine"):
        load_model(tk.taskonomy_spec("rgb2sfnorm"))


def test_weights_of_another_architecture_are_refused(hub, tmp_path, monkeypatch):
    monkeypatch.setenv(tk.ENV_VAR, str(tmp_path))
    state = fake_state(7)
    state["compress1.weight"] = torch.zeros(16, 2048, 3, 3)  # a 16-channel code, not taskonomy's 8
    del state["layer4.2.bn3.weight"]
    state["decoder.conv2.weight"] = torch.zeros(1)
    torch.save({"state_dict": state}, tmp_path / tk.weight_file("reshade"))
    with pytest.raises(ModelError, match="does not fit") as err:
        load_model(tk.taskonomy_spec("reshade"))
    text = str(err.value)
    assert "layer4.2.bn3.weight" in text and "decoder.conv2.weight" in text and "compress1.weight" in text


def test_unsafe_pickle_is_reported_then_converted_by_the_script(hub, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv(tk.ENV_VAR, str(folder))
    state = fake_state(11)
    path = folder / tk.weight_file("edge3d")
    torch.save({"state_dict": state, "args": argparse.Namespace(lr=0.1)}, path)

    reason = load_zoo("taskonomy").unavailable_reason
    assert "missing for 19 of 20 tasks" in reason
    assert "1 taskonomy weights file(s) are here but cannot be read safely" in reason
    assert f"  edge3d: {path} (" in reason and "Namespace" in reason
    assert f"convert_taskonomy_weights.py --allow-pickle {path}" in reason
    with pytest.raises(ModelError, match="--allow-pickle"):
        load_model(tk.taskonomy_spec("edge3d"))

    script = load_script()
    converted = folder / f"{path.stem}.safetensors"
    assert script.main([str(path)]) == 1 and not converted.exists()  # refuses to unpickle unless allowed
    assert "--allow-pickle" in capsys.readouterr().err
    assert script.main(["--allow-pickle", str(path)]) == 0 and converted.is_file()
    assert tk.find_weights("edge3d") == converted
    reason = load_zoo("taskonomy").unavailable_reason
    assert "cannot be read safely" not in reason and "missing for 19 of 20" in reason
    assert same_weights(load_model(tk.taskonomy_spec("edge3d")).module, state)


# ---- random encoders through the pipeline --------------------------------------------------
def test_random_encoders_are_seeded_per_task_and_leave_the_global_rng_alone():
    before = torch.random.get_rng_state()
    a = load_model(tk.taskonomy_spec("autoencoder", random_init=True))
    again = load_model(tk.taskonomy_spec("autoencoder", random_init=True))
    b = load_model(tk.taskonomy_spec("curvature", random_init=True))
    assert torch.equal(before, torch.random.get_rng_state())
    assert a.digest == again.digest != b.digest
    assert "random" in a.spec.source and tk.weight_file("autoencoder") not in a.spec.source


def test_layer_labels_match_the_encoder_at_256():
    model = load_model(tk.taskonomy_spec("rgb2sfnorm", random_init=True))
    modules = dict(model.module.named_modules())
    seen = {}
    handles = [modules[n].register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, tuple(o.shape))) for n in LAYERS]
    x = model.spec.preprocess(np.random.default_rng(0).integers(0, 256, (1, 300, 320, 3), dtype=np.uint8))
    assert tuple(x.shape) == (1, 3, 256, 256) and float(x.min()) >= -1.0 and float(x.max()) <= 1.0 and float(x.min()) < -0.9
    with torch.no_grad():
        out = model.module(x)
    for h in handles:
        h.remove()
    assert tuple(out.shape) == (1, 8, 16, 16) == seen["relu1"] == seen["groupnorm"]
    for layer in model.spec.layers:
        channels, denominator = map(int, re.search(r"(\d+) ch, 1/(\d+) res", layer.label).groups())
        assert seen[layer.name] == (1, channels, 256 // denominator, 256 // denominator), layer.name
    assert "(encoder)" in model.spec.layer_label("relu1")
    assert sum(p.numel() for p in model.module.parameters()) == 23_655_504


def test_three_random_encoders_give_a_similarity_matrix():
    names = ("rgb2depth", "rgb2sfnorm", "class_1000")
    specs = {s.name: s for s in tk.taskonomy_specs(random_init=True, size=64)}
    models = [load_model(specs[n]) for n in names]
    probes = load_builtin("noise", 4)
    terms = zoo_terms(models, probes, baselines=False)
    assert terms.names == names
    for m in (terms.s_V, terms.s_E):
        assert m.shape == (3, 3) and np.isfinite(m).all()
        assert np.allclose(np.diag(m), 1.0) and np.allclose(m, m.T)
    off = terms.s_V[~np.eye(3, dtype=bool)]
    assert (off < 1 - 1e-6).all() and (off > -1).all()  # three different networks, three different graphs
    ranking = terms.rank_sources("rgb2depth")
    assert [s for s, _ in ranking] and {s for s, _ in ranking} == {"rgb2sfnorm", "class_1000"}


# ---- ground truth --------------------------------------------------------------------------
def test_ground_truth_covers_the_18_targets_and_20_sources():
    gt = tk.ground_truth()
    assert gt.name == "taskonomy-16k"
    assert gt.targets == list(TASKONOMY_TARGETS) and len(gt.targets) == 18
    assert list(gt.affinity.index) == list(TASKONOMY_TASKS)
    assert all(len(gt.candidates(t)) == 19 for t in gt.targets)
    assert set(gt.ranking("rgb2depth")) <= set(load_zoo("taskonomy").names)


def test_load_zoo_carries_the_ground_truth(hub):
    gt = load_zoo("taskonomy").ground_truth
    assert gt is not None and gt.name == "taskonomy-16k" and gt.targets == list(TASKONOMY_TARGETS)
