"""Reading weights safely (safetensors or ``torch.load(weights_only=True)``) and loading them strictly."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from depara_core.errors import ModelError

__all__ = ['load_checkpoint', 'as_float32', 'apply_checkpoint']


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


def as_float32(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with its floating tensors cast to float32 (integer buffers kept), for weights stored
    in float16 to halve the package's size.

    >>> as_float32({"w": torch.ones(2, dtype=torch.float16), "n": torch.tensor(3)})["w"].dtype
    torch.float32
    """
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


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
    _check_values(own, state, label)
    module.load_state_dict(state, strict=True)
    return module


_REAL_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _check_values(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], label: str) -> None:
    """Refuse what ``load_state_dict`` would silently cast or keep: complex, float8 or integer values
    for floating-point weights (the imaginary part dropped, values rounded), and NaN or infinities."""
    for key, value in state.items():
        if own[key].is_floating_point() and value.dtype not in _REAL_FLOATS:
            raise ModelError(
                f"{label} stores {key!r} as {str(value.dtype).removeprefix('torch.')}, which cannot stand for the model's {str(own[key].dtype).removeprefix('torch.')} weights",
                "save the weights as float32 (or float16/bfloat16/float64)",
            )
        if value.is_floating_point() and value.numel() and not bool(torch.isfinite(value).all()):
            raise ModelError(f"{label} holds NaN or infinite values in {key!r}", "use a checkpoint saved before training diverged")
