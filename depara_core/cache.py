"""A content-addressed disk cache for graphs and similarity terms, with atomic writes.

Keys hash (weights digest, layer, probe digest, preprocessing, method and its parameters, engine
version). Entries are written to a temporary file and renamed into place, so a writer killed
mid-write never leaves a readable broken entry; nothing is ever unpickled. Processes that share a
cache folder (several drivers, Ray workers) take a file lock per key before computing an entry, so
that no entry is computed twice at once.

>>> import tempfile
>>> cache = GraphCache(tempfile.mkdtemp())
>>> cache.key({"a": 1}) == cache.key({"a": 1}), len(cache.key({"a": 1}))
(True, 64)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import filelock
import numpy as np
import torch

from depara_core.atomic import remove_stale_temporaries
from depara_core.compare.baselines import BASELINES_VERSION
from depara_core.compare.terms import BASELINES, SimilarityTerms
from depara_core.engine.graph import Graph, GraphOptions
from depara_core.engine.pieces import LayerPieces
from depara_core.errors import CacheError, ProbeError
from depara_core.models.spec import LoadedModel
from depara_core.probes.probeset import ProbeSet
from depara_core.store import CacheWriteWarning, default_cache_dir, entry_path, read_entry, write_entry

__all__ = ["GraphCache", "RunCheckpoints", "CacheWriteWarning", "ENGINE_VERSION", "default_cache_dir"]

ENGINE_VERSION = "2"
"""Bumped whenever stored graphs or terms would change for the same inputs (2: preprocessing from
the architectures' metadata, torchvision's crop rounding, model code in the keys)."""


class GraphCache:
    """Graphs and similarity terms on disk under ``root``."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(f"cannot create the cache folder {str(self.root)!r} ({exc})", "set DEPARA_CACHE_DIR to a writable folder") from None
        remove_stale_temporaries(self.root)  # left by writers that were killed mid-write

    # ---- keys ------------------------------------------------------------------------------
    @staticmethod
    def key(parts: dict) -> str:
        blob = json.dumps({"engine": ENGINE_VERSION, **parts}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    @staticmethod
    def graph_key(model: LoadedModel, probes: ProbeSet, layer: str, options: GraphOptions) -> str:
        """The key of one graph: weights, architecture and source, layer, probes, preprocessing, options."""
        return GraphCache.key(
            {
                "kind": "graph",
                "weights": model.digest,
                "architecture": model.architecture,
                "source": model.spec.source,
                "layer": layer,
                "probes": probes.digest,
                "preprocess": model.spec.preprocess.describe(),
                "options": options.key(),
            }
        )

    def _path(self, kind: str, key: str) -> Path:
        return entry_path(self.root, kind, key)

    # ---- locks -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self, keys: Iterable[str]) -> Iterator[None]:
        """Hold the file lock of every key (taken in sorted order, so two holders never deadlock).

        Whoever holds a key's lock is the only process computing that entry; a second process waits,
        then finds the entry on disk. Locks are released when their holder exits, also when killed.
        """
        with contextlib.ExitStack() as stack:
            for key in sorted(set(keys)):
                path = self.root / "locks" / key[:2] / f"{key}.lock"
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    stack.enter_context(filelock.FileLock(path))
                except OSError as exc:  # the folder is gone or read-only: compute without the lock
                    warnings.warn(f"could not lock the cache entry {key[:12]} ({exc.strerror or exc})", CacheWriteWarning, stacklevel=3)
            yield

    # ---- atomic storage --------------------------------------------------------------------
    def _write(self, path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
        write_entry(path, arrays, meta)

    def _read(self, path: Path) -> tuple[dict[str, np.ndarray], dict] | None:
        return read_entry(path)

    # ---- graphs ----------------------------------------------------------------------------
    def store_graph(self, model: LoadedModel, probes: ProbeSet, graph: Graph) -> Path:
        path = self._path("graphs", self.graph_key(model, probes, graph.layer, graph.options))
        meta = {
            "model": graph.model,
            "layer": graph.layer,
            "probe_ids": list(graph.probe_ids),
            "probe_digest": graph.probe_digest,
            "node_shape": list(graph.node_shape),
            "feature_dim": graph.feature_dim,
            "options": {**asdict(graph.options), "method_params": [list(p) for p in graph.options.method_params]},
            "sketched": graph.sketched,
            "model_digest": graph.model_digest,
            "notes": list(graph.notes),
        }
        arrays = {"nodes": graph.nodes, "node_norms": graph.node_norms, "gram": graph.gram, "feature_sums": graph.feature_sums}
        self._write(path, arrays, meta)
        return path

    def has_graph(self, model: LoadedModel, probes: ProbeSet, layer: str, options: GraphOptions) -> bool:
        """Whether an entry for this graph is on disk (without reading it)."""
        return self._path("graphs", self.graph_key(model, probes, layer, options)).is_file()

    def load_graph(self, model: LoadedModel, probes: ProbeSet, layer: str, options: GraphOptions) -> Graph | None:
        """The cached graph, renamed to ``model.name``; None on a miss."""
        hit = self._read(self._path("graphs", self.graph_key(model, probes, layer, options)))
        if hit is None:
            return None
        arrays, meta = hit
        if tuple(meta["probe_ids"]) != probes.ids:
            return None
        return Graph(
            model=model.name,
            layer=layer,
            probe_ids=probes.ids,
            probe_digest=probes.digest,
            nodes=arrays["nodes"],
            node_norms=arrays["node_norms"],
            node_shape=tuple(meta["node_shape"]),
            gram=arrays["gram"],
            feature_sums=arrays["feature_sums"],
            feature_dim=int(meta["feature_dim"]),
            options=options,
            sketched=bool(meta["sketched"]),
            model_digest=meta["model_digest"],
            notes=tuple(meta.get("notes", ())),
        )

    # ---- per-probe pieces: probe shards and the checkpoints of stopped runs ------------------
    def pieces_path(self, kind: str, key: str, part: str = "") -> Path:
        """Where the pieces of graph ``key`` go: ``kind`` is ``shards`` (``part``: the probe range)
        or ``partial`` (a stopped run's checkpoint)."""
        return self.root / kind / key[:2] / (f"{key}-{part}.npz" if part else f"{key}.npz")

    def store_pieces(self, path: Path, pieces: LayerPieces) -> None:
        units = pieces.units.cpu().numpy() if isinstance(pieces.units, torch.Tensor) else np.asarray(pieces.units)
        meta = {"layer": pieces.layer, "node_shape": list(pieces.node_shape), "feature_dim": pieces.feature_dim, "sketched": pieces.sketched,
                "notes": list(pieces.notes), "block_bytes": pieces.block_bytes}  # fmt: skip
        arrays = {"nodes": pieces.nodes, "node_norms": pieces.node_norms, "units": units, "feature_norms": pieces.feature_norms.cpu().numpy(),
                  "feature_sums": pieces.feature_sums}  # fmt: skip
        self._write(path, arrays, meta)

    def load_pieces(self, path: Path) -> LayerPieces | None:
        """Pieces written by :meth:`store_pieces`; None when missing or unreadable."""
        hit = self._read(path)
        if hit is None:
            return None
        a, meta = hit
        return LayerPieces(meta["layer"], a["nodes"], a["node_norms"], torch.from_numpy(a["units"]), torch.from_numpy(a["feature_norms"]), a["feature_sums"],
                           tuple(meta["node_shape"]), int(meta["feature_dim"]), bool(meta["sketched"]), tuple(meta["notes"]), int(meta["block_bytes"]))  # fmt: skip

    def checkpoints(self, model: LoadedModel, probes: ProbeSet, options: GraphOptions) -> RunCheckpoints:
        """Where a run of ``model`` on ``probes`` keeps a stopped layer group's pieces, under each graph's key."""
        return RunCheckpoints(self, lambda layer: self.graph_key(model, probes, layer, options))

    # ---- probe sets (read by workers on other processes or machines) ------------------------
    def store_probes(self, probes: ProbeSet) -> Path:
        """Keep ``probes`` under its digest so that another process can read it with :meth:`load_probes`."""
        path = self._path("probes", probes.digest)
        if not path.is_file():
            self._write(path, {"images": probes.images, "ids": np.array(probes.ids)}, {"name": probes.name, "licence": probes.licence, "notes": list(probes.notes)})
        return path

    def load_probes(self, digest: str) -> ProbeSet:
        """The probe set stored under ``digest``; its pixels are hashed again and must match."""
        hit = self._read(self._path("probes", digest))
        if hit is None:
            raise CacheError(f"the probe set {digest[:12]} is not in the cache folder {str(self.root)!r}",
                             "use a cache folder that every node of the cluster sees (--cache-dir on a shared file system)")  # fmt: skip
        arrays, meta = hit
        probes = ProbeSet(arrays["images"], tuple(str(i) for i in arrays["ids"]), meta["name"], meta["licence"], tuple(meta["notes"]))
        if probes.digest != digest:
            raise ProbeError(f"the stored probe set {digest[:12]} does not match its digest", "clear the cache folder and run again")
        return probes

    # ---- similarity terms ------------------------------------------------------------------
    @staticmethod
    def terms_key(graph_keys: list[str], names: list[str], options: GraphOptions, baselines: bool, node_scale: float) -> str:
        """The key of a zoo's terms: its graphs' keys and names, and every option that changes the
        terms but not the stored graphs (edge centring, baselines, node scale)."""
        return GraphCache.key(
            {"kind": "terms", "graphs": graph_keys, "names": names, "terms_options": options.terms_key(), "baselines": baselines, "node_scale": node_scale,
             **({"baseline_set": list(BASELINES), "baselines_version": BASELINES_VERSION} if baselines else {})}
        )  # fmt: skip

    def store_terms(self, key: str, terms: SimilarityTerms) -> Path:
        path = self._path("terms", key)
        self._write(path, *terms.to_entry())
        return path

    def load_terms(self, key: str) -> SimilarityTerms | None:
        hit = self._read(self._path("terms", key))
        return None if hit is None else SimilarityTerms.from_entry(*hit)

    def clear(self) -> None:
        """Remove every entry and the temporary files of killed writers; a live writer's temporary
        file is left alone, so clearing while another process writes never breaks that writer."""
        for p in self.root.rglob("*.npz"):
            with contextlib.suppress(OSError):
                p.unlink()
        remove_stale_temporaries(self.root)


@dataclass(frozen=True)
class RunCheckpoints:
    """The engine's :class:`~depara_core.engine.pieces.Checkpoints` in a graph cache: a stopped run's
    pieces of each layer, stored under the layer's graph key (so they resume only the same graph)."""

    cache: GraphCache
    key_of: Callable[[str], str]

    def _path(self, layer: str) -> Path:
        return self.cache.pieces_path("partial", self.key_of(layer))

    def load(self, layer: str) -> LayerPieces | None:
        return self.cache.load_pieces(self._path(layer))

    def save(self, pieces: LayerPieces) -> None:
        self.cache.store_pieces(self._path(pieces.layer), pieces)

    def discard(self, layer: str) -> None:
        with contextlib.suppress(OSError):
            self._path(layer).unlink(missing_ok=True)
