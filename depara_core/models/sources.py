"""Model sources: the one parser for every kind of model a user names, and the specs they become.

A source is written ``[NAME=]KIND:TARGET`` and used alike by the command line, the app and the
Python API:

==========================  ===============================================================
``torchvision:ARCH[@CKPT]``  a torchvision architecture; weights from CKPT or the torch hub cache
``timm:ARCH@CKPT``          a timm architecture with a local checkpoint
``torchscript:PATH``        a TorchScript file (its code runs: see the README's security notes)
``zoo:ZOO/MODEL``           a model of a built-in zoo
``package.module:function`` a Python function returning an ``nn.Module``
==========================  ===============================================================

torchvision and timm models get their preprocessing from the architecture's own metadata
(:mod:`depara_core.models.preprocess`) unless ``preprocess`` is given.

>>> parse_source_text("depth=zoo:mini-taskonomy/depth")
ModelSource(kind='zoo', target='mini-taskonomy/depth', checkpoint='', name='depth')
>>> parse_source_text("torchvision:resnet18@weights.pth")
ModelSource(kind='torchvision', target='resnet18', checkpoint='weights.pth', name='resnet18')
>>> spec = parse_source("timm:vit_small_patch16_224@w.pth")
>>> spec.preprocess.mean, spec.preprocess.interpolation, spec.preprocess.resize
((0.5, 0.5, 0.5), 'bicubic', 248)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from depara_core.errors import DeparaError, ModelError
from depara_core.models.checkpoints import apply_checkpoint, load_checkpoint
from depara_core.models.preprocess import IDENTITY, Preprocess, timm_preprocess, torchvision_preprocess
from depara_core.models.spec import OUTPUT, ModelSpec
from depara_core.models.trial import trial_build

__all__ = [
    "SOURCE_KINDS",
    "ModelSource",
    "parse_source_text",
    "parse_source",
    "source_spec",
    "import_callable",
    "callable_spec",
    "torchvision_spec",
    "timm_spec",
    "torchscript_spec",
]

SourceKind = Literal["torchvision", "timm", "torchscript", "zoo", "callable"]
SOURCE_KINDS: tuple[str, ...] = ("torchvision", "timm", "torchscript", "zoo", "callable")


@dataclass(frozen=True)
class ModelSource:
    """A parsed source: its kind, target (architecture, path, zoo model or ``module:function``),
    optional checkpoint and the model's name."""

    kind: SourceKind
    target: str
    checkpoint: str = ""
    name: str = ""


def parse_source_text(text: str) -> ModelSource:
    """Split ``[NAME=]KIND:TARGET[@CKPT]`` into a :class:`ModelSource` (nothing is read or imported)."""
    raw = (text or "").strip()
    if not raw:
        raise ModelError("the model source is empty", "write e.g. torchvision:resnet18@weights.pth or package.module:function")
    name, eq, rest = raw.partition("=")
    if not eq:
        name, rest = "", raw
    elif not name.strip():
        raise ModelError(f"model source {raw!r} has an empty name before '='", "write NAME=SOURCE")
    name = name.strip()
    kind, colon, target = rest.partition(":")
    if kind in ("torchvision", "timm"):
        arch, _, ckpt = target.partition("@")
        if not arch:
            raise ModelError(f"model source {raw!r} names no architecture", f"write {kind}:ARCH[@CHECKPOINT]")
        return ModelSource(kind, arch, ckpt, name or arch)  # type: ignore[arg-type]
    if kind == "torchscript":
        if not target:
            raise ModelError(f"model source {raw!r} names no file", "write torchscript:PATH")
        return ModelSource("torchscript", target, "", name or Path(target).stem)
    if kind == "zoo":
        zoo, slash, model = target.partition("/")
        if not zoo or not slash or not model:
            raise ModelError(f"model source {raw!r} is not zoo:ZOO/MODEL", "write e.g. zoo:mini-taskonomy/depth")
        return ModelSource("zoo", target, "", name or model)
    if colon and kind and target:
        return ModelSource("callable", rest, "", name or target.rsplit(".", 1)[-1])
    raise ModelError(
        f"model source {raw!r} is not understood",
        "write NAME=package.module:function, torchvision:ARCH[@CKPT], timm:ARCH@CKPT, torchscript:PATH or zoo:ZOO/MODEL",
    )


