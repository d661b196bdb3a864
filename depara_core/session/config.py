"""What the sidebar decides: models (zoo or added), probes, layers, attribution method and conventions."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from depara_core.engine.graph import DEFAULT_METHOD, GraphOptions
from depara_core.errors import DeparaError, ModelError
from depara_core.models.controls import untrained_spec
from depara_core.models.sources import ModelSource, source_spec
from depara_core.models.spec import ModelSpec
from depara_core.presets import DEFAULT_PRESET, Preset, get_preset
from depara_core.zoos import Zoo

__all__ = ['LAYER_MODES', 'ModelKind', 'ProbeChoice', 'CustomModel', 'Config', 'resolve_specs']


ModelKind = Literal["torchvision", "timm", "torchscript", "callable"]
LAYER_MODES = ("encoder", "all")
"""What :attr:`Config.layer_mode` may be: each model's encoder only, or all its layers (layer selection)."""


# ---- choices -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProbeChoice:
    """Which probes: a built-in set by name, or an uploaded set (by its name and content digest)."""

    source: Literal["builtin", "uploaded"]
    name: str
    count: int | None = None
    digest: str = ""

    @property
    def label(self) -> str:
        what = self.name if self.source == "builtin" else f"uploaded: {self.name}"
        return f"{what} ({self.count} probes)" if self.count else what


@dataclass(frozen=True)
class CustomModel:
    """A model the user added: a torchvision/timm architecture with a checkpoint, a TorchScript file or
    ``package.module:function``. ``checkpoint`` and TorchScript paths are local files (uploads are saved
    first by :func:`save_upload`)."""

    kind: ModelKind
    name: str
    target: str
    checkpoint: str = ""
    encoder: str = ""
    num_classes: int | None = None
    input_size: int | None = None
    resize: int | None = None

    def spec(self, allow_code: bool = True) -> ModelSpec:
        """The model's spec through the library's one source parser; nothing is built or read yet.

        ``input_size`` / ``resize`` override the architecture's own preprocessing; ``allow_code=False``
        refuses ``module:function`` and TorchScript models.
        """
        if not self.name.strip():
            raise ModelError("the model has no name", "give it a short name")
        if self.kind not in ("torchvision", "timm", "torchscript", "callable"):
            raise ModelError(f"unknown model kind {self.kind!r}", "choose torchvision, timm, torchscript or callable")
        spec = source_spec(ModelSource(self.kind, self.target, self.checkpoint, self.name), encoder=self.encoder, num_classes=self.num_classes, allow_code=allow_code)
        if self.input_size or self.resize:
            size = (self.input_size, self.input_size) if self.input_size else spec.preprocess.size
            spec = dataclasses.replace(spec, preprocess=spec.preprocess.replace(size=size, resize=self.resize))
        return spec

    def key(self) -> str:
        """A stable identity: the fields plus size and modification time of any local file."""
        stamps = []
        for p in (self.checkpoint, self.target if self.kind == "torchscript" else ""):
            if p and Path(p).is_file():
                st = Path(p).stat()
                stamps.append(f"{st.st_size}:{st.st_mtime_ns}")
        return "|".join([self.kind, self.name, self.target, self.checkpoint, self.encoder, str(self.num_classes), str(self.input_size), str(self.resize), *stamps])


@dataclass(frozen=True)
class Config:
    """Everything the sidebar decides: zoo, models, layers, probes, attribution method and the
    conventions (:data:`~depara_core.presets.PRESETS`: the paper's definitions or the original code's)."""

    zoo: str
    models: tuple[str, ...]
    probes: ProbeChoice
    custom: tuple[CustomModel, ...] = ()
    layer_mode: Literal["encoder", "all"] = "encoder"
    method: str = "gradient_x_input"
    preset: str = DEFAULT_PRESET
    controls: tuple[str, ...] = ()
    """Zoo models whose untrained twin (same architecture, random weights) is compared too."""
    input_space: Literal["model", "pixels"] = "model"
    """Gradient*Input w.r.t. each model's own input (the paper's) or the probes' pixels (see :class:`GraphOptions`)."""
    precision: Literal["fp32", "bf16", "tf32"] = "fp32"
    """The arithmetic of the forward and backward passes (see :class:`GraphOptions`)."""
    compile: bool = False
    """Run the passes through ``torch.compile`` (Gradient*Input only; see :class:`GraphOptions`)."""

    @property
    def conventions(self) -> Preset:
        return get_preset(self.preset)

    def options(self) -> GraphOptions:
        """The preset's graph options with the chosen attribution method, input space and arithmetic
        (pixels and compile only for Gradient*Input, the one method they are defined for)."""
        gxi = self.method == DEFAULT_METHOD
        return dataclasses.replace(
            self.conventions.options, method=self.method, input_space=self.input_space if gxi else "model", precision=self.precision, compile=self.compile and gxi
        )


def resolve_specs(config: Config, zoo: Zoo | None) -> list[ModelSpec]:
    """The specs of the chosen models, zoo models first in the chosen order, then custom ones, then
    the untrained controls (:func:`~depara_core.models.controls.untrained_spec`)."""
    zoo_specs = {s.name: s for s in (zoo.specs if zoo is not None else ())}
    custom = {c.name: c for c in config.custom}
    out = []
    for name in config.models:
        if name in custom:
            out.append(custom[name].spec())
        elif name in zoo_specs:
            out.append(zoo_specs[name])
        else:
            raise DeparaError(f"model {name!r} is neither in zoo {config.zoo!r} nor among the added models", "choose models from the list")
    for name in config.controls:
        if name not in zoo_specs:
            raise DeparaError(f"an untrained control of {name!r} was asked for, but it is not a model of zoo {config.zoo!r}", "choose controls among the zoo's models")
        out.append(untrained_spec(zoo_specs[name]))
    if len(out) < 2:
        raise DeparaError(f"{len(out)} model(s) chosen; comparing needs at least two", "choose at least two models in the sidebar")
    return out
