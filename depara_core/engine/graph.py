"""What the engine makes: graph options, the Graph of one layer, progress and cancellation."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from depara_core.engine.gram import edges_from_gram
from depara_core.errors import DeparaError, GraphError

__all__ = ['DEFAULT_METHOD', 'PRECISIONS', 'INPUT_SPACES', 'Progress', 'DegenerateGraphWarning', 'Cancelled', 'GraphOptions', 'Graph']


DEFAULT_METHOD = "gradient_x_input"
"""Gradient*Input (Eq. 3), computed by the engine itself; other methods come from the registry."""
PRECISIONS = ("fp32", "bf16", "tf32")
"""The arithmetics of :attr:`GraphOptions.precision`, reference first."""
INPUT_SPACES = ("model", "pixels")
"""What "Input" in Gradient*Input may be (see :attr:`GraphOptions.input_space`)."""


def _method_params(method: str, params: tuple[tuple[str, object], ...]) -> dict[str, object]:
    # The registry (and torch) is imported only for other methods, so that graph types and the
    # default options need no torch (figures, reports). Gradient*Input takes no parameters.
    if method == DEFAULT_METHOD and not params:
        return {}
    from depara_core.engine.attribution import get_method

    return get_method(method).params(**dict(params))


Progress = Callable[[int, int, str], "bool | None"]
"""``progress(done, total, message)``; returning False stops the computation (:class:`Cancelled`)."""


class DegenerateGraphWarning(UserWarning):
    """Some probes have all-zero attribution maps or features at a layer (cosine taken as 0)."""


class Cancelled(DeparaError):
    """The progress callback asked to stop; layers finished before are kept (and cached)."""


@dataclass(frozen=True)
class GraphOptions:
    """How graphs are computed. The defaults are the paper's definitions.

    Reference-compatible choices (the original code's): ``objective="mean"`` (gradient of
    mean(F)) or ``"sum"``; ``node_reduce="channel_mean"`` or ``"channel_abs_mean"``;
    ``center_edges=True`` (features centred over probes before cosine edges).

    ``feature_sketch_dim`` > 0 stores each probe's features as a count sketch of that many
    dimensions (a random projection that keeps inner products) instead of exactly: less memory for
    very large layers, at a small error on the edges (measured in ``benchmarks/bench_memory.py`` and
    the tests). Off by default: without it the engine spills large layers to disk and stays exact.

    ``precision`` chooses the arithmetic of the forward and backward passes: ``"fp32"`` (default;
    IEEE float32 also in cuDNN convolutions, where torch's own default would use TF32),
    ``"bf16"`` (autocast to bfloat16; norms and Gram matrices still accumulate in float32/float64)
    or ``"tf32"`` (TensorFloat-32 matrix products and convolutions on CUDA; the same as fp32 on a CPU). Their error
    on s_V and s_E against fp32 is measured in the tests and ``benchmarks/bench_gpu.py`` (on an H200,
    bf16 moved s_V by at most 6e-4 and s_E by 2e-3 to 1e-2; on a CPU s_V by up to 1.4e-2).
    """

    method: str = DEFAULT_METHOD
    method_params: tuple[tuple[str, object], ...] = ()
    objective: Literal["sqnorm", "mean", "sum"] = "sqnorm"
    node_reduce: Literal["none", "channel_mean", "channel_abs_mean"] = "none"
    center_edges: bool = False
    node_storage: Literal["auto", "float16", "sketch"] = "auto"
    sketch_dim: int = 16384
    sketch_above: int = 2**27
    feature_sketch_dim: int = 0
    precision: Literal["fp32", "bf16", "tf32"] = "fp32"
    compile: bool = False
    """Run the forward and backward passes through ``torch.compile``, one compiled segment per captured
    layer (:mod:`~depara_core.engine.compiled`; Gradient*Input only). Compiling takes seconds per
    segment, once per model, layer group and batch size; it pays off on a GPU, where kernels fuse. Its
    error on s_V and s_E against eager fp32 is measured in the tests and ``benchmarks/bench_gpu.py``."""
    input_space: Literal["model", "pixels"] = "model"
    """What "Input" in Gradient*Input means: ``"model"`` (the paper's, each network's own preprocessed
    input, so that the baseline is whatever zero means after its normalisation: black, grey or the
    mean colour) or ``"pixels"`` (the probes' pixels in [0, 1], a black baseline shared by every
    model; see :meth:`~depara_core.models.preprocess.Preprocess.pixel_attribution`)."""

    def __post_init__(self) -> None:
        _method_params(self.method, self.method_params)
        if self.input_space not in INPUT_SPACES:
            raise DeparaError(f"input_space={self.input_space!r} is not supported", "use model or pixels")
        if self.input_space == "pixels" and self.method != DEFAULT_METHOD:
            raise DeparaError(f"input space 'pixels' is defined for Gradient*Input only, not {self.method!r}", "use the default method, or input space 'model'")
        if self.compile not in (True, False):
            raise DeparaError(f"compile={self.compile!r} is not a yes/no choice", "use True or False")
        if self.compile and self.method != DEFAULT_METHOD:
            raise DeparaError(f"the compile option is defined for Gradient*Input only, not {self.method!r}", "use the default method, or turn compile off")
        if not isinstance(self.feature_sketch_dim, int) or self.feature_sketch_dim < 0 or 0 < self.feature_sketch_dim < 256:
            raise DeparaError(f"feature_sketch_dim={self.feature_sketch_dim!r} is not supported", "use 0 (exact features) or a dimension of 256 or more, e.g. 16384")
        for name, value, allowed in (
            ("objective", self.objective, ("sqnorm", "mean", "sum")),
            ("node_reduce", self.node_reduce, ("none", "channel_mean", "channel_abs_mean")),
            ("node_storage", self.node_storage, ("auto", "float16", "sketch")),
            ("precision", self.precision, PRECISIONS),
        ):
            if value not in allowed:
                raise DeparaError(f"{name}={value!r} is not supported", f"use one of {', '.join(allowed)}")

    def key(self) -> dict:
        """Everything that changes the stored graph (the cache key part)."""
        return {
            "method": self.method,
            "method_params": sorted((k, repr(v)) for k, v in _method_params(self.method, self.method_params).items()),
            "objective": self.objective,
            "node_reduce": self.node_reduce,
            "node_storage": self.node_storage,
            "sketch_dim": self.sketch_dim,
            "sketch_above": self.sketch_above,
            # absent at their defaults, so that keys written before these options existed stay valid
            **({"feature_sketch_dim": self.feature_sketch_dim} if self.feature_sketch_dim else {}),
            **({"precision": self.precision} if self.precision != "fp32" else {}),
            **({"input_space": self.input_space} if self.input_space != "model" else {}),
            **({"compile": True} if self.compile else {}),  # fused kernels round differently
        }

    def terms_key(self) -> dict:
        """The options that change similarity terms computed from stored graphs (not the graphs)."""
        return {"center_edges": self.center_edges}

    def stored_feature_dim(self, feature_dim: int) -> int:
        """Dimensions stored per probe for a layer of ``feature_dim`` features (sketched or exact)."""
        return min(feature_dim, self.feature_sketch_dim) if self.feature_sketch_dim else feature_dim

    def stores_sketch(self, n: int, node_dim: int) -> bool:
        return self.node_storage == "sketch" or (self.node_storage == "auto" and n * node_dim > self.sketch_above)


@dataclass(frozen=True)
class Graph:
    """One layer's DEPARA over a probe set.

    ``nodes`` are the attribution maps, each scaled to unit norm (float16), or their count sketch
    (float32, ``sketched``); ``node_norms`` the norms before scaling. ``gram`` is the raw feature
    Gram matrix and ``feature_sums`` the per-probe sums of features (float64): the edges, RSA and
    CKA all derive from these two.
    """

    model: str
    layer: str
    probe_ids: tuple[str, ...]
    probe_digest: str
    nodes: np.ndarray = field(repr=False)
    node_norms: np.ndarray = field(repr=False)
    node_shape: tuple[int, ...]
    gram: np.ndarray = field(repr=False)
    feature_sums: np.ndarray = field(repr=False)
    feature_dim: int
    options: GraphOptions = GraphOptions()
    sketched: bool = False
    model_digest: str = ""

    def __len__(self) -> int:
        return len(self.probe_ids)

    notes: tuple[str, ...] = ()

    @functools.cached_property
    def edges(self) -> np.ndarray:
        """(n, n) cosine similarities of the features (Eq. 4); centred over probes if so configured.

        A probe whose features are all zero has no direction: its edges count as 0 (see ``notes``).
        """
        return edges_from_gram(self.gram, self.options.center_edges)

    def on_probes(self, indices) -> Graph:
        """This graph restricted to the probes at ``indices`` (in that order): the same nodes and Gram
        entries, so that edges and every similarity are those of a graph computed on those probes
        alone. Its probe digest names the parent's probes and the indices."""
        import hashlib

        idx = np.asarray(list(indices), dtype=np.intp)
        if idx.size < 3 or len(set(idx.tolist())) != idx.size or idx.min() < 0 or idx.max() >= len(self):
            raise GraphError(f"cannot restrict a graph of {len(self)} probes to indices {idx.tolist()[:8]}", "give at least 3 distinct probe indices")
        digest = hashlib.sha256(f"{self.probe_digest}:{idx.tolist()}".encode()).hexdigest()[:32]
        return dataclasses.replace(
            self, probe_ids=tuple(self.probe_ids[i] for i in idx), probe_digest=digest, nodes=self.nodes[idx], node_norms=self.node_norms[idx],
            gram=self.gram[np.ix_(idx, idx)], feature_sums=self.feature_sums[idx],
        )  # fmt: skip

    def node_map(self, index: int) -> np.ndarray:
        """The unit-norm attribution map of probe ``index`` in its original shape (unsketched graphs)."""
        if self.sketched:
            raise GraphError(f"graph of layer {self.layer!r} stores sketched nodes", "recompute with node_storage='float16' to view maps")
        return self.nodes[index].astype(np.float32).reshape(self.node_shape)
