"""``torch.compile`` of the forward, split at the captured layers (the ``compile`` graph option).

Compiling a whole network gives one compiled backward, which every layer's vector-Jacobian product
would then run from the deepest layer down (measured: 5x slower than eager on VGG-11). So the
network is traced with torch.fx (torchvision's feature extractor, which names nodes by module
path), split into one segment per captured layer, and each segment is compiled on its own: the VJP
of layer k runs the compiled backwards of segments 1..k only, as eager mode does.

>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2)).eval()
>>> split = split_at_layers(net, ["1", "2"])
>>> [name for name, _ in split.named_children()]
['submod_0', 'submod_1']
>>> x = torch.rand(5, 4)
>>> bool(torch.equal(split(x)["2"], net(x)))
True
"""

from __future__ import annotations

import contextlib
import sys
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import fx, nn

from depara_core.engine.capture import capture_layers, check_captured, layer_tensor
from depara_core.errors import GraphError, error_detail
from depara_core.models.spec import OUTPUT

__all__ = ["compilable", "compiled_layers", "split_at_layers"]

_COMPILED: weakref.WeakKeyDictionary[nn.Module, dict] = weakref.WeakKeyDictionary()
"""Compiled segments per model and (layers, batch size): compiling takes seconds per segment, so a
model's later runs on the same layers reuse them."""

_HINT = "run without the compile option (--compile); the results are the same to rounding"


def compilable(names: Sequence[str], calls: dict[str, int]) -> bool:
    """Whether a group of layers can run through compiled segments: named modules called once per
    forward (the model's output and repeated calls stay with the eager hooks)."""
    return OUTPUT not in names and all(calls.get(n, 1) == 1 for n in names)


class _Root(nn.Module):
    """The model as the one child of a plain module: the feature extractor switches its root between
    train and eval mode with ``train()``, which some models override with another signature
    (visualpriors' TaskonomyEncoder takes a required argument); ``nn.Module.train`` passes it on."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.training = inner.training

    def forward(self, x: torch.Tensor) -> object:
        return self.inner(x)


def _timm_leaves() -> dict:
    """timm's own untraceable modules and functions (its "SAME" padding computes pads from shapes),
    to keep whole as timm's feature extraction does, where timm is loaded; otherwise none."""
    timm_layers = sys.modules.get("timm.layers")
    if timm_layers is None or not hasattr(timm_layers, "get_notrace_modules"):
        return {}
    return {"leaf_modules": timm_layers.get_notrace_modules(), "autowrap_functions": timm_layers.get_notrace_functions()}


def split_at_layers(module: nn.Module, names: Sequence[str]) -> fx.GraphModule:
    """``module`` traced and split into one segment per layer in ``names`` (in the order the forward
    reaches them), returning ``{name: output}``; nothing after the deepest layer runs. Each captured
    output goes on downstream as a clone, so that an in-place operation later cannot change it."""
    from torch.fx.passes.split_module import split_module
    from torchvision.models.feature_extraction import create_feature_extractor

    names = list(dict.fromkeys(names))
    root = _Root(module)
    modes = {m: m.training for m in module.modules()}  # tracing visits train mode: every module's mode comes back as it was
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the model's own warnings about mode switches and tracing
            traced = create_feature_extractor(root, {f"inner.{n}": n for n in names}, tracer_kwargs=_timm_leaves())
    except Exception as exc:  # noqa: BLE001 - any tracing failure of a user's model becomes a message
        raise GraphError(f"the model cannot be traced for torch.compile (torch.fx): {type(exc).__name__}: {error_detail(exc)}", _HINT) from None
    finally:
        for m, training in modes.items():
            m.training = training
    graph = traced.graph
    (output,) = [node for node in graph.nodes if node.op == "output"]
    captured = {node: name for name, node in output.args[0].items()}
    for node in list(graph.nodes):
        users = [u for u in node.users if u.op != "output"]
        if node in captured and users:
            with graph.inserting_after(node):
                copy = graph.call_method("clone", (node,))
            for user in users:
                user.replace_input_with(node, copy)
    traced.recompile()
    segment, seen = {}, 0
    for node in graph.nodes:  # topological order: a segment only reads from earlier ones
        if node.op not in ("placeholder", "output"):
            segment[node] = seen
            seen += node in captured
    return split_module(traced, root, lambda node: segment[node], keep_original_order=True)


