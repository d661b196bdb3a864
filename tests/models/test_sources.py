"""The one model-source parser: every kind, the same spec from the CLI and the app, and
preprocessing from the architectures' own metadata (checked against torchvision and timm)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from conftest import TinyNet

from depara_core.cli import build_parser, model_from_arg
from depara_core.errors import ModelError
from depara_core.models.preprocess import IDENTITY, IMAGENET, Preprocess, timm_preprocess, torchvision_preprocess
from depara_core.models.sources import ModelSource, parse_source, parse_source_text, source_spec
from depara_core.session.config import CustomModel


@pytest.mark.parametrize(
    "text, expected",
    [
        ("torchvision:resnet18", ModelSource("torchvision", "resnet18", "", "resnet18")),
        ("r=torchvision:resnet18@/w/r.pth", ModelSource("torchvision", "resnet18", "/w/r.pth", "r")),
        ("timm:vit_small_patch16_224@v.safetensors", ModelSource("timm", "vit_small_patch16_224", "v.safetensors", "vit_small_patch16_224")),
        ("ts=torchscript:/m/net.pt", ModelSource("torchscript", "/m/net.pt", "", "ts")),
        ("zoo:mini-taskonomy/depth", ModelSource("zoo", "mini-taskonomy/depth", "", "depth")),
        ("d=my.models:depth_net", ModelSource("callable", "my.models:depth_net", "", "d")),
    ],
)
def test_every_kind_parses(text, expected):
    assert parse_source_text(text) == expected


@pytest.mark.parametrize("text, pattern", [("", "empty"), ("=x:y", "empty name"), ("zoo:only", "zoo:ZOO/MODEL"), ("torchvision:", "no architecture"), ("justaword", "not understood")])
def test_bad_sources_say_what_to_write(text, pattern):
    with pytest.raises(ModelError, match=pattern):
        parse_source_text(text)


def test_torchvision_preprocessing_follows_the_weights_metadata():
    p = torchvision_preprocess("efficientnet_b3")
    assert (p.size, p.resize, p.interpolation) == ((300, 300), 320, "bicubic")
    assert torchvision_preprocess("resnet18") == IMAGENET
    assert parse_source("torchvision:efficientnet_b3@x.pth").preprocess == p


@pytest.mark.parametrize("arch", ["resnet18", "efficientnet_b3", "vit_b_16"])
def test_preprocessing_matches_torchvisions_own_transforms(arch):
    """Our Preprocess on uint8 images equals weights.transforms() on the same tensor images."""
    images = np.random.default_rng(0).integers(0, 256, (2, 330, 410, 3), dtype=np.uint8)  # white noise: the hardest case
    ours = torchvision_preprocess(arch)(images)
    theirs = torchvision.models.get_model_weights(arch).DEFAULT.transforms()(torch.from_numpy(images).permute(0, 3, 1, 2))
    assert ours.shape == theirs.shape
    assert float((ours - theirs).abs().max()) < 0.02  # torchvision rounds the resized uint8 image; we keep floats


def test_timm_models_get_their_pretrained_config_everywhere():
    """The command line used to give timm models no preprocessing at all."""
    want = timm_preprocess("vit_small_patch16_224")
    assert (want.mean, want.std, want.interpolation, want.resize, want.size) == ((0.5,) * 3, (0.5,) * 3, "bicubic", 248, (224, 224))
    cli = model_from_arg("v=timm:vit_small_patch16_224@v.pth", build_parser().parse_args(["similarity", "--model", "x", "--probes", "p"]))
    app = CustomModel("timm", "v", "vit_small_patch16_224", "v.pth").spec()
    assert cli.preprocess == app.preprocess == want and cli.source == app.source


@pytest.mark.parametrize(
    "kind, target, checkpoint, text",
    [
        ("torchvision", "resnet18", "r.pth", "m=torchvision:resnet18@r.pth"),
        ("timm", "resnet18", "r.pth", "m=timm:resnet18@r.pth"),
        ("torchscript", "/x/net.pt", "", "m=torchscript:/x/net.pt"),
        ("callable", "conftest:TinyNet", "", "m=conftest:TinyNet"),
    ],
)
def test_cli_and_app_give_the_same_spec(kind, target, checkpoint, text):
    args = build_parser().parse_args(["similarity", "--model", text, "--probes", "p"])
    cli, app = model_from_arg(text, args), CustomModel(kind, "m", target, checkpoint).spec()
    assert (cli.name, cli.source, cli.preprocess, cli.encoder) == (app.name, app.source, app.preprocess, app.encoder)


def test_explicit_preprocessing_overrides():
    args = build_parser().parse_args(["similarity", "--model", "x", "--probes", "p", "--input-size", "96", "96", "--resize", "110", "--interpolation", "bicubic"])
    spec = model_from_arg("m=torchvision:resnet18@r.pth", args)
    assert (spec.preprocess.size, spec.preprocess.resize, spec.preprocess.interpolation, spec.preprocess.mean) == ((96, 96), 110, "bicubic", IMAGENET.mean)
    app = CustomModel("torchvision", "m", "resnet18", "r.pth", input_size=96, resize=110).spec()
    assert (app.preprocess.size, app.preprocess.resize) == ((96, 96), 110)
    with pytest.raises(ModelError, match="interpolation"):
        Preprocess(interpolation="nearest")  # type: ignore[arg-type]


def test_zoo_sources_and_code_sources():
    spec = parse_source("d=zoo:mini-taskonomy/depth")
    assert spec.name == "d" and spec.preprocess.size == (32, 32)
    with pytest.raises(ModelError, match="no model 'nope'"):
        parse_source("zoo:mini-taskonomy/nope")
    assert parse_source("t=conftest:TinyNet").preprocess == IDENTITY
    for text in ("t=conftest:TinyNet", "torchscript:/x/net.pt"):
        with pytest.raises(ModelError, match="does not allow"):
            parse_source(text, allow_code=False)
    assert source_spec(ModelSource("callable", "conftest:TinyNet", "", "t")).build().__class__ is TinyNet
