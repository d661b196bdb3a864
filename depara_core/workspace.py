"""The app-facing service layer: choices → models, probes and options; computations with progress,
cancellation and resumption; the results a user browses.

Nothing here imports a UI toolkit: the Streamlit pages call these functions and draw what comes back.

>>> import torch
>>> from depara_core.models import callable_spec, load_model
>>> from depara_core.probes import load_builtin
>>> nets = [load_model(callable_spec(f"m{i}", lambda i=i: torch.manual_seed(i) and torch.nn.Sequential(
...     torch.nn.Conv2d(3, 4, 3), torch.nn.Tanh()))) for i in range(3)]
>>> config = Config(zoo="", models=("m0", "m1", "m2"), probes=ProbeChoice("builtin", "noise", 5))
>>> ws = Workspace(config, nets, load_builtin("noise", 5))
>>> ws.compute()
>>> ws.terms.names, ws.complete
(('m0', 'm1', 'm2'), True)
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from .cache import GraphCache
from .comparison import LayerTruth
from .errors import DeparaError, ModelError, ProbeError
from .evaluation import GroundTruth
from .graphs import Cancelled, Graph, GraphOptions, compute_graphs
from .models import OUTPUT, LoadedModel, ModelSpec, callable_spec, timm_spec, torchscript_spec, torchvision_spec
from .preprocess import IMAGENET
from .probes import IMAGE_SUFFIXES, ProbeSet, load_builtin
from .selection import LayerScores, SimilarityTerms, layer_scores, pairwise_terms
from .zoos import Zoo, list_zoos, load_zoo

__all__ = [
    "DEFAULT_ZOO",
    "ZOO_PROBES",
    "FALLBACK_PROBES",
    "ProbeChoice",
    "CustomModel",
    "Config",
    "ProgressReport",
    "ProgressTracker",
    "Workspace",
    "available_zoos",
    "default_zoo",
    "zoo_probe_default",
    "zoo_layer_truth",
    "resolve_specs",
    "load_probes",
    "probes_from_upload",
    "probes_from_path",
    "check_path",
    "save_upload",
    "terms_digest",
]

DEFAULT_ZOO = "mini-taskonomy"
"""The zoo a new user sees computed first; the first available zoo stands in while it is missing."""

ZOO_PROBES: dict[str, tuple[str, int]] = {
    "mini-taskonomy": ("scenes", 200),
    "efficientnet-lite": ("photos", 16),
    "taskonomy": ("photos", 64),
}
"""Built-in probe set and count that each zoo opens with (small enough for a first run on a laptop CPU)."""

FALLBACK_PROBES: tuple[str, int] = ("photos", 32)

ModelKind = Literal["torchvision", "timm", "torchscript", "callable"]


# ---- zoos ----------------------------------------------------------------------------------
def available_zoos() -> dict[str, Zoo]:
    """Every registered zoo, loaded (specs only); unavailable ones keep their reason."""
    out = {}
    for name in list_zoos():
        try:
            out[name] = load_zoo(name)
        except DeparaError as exc:
            out[name] = Zoo(name, "", (), False, str(exc))
    return out


def default_zoo(zoos: Mapping[str, Zoo] | None = None) -> str:
    """:data:`DEFAULT_ZOO` when it is available, else the first available zoo ("" if none is)."""
    zoos = available_zoos() if zoos is None else zoos
    if DEFAULT_ZOO in zoos and zoos[DEFAULT_ZOO].available:
        return DEFAULT_ZOO
    return next((name for name, z in zoos.items() if z.available), "")


def zoo_probe_default(zoo: Zoo | None) -> tuple[str, int]:
    """The probe set and count a zoo opens with: its own ``default_probes`` if it declares one."""
    if zoo is None:
        return FALLBACK_PROBES
    declared = getattr(zoo, "default_probes", None)
    if declared:
        return str(declared[0]), int(declared[1])
    return ZOO_PROBES.get(zoo.name, FALLBACK_PROBES)


def zoo_layer_truth(zoo: Zoo | None) -> LayerTruth | None:
    """Measured per-layer transfer that comes with a zoo: ``Zoo.layer_ground_truth`` (a LayerTruth or a
    table of source, target, layer and value or loss), or the mini-taskonomy's layer-transfer table
    (largest label budget, mean over seeds). None when there is none."""
    if zoo is None:
        return None
    own = getattr(zoo, "layer_ground_truth", None)
    if own is None and zoo.name.startswith("mini-taskonomy"):
        try:
            from .zoos.minitaskonomy import layer_ground_truth

            own = layer_ground_truth()
        except (ImportError, AttributeError, DeparaError, OSError, ValueError):
            return None
    if isinstance(own, LayerTruth) or own is None:
        return own
    df = pd.DataFrame(own)
    if "budget" in df.columns:
        df = df[df["budget"] == df["budget"].max()]
    try:
        truth = LayerTruth.from_frame(df)
    except DeparaError:
        return None
    budget = f", {int(df['budget'].max())} labels" if "budget" in df.columns and len(df) else ""
    return dataclasses.replace(truth, name=f"{truth.name} (measured{budget})")


# ---- choices -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProbeChoice:
    """Which probes: a built-in set by name, or an uploaded set (by its name and content digest)."""

    source: Literal["builtin", "uploaded"]
    name: str
    count: int | None = None
    digest: str = ""

    @property
    def label(self) -> str:
        what = self.name if self.source == "builtin" else f"uploaded: {self.name}"
        return f"{what} ({self.count} probes)" if self.count else what


@dataclass(frozen=True)
class CustomModel:
    """A model the user added: a torchvision/timm architecture with a checkpoint, a TorchScript file or
    ``package.module:function``. ``checkpoint`` and TorchScript paths are local files (uploads are saved
    first by :func:`save_upload`)."""

    kind: ModelKind
    name: str
    target: str
    checkpoint: str = ""
    encoder: str = ""
    num_classes: int | None = None

    def spec(self) -> ModelSpec:
        """The model's spec; nothing is built or read yet."""
        if not self.name.strip():
            raise ModelError("the model has no name", "give it a short name")
        extra = {"encoder": self.encoder} if self.encoder else {}
        ckpt = self.checkpoint or None
        if self.kind == "torchvision":
            return torchvision_spec(self.target, ckpt, name=self.name, num_classes=self.num_classes, **extra)
        if self.kind == "timm":
            return timm_spec(self.target, ckpt, name=self.name, preprocess=IMAGENET, **extra)
        if self.kind == "torchscript":
            return torchscript_spec(self.target, name=self.name)
        if self.kind == "callable":
            return callable_spec(self.name, self.target, **extra)
        raise ModelError(f"unknown model kind {self.kind!r}", "choose torchvision, timm, torchscript or callable")

    def key(self) -> str:
        """A stable identity: the fields plus size and modification time of any local file."""
        stamps = []
        for p in (self.checkpoint, self.target if self.kind == "torchscript" else ""):
            if p and Path(p).is_file():
                st = Path(p).stat()
                stamps.append(f"{st.st_size}:{st.st_mtime_ns}")
        return "|".join([self.kind, self.name, self.target, self.checkpoint, self.encoder, str(self.num_classes), *stamps])


