"""Capturing layer outputs in one forward pass, with hooks that live only inside a context manager.

>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
>>> with capture_layers(net, ["0"]) as run:
...     feats = run(torch.rand(5, 4))
>>> tuple(feats["0"].shape), len(net[0]._forward_hooks)
((5, 3), 0)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from depara_core.errors import GraphError, error_detail
from depara_core.models.spec import OUTPUT

__all__ = ["capture_layers", "count_calls", "model_output", "forward", "check_real", "check_captured", "layer_tensor"]


class _StopForward(Exception):
    """Raised by a hook once every wanted layer has been seen, to skip the rest of the network."""


@contextmanager
def capture_layers(
    module: nn.Module, names: Sequence[str], calls: dict[str, int] | None = None
) -> Iterator[Callable[[torch.Tensor], dict[str, torch.Tensor]]]:
    """Yield ``run(x) -> {name: output}`` capturing the outputs of the named modules.

    ``calls`` (from :func:`count_calls`) says how often each module runs per forward; with it, the
    forward stops right after the last call of the deepest wanted module. A module called several
    times yields its last output. Each hooked output is replaced downstream by a clone, so that
    in-place operations later in the network cannot overwrite what was captured.
    """
    wanted = [n for n in names if n != OUTPUT]
    modules = dict(module.named_modules())
    seen: dict[str, int] = {}
    out: dict[str, torch.Tensor] = {}
    stop_early = calls is not None and OUTPUT not in names

    def make_hook(name: str):
        def hook(_mod: nn.Module, _inp, output):
            output = out[name] = layer_tensor(output, name)
            seen[name] = seen.get(name, 0) + 1
            if stop_early and all(seen.get(n, 0) >= calls.get(n, 1) for n in wanted):
                raise _StopForward
            return output.clone()

        return hook

    handles = [modules[n].register_forward_hook(make_hook(n)) for n in dict.fromkeys(wanted)]

    def run(x: torch.Tensor) -> dict[str, torch.Tensor]:
        out.clear()
        seen.clear()
        try:
            result = forward(module, x)
            if OUTPUT in names:
                out[OUTPUT] = check_real(model_output(result), "the model's output")
        except _StopForward:
            pass
        return check_captured(dict(out), names, x.shape[0])

    try:
        yield run
    finally:
        for h in handles:
            h.remove()


def layer_tensor(output: object, name: str) -> torch.Tensor:
    """The tensor a layer's output stands for (the first of a tuple or list), checked to be real."""
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise GraphError(f"layer {name!r} returns {type(output).__name__}, not a tensor", "choose a layer whose output is a tensor")
    return check_real(output, f"layer {name!r}")


def check_captured(out: dict[str, torch.Tensor], names: Sequence[str], batch: int) -> dict[str, torch.Tensor]:
    """``out`` if it holds every layer in ``names`` with one row per probe of a batch of ``batch``."""
    mixed = [n for n, t in out.items() if t.ndim == 0 or t.shape[0] != batch]
    if mixed:
        n0 = mixed[0]
        raise GraphError(
            f"layer {n0!r} gave {out[n0].shape[0] if out[n0].ndim else 0} row(s) for a batch of {batch} probes: the model mixes or drops the batch",
            "make every layer keep one row per probe (batch dimension first)",
        )
    missing = [n for n in names if n not in out]
    if missing:
        raise GraphError(f"layer(s) {', '.join(missing)} did not run in the forward pass", "choose layers the model's forward uses")
    return out


def forward(module: nn.Module, x: torch.Tensor) -> object:
    """``module(x)``, with what a user's model can do wrong turned into a :class:`GraphError`: an
    exception (named, with its message), an exit or a keyboard interrupt raised from its code."""
    try:
        return module(x)
    except (_StopForward, GraphError):
        raise
    except (SystemExit, KeyboardInterrupt) as exc:  # a forward that exits would end the program (or the server)
        what = f"called exit ({exc.code!r})" if isinstance(exc, SystemExit) else "raised KeyboardInterrupt"
        raise GraphError(f"the model's forward {what}", "fix the model's forward; it must return a tensor") from None
    except Exception as exc:  # noqa: BLE001 - any failure of a user's forward becomes a message
        raise GraphError(
            f"the model's forward failed on a batch of shape {tuple(x.shape)}: {type(exc).__name__}: {error_detail(exc)}",
            "check that the model accepts RGB images of this size (set the model's input size), or fix its forward",
        ) from None


def check_real(t: torch.Tensor, what: str) -> torch.Tensor:
    """``t`` if it holds real floating-point values; complex or integer outputs have no gradient DEPARA can use."""
    if t.is_complex() or not t.is_floating_point():
        raise GraphError(f"{what} holds {t.dtype} values; DEPARA needs real floating-point features", "return a real float tensor (e.g. .abs() or .float())")
    return t


def model_output(result: object) -> torch.Tensor:
    """The tensor a model's output stands for: the first of a tuple or list, the first value of a dict."""
    if isinstance(result, (tuple, list)) and result:
        result = result[0]
    if isinstance(result, dict) and result:
        result = next(iter(result.values()))
    if not isinstance(result, torch.Tensor):
        raise GraphError(f"the model's output is a {type(result).__name__}, not a tensor", "return a tensor (or a tuple/dict whose first entry is one) from forward")
    return result


def count_calls(
    module: nn.Module, names: Sequence[str], x: torch.Tensor
) -> tuple[dict[str, int], dict[str, tuple[int, ...]], int]:
    """Run one forward on ``x`` (one probe) and return, per named module, its call count and output
    shape, and the bytes that all leaf modules' outputs take (an estimate of activation memory)."""
    modules = dict(module.named_modules())
    counts: dict[str, int] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    act = [0]

    def leaf_hook(_mod, _inp, output):
        if isinstance(output, torch.Tensor):
            act[0] += output.numel() * output.element_size()

    def make_hook(name: str):
        def hook(_mod, _inp, output):
            if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
                output = output[0]
            counts[name] = counts.get(name, 0) + 1
            if isinstance(output, torch.Tensor):
                shapes[name] = tuple(output.shape[1:])

        return hook

    wanted = [n for n in dict.fromkeys(names) if n != OUTPUT]
    handles = [modules[n].register_forward_hook(make_hook(n)) for n in wanted]
    if not isinstance(module, torch.jit.ScriptModule):  # scripted modules take no hooks: only their output is measured
        handles += [m.register_forward_hook(leaf_hook) for m in modules.values() if not list(m.children())]
    try:
        with torch.no_grad():
            result = forward(module, x)
    finally:
        for h in handles:
            h.remove()
    if OUTPUT in names:
        out = model_output(result)
        counts[OUTPUT], shapes[OUTPUT] = 1, tuple(out.shape[1:])
        act[0] = max(act[0], out.numel() * out.element_size())
    return counts, shapes, max(act[0] // max(x.shape[0], 1), x[0].numel() * x.element_size())
