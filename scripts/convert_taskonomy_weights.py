#!/usr/bin/env python
"""Convert downloaded taskonomy encoder weights (visualpriors ``*_encoder-<sha256>.pth``) to safetensors.

DEPARA Explorer reads weights with ``torch.load(weights_only=True)``, which runs no code. A file
that this safe reader refuses (a pickle holding objects other than tensors and plain containers)
can be converted once, here, into ``<same name>.safetensors``, which the taskonomy zoo then
uses in preference to the ``.pth``. Converting such a file means unpickling it, which can run
code: do it only with ``--allow-pickle``, only on files you downloaded yourself from the
visualpriors URLs and trust.

Each file's encoder state_dict (the ``state_dict`` entry) is checked against the encoder
architecture, strictly, before it is written.

Usage (from the repository root, with the project's virtualenv):

    .venv/bin/python scripts/convert_taskonomy_weights.py ~/.cache/torch/hub/checkpoints/*_encoder-*.pth
    .venv/bin/python scripts/convert_taskonomy_weights.py --allow-pickle --out /data/taskonomy FILE...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch


def read_state(path: Path, allow_pickle: bool) -> dict[str, torch.Tensor]:
    """The encoder state_dict in ``path``: safely if possible, by unpickling if allowed."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if not allow_pickle:
            raise SystemExit(
                f"{path.name}: the safe reader refuses it ({type(exc).__name__}: {str(exc)[:200]}).\n"
                "If you downloaded this file yourself from the visualpriors URL and trust it, re-run with "
                "--allow-pickle (unpickling can run code)."
            ) from None
        obj = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise SystemExit(f"{path.name}: holds a {type(obj).__name__}, not a state_dict")
    state = {str(k).removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    dropped = sorted(str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor))
    if dropped:
        print(f"{path.name}: left out {len(dropped)} non-tensor entries: {', '.join(dropped[:8])}", file=sys.stderr)
    return state


def convert(path: Path, out_dir: Path | None, allow_pickle: bool) -> Path:
    from safetensors.torch import save_file

    from depara_core.models.checkpoints import apply_checkpoint
    from depara_core.zoos.taskonomy import new_encoder, prepare_state

    state = prepare_state(read_state(path, allow_pickle))
    apply_checkpoint(new_encoder(), state, f"{path.name}")  # raises if it is not a taskonomy encoder
    target = (out_dir or path.parent) / f"{path.stem}.safetensors"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".safetensors.tmp")
    save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, str(tmp), metadata={"source": path.name})
    tmp.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="downloaded *_encoder-*.pth files")
    parser.add_argument("--out", type=Path, help="folder for the .safetensors files (default: next to each input)")
    parser.add_argument("--allow-pickle", action="store_true", help="unpickle files the safe reader refuses (trusted files only)")
    args = parser.parse_args(argv)
    failed = 0
    for path in args.files:
        try:
            print(convert(path.expanduser(), args.out, args.allow_pickle))
        except SystemExit as exc:
            print(exc, file=sys.stderr)
            failed += 1
        except Exception as exc:  # report every file, then fail
            print(f"{path.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