@dataclass(frozen=True)
class Config:
    """Everything the sidebar decides: zoo, models, layers, probes and attribution method."""

    zoo: str
    models: tuple[str, ...]
    probes: ProbeChoice
    custom: tuple[CustomModel, ...] = ()
    layer_mode: Literal["encoder", "all"] = "encoder"
    method: str = "gradient_x_input"

    def options(self) -> GraphOptions:
        return GraphOptions(method=self.method)


def resolve_specs(config: Config, zoo: Zoo | None) -> list[ModelSpec]:
    """The specs of the chosen models, zoo models first in the chosen order, then custom ones."""
    zoo_specs = {s.name: s for s in (zoo.specs if zoo is not None else ())}
    custom = {c.name: c for c in config.custom}
    out = []
    for name in config.models:
        if name in custom:
            out.append(custom[name].spec())
        elif name in zoo_specs:
            out.append(zoo_specs[name])
        else:
            raise DeparaError(f"model {name!r} is neither in zoo {config.zoo!r} nor among the added models", "choose models from the list")
    if len(out) < 2:
        raise DeparaError(f"{len(out)} model(s) chosen; comparing needs at least two", "choose at least two models in the sidebar")
    return out


# ---- probes --------------------------------------------------------------------------------
def load_probes(choice: ProbeChoice, uploaded: Mapping[str, ProbeSet] | None = None) -> ProbeSet:
    """The probe set of ``choice``: a built-in one, or one of ``uploaded`` (keyed by digest)."""
    if choice.source == "builtin":
        return load_builtin(choice.name, choice.count)
    found = (uploaded or {}).get(choice.digest)
    if found is None:
        raise ProbeError(f"the uploaded probe set {choice.name!r} is no longer in this session", "upload it again on the Setup page")
    return found.subset(choice.count) if choice.count and choice.count < len(found) else found


