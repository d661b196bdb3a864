"""Model specs and loaders: torchvision, timm, checkpoints, TorchScript and ``module:function``.

A :class:`ModelSpec` says how to build a network, how to preprocess probes for it, which layers
can be selected and which is its encoder output. :func:`load_model` builds it in eval mode with
frozen parameters and non-inplace activations, and fingerprints its weights for the cache.

>>> spec = callable_spec("tiny", lambda: __import__("torch").nn.Sequential(
...     __import__("torch").nn.Conv2d(3, 4, 3), __import__("torch").nn.ReLU(inplace=True)))
>>> m = load_model(spec)
>>> m.layer_names()[:2], m.module[1].inplace
(['0', '1'], False)
"""

from __future__ import annotations

import hashlib
import importlib
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .errors import LayerError, ModelError
from .preprocess import IDENTITY, Preprocess

__all__ = [
    "LayerSpec",
    "ModelSpec",
    "LoadedModel",
    "OUTPUT",
    "load_model",
    "load_checkpoint",
    "apply_checkpoint",
    "weights_digest",
    "callable_spec",
    "import_callable",
    "torchvision_spec",
    "timm_spec",
    "torchscript_spec",
    "parse_model_arg",
    "model_lock",
    "default_device",
]

OUTPUT = "output"
"""Layer name for the model's own output (used when no module is called ``output``)."""


@dataclass(frozen=True)
class LayerSpec:
    """A selectable layer: the module name ``named_modules()`` gives, and a readable label."""

    name: str
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name or OUTPUT


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build, feed and probe one pre-trained network."""

    name: str
    build: Callable[[], nn.Module] = field(compare=False, repr=False)
    task: str = ""
    preprocess: Preprocess = IDENTITY
    layers: tuple[LayerSpec, ...] = ()
    encoder: str = OUTPUT
    source: str = ""
    description: str = ""

    def layer_label(self, name: str) -> str:
        for layer in self.layers:
            if layer.name == name:
                return layer.title
        return name


@dataclass(frozen=True)
class LoadedModel:
    """A built model in eval mode with its spec and a digest of its weights."""

    spec: ModelSpec
    module: nn.Module = field(repr=False)
    digest: str
    scripted: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    def layer_names(self) -> list[str]:
        """Every name a layer can be addressed by (``named_modules()`` order), then ``output``."""
        if self.scripted:
            return [OUTPUT]
        names = [n for n, _ in self.module.named_modules() if n]
        return names + ([OUTPUT] if OUTPUT not in names else [])

    def selectable_layers(self) -> tuple[LayerSpec, ...]:
        """The spec's curated layers, or the model's top two levels of modules."""
        if self.spec.layers:
            return self.spec.layers
        if self.scripted:
            return (LayerSpec(OUTPUT, "output"),)
        out: list[LayerSpec] = []
        for name, child in self.module.named_children():
            grand = list(child.named_children())
            if isinstance(child, (nn.Sequential, nn.ModuleList)) and grand:
                out.extend(LayerSpec(f"{name}.{g}") for g, _ in grand)
            else:
                out.append(LayerSpec(name))
        return tuple(out) or (LayerSpec(OUTPUT, "output"),)

    def check_layers(self, layers: list[str] | tuple[str, ...]) -> None:
        """Raise :class:`LayerError` naming the valid layers if any requested name is unknown."""
        valid = self.layer_names()
        bad = [layer for layer in layers if layer not in valid]
        if bad:
            shown = ", ".join(valid[:40]) + (f", … ({len(valid)} in all)" if len(valid) > 40 else "")
            hint = "TorchScript models accept no hooks; use the model's output" if self.scripted else f"use one of: {shown}"
            raise LayerError(f"model {self.name!r} has no layer named {', '.join(map(repr, bad))}", hint)


_LOCKS: "weakref.WeakKeyDictionary[nn.Module, threading.Lock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(module: nn.Module) -> threading.Lock:
    """One lock per module object: hooks on a shared (cached) model are installed under it."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(module)
        if lock is None:
            lock = _LOCKS[module] = threading.Lock()
        return lock


def weights_digest(module: nn.Module) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of every parameter and buffer."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.dtype != torch.bool else t.numpy().tobytes())
    return h.hexdigest()


