"""Command line: ``python -m depara_core {graphs,similarity,layers,evaluate,probes}``.

>>> parser = build_parser()
>>> parser.parse_args(["similarity", "--model", "a=m:f", "--model", "b=m:g", "--probes", "p", "--layer", "output"]).layer
'output'
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from depara_core.cache import GraphCache
from depara_core.compare.terms import ALL_METHODS, LAMBDA_METHODS, SimilarityTerms
from depara_core.compare.workflows import select_layers, zoo_terms
from depara_core.distributed.ray_runner import GraphJob, fill_cache, needs_cache
from depara_core.engine.graph import INPUT_SPACES, GraphOptions
from depara_core.engine.plan import parse_size
from depara_core.engine.run import compute_graphs
from depara_core.errors import DeparaError
from depara_core.evaluation.ground_truth import GroundTruth
from depara_core.evaluation.ranking import evaluate, random_baseline
from depara_core.evaluation.taskonomy import taskonomy_ground_truth
from depara_core.models.sources import parse_source
from depara_core.models.spec import LoadedModel, ModelSpec, load_model
from depara_core.presets import DEFAULT_PRESET, PRESETS, get_preset
from depara_core.probes.probeset import ProbeSet
from depara_core.probes.registry import load_builtin

__all__ = ["main", "build_parser", "apply_preset", "model_from_arg", "probes_from_arg"]


# ---- argument helpers ----------------------------------------------------------------------
def model_from_arg(arg: str, args: argparse.Namespace | None = None) -> ModelSpec:
    """A model source (see :mod:`depara_core.models.sources`), with the preprocessing overrides of ``args``."""
    spec = parse_source(arg)
    overrides = _preprocess_overrides(args) if args is not None else {}
    return dataclasses.replace(spec, preprocess=spec.preprocess.replace(**overrides)) if overrides else spec


def _preprocess_overrides(args: argparse.Namespace) -> dict:
    given = {
        "size": tuple(args.input_size) if getattr(args, "input_size", None) else None,
        "resize": getattr(args, "resize", None),
        "mean": tuple(args.mean) if getattr(args, "mean", None) else None,
        "std": tuple(args.std) if getattr(args, "std", None) else None,
        "interpolation": getattr(args, "interpolation", None),
        "clip": tuple(args.input_clip) if getattr(args, "input_clip", None) else None,
    }
    return {k: v for k, v in given.items() if v is not None}


def probes_from_arg(arg: str, size: Sequence[int] | None = None, count: int | None = None) -> ProbeSet:
    """A folder, a .zip file, or ``builtin:NAME``."""
    sz = tuple(size) if size else None
    if not arg or not arg.strip():
        raise DeparaError("--probes is empty", "give a folder of images, a .zip, or builtin:NAME (python -m depara_core probes lists them)")
    if arg.startswith("builtin:"):
        probes = load_builtin(arg[len("builtin:") :], count)
        return probes.resized(sz) if sz else probes
    probes = ProbeSet.from_path(arg, size=sz)
    return probes.subset(count) if count else probes


def _number(kind: type, low: float | None = None, high: float | None = None, strict_low: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite ``kind`` within [low, high] (``strict_low``: above low), said plainly otherwise."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if low is not None and (value <= low if strict_low else value < low):
            raise argparse.ArgumentTypeError(f"{text} must be {'above' if strict_low else 'at least'} {low:g}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{text} must be at most {high:g}")
        return value

    return parse


def parse_bytes(text: str) -> int:
    """:func:`~depara_core.engine.plan.parse_size` as an argparse type.

    >>> parse_bytes("512MiB"), parse_bytes("2g")
    (536870912, 2147483648)
    """
    try:
        return parse_size(text)
    except DeparaError as exc:
        raise argparse.ArgumentTypeError(exc.problem) from None


class _Bar:
    """A tqdm progress bar driven by the engine's progress callback."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.bar = enabled, None

    def __call__(self, done: int, total: int, message: str) -> None:
        if not self.enabled:
            return
        if self.bar is None or self.bar.total != total:
            from tqdm import tqdm

            self.close()
            self.bar = tqdm(total=total, file=sys.stderr, unit="probe", leave=False)
        self.bar.n = done
        self.bar.set_description(message[:60], refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _options(args: argparse.Namespace) -> GraphOptions:
    return GraphOptions(
        method=args.method,
        objective=args.objective,
        node_reduce=args.node_reduce,
        center_edges=args.center_edges,
        feature_sketch_dim=args.feature_sketch or 0,
        precision=args.precision,
        input_space=args.input_space,
        compile=args.compile,
    )


def _cache(args: argparse.Namespace) -> GraphCache | None:
    return None if args.no_cache else GraphCache(args.cache_dir)


def _load_all(specs: list[ModelSpec]) -> list[LoadedModel]:
    return [load_model(s) for s in specs]


def _write_output(path: str, write: Callable[[Path], object]) -> None:
    """``write(path)``, with a failure to write said plainly (a folder, a missing folder, no permission)."""
    target = Path(path)
    try:
        write(target)
    except OSError as exc:
        why = "it is a folder" if target.is_dir() else ("its folder does not exist" if not target.parent.is_dir() else (exc.strerror or "it cannot be written").lower())
        raise DeparaError(f"cannot write {path!r}: {why}", "give the path of a file in an existing, writable folder") from None


def _write_json(path: str | None, payload: dict) -> None:
    text = json.dumps(payload, indent=2)
    if path:
        _write_output(path, lambda p: p.write_text(text))
    else:
        print(text)


def _write_csv(path: str, table: pd.DataFrame) -> None:
    _write_output(path, lambda p: table.to_csv(p, index=False))


# ---- commands ------------------------------------------------------------------------------
def cmd_similarity(args: argparse.Namespace) -> int:
    specs = [model_from_arg(m, args) for m in args.model]
    models = _load_all(specs)
    probes = probes_from_arg(args.probes, args.size, args.count)
    layers = {m.name: args.layer or m.spec.encoder for m in models}
    bar = _Bar(not args.quiet)
    try:
        terms = zoo_terms(
            models, probes, _options(args), layers=layers, cache=_cache(args), baselines=args.baselines,
            node_scale=args.node_scale, batch_size=args.batch_size, memory_budget=args.memory_budget, progress=bar, ray_address=args.ray, ray_probe_shard=args.ray_shard,
        )  # fmt: skip
    finally:
        bar.close()
    payload = {"models": list(terms.names), "s_V": terms.s_V.tolist(), "s_E": terms.s_E.tolist()}
    if terms.node_scale != 1.0:
        payload["node_scale"] = terms.node_scale  # read back by the evaluate command
    if args.baselines:
        payload.update(RSA=terms.rsa.tolist(), CKA=terms.cka.tolist(), baselines={name: m.tolist() for name, m in terms.baselines.items()})
    if args.json:
        _write_json(args.json, payload)
    if args.csv:
        rows = [
            {"source": s, "target": t, "s_V": terms.s_V[i, j], "s_E": terms.s_E[i, j], "s": terms.combined(args.lam)[i, j]}
            for i, s in enumerate(terms.names)
            for j, t in enumerate(terms.names)
        ]
        _write_csv(args.csv, pd.DataFrame(rows))
    if not args.json:
        s = pd.DataFrame(terms.combined(args.lam), index=terms.names, columns=terms.names)
        print(f"s = {args.node_scale:g}·s_V + {args.lam:g}·s_E (rows: sources, columns: targets), {len(probes)} probes")
        print(s.round(4).to_string())
    return 0


def cmd_graphs(args: argparse.Namespace) -> int:
    models = _load_all([model_from_arg(m, args) for m in args.model])
    probes = probes_from_arg(args.probes, args.size, args.count)
    cache = _cache(args) or GraphCache()
    rows = []
    bar = _Bar(not args.quiet)
    wanted = {m.name: [layer.name for layer in m.selectable_layers()] if args.layers == ["all"] else (args.layers or [m.spec.encoder]) for m in models}
    try:
        if args.ray:
            fill_cache(args.ray, [GraphJob(m, tuple(wanted[m.name])) for m in models], probes, _options(args), cache,
                       batch_size=args.batch_size, memory_budget=args.memory_budget, progress=bar, probe_shard=args.ray_shard)  # fmt: skip
        for m in models:
            layers = wanted[m.name]
            graphs = compute_graphs(m, probes, layers, _options(args), cache=cache, batch_size=args.batch_size, memory_budget=args.memory_budget, progress=bar)
            for layer, g in graphs.items():
                e = g.edges
                iu = np.triu_indices(len(g), 1)
                rows.append({"model": m.name, "layer": layer, "probes": len(g), "features": g.feature_dim, "node_dim": int(np.prod(g.node_shape)), "mean_edge": float(e[iu].mean())})
    finally:
        bar.close()
    table = pd.DataFrame(rows)
    if args.csv:
        _write_csv(args.csv, table)
    if args.json:
        _write_json(args.json, {"cache": str(cache.root), "graphs": rows})
    print(table.to_string(index=False))
    return 0


def cmd_layers(args: argparse.Namespace) -> int:
    source, target = _load_all([model_from_arg(args.source, args), model_from_arg(args.target, args)])
    if (source.digest, source.architecture) == (target.digest, target.architecture):
        warnings.warn(f"the source {source.name!r} and the target {target.name!r} are the same model: every layer is compared with itself", UserWarning, stacklevel=1)
    probes = probes_from_arg(args.probes, args.size, args.count)
    layers = None if args.layers in (None, ["all"]) else args.layers
    bar = _Bar(not args.quiet)
    try:
        scores = select_layers(
            source, target, probes, layers, _options(args), cache=_cache(args), node_scale=args.node_scale,
            batch_size=args.batch_size, memory_budget=args.memory_budget, progress=bar, ray_address=args.ray, ray_probe_shard=args.ray_shard,
        )  # fmt: skip
    finally:
        bar.close()
    if args.rank_by not in scores.methods:
        raise DeparaError(f"{args.rank_by} could not be scored for these layers", f"rank by one of: {', '.join(scores.methods)}")
    s = scores.combined(args.lam)
    table = pd.DataFrame({"layer": scores.layers, "s_V": scores.s_V, "s_E": scores.s_E, "s": s, **scores.others})
    best = scores.best(args.lam, args.rank_by)
    if args.csv:
        _write_csv(args.csv, table)
    if args.json:
        _write_json(args.json, {"source": source.name, "target": target.name, "lambda": args.lam, "rank_by": args.rank_by, "best": best,
                                "layers": table.to_dict(orient="records")})  # fmt: skip
    print(table[["layer", "s_V", "s_E", "s"] + ([args.rank_by] if args.rank_by in scores.others else [])].to_string(index=False))
    by = f"at λ={args.lam}" if args.rank_by == "DEPARA" else f"by {args.rank_by}"
    print(f"best layer of {source.name} for {target.name} {by}: {best}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.ground_truth.startswith("taskonomy"):
        gt = taskonomy_ground_truth(args.ground_truth.partition("-")[2] or "16k")
    else:
        gt = GroundTruth.from_csv(args.ground_truth, value=args.gt_column, higher_is_better=not args.lower_is_better)
    scores = read_scores(args.scores, args.lam, args.method)
    metrics = evaluate(scores, gt, relevant=args.relevant, method=args.method_name or args.method)
    _, rp, rr = random_baseline(int(metrics.k[-1]), args.relevant)
    weighting = {"lambda": args.lam} if args.method in LAMBDA_METHODS else {}
    payload = {**metrics.summary(), **weighting, "random": {"precision_at_k": rp[: len(metrics.k)].tolist(), "recall_at_k": rr[: len(metrics.k)].tolist()}, "per_target": metrics.per_target.to_dict(orient="records")}
    _write_json(args.json, payload)
    return 0


def read_scores(path: str, lam: float = 1.0, method: str = "DEPARA") -> dict[str, dict[str, float]]:
    """Predicted ``scores[target][source]`` from the similarity command's JSON (``method``'s matrix,
    combined at ``lam`` for the λ methods) or from a CSV with columns source,target,score; every
    score a finite number."""
    file = Path(path)
    if not file.is_file():
        raise DeparaError(f"the scores file {file.name!r} does not exist", "give the JSON written by the similarity command, or a CSV with columns source,target,score")
    if file.suffix.lower() == ".json":
        try:
            data = json.loads(file.read_text())
            names = tuple(map(str, data["models"]))
            s_v, s_e = np.asarray(data["s_V"], dtype=float), np.asarray(data["s_E"], dtype=float)
            node_scale = float(data.get("node_scale", 1.0))
        except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
            raise DeparaError(f"the scores file {file.name!r} cannot be read as the similarity command's JSON ({type(exc).__name__})", "write it again with: similarity --json FILE") from None
        except KeyError as exc:
            raise DeparaError(f"the scores file {file.name!r} has no {exc.args[0]!r} entry", "write it again with: similarity --json FILE") from None
        n = len(names)
        if s_v.shape != (n, n) or s_e.shape != (n, n):
            raise DeparaError(f"the scores file {file.name!r} holds s_V {s_v.shape} and s_E {s_e.shape} for {n} models", f"give {n}×{n} matrices (rows: sources, columns: targets)")
        if not (np.isfinite(s_v).all() and np.isfinite(s_e).all() and np.isfinite(node_scale)):
            raise DeparaError(f"the scores file {file.name!r} holds values that are not finite numbers (NaN or infinite)", "compute the similarities again")
        extra = _json_baselines(data, file.name, n)
        terms = SimilarityTerms(names, s_v, s_e, extra.pop("RSA", None), extra.pop("CKA", None), node_scale, extra)
        if method not in terms.methods:
            raise DeparaError(f"the scores file {file.name!r} holds no {method} scores (it has {', '.join(terms.methods)})", "compute them with: similarity --baselines --json FILE")
        return terms.score_table(lam, method)
    try:
        df = pd.read_csv(file)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DeparaError(f"the scores file {file.name!r} cannot be read as CSV ({type(exc).__name__})", "give a CSV with columns source,target,score") from None
    missing = {"source", "target", "score"} - set(df.columns)
    if missing:
        raise DeparaError(f"the scores CSV {file.name!r} lacks column(s) {', '.join(sorted(missing))}", "give columns source,target,score")
    values = pd.to_numeric(df["score"], errors="coerce").to_numpy(dtype=float)
    bad = df.loc[~np.isfinite(values), ["source", "target"]]
    if len(bad):
        pairs = ", ".join(f"{a}→{b}" for a, b in bad.head(3).itertuples(index=False))
        raise DeparaError(f"the scores CSV {file.name!r}: {len(bad)} score(s) are not finite numbers ({pairs})", "give a number for every pair")
    scores: dict[str, dict[str, float]] = {}
    for (source, target), value in zip(df[["source", "target"]].astype(str).itertuples(index=False), values):
        scores.setdefault(target, {})[source] = float(value)
    return scores


def _json_baselines(data: dict, label: str, n: int) -> dict[str, np.ndarray]:
    """RSA, CKA and the further baselines stored by ``similarity --baselines``, each checked as an n×n finite matrix."""
    raw = {k: data[k] for k in ("RSA", "CKA") if k in data}
    more = data.get("baselines", {})
    if not isinstance(more, dict):
        raise DeparaError(f"the scores file {label!r} has a 'baselines' entry that is not a mapping of method to matrix", "write it again with: similarity --baselines --json FILE")
    raw.update({k: v for k, v in more.items() if k in ALL_METHODS})
    out = {}
    for name, value in raw.items():
        try:
            m = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            m = np.empty(0)
        if m.shape != (n, n) or not np.isfinite(m).all():
            raise DeparaError(f"the scores file {label!r} holds a {name} entry that is not a {n}×{n} matrix of finite numbers", "write it again with: similarity --baselines --json FILE")
        out[name] = m
    return out


def cmd_probes(args: argparse.Namespace) -> int:
    from depara_core.probes.registry import builtin_probe_sets

    for name, desc in builtin_probe_sets().items():
        print(f"{name:16s} {desc}")
    return 0


# ---- parser --------------------------------------------------------------------------------
def _preset_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=[n.replace(" ", "-") for n in PRESETS],
                   help="conventions: paper (the paper's definitions, default) or paper-code (the original code's); single options below override it")  # fmt: skip


def apply_preset(args: argparse.Namespace) -> argparse.Namespace:
    """``args`` with every convention option left unset taken from ``--preset``.

    >>> a = apply_preset(build_parser().parse_args(["evaluate", "--scores", "s", "--ground-truth", "g", "--preset", "paper-code"]))
    >>> a.lam
    0.25
    """
    if not hasattr(args, "preset"):
        return args
    preset = get_preset(args.preset)
    values = {
        "objective": preset.options.objective, "node_reduce": preset.options.node_reduce, "center_edges": preset.options.center_edges,
        "input_clip": list(preset.input_clip) if preset.input_clip else None, "lam": preset.lam, "node_scale": preset.node_scale,
    }  # fmt: skip
    for name, value in values.items():
        if hasattr(args, name) and getattr(args, name) is None:
            setattr(args, name, value)
    return args


def _common(p: argparse.ArgumentParser, probes: bool = True) -> None:
    if probes:
        p.add_argument("--probes", required=True, help="folder of images, a .zip, or builtin:NAME")
        p.add_argument("--size", type=_number(int, 8, 4096), nargs=2, metavar=("H", "W"), help="resize and centre-crop probes to H×W (8 to 4096)")
        p.add_argument("--count", type=_number(int, 3), help="use only the first COUNT probes (at least 3)")
    p.add_argument("--method", default="gradient_x_input", help="attribution method (default: Gradient*Input)")
    _preset_argument(p)
    p.add_argument("--objective", choices=["sqnorm", "mean", "sum"], help="attribution objective: ||F||² (paper) or the original code's mean/sum (default: the preset's)")
    p.add_argument("--node-reduce", choices=["none", "channel_mean", "channel_abs_mean"], help="reduction of node maps over channels (default: the preset's)")
    p.add_argument("--input-space", choices=INPUT_SPACES, default="model",
                   help="Gradient*Input w.r.t. each model's own preprocessed input (default, the paper's) or the probes' pixels in [0, 1] (one black baseline for models of different zoos)")
    p.add_argument("--center-edges", action="store_true", default=None, help="centre features over probes before cosine edges (default: the preset's)")
    p.add_argument("--input-clip", type=_number(float, 0, 1), nargs=2, metavar=("LOW", "HIGH"),
                   help="clip probe values in [0, 1] to [LOW, HIGH] before each model's normalisation (the paper code's 0.1 0.9; default: the preset's)")  # fmt: skip
    p.add_argument("--batch-size", type=_number(int, 1, 4096), default=16)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "tf32"],
                   help="arithmetic of the passes: fp32 (default), bf16 autocast or TF32 on CUDA; errors against fp32 in benchmarks/RESULTS.md")  # fmt: skip
    p.add_argument("--compile", action="store_true",
                   help="run the passes through torch.compile, one compiled segment per layer (Gradient*Input; seconds of compiling per model, for GPUs)")  # fmt: skip
    p.add_argument("--feature-sketch", type=_number(int, 256, 2**24), metavar="DIM",
                   help="store features as a DIM-dimensional random projection (count sketch): less memory, approximate edges (default: exact)")  # fmt: skip
    p.add_argument("--memory-budget", type=parse_bytes, help="memory the engine may hold for stored features and nodes, e.g. 512MiB (default: 2 GiB or half the available memory, whichever is smaller)")
    p.add_argument("--input-size", type=_number(int, 8, 4096), nargs=2, metavar=("H", "W"), help="override every model's input size (default: the architecture's own)")
    p.add_argument("--resize", type=_number(int, 8, 8192), help="override the shorter side images are resized to before the centre crop")
    p.add_argument("--mean", type=_number(float), nargs=3, metavar=("R", "G", "B"), help="override the normalisation mean")
    p.add_argument("--std", type=_number(float, 0, strict_low=True), nargs=3, metavar=("R", "G", "B"), help="override the normalisation std")
    p.add_argument("--interpolation", choices=["bilinear", "bicubic"], help="override the resize interpolation")
    p.add_argument("--lam", type=_number(float, 0), help="λ in s = node_scale·s_V + λ·s_E (0 or more; default: the preset's, 1 for the paper)")
    p.add_argument("--node-scale", type=_number(float, 0, strict_low=True), help="weight of s_V (default: the preset's; the original code used 0.001)")
    p.add_argument("--cache-dir", default=None, help="cache folder (default $DEPARA_CACHE_DIR or ~/.cache/depara-explorer)")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--ray-shard", type=_number(int, 3), metavar="N", help="with --ray: at most N probes per task (larger sets are split into shards, combined exactly)")
    p.add_argument("--ray", metavar="ADDRESS", help="compute on the Ray cluster at ADDRESS (HOST:PORT, or auto on a cluster node); the cache folder must be one every node sees")
    p.add_argument("--json", help="write results as JSON to this file")
    p.add_argument("--csv", help="write results as CSV to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m depara_core", description="DEPARA: rank pre-trained models and layers for transfer, without labels.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("similarity", help="pairwise s_V and s_E of models on a probe set")
    p.add_argument("--model", action="append", required=True, help="NAME=package.module:function (repeat); also torchvision:ARCH@CKPT, timm:ARCH@CKPT, torchscript:PATH, zoo:ZOO/MODEL")
    p.add_argument("--layer", help="layer of every model (default: each model's encoder; 'output' = the model's output)")
    p.add_argument("--baselines", action="store_true",
                   help="also compute the baselines: RSA, linear and debiased CKA, DDS, pseudo-label LogME and centred-edge DEPARA")  # fmt: skip
    _common(p)
    p.set_defaults(func=cmd_similarity)
    p = sub.add_parser("graphs", help="compute and cache graphs")
    p.add_argument("--model", action="append", required=True)
    p.add_argument("--layers", nargs="+", help="layer names, or 'all' (default: the encoder)")
    _common(p)
    p.set_defaults(func=cmd_graphs)
    p = sub.add_parser("layers", help="layer ranking of a source model against a target's encoder")
    p.add_argument("--source", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--layers", nargs="+", help="layer names, or 'all' (default)")
    p.add_argument("--rank-by", default="DEPARA", choices=list(ALL_METHODS),
                   help="the score that picks the best layer: DEPARA's s(λ) (default, Eq. 6) or a label-free baseline scored from the same graphs (every one is written to --csv/--json)")
    _common(p)
    p.set_defaults(func=cmd_layers)
    p = sub.add_parser("evaluate", help="rankings against a ground-truth CSV, as JSON")
    p.add_argument("--scores", required=True, help="CSV with target,source,score or the JSON of 'similarity'")
    p.add_argument("--ground-truth", required=True, help="CSV with source,target,affinity, or taskonomy-16k / taskonomy-1k")
    p.add_argument("--gt-column", default="affinity")
    p.add_argument("--lower-is-better", action="store_true", help="the ground-truth column is a loss")
    p.add_argument("--relevant", type=_number(int, 1), default=5)
    _preset_argument(p)
    p.add_argument("--lam", type=_number(float, 0), help="λ (default: the preset's)")
    p.add_argument("--method", choices=ALL_METHODS, default="DEPARA", help="which method's scores to read from the similarity JSON (default DEPARA)")
    p.add_argument("--method-name", default="", help="the method's name in the output (default: --method)")
    p.add_argument("--json", help="output file (default: standard output)")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("probes", help="list the built-in probe sets")
    p.set_defaults(func=cmd_probes)
    return parser


def _show_plans(args: argparse.Namespace) -> logging.Handler | None:
    """Print the engine's memory plans on standard error, unless ``--quiet``."""
    if getattr(args, "quiet", True):
        return None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("depara_core.engine")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    args = apply_preset(build_parser().parse_args(argv))
    handler = _show_plans(args)
    try:
        return _run(args)
    finally:
        if handler is not None:
            logging.getLogger("depara_core.engine").removeHandler(handler)


def _run(args: argparse.Namespace) -> int:
    try:
        if getattr(args, "ray", None) and getattr(args, "no_cache", False):
            raise needs_cache()  # graphs would otherwise fall back to the default cache
        return args.func(args)
    except DeparaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
