"""Checks of a model's behaviour before its graphs are computed: DEPARA assumes that a probe's
features depend on that probe alone, and are the same every time.

A model that samples (dropout left on, noise) or mixes the probes of a batch (batch statistics,
attention across the batch) still yields numbers, silently wrong ones. :func:`behaviour_notes`
runs the model three times on two probes and says, in words, which assumption fails.

>>> import torch
>>> behaviour_notes(torch.nn.Linear(4, 2), torch.rand(2, 4))
[]
>>> class Noisy(torch.nn.Module):
...     def forward(self, x):
...         return x + torch.rand_like(x)
>>> behaviour_notes(Noisy(), torch.rand(2, 4))[0].startswith("not deterministic")
True
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from depara_core.engine.capture import check_real, forward, model_output

__all__ = ["behaviour_notes", "ModelBehaviourWarning", "TOLERANCE"]

TOLERANCE = 1e-3
"""Largest difference, relative to the output's largest magnitude, counted as numerical noise."""


class ModelBehaviourWarning(UserWarning):
    """The model is not deterministic, or a probe's output depends on the rest of its batch."""


def _differ(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = float(torch.maximum(a.abs().max(), b.abs().max()).clamp_min(1e-12))
    return float((a - b).abs().max()) / scale


def behaviour_notes(module: nn.Module, x: torch.Tensor, label: str = "the model") -> list[str]:
    """Notes (each also a :class:`ModelBehaviourWarning`) on ``module``'s output for the first two
    rows of ``x``: two runs must agree, and the first row alone must give what it gave in the batch."""
    with torch.no_grad():
        pair = x[:2].detach()
        first = check_real(model_output(forward(module, pair)), f"the output of {label}").float()
        again = model_output(forward(module, pair)).float()
        alone = model_output(forward(module, pair[:1])).float()
    notes: list[str] = []
    if first.ndim == 0 or first.shape[0] != pair.shape[0] or alone.ndim == 0:
        return notes  # no row per probe: the capture names that error with the layer's name
    if first.shape != again.shape or _differ(first, again) > TOLERANCE:
        notes.append(
            f"not deterministic: two forward passes of {label} on the same probes differ"
            f"{f' by {_differ(first, again):.1%} of its output' if first.shape == again.shape else ' in shape'}"
            " (dropout, noise or sampling in eval mode); its graphs change from run to run"
        )
    elif first.shape[1:] != alone.shape[1:] or _differ(first[:1], alone) > TOLERANCE:
        notes.append(
            f"batch-dependent: the output of {label} for a probe changes with the other probes in its batch"
            " (batch statistics or attention across the batch); its graphs depend on the batch size"
        )
    for note in notes:
        warnings.warn(note, ModelBehaviourWarning, stacklevel=3)
    return notes