def source_spec(
    source: ModelSource,
    *,
    preprocess: Preprocess | None = None,
    encoder: str = "",
    num_classes: int | None = None,
    allow_code: bool = True,
) -> ModelSpec:
    """The spec of a parsed source. ``allow_code=False`` refuses sources that run code from the
    server's Python path or from a file (``module:function`` and TorchScript)."""
    if source.kind in ("callable", "torchscript") and not allow_code:
        raise ModelError(
            f"{source.kind} models run code on the server, and this server does not allow them",
            "ask the person who runs the server to start it with code-defined models enabled",
        )
    extra: dict = {"encoder": encoder} if encoder else {}
    if preprocess is not None:
        extra["preprocess"] = preprocess
    ckpt = source.checkpoint or None
    if source.kind == "torchvision":
        return torchvision_spec(source.target, ckpt, name=source.name, num_classes=num_classes, **extra)
    if source.kind == "timm":
        return timm_spec(source.target, ckpt, name=source.name, num_classes=num_classes, **extra)
    if source.kind == "torchscript":
        return torchscript_spec(source.target, name=source.name, **extra)
    if source.kind == "zoo":
        return _zoo_spec(source, extra)
    if source.kind == "callable":
        return callable_spec(source.name, source.target, **extra)
    raise ModelError(f"unknown model kind {source.kind!r}", f"choose one of {', '.join(SOURCE_KINDS)}")


def parse_source(text: str, **options) -> ModelSpec:
    """The spec of a source written as text (see the module docstring); ``options`` as :func:`source_spec`."""
    return source_spec(parse_source_text(text), **options)


def _zoo_spec(source: ModelSource, extra: dict) -> ModelSpec:
    import dataclasses

    from depara_core.zoos import load_zoo

    zoo_name, _, model_name = source.target.partition("/")
    try:
        zoo = load_zoo(zoo_name)
    except DeparaError as exc:
        raise ModelError(exc.problem, exc.hint) from None
    specs = {s.name: s for s in zoo.specs}
    if model_name not in specs:
        hint = f"choose one of: {', '.join(specs)}" if specs else (zoo.unavailable_reason or "the zoo has no models")
        raise ModelError(f"zoo {zoo_name!r} has no model {model_name!r}", hint)
    spec = specs[model_name]
    changes = {**extra, **({"name": source.name} if source.name != model_name else {})}
    return dataclasses.replace(spec, **changes) if changes else spec


def import_callable(target: str) -> Callable[..., nn.Module]:
    """Resolve ``package.module:function`` (the function may be dotted: ``mod:Class.method``)."""
    if ":" not in target:
        raise ModelError(f"{target!r} is not of the form package.module:function", "write it as package.module:function")
    mod_name, attr = target.split(":", 1)
    try:
        obj = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ModelError(f"cannot import module {mod_name!r} ({exc})", "check the module path and that it is on PYTHONPATH") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelError(f"module {mod_name!r} has no attribute {attr!r}", "check the function name")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ModelError(f"{target!r} is not callable", "point to a function that returns an nn.Module")
    return obj


def callable_spec(name: str, factory: Callable[[], nn.Module] | str, **kwargs) -> ModelSpec:
    """A spec from a zero-argument factory, or its ``package.module:function`` path."""
    source = f"callable:{factory}" if isinstance(factory, str) else f"callable:{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', 'factory')}"
    if isinstance(factory, str):
        size = kwargs.get("preprocess", IDENTITY).size

        def build() -> nn.Module:
            trial_build("callable", factory, size)  # exits, crashes and hangs happen in a child process
            return import_callable(factory)()
    else:
        build = factory
    return ModelSpec(name=name, build=build, source=source, **kwargs)