def _check_trace(module: nn.Module, split: fx.GraphModule, names: tuple[str, ...], sample: torch.Tensor) -> None:
    """Refuse a trace that computes other values than the model: torch.fx drops, for instance, an
    in-place ``t.add_(u)`` whose result is unused, and bakes in branches taken on the traced input."""
    with torch.no_grad(), torch.autocast(sample.device.type, enabled=False):
        with capture_layers(module, names, dict.fromkeys(names, 1)) as run:  # the segments share these modules: run them after
            want = run(sample)
        got = split(sample)
    for name in names:
        a, b = want[name].float(), layer_tensor(got[name], name).float()
        if a.shape != b.shape or not torch.allclose(a, b, rtol=1e-4, atol=1e-5 * float(a.abs().max().clamp_min(1e-30))):
            raise GraphError(
                f"traced for torch.compile, the model computes other values at layer {name!r} than it does itself "
                "(torch.fx drops in-place operations whose result is unused, and fixes branches taken on values)",
                _HINT,
            )


def _compiled(module: nn.Module, names: tuple[str, ...], batch: int, sample: torch.Tensor) -> fx.GraphModule:
    per_model = _COMPILED.setdefault(module, {})
    key = (names, batch)
    if key not in per_model:
        split = split_at_layers(module, names)
        _check_trace(module, split, names, sample.detach())
        for child, segment in list(split.named_children()):
            # one shape per segment (the runner pads the last batch): no recompilation for dynamic shapes
            setattr(split, child, torch.compile(segment, dynamic=False))
        per_model[key] = split
    return per_model[key]


@contextlib.contextmanager
def compiled_layers(module: nn.Module, names: Sequence[str], batch: int) -> Iterator[Callable[[torch.Tensor], dict[str, torch.Tensor]]]:
    """Yield ``run(x) -> {name: output}`` as :func:`~depara_core.engine.capture.capture_layers`
    does, through compiled segments (:func:`split_at_layers`) for batches of at most ``batch``
    probes. A smaller batch is padded with copies of its last probe, whose outputs are dropped (per
    probe, in eval mode, they change nothing), so that each segment compiles once. Before compiling,
    the trace is checked against the model itself on the first batch."""
    import torch._functorch.config as functorch_config

    def run(x: torch.Tensor) -> dict[str, torch.Tensor]:
        split = _compiled(module, tuple(dict.fromkeys(names)), batch, x)
        rows = x.shape[0]
        if rows > batch:
            raise GraphError(f"a batch of {rows} probes reached compiled segments made for {batch}", "use the batch size the plan chose")
        padded = x
        if rows < batch:  # the same shape and memory layout as a full batch: the same compiled code
            layout = torch.channels_last if x.ndim == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
            padded = torch.cat([x, x[-1:].expand(batch - rows, *x.shape[1:])]).contiguous(memory_format=layout)
        # Each layer's VJP keeps the graph for the next one (retain_graph), which compiled backwards
        # with donated buffers refuse: buffers are not donated here.
        with functorch_config.patch(donated_buffer=False):
            try:
                out = split(padded)
            except GraphError:
                raise
            except Exception as exc:  # noqa: BLE001 - a compiler failure becomes a message
                raise GraphError(f"torch.compile failed on the model's forward: {type(exc).__name__}: {error_detail(exc)}", _HINT) from None
        out = {name: layer_tensor(t, name)[:rows] for name, t in out.items()}
        return check_captured(out, names, rows)

    yield run