def probes_from_upload(files: Sequence[tuple[str, bytes]], size: int | None = 224, name: str = "") -> ProbeSet:
    """Probes from uploaded files: image files, or one or more zip archives of images (guarded)."""
    if not files:
        raise ProbeError("no files were uploaded", "choose image files or a .zip of images")
    hw = (size, size) if size else None
    zips = [(n, b) for n, b in files if n.lower().endswith(".zip")]
    images = {n: b for n, b in files if not n.lower().endswith(".zip")}
    bad = [n for n in images if not n.lower().endswith(IMAGE_SUFFIXES)]
    if bad:
        raise ProbeError(f"not an image or zip file: {', '.join(bad[:3])}", f"upload images ({', '.join(IMAGE_SUFFIXES)}) or a .zip of them")
    sets = [ProbeSet.from_zip(b, size=hw, name=Path(n).stem) for n, b in zips]
    if images:
        sets.append(ProbeSet.from_bytes(images, size=hw, name=name or "uploaded"))
    if len(sets) == 1:
        return dataclasses.replace(sets[0], name=name or sets[0].name, digest="") if name else sets[0]
    if len({s.size for s in sets}) > 1:
        raise ProbeError("the uploaded archives hold images of different sizes", "choose a common probe size")
    ids = [f"{s.name}/{i}" for s in sets for i in s.ids]
    return ProbeSet(np.concatenate([s.images for s in sets]), tuple(ids), name or "uploaded")


def _allowed_roots() -> list[Path]:
    raw = os.environ.get("DEPARA_ALLOWED_ROOTS", "")
    return [Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p]


def check_path(path: str, kind: Literal["file", "folder"] = "folder") -> Path:
    """A user-typed server path, checked: it exists, is of the right kind, is readable, and lies under
    one of ``$DEPARA_ALLOWED_ROOTS`` (``os.pathsep``-separated) when that variable is set."""
    if not path or not path.strip():
        raise DeparaError(f"no {kind} path was given", f"type the path of a {kind} on the server")
    p = Path(path.strip()).expanduser()
    try:
        resolved = p.resolve(strict=True)
    except (OSError, RuntimeError):
        raise DeparaError(f"{str(p)!r} does not exist on the server", f"give the path of an existing {kind}") from None
    roots = _allowed_roots()
    if roots and not any(resolved == r or r in resolved.parents for r in roots):
        raise DeparaError(f"{str(p)!r} lies outside the folders this server may read", f"use a path under {', '.join(map(str, roots))}")
    if kind == "folder" and not resolved.is_dir():
        raise DeparaError(f"{str(p)!r} is not a folder", "give the folder that holds the images")
    if kind == "file" and not resolved.is_file():
        raise DeparaError(f"{str(p)!r} is not a file", "give the path of a file")
    if not os.access(resolved, os.R_OK):
        raise DeparaError(f"{str(p)!r} cannot be read by the server", "check its permissions")
    return resolved


def probes_from_path(path: str, size: int | None = 224) -> ProbeSet:
    """Probes from a folder (recursively) or a .zip file on the server, after :func:`check_path`."""
    p = Path(path.strip()).expanduser() if path else Path()
    hw = (size, size) if size else None
    return ProbeSet.from_path(check_path(path, "file" if p.suffix.lower() == ".zip" else "folder"), size=hw)


