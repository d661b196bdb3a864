"""Named conventions: the paper's definitions (the default) and the original code's, for reproduction.

A :class:`Preset` fixes everything in which the two differ: the graph options (attribution
objective, node reduction, centred edges), the probe clipping applied before every model's own
preprocessing, and how s_V and s_E are weighted (s = node_scale·s_V + λ·s_E).

>>> p = PRESETS["paper code"]
>>> p.options.center_edges, p.input_clip, p.node_scale, p.lam
(True, (0.1, 0.9), 0.001, 0.25)
>>> PRESETS["paper"].options == GraphOptions()
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from depara_core.engine.graph import GraphOptions
from depara_core.errors import DeparaError
from depara_core.models.spec import LoadedModel, ModelSpec

__all__ = ["Preset", "PRESETS", "DEFAULT_PRESET", "get_preset", "with_input_clip"]


@dataclass(frozen=True)
class Preset:
    """One set of DEPARA conventions."""

    name: str
    description: str
    options: GraphOptions
    input_clip: tuple[float, float] | None
    node_scale: float
    lam: float

    def models(self, specs: Sequence[ModelSpec]) -> list[ModelSpec]:
        """``specs`` with this preset's input clipping (the models' own preprocessing otherwise unchanged)."""
        return [with_input_clip(s, self.input_clip) for s in specs]

    def apply(self, model: LoadedModel) -> LoadedModel:
        """``model`` with this preset's input clipping (the same module and weights)."""
        spec = with_input_clip(model.spec, self.input_clip)
        return model if spec is model.spec else dataclasses.replace(model, spec=spec)


def with_input_clip(spec: ModelSpec, clip: tuple[float, float] | None) -> ModelSpec:
    """``spec`` whose preprocessing clips probe values (in [0, 1], after resizing) to ``clip``."""
    if clip is None:
        return spec
    return dataclasses.replace(spec, preprocess=spec.preprocess.replace(clip=tuple(clip)))


PRESETS: dict[str, Preset] = {
    "paper": Preset(
        "paper",
        "The paper's definitions (Eq. 3-6): nodes x·∂‖F‖²/∂x, raw cosine edges, s = s_V + λ·s_E with λ = 1.",
        GraphOptions(),
        None,
        1.0,
        1.0,
    ),
    # The original taskonomy code (zju-vipa/TransferbilityFromAttributionMaps): the gradient of the
    # signed sum of encoder features, the signed mean over RGB, features centred over probes before
    # cosine edges, images loaded with taskonomy's "low_sat" clipping to [0.1, 0.9], and
    # s = s_V / 1000 + 0.25·s_E (its λ for taskonomy probes).
    "paper code": Preset(
        "paper code",
        "The original code's conventions: gradient of sum(F), channel-mean nodes, centred edges, "
        "probes clipped to [0.1, 0.9], s = s_V/1000 + 0.25·s_E.",
        GraphOptions(objective="sum", node_reduce="channel_mean", center_edges=True),
        (0.1, 0.9),
        1e-3,
        0.25,
    ),
}
"""The presets by name; ``"paper"`` is the default."""

DEFAULT_PRESET = "paper"


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (``paper`` or ``paper code``; a hyphen for the space is accepted)."""
    key = name.strip().replace("-", " ").replace("_", " ")
    if key not in PRESETS:
        raise DeparaError(f"there is no preset {name!r}", f"use one of {', '.join(repr(p) for p in PRESETS)}")
    return PRESETS[key]