def torchvision_spec(arch: str, checkpoint: str | Path | None = None, name: str | None = None, num_classes: int | None = None, **kwargs) -> ModelSpec:
    """A torchvision architecture with weights from ``checkpoint``, or from the local torch hub cache.

    Nothing is downloaded: without a checkpoint, the default weights must already be in
    ``torch.hub.get_dir()/checkpoints``. Preprocessing follows the default weights' ``transforms()``.
    """
    import torchvision

    if arch not in torchvision.models.list_models():
        raise ModelError(f"torchvision has no architecture {arch!r}", "see torchvision.models.list_models()")

    def build() -> nn.Module:
        extra = {"num_classes": num_classes} if num_classes else {}
        model = torchvision.models.get_model(arch, weights=None, **extra)
        if checkpoint is not None:
            return apply_checkpoint(model, load_checkpoint(checkpoint), f"checkpoint {Path(checkpoint).name!r}")
        weights = torchvision.models.get_model_weights(arch).DEFAULT
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        if not cached.is_file():
            raise ModelError(
                f"the pre-trained weights of {arch!r} are not on this machine ({cached.name})",
                "give a checkpoint file, or put the weights file in the torch hub cache",
            )
        return apply_checkpoint(model, load_checkpoint(cached), f"cached weights {cached.name!r}")

    if "preprocess" not in kwargs:
        kwargs["preprocess"] = torchvision_preprocess(arch)
    src = f"torchvision:{arch}" + (f"@{Path(checkpoint).name}" if checkpoint else "@hub-cache") + (f"#classes={num_classes}" if num_classes else "")
    return ModelSpec(name=name or arch, build=build, source=src, **kwargs)


def timm_spec(arch: str, checkpoint: str | Path | None = None, name: str | None = None, num_classes: int | None = None, **kwargs) -> ModelSpec:
    """A timm architecture (timm must be installed) with weights from a local checkpoint; preprocessing
    from its pretrained config."""

    def build() -> nn.Module:
        try:
            import timm
        except ImportError:
            raise ModelError("timm is not installed", "pip install timm") from None
        if arch not in timm.list_models():
            raise ModelError(f"timm has no architecture {arch!r}", "see timm.list_models()")
        if checkpoint is None:
            raise ModelError(f"no checkpoint given for timm model {arch!r}", "give the path of its weights file: timm:ARCH@CHECKPOINT")
        model = timm.create_model(arch, pretrained=False, **({"num_classes": num_classes} if num_classes else {}))
        return apply_checkpoint(model, load_checkpoint(checkpoint), f"checkpoint {Path(checkpoint).name!r}")

    if "preprocess" not in kwargs:
        kwargs["preprocess"] = timm_preprocess(arch)
    src = f"timm:{arch}@{Path(checkpoint).name if checkpoint else 'none'}" + (f"#classes={num_classes}" if num_classes else "")
    return ModelSpec(name=name or arch, build=build, source=src, **kwargs)


def torchscript_spec(path: str | Path, name: str | None = None, **kwargs) -> ModelSpec:
    """A TorchScript file; only its output can be probed (scripted modules accept no hooks)."""
    path = Path(path).expanduser()

    def build() -> nn.Module:
        if not path.is_file():
            raise ModelError(f"TorchScript file {path.name!r} does not exist", "check the path")
        trial_build("torchscript", str(path), kwargs["preprocess"].size)
        try:
            return torch.jit.load(str(path), map_location="cpu")
        except Exception:  # noqa: BLE001 - torch's text names its internals, not the user's file
            raise ModelError(f"{path.name!r} is not a TorchScript file, or it is damaged", "save the model with torch.jit.save(torch.jit.script(model), path)") from None

    kwargs.setdefault("encoder", OUTPUT)
    kwargs.setdefault("preprocess", IDENTITY)
    return ModelSpec(name=name or path.stem, build=build, source=f"torchscript:{path.name}", **kwargs)
