"""Named conventions: the "paper code" preset against a plain-autograd computation of the original code's recipe."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from depara_core.compare.workflows import zoo_terms
from depara_core.errors import DeparaError, ModelError
from depara_core.models.preprocess import IDENTITY, Preprocess
from depara_core.models.sources import callable_spec
from depara_core.models.spec import load_model
from depara_core.presets import PRESETS, get_preset, with_input_clip
from depara_core.probes.probeset import ProbeSet


def _net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(5, 4, 3, stride=2), torch.nn.Tanh())


@pytest.fixture(scope="module")
def probes() -> ProbeSet:
    rng = np.random.default_rng(3)
    return ProbeSet.from_arrays(rng.integers(0, 256, (7, 16, 16, 3), dtype=np.uint8), [f"p{i}" for i in range(7)])


def test_clip_step_clips_before_the_value_range():
    img = np.random.default_rng(0).integers(0, 256, (2, 6, 6, 3), dtype=np.uint8)
    x = Preprocess(value_range=(-1.0, 1.0), clip=(0.1, 0.9))(img).numpy()
    expected = np.clip(img.astype(np.float32) / 255, 0.1, 0.9).transpose(0, 3, 1, 2) * 2 - 1  # taskonomy's low_sat, then [-1, 1]
    np.testing.assert_allclose(x, expected, atol=1e-6)
    assert "clip" not in IDENTITY.describe() and Preprocess(clip=(0.1, 0.9)).describe()["clip"] == [0.1, 0.9]


@pytest.mark.parametrize("clip", [(0.9, 0.1), (-0.1, 0.5), (0.2, 1.5), (0.5, 0.5), (0.1, float("nan"))])
def test_bad_clip_ranges_are_refused(clip):
    with pytest.raises(ModelError, match="within \\[0, 1\\]"):
        Preprocess(clip=clip)


def test_preset_names():
    assert get_preset("paper-code") is PRESETS["paper code"] and get_preset("paper").lam == 1.0
    with pytest.raises(DeparaError, match="no preset"):
        get_preset("taskonomy")


def _reference_graph(net: torch.nn.Module, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The original code's recipe written out: clip to [0.1, 0.9], gradient of sum(F), signed mean over
    RGB of gradient*input, features centred over probes, cosine edges."""
    x = torch.from_numpy(images.copy()).float().permute(0, 3, 1, 2).div(255).clamp(0.1, 0.9).requires_grad_(True)
    f = net(x)
    (g,) = torch.autograd.grad(f.sum(), x)
    nodes = (g * x).mean(1).flatten(1).detach().double().numpy()
    feats = f.flatten(1).detach().double().numpy()
    feats = feats - feats.mean(0)
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    return nodes, unit @ unit.T


def test_paper_code_preset_matches_the_original_recipe(probes):
    preset = PRESETS["paper code"]
    specs = preset.models([callable_spec(name, lambda s=s: _net(s)) for name, s in (("a", 0), ("b", 1), ("c", 2))])
    models = [load_model(s) for s in specs]
    terms = zoo_terms(models, probes, preset.options, layers={m.name: "3" for m in models}, node_scale=preset.node_scale, baselines=False)
    refs = [_reference_graph(_net(s), probes.images) for s in (0, 1, 2)]
    iu = np.triu_indices(len(probes), 1)
    for i in range(3):
        for j in range(3):
            (na, ea), (nb, eb) = refs[i], refs[j]
            cos = np.einsum("ij,ij->i", na, nb) / (np.linalg.norm(na, axis=1) * np.linalg.norm(nb, axis=1))
            assert terms.s_V[i, j] == pytest.approx(cos.mean(), abs=2e-3)  # nodes are stored in float16
            assert terms.s_E[i, j] == pytest.approx(scipy.stats.spearmanr(ea[iu], eb[iu])[0], abs=1e-6)
    s = terms.combined(preset.lam)
    np.testing.assert_allclose(s, 1e-3 * terms.s_V + 0.25 * terms.s_E)


def test_the_clip_changes_the_graph_key(probes):
    from depara_core.cache import GraphCache

    spec = callable_spec("a", lambda: _net(0))
    plain, clipped = load_model(spec), load_model(with_input_clip(spec, (0.1, 0.9)))
    options = PRESETS["paper"].options
    assert GraphCache.graph_key(plain, probes, "3", options) != GraphCache.graph_key(clipped, probes, "3", options)
    assert with_input_clip(spec, None) is spec