def default_device() -> torch.device:
    """CUDA when available, the CPU otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_model(spec: ModelSpec, device: str | torch.device | None = None) -> LoadedModel:
    """Build ``spec`` on ``device`` (CUDA when available) in eval mode, parameters frozen, every
    ``inplace`` activation switched off."""
    try:
        module = spec.build()
    except (ModelError, LayerError):
        raise
    except Exception as exc:  # a user's builder can fail in any way: report it readably
        raise ModelError(f"building model {spec.name!r} failed: {type(exc).__name__}: {exc}", "check the model's source") from exc
    if not isinstance(module, nn.Module):
        raise ModelError(f"model {spec.name!r}: the builder returned {type(module).__name__}, not a torch.nn.Module", "return an nn.Module")
    scripted = isinstance(module, torch.jit.ScriptModule)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    if not scripted:
        for m in module.modules():
            if getattr(m, "inplace", False) is True:
                m.inplace = False
    digest = weights_digest(module)
    module.to(torch.device(device) if device is not None else default_device())
    loaded = LoadedModel(spec, module, digest, scripted)
    loaded.check_layers([layer.name for layer in spec.layers] + ([spec.encoder] if spec.encoder else []))
    return loaded


# ---- checkpoints ---------------------------------------------------------------------------
def load_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state_dict from ``.safetensors`` or a torch file with ``weights_only=True`` (no code runs)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"checkpoint {str(path)!r} does not exist", "give the path of a .pth/.pt/.safetensors file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(
            f"checkpoint {path.name!r} cannot be read safely ({type(exc).__name__}: {str(exc)[:300]})",
            "save the weights as a plain state_dict (torch.save(model.state_dict(), ...)) or as safetensors",
        ) from None
    for key in ("state_dict", "model_state_dict", "model", "net", "module"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"checkpoint {path.name!r} holds no state_dict of tensors", "save model.state_dict()")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def apply_checkpoint(module: nn.Module, state: dict[str, torch.Tensor], label: str = "checkpoint") -> nn.Module:
    """Load ``state`` strictly; a mismatch names the missing, unexpected and mis-shaped keys."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in sorted(set(own) & set(state)) if own[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {', '.join(missing[:8])}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected[:8])}")
        if shapes:
            parts.append(f"shape mismatches ({len(shapes)}): {'; '.join(shapes[:5])}")
        raise ModelError(
            f"{label} does not fit the architecture: " + " | ".join(parts),
            "check that the checkpoint was saved from this architecture (and number of classes)",
        )
    module.load_state_dict(state, strict=True)
    return module


# ---- sources -------------------------------------------------------------------------------
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
    source = factory if isinstance(factory, str) else f"callable:{getattr(factory, '__qualname__', 'factory')}"
    build = (lambda: import_callable(factory)()) if isinstance(factory, str) else factory
    return ModelSpec(name=name, build=build, source=source, **kwargs)


def parse_model_arg(arg: str, **kwargs) -> ModelSpec:
    """``NAME=package.module:function`` (the CLI's ``--model``) as a spec."""
    if "=" not in arg:
        raise ModelError(f"--model {arg!r} is not NAME=package.module:function", "write e.g. --model depth=my_models:depth_net")
    name, target = arg.split("=", 1)
    if not name:
        raise ModelError(f"--model {arg!r} has an empty name", "write NAME=package.module:function")
    return callable_spec(name, target, **kwargs)


def torchvision_spec(arch: str, checkpoint: str | Path | None = None, name: str | None = None, num_classes: int | None = None, **kwargs) -> ModelSpec:
    """A torchvision architecture with weights from ``checkpoint``, or from the local torch hub cache.

    Nothing is downloaded: without a checkpoint, the default weights must already be in
    ``torch.hub.get_dir()/checkpoints``.
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
                f"the pre-trained weights of {arch!r} are not on this machine ({cached})",
                "give a checkpoint file, or put the weights file in the torch hub cache",
            )
        return apply_checkpoint(model, load_checkpoint(cached), f"cached weights {cached.name!r}")

    from .preprocess import IMAGENET

    kwargs.setdefault("preprocess", IMAGENET)
    src = f"torchvision:{arch}" + (f"@{Path(checkpoint).name}" if checkpoint else "@hub-cache")
    return ModelSpec(name=name or arch, build=build, source=src, **kwargs)


def timm_spec(arch: str, checkpoint: str | Path | None = None, name: str | None = None, **kwargs) -> ModelSpec:
    """A timm architecture (timm must be installed) with weights from a local checkpoint."""

    def build() -> nn.Module:
        try:
            import timm
        except ImportError:
            raise ModelError("timm is not installed", "pip install timm") from None
        if arch not in timm.list_models():
            raise ModelError(f"timm has no architecture {arch!r}", "see timm.list_models()")
        model = timm.create_model(arch, pretrained=False)
        if checkpoint is None:
            raise ModelError(f"no checkpoint given for timm model {arch!r}", "give the path of its weights file")
        return apply_checkpoint(model, load_checkpoint(checkpoint), f"checkpoint {Path(checkpoint).name!r}")

    src = f"timm:{arch}@{Path(checkpoint).name if checkpoint else 'none'}"
    return ModelSpec(name=name or arch, build=build, source=src, **kwargs)


def torchscript_spec(path: str | Path, name: str | None = None, **kwargs) -> ModelSpec:
    """A TorchScript file; only its output can be probed (scripted modules accept no hooks)."""
    path = Path(path).expanduser()

    def build() -> nn.Module:
        if not path.is_file():
            raise ModelError(f"TorchScript file {str(path)!r} does not exist", "check the path")
        try:
            return torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:
            raise ModelError(f"{path.name!r} is not a TorchScript file ({str(exc)[:200]})", "save it with torch.jit.save") from None

    kwargs.setdefault("encoder", OUTPUT)
    return ModelSpec(name=name or path.stem, build=build, source=f"torchscript:{path.name}", **kwargs)