def save_upload(data: bytes, suffix: str, root: str | os.PathLike) -> Path:
    """Store uploaded bytes content-addressed under ``root/uploads`` (atomic) and return the path."""
    digest = hashlib.sha256(data).hexdigest()
    folder = Path(root) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    safe_suffix = "".join(ch for ch in suffix.lower() if ch.isalnum() or ch == ".")[:16]
    path = folder / f"{digest}{safe_suffix}"
    if not path.is_file():
        tmp = path.with_name(f".{digest}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return path


# ---- progress ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProgressReport:
    """Where a computation stands: the model (i of n), its layers, fractions done and time left."""

    model: str
    model_index: int
    model_count: int
    detail: str
    model_fraction: float
    fraction: float
    elapsed: float
    eta: float | None

    @property
    def text(self) -> str:
        left = "" if self.eta is None else f" — about {_duration(self.eta)} left"
        return f"model {self.model_index + 1}/{self.model_count}: {self.detail}{left}"


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds} s" if seconds < 90 else f"{seconds // 60} min {seconds % 60:02d} s"


ProgressSink = Callable[[ProgressReport], "bool | None"]


class ProgressTracker:
    """Turns the engine's ``progress(done, total, message)`` calls into :class:`ProgressReport` for a
    sequence of models weighted by how many layers each still needs; a sink returning False cancels."""

    def __init__(self, work: Sequence[tuple[str, int]], sink: ProgressSink | None) -> None:
        self.work = list(work)
        self.total = max(sum(w for _, w in self.work), 1)
        self.sink = sink
        self.start = time.perf_counter()
        self.index = 0
        self.before = 0

    def begin(self, index: int, detail: str = "starting") -> bool | None:
        self.index = index
        self.before = sum(w for _, w in self.work[:index])
        return self.emit(0.0, detail)

    def finish(self) -> None:
        if self.work:
            self.index, self.before = len(self.work) - 1, self.total - self.work[-1][1]
            self.emit(1.0, "done")

    def emit(self, model_fraction: float, detail: str) -> bool | None:
        if self.sink is None or not self.work:
            return None
        name, weight = self.work[self.index]
        fraction = (self.before + weight * model_fraction) / self.total
        elapsed = time.perf_counter() - self.start
        eta = elapsed * (1 - fraction) / fraction if fraction > 0.02 else None
        report = ProgressReport(name, self.index, len(self.work), f"{name}, {detail}", model_fraction, fraction, elapsed, eta)
        return self.sink(report)

    def __call__(self, done: int, total: int, message: str) -> bool | None:
        detail = message.split(": ", 1)[-1]
        return self.emit(done / max(total, 1), detail)


# ---- the workspace -------------------------------------------------------------------------
def terms_digest(terms: SimilarityTerms) -> str:
    """A content digest of similarity terms (small arrays), to key memoised views on."""
    h = hashlib.sha256(repr((terms.names, terms.node_scale)).encode())
    for arr in (terms.s_V, terms.s_E, terms.rsa, terms.cka):
        if arr is not None:
            h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
    return h.hexdigest()


_KEYS = object.__new__(GraphCache)
"""A root-less cache object: only its key functions are used."""


@dataclass
class Workspace:
    """One session's models, probes and results. Graphs are filled in as they are computed, so a
    stopped or failed computation keeps what it finished (and the disk cache keeps it too)."""

    config: Config
    models: Sequence[LoadedModel]
    probes: ProbeSet
    cache: GraphCache | None = None
    ground_truth: GroundTruth | None = None
    notes: tuple[str, ...] = ()
    graphs: dict[str, dict[str, Graph]] = field(default_factory=dict)
    terms: SimilarityTerms | None = None
    layer_results: dict[tuple[str, str], LayerScores] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.models = list(self.models)
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise DeparaError("two models have the same name", "give every model its own name")

    # ---- lookups ---------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.models)

    def model(self, name: str) -> LoadedModel:
        for m in self.models:
            if m.name == name:
                return m
        raise DeparaError(f"no model named {name!r} in this workspace", f"choose one of: {', '.join(self.names)}")

    def encoder(self, name: str) -> str:
        return self.model(name).spec.encoder or OUTPUT

    def layers_of(self, name: str, mode: str | None = None) -> list[str]:
        """The layers computed for ``name``: its encoder, or every selectable layer (encoder included)."""
        m = self.model(name)
        if (mode or self.config.layer_mode) == "encoder":
            return [self.encoder(name)]
        layers = [layer.name for layer in m.selectable_layers()]
        return layers + ([self.encoder(name)] if self.encoder(name) not in layers else [])

    def layer_label(self, name: str, layer: str) -> str:
        return self.model(name).spec.layer_label(layer)

    def graph(self, name: str, layer: str | None = None) -> Graph:
        layer = layer or self.encoder(name)
        try:
            return self.graphs[name][layer]
        except KeyError:
            raise DeparaError(f"the graph of {name}/{layer} has not been computed", "press Compute on the Setup page") from None

    def computed_layers(self, name: str) -> list[str]:
        have = self.graphs.get(name, {})
        order = [layer.name for layer in self.model(name).selectable_layers()] + [self.encoder(name)]
        return [layer for layer in dict.fromkeys(order) if layer in have]

    def graph_notes(self) -> list[str]:
        """What the engine noted about the held graphs (e.g. probes whose maps are all zero)."""
        return [note for n in self.names for g in self.graphs.get(n, {}).values() for note in getattr(g, "notes", ())]

    def graph_key(self, name: str, layer: str | None = None) -> str:
        """The engine's content key of a graph (weights, layer, probes, preprocessing, options)."""
        return _KEYS.graph_key(self.model(name), self.probes, layer or self.encoder(name), self.config.options())

    # ---- planning and computing ------------------------------------------------------------
    def _on_disk(self, m: LoadedModel, layer: str) -> bool:
        if self.cache is None:
            return False
        return self.cache.has_graph(m, self.probes, layer, self.config.options())

    def missing(self, mode: str | None = None) -> dict[str, list[str]]:
        """Per model, the layers neither in memory nor in the disk cache (what a compute will run)."""
        out = {}
        for m in self.models:
            need = [layer for layer in self.layers_of(m.name, mode) if layer not in self.graphs.get(m.name, {}) and not self._on_disk(m, layer)]
            if need:
                out[m.name] = need
        return out

    @property
    def complete(self) -> bool:
        """Every chosen layer's graph is held and the similarity terms are built."""
        have = all(layer in self.graphs.get(n, {}) for n in self.names for layer in self.layers_of(n))
        return have and self.terms is not None

    def batch_size(self) -> int:
        """Probes per forward pass: up to 16, and at least four batches per model for a smooth progress bar."""
        return int(min(16, max(4, -(-len(self.probes) // 4))))

    def compute(self, progress: ProgressSink | None = None, *, batch_size: int | None = None, build_terms: bool = True) -> None:
        """Compute (or read from the cache) every chosen layer of every model, then the similarity terms.

        ``progress`` receives a :class:`ProgressReport` per batch; returning False stops with
        :class:`~depara_core.graphs.Cancelled` (finished layers are kept here and in the cache).
        """
        self.compute_layers({n: self.layers_of(n) for n in self.names}, progress, batch_size=batch_size or self.batch_size())
        if build_terms:
            self.build_terms()

    def compute_layers(self, layers: Mapping[str, Sequence[str]], progress: ProgressSink | None = None, *, batch_size: int | None = None) -> None:
        """Compute the given ``{model: [layers]}`` graphs that are not held yet (cached ones load at once)."""
        todo = [(n, [layer for layer in dict.fromkeys(ls) if layer not in self.graphs.get(n, {})]) for n, ls in layers.items()]
        todo = [(n, ls) for n, ls in todo if ls]
        tracker = ProgressTracker([(n, sum(not self._on_disk(self.model(n), layer) for layer in ls)) for n, ls in todo], progress)
        options = self.config.options()
        for i, (name, ls) in enumerate(todo):
            shown = ", ".join(ls[:3]) + ("…" if len(ls) > 3 else "")
            if tracker.begin(i, f"layers {shown}") is False:
                raise Cancelled("stopped before the next model", "run again to resume from the cache")
            got = compute_graphs(self.model(name), self.probes, ls, options, cache=self.cache, batch_size=batch_size or self.batch_size(), progress=tracker)
            self.graphs.setdefault(name, {}).update(got)
        tracker.finish()

    def build_terms(self) -> SimilarityTerms:
        """s_V, s_E, RSA and CKA of the encoder graphs (read from the cache when stored there)."""
        graphs = {n: self.graph(n) for n in self.names}
        key = None
        if self.cache is not None:
            keys = [self.cache.graph_key(self.model(n), self.probes, self.encoder(n), self.config.options()) for n in self.names]
            key = self.cache.terms_key(keys + list(self.names), True, 1.0)
            hit = self.cache.load_terms(key)
            if hit is not None:
                self.terms = hit
                return hit
        self.terms = pairwise_terms(graphs, baselines=True)
        if key is not None:
            self.cache.store_terms(key, self.terms)
        return self.terms

    def compute_layer_scores(self, source: str, target: str, progress: ProgressSink | None = None) -> LayerScores:
        """Every selectable layer of ``source`` against ``target``'s encoder graph (Eq. 6)."""
        if source == target:
            raise DeparaError("the source and the target are the same model", "choose two different models")
        layers = [layer.name for layer in self.model(source).selectable_layers()] or [self.encoder(source)]
        self.compute_layers({target: [self.encoder(target)], source: layers}, progress)
        scores = layer_scores((self.graphs[source][layer] for layer in layers), self.graph(target))
        self.layer_results[(source, target)] = scores
        return scores
