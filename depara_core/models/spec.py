"""Model specs and loaders: torchvision, timm, checkpoints, TorchScript and ``module:function``.

A :class:`ModelSpec` says how to build a network, how to preprocess probes for it, which layers
can be selected and which is its encoder output. :func:`load_model` builds it in eval mode with
frozen parameters and non-inplace activations, and fingerprints its weights for the cache.

>>> from depara_core.models.sources import callable_spec
>>> spec = callable_spec("tiny", lambda: __import__("torch").nn.Sequential(
...     __import__("torch").nn.Conv2d(3, 4, 3), __import__("torch").nn.ReLU(inplace=True)))
>>> m = load_model(spec)
>>> m.layer_names()[:2], m.module[1].inplace
(['0', '1'], False)
"""

from __future__ import annotations

import hashlib
import inspect
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from depara_core.errors import LayerError, ModelError
from depara_core.models.preprocess import IDENTITY, Preprocess

__all__ = [
    "architecture_digest",'OUTPUT', 'LayerSpec', 'ModelSpec', 'LoadedModel', 'model_lock', 'weights_digest', 'default_device', 'load_model']


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
    """A built model in eval mode with its spec, a digest of its weights and one of its code.

    ``architecture`` hashes what the weights do not determine: every module's class and source
    code, its hyper-parameters (``extra_repr``), and the TorchScript code of scripted models
    (:func:`architecture_digest`). Cache keys use both digests.
    """

    spec: ModelSpec
    module: nn.Module = field(repr=False)
    digest: str
    scripted: bool = False
    architecture: str = ""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def device(self) -> torch.device:
        """Where the model's weights are (the CPU for a model without parameters)."""
        return next(iter(self.module.parameters()), torch.empty(0)).device

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


def _code_text(fn: object) -> str:
    """The source of a function, or (without a source file) its bytecode and constants."""
    try:
        return inspect.getsource(fn)  # type: ignore[arg-type]
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        return repr((code.co_code, code.co_consts, code.co_names)) if code is not None else repr(fn)


def architecture_digest(module: nn.Module) -> str:
    """SHA-256 of what a module computes apart from its weights: per submodule its name, class (module
    and qualified name), ``extra_repr()`` and the source of its ``forward``; for TorchScript its code.

    Two models sharing a state_dict but differing in forward code or architecture variant differ here.
    """
    h = hashlib.sha256()
    seen: dict[type, str] = {}
    for name, m in module.named_modules():
        cls = type(m)
        h.update(f"{name}|{cls.__module__}.{cls.__qualname__}|{m.extra_repr() if not isinstance(m, torch.jit.ScriptModule) else ''}".encode())
        if isinstance(m, torch.jit.ScriptModule):
            code = getattr(m, "code", "")
            h.update(str(code).encode())
            continue
        if cls not in seen:
            seen[cls] = hashlib.sha256(_code_text(cls.forward).encode()).hexdigest()
        h.update(seen[cls].encode())
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
    except (Exception, SystemExit, KeyboardInterrupt) as exc:  # a user's builder can fail in any way, exits included
        raise ModelError(f"building model {spec.name!r} failed: {type(exc).__name__}: {str(exc)[:300]}", "check the model's source") from None
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
    architecture = architecture_digest(module)
    module.to(torch.device(device) if device is not None else default_device())
    loaded = LoadedModel(spec, module, digest, scripted, architecture)
    loaded.check_layers([layer.name for layer in spec.layers] + ([spec.encoder] if spec.encoder else []))
    return loaded
