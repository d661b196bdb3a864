"""Attribution methods behind one registry.

Every method maps a per-sample scalar function ``f: (N, C, H, W) -> (N,)`` and inputs ``x`` to an
attribution map of ``x``'s shape. The default, Gradient*Input (Eq. 3 of the paper), is computed by
the graph engine itself with one vector-Jacobian product per layer; the registry's version goes
through captum's ``InputXGradient`` and is the reference it is tested against.

>>> import torch
>>> x = torch.rand(2, 3, 4, 4)
>>> a = get_method("gradient_x_input").attribute(lambda t: (t ** 2).flatten(1).sum(1), x)
>>> bool(torch.allclose(a, 2 * x * x))
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from depara_core.engine.graph import DEFAULT_METHOD
from depara_core.errors import DeparaError

__all__ = ["AttributionMethod", "register_method", "get_method", "method_names", "ScalarFunction", "DEFAULT_METHOD"]

ScalarFunction = Callable[[torch.Tensor], torch.Tensor]


class _AsModule(nn.Module):
    """Wraps a scalar function as a module (DeepLift and GuidedBackprop need one)."""

    def __init__(self, fn: ScalarFunction, inner: nn.Module | None) -> None:
        super().__init__()
        self.fn = fn
        self.inner = inner  # registered so that captum finds the model's activation modules

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


@dataclass(frozen=True)
class AttributionMethod:
    """A named attribution method with its parameters (part of every cache key)."""

    name: str
    description: str
    run: Callable[..., torch.Tensor] = field(compare=False, repr=False)
    defaults: tuple[tuple[str, object], ...] = ()
    needs_module: bool = False
    passes_param: str | None = None
    """The parameter that counts the forward and backward passes per probe (None: one pass)."""
    label: str = ""
    """A short name for display (e.g. "SmoothGrad")."""

    def params(self, **overrides: object) -> dict[str, object]:
        """The default parameters with ``overrides`` applied; unknown names are refused."""
        params = dict(self.defaults)
        unknown = set(overrides) - set(params)
        if unknown:
            raise DeparaError(
                f"attribution method {self.name!r} has no parameter(s) {', '.join(sorted(unknown))}",
                f"use {', '.join(params) or 'no parameters'}",
            )
        params.update(overrides)
        return params

    def passes(self, **params: object) -> int:
        """Forward and backward passes one probe costs (SmoothGrad's samples, Integrated Gradients' steps).

        >>> get_method("smoothgrad").passes(), get_method("integrated_gradients").passes(n_steps=32)
        (8, 32)
        """
        return int(self.params(**params)[self.passes_param]) if self.passes_param else 1

    def attribute(self, fn: ScalarFunction, x: torch.Tensor, module: nn.Module | None = None, **params: object) -> torch.Tensor:
        """Attribution of ``fn`` (per-sample scalars) with respect to ``x``."""
        forward = _AsModule(fn, module) if self.needs_module else fn
        return self.run(forward, x, **self.params(**params))


_REGISTRY: dict[str, AttributionMethod] = {}


def register_method(name: str, description: str, needs_module: bool = False, passes_param: str | None = None, label: str = "", **defaults: object):
    """Decorator: register ``run(forward_func, x, **params) -> attributions`` under ``name``
    (``passes_param``: the parameter that counts its passes per probe, for cost estimates)."""

    def wrap(run: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        _REGISTRY[name] = AttributionMethod(name, description, run, tuple(defaults.items()), needs_module, passes_param, label or name)
        return run

    return wrap


def get_method(name: str) -> AttributionMethod:
    """The registered method ``name``; an unknown name lists the known ones."""
    if name not in _REGISTRY:
        raise DeparaError(f"unknown attribution method {name!r}", f"choose one of: {', '.join(method_names())}")
    return _REGISTRY[name]


def method_names() -> list[str]:
    return list(_REGISTRY)


@register_method("gradient_x_input", "Gradient*Input (the paper's default, Eq. 3)", label="Gradient*Input")
def _gradient_x_input(f, x):
    from captum.attr import InputXGradient

    return InputXGradient(f).attribute(x)


@register_method("saliency", "gradient magnitude (Simonyan et al.)", abs=True, label="Saliency")
def _saliency(f, x, abs):
    from captum.attr import Saliency

    return Saliency(f).attribute(x, abs=abs)


@register_method("integrated_gradients", "Integrated Gradients from a black baseline", passes_param="n_steps", n_steps=16, internal_batch_size=16, label="Integrated Gradients")
def _integrated_gradients(f, x, n_steps, internal_batch_size):
    from captum.attr import IntegratedGradients

    return IntegratedGradients(f).attribute(x, baselines=torch.zeros_like(x), n_steps=n_steps, internal_batch_size=internal_batch_size)


@register_method("smoothgrad", "SmoothGrad of Gradient*Input (noise-averaged)", passes_param="nt_samples", nt_samples=8, stdevs=0.1, nt_samples_batch_size=8, seed=0, label="SmoothGrad")
def _smoothgrad(f, x, nt_samples, stdevs, nt_samples_batch_size, seed):
    from captum.attr import InputXGradient, NoiseTunnel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return NoiseTunnel(InputXGradient(f)).attribute(
            x, nt_type="smoothgrad", nt_samples=nt_samples, stdevs=stdevs, nt_samples_batch_size=nt_samples_batch_size
        )


@register_method("deeplift", "DeepLift (rescale rule) from a black baseline", needs_module=True, label="DeepLift")
def _deeplift(f, x):
    from captum.attr import DeepLift

    return DeepLift(f).attribute(x, baselines=torch.zeros_like(x))


@register_method("guided_backprop", "Guided Backpropagation", needs_module=True, label="Guided Backprop")
def _guided_backprop(f, x):
    from captum.attr import GuidedBackprop

    return GuidedBackprop(f).attribute(x)
