"""The app-facing service layer: choices → models, probes and options; computations with progress,
cancellation and resumption; the results a user browses.

Nothing here imports a UI toolkit: the Streamlit pages call these functions and draw what comes back.

>>> from depara_core.probes.registry import load_builtin
>>> from depara_core.models.toy import toy_models
>>> nets = toy_models(3)
>>> from depara_core.session.config import Config, ProbeChoice
>>> config = Config(zoo="", models=("m0", "m1", "m2"), probes=ProbeChoice("builtin", "noise", 5))
>>> ws = Workspace(config, nets, load_builtin("noise", 5))
>>> ws.compute()
>>> ws.terms.names, ws.complete
(('m0', 'm1', 'm2'), True)
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from depara_core.cache import GraphCache
from depara_core.compare.layers import LayerScores
from depara_core.compare.terms import SimilarityTerms
from depara_core.compare.workflows import select_layers, zoo_terms
from depara_core.engine.attribution import get_method
from depara_core.engine.graph import Cancelled, Graph, GraphOptions
from depara_core.engine.run import compute_graphs
from depara_core.errors import DeparaError
from depara_core.evaluation.ground_truth import GroundTruth
from depara_core.models.cost import CostEstimate, estimate_seconds, probe_seconds, record_run
from depara_core.models.spec import OUTPUT, LoadedModel
from depara_core.probes.probeset import ProbeSet
from depara_core.session.config import Config
from depara_core.session.progress import ProgressSink, ProgressTracker

__all__ = ["terms_digest", "method_passes", "Workspace", "prune_workspaces", "demo_workspace"]


def method_passes(options: GraphOptions) -> int:
    """Forward and backward passes per probe and layer that ``options``' attribution method costs."""
    return get_method(options.method).passes(**dict(options.method_params))


# ---- the workspace -------------------------------------------------------------------------
def terms_digest(terms: SimilarityTerms) -> str:
    """A content digest of similarity terms (small arrays), to key memoised views on."""
    h = hashlib.sha256(repr((terms.names, terms.node_scale, tuple(terms.baselines))).encode())
    for arr in (terms.s_V, terms.s_E, terms.rsa, terms.cka, *terms.baselines.values()):
        if arr is not None:
            h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
    return h.hexdigest()


_HELD_LAYERS = 2
"""Non-encoder graphs read back from the disk cache and kept in memory at once (per workspace)."""


@dataclass
class Workspace:
    """One session's models, probes and results. Graphs are filled in as they are computed, so a
    stopped or failed computation keeps what it finished (and the disk cache keeps it too).

    With a disk cache, only the encoder graphs stay in memory: other layers are stored there and read
    back when a page shows them (at most a couple at a time), so browsing every layer of a zoo does
    not hold every layer's attribution maps in the session.
    """

    config: Config
    models: Sequence[LoadedModel]
    probes: ProbeSet
    cache: GraphCache | None = None
    ground_truth: GroundTruth | None = None
    notes: tuple[str, ...] = ()
    memory_budget: int | None = None
    """Bytes the engine may hold (None: its default, from the memory available now); never changes results."""
    graphs: dict[str, dict[str, Graph]] = field(default_factory=dict)
    terms: SimilarityTerms | None = None
    layer_results: dict[tuple[str, str], LayerScores] = field(default_factory=dict)
    stored: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    _held: OrderedDict = field(default_factory=OrderedDict, repr=False)

    def __post_init__(self) -> None:
        self.models = [self.config.conventions.apply(m) for m in self.models]  # e.g. the paper code's input clipping
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

    def has(self, name: str, layer: str) -> bool:
        """Whether the graph of ``name``/``layer`` was computed in this workspace."""
        return layer in self.graphs.get(name, {}) or layer in self.stored.get(name, {})

    def graph(self, name: str, layer: str | None = None) -> Graph:
        layer = layer or self.encoder(name)
        held = self.graphs.get(name, {}).get(layer)
        if held is not None:
            return held
        if layer in self.stored.get(name, {}) and self.cache is not None:
            key = (name, layer)
            if key in self._held:
                self._held.move_to_end(key)
                return self._held[key]
            g = self.cache.load_graph(self.model(name), self.probes, layer, self.config.options())
            if g is not None:
                self._held[key] = g
                while len(self._held) > _HELD_LAYERS:
                    self._held.popitem(last=False)
                return g
            self.stored[name].pop(layer, None)  # cleared from the disk cache since
        raise DeparaError(f"the graph of {name}/{layer} has not been computed", "press Compute on the Setup page")

    def computed_layers(self, name: str) -> list[str]:
        order = [layer.name for layer in self.model(name).selectable_layers()] + [self.encoder(name)]
        return [layer for layer in dict.fromkeys(order) if self.has(name, layer)]

    def graph_notes(self) -> list[str]:
        """What the engine noted about the computed graphs (e.g. probes whose maps are all zero)."""
        held = [note for n in self.names for g in self.graphs.get(n, {}).values() for note in g.notes]
        return held + [note for n in self.names for notes in self.stored.get(n, {}).values() for note in notes]

    def graph_key(self, name: str, layer: str | None = None) -> str:
        """The engine's content key of a graph (weights, code, layer, probes, preprocessing, options)."""
        return GraphCache.graph_key(self.model(name), self.probes, layer or self.encoder(name), self.config.options())

    # ---- planning and computing ------------------------------------------------------------
    def _on_disk(self, m: LoadedModel, layer: str) -> bool:
        if self.cache is None:
            return False
        return self.cache.has_graph(m, self.probes, layer, self.config.options())

    def missing(self, mode: str | None = None) -> dict[str, list[str]]:
        """Per model, the layers neither computed here nor in the disk cache (what a compute will run)."""
        return {n: new for n, new in self.not_computed({n: self.layers_of(n, mode) for n in self.names}) if new}

    @property
    def complete(self) -> bool:
        """Every chosen layer's graph is computed and the similarity terms are built."""
        have = all(self.has(n, layer) for n in self.names for layer in self.layers_of(n))
        return have and self.terms is not None

    def batch_size(self) -> int:
        """Probes per forward pass: up to 16, and at least four batches per model for a smooth progress bar."""
        return int(min(16, max(4, -(-len(self.probes) // 4))))

    def compute(self, progress: ProgressSink | None = None, *, batch_size: int | None = None, build_terms: bool = True) -> None:
        """Compute (or read from the cache) every chosen layer of every model, then the similarity terms.

        ``progress`` receives a :class:`ProgressReport` per batch; returning False stops with
        :class:`~depara_core.engine.graph.Cancelled` (finished layers are kept here and in the cache).
        """
        self.compute_layers({n: self.layers_of(n) for n in self.names}, progress, batch_size=batch_size or self.batch_size())
        if build_terms:
            self.build_terms()

    def _keep(self, name: str, graph: Graph) -> None:
        if self.cache is None or graph.layer == self.encoder(name):
            self.graphs.setdefault(name, {})[graph.layer] = graph
        else:
            self.stored.setdefault(name, {})[graph.layer] = graph.notes

    def _work(self, layers: Sequence[tuple[str, int]]) -> list[tuple[str, float]]:
        """Each model's share of a computation: the layers it computes times the measured time of one
        probe (:func:`probe_seconds`, one figure per architecture; a model that cannot be measured gets the
        median of the others)."""
        cost = {n: probe_seconds(self.model(n), self.probes) for n, k in layers if k}
        measured = [c for c in cost.values() if c > 0]
        fallback = float(np.median(measured)) if measured else 1.0
        return [(n, k * (cost.get(n) or fallback) / fallback) for n, k in layers]

    def compute_layers(self, layers: Mapping[str, Sequence[str]], progress: ProgressSink | None = None, *, batch_size: int | None = None) -> None:
        """Compute the given ``{model: [layers]}`` graphs that are not computed yet (cached ones load at once)."""
        todo = [(n, [layer for layer in dict.fromkeys(ls) if not self.has(n, layer)]) for n, ls in layers.items()]
        todo = [(n, ls) for n, ls in todo if ls]
        work = [(n, len(new)) for n, new in self.not_computed(dict(todo))]
        tracker = ProgressTracker(self._work(work) if progress is not None else work, progress)  # timing probes only serves a progress bar
        options = self.config.options()
        passes = method_passes(options)
        for i, ((name, ls), (_, new)) in enumerate(zip(todo, work)):
            shown = ", ".join(ls[:3]) + ("…" if len(ls) > 3 else "")
            if tracker.begin(i, f"layers {shown}") is False:
                raise Cancelled("stopped before the next model", "run again to resume from the cache")
            start = time.perf_counter()
            got = compute_graphs(self.model(name), self.probes, ls, options, cache=self.cache, batch_size=batch_size or self.batch_size(),
                                 memory_budget=self.memory_budget, progress=tracker)  # fmt: skip
            done = new * len(self.probes) * passes * tracker.model_share_done()  # a resumed run computes less than it asks for
            record_run(self.model(name), self.probes, round(done), time.perf_counter() - start)
            for g in got.values():
                self._keep(name, g)
        tracker.finish()

    def estimate(self, layers: Mapping[str, Sequence[str]]) -> CostEstimate:
        """Time to compute the given ``{model: [layers]}`` graphs not computed yet (here or on disk),
        from real runs where there were some (another method's: scaled by the passes per probe)."""
        passes = method_passes(self.config.options())
        work = [(self.model(n), len(new) * len(self.probes) * passes) for n, new in self.not_computed(layers)]
        return estimate_seconds(work, self.probes)

    def not_computed(self, layers: Mapping[str, Sequence[str]]) -> list[tuple[str, list[str]]]:
        """Per model, those of the given ``{model: [layers]}`` neither computed here nor on disk."""
        return [(n, [layer for layer in dict.fromkeys(ls) if not self.has(n, layer) and not self._on_disk(self.model(n), layer)]) for n, ls in layers.items()]

    def build_terms(self) -> SimilarityTerms:
        """s_V, s_E, RSA and CKA of the encoder graphs (the library's :func:`zoo_terms`, same cache entry)."""
        self.terms = zoo_terms(
            self.models, self.probes, self.config.options(), cache=self.cache, graphs={n: self.graph(n) for n in self.names}, node_scale=self.config.conventions.node_scale
        )
        return self.terms

    def compute_layer_scores(self, source: str, target: str, progress: ProgressSink | None = None) -> LayerScores:
        """Every selectable layer of ``source`` against ``target``'s encoder graph (Eq. 6)."""
        return self.compute_layer_targets(source, [target], progress)[target]

    def compute_layer_targets(self, source: str, targets: Sequence[str], progress: ProgressSink | None = None) -> dict[str, LayerScores]:
        """Every selectable layer of ``source`` against each target's encoder graph (Eq. 6), streamed
        through the library's :func:`select_layers`: the source's layers are computed once (for the
        first target) and read back from the cache one at a time for the others."""
        targets = list(dict.fromkeys(targets))
        if source in targets:
            raise DeparaError(f"the source {source!r} and a target are the same model", "choose targets other than the source model")
        src = self.model(source)
        layers = [layer.name for layer in src.selectable_layers()] or [self.encoder(source)]
        self.compute_layers({t: [self.encoder(t)] for t in targets})
        todo = sum(not self._on_disk(src, layer) for layer in layers)
        again = self.cache is None  # without a disk cache every target computes the source's layers afresh
        tracker = ProgressTracker([(f"{source} vs {t}", todo if i == 0 or again else 0) for i, t in enumerate(targets)], progress)
        out: dict[str, LayerScores] = {}
        for i, target in enumerate(targets):
            if tracker.begin(i, f"{len(layers)} layers") is False:
                raise Cancelled(f"stopped before the layers of {source} vs {target}", "run again to resume from the cache")
            scores = select_layers(
                src, self.model(target), self.probes, layers, self.config.options(), cache=self.cache, node_scale=self.config.conventions.node_scale,
                batch_size=self.batch_size(), memory_budget=self.memory_budget, progress=tracker, target_graph=self.graph(target),
            )  # fmt: skip
            if self.cache is not None:
                for layer in layers:
                    self.stored.setdefault(source, {}).setdefault(layer, ())
            self.layer_results[(source, target)] = out[target] = scores
        tracker.finish()
        return out


def prune_workspaces(spaces: dict[Config, Workspace], most: int, keep: Config) -> None:
    """Drop the least recently used of a session's workspaces (oldest first in ``spaces``) until at
    most ``most`` remain, never ``keep``; those without similarity terms go first (e.g. another
    attribution method's maps, viewed beside the results), so the results a page falls back on stay.

    >>> a, b, c = (Config("", (n,), None) for n in "abc")
    >>> done = demo_workspace()
    >>> spaces = {a: done, b: Workspace(b, [], None), c: Workspace(c, [], None)}
    >>> prune_workspaces(spaces, 2, keep=c)
    >>> [k.models for k in spaces]
    [('a',), ('c',)]
    """
    while len(spaces) > max(most, 1):
        bare = [k for k, w in spaces.items() if w.terms is None and k != keep]
        spaces.pop(bare[0] if bare else next(k for k in spaces if k != keep))


def demo_workspace(models: int = 3, probes: int = 4) -> Workspace:
    """A computed workspace of ``models`` toy networks (``m0``, ``m1``, …) on ``probes`` noise probes:
    the runnable examples of the session layer start from it.

    >>> demo_workspace().terms.names
    ('m0', 'm1', 'm2')
    """
    from depara_core.models.toy import toy_models
    from depara_core.probes.registry import load_builtin
    from depara_core.session.config import ProbeChoice

    nets = toy_models(models)
    ws = Workspace(Config("", tuple(m.name for m in nets), ProbeChoice("builtin", "noise", probes)), nets, load_builtin("noise", probes))
    ws.compute()
    return ws
