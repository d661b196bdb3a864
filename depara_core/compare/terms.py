"""Model selection (Eq. 5), layer selection (Eq. 6) and the task similarity tree.

The λ-independent terms of a zoo (s_V, s_E, RSA, CKA for every pair) are computed once; any λ is
then a cheap linear combination.

>>> import numpy as np
>>> t = SimilarityTerms(("a", "b", "c"), np.eye(3), np.eye(3) * 0 + 0.5)
>>> float(t.combined(2.0)[0, 1]), [name for name, _ in t.rank_sources("a", 2.0)]
(1.0, ['b', 'c'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from depara_core.compare.baselines import (
    centred_spectrum,
    dds_matrix,
    debiased_cka_matrix,
    h_score_matrix,
    logme_matrix,
    nce_matrix,
    pseudo_classes,
)
from depara_core.compare.pairwise import (
    check_comparable,
    node_similarity,
    probe_cosines,
    rsa_dissimilarity,
    upper_triangle,
)
from depara_core.compare.ranks import spearman_matrix
from depara_core.engine.gram import center_gram, edges_from_gram
from depara_core.engine.graph import Graph
from depara_core.errors import DeparaError, GraphError

__all__ = ['METHODS', 'BASELINES', 'UNBOUNDED', 'ALL_METHODS', 'LAMBDA_METHODS', 'SimilarityTerms', 'pairwise_terms', 'weighting_formula']


METHODS = ("DEPARA", "DEPARA-V", "DEPARA-E", "RSA", "CKA")
"""The paper's methods and its baselines, in display order: the one list the library, the CLI and
the app use."""
BASELINES = ("DEPARA centred", "DEPARA-E centred", "debiased CKA", "DDS", "PL-LogME", "PL-H-score", "PL-NCE")
"""Further label-free estimators (:mod:`depara_core.compare.baselines`): DEPARA and its edge term
with features centred over probes before the edges (the original code's convention), debiased
linear CKA, duality diagram similarity and the pseudo-label estimators: LogME, H-score and NCE."""
UNBOUNDED = ("PL-LogME", "PL-H-score", "PL-NCE")
"""The pseudo-label estimators: scores on their own scales (evidence, H-score, −entropy), not in [-1, 1]."""
ALL_METHODS = METHODS + BASELINES
LAMBDA_METHODS = ("DEPARA", "DEPARA centred")
"""The methods that λ changes; every other one ignores it."""


def weighting_formula(node_scale: float, lam: float) -> str:
    """``s = s_V + λ·s_E`` with the numbers filled in (a node scale of 1 is left out)."""
    node = "s_V" if node_scale == 1.0 else f"{node_scale:g}·s_V"
    return f"s = {node} + {lam:g}·s_E"


@dataclass(frozen=True)
class SimilarityTerms:
    """Pairwise λ-independent similarity matrices of a zoo (rows: source i, columns: target j)."""

    names: tuple[str, ...]
    s_V: np.ndarray = field(repr=False)
    s_E: np.ndarray = field(repr=False)
    rsa: np.ndarray | None = field(default=None, repr=False)
    cka: np.ndarray | None = field(default=None, repr=False)
    node_scale: float = 1.0
    baselines: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)
    """Matrices of the further estimators, keyed by their names in :data:`BASELINES`."""

    def to_entry(self) -> tuple[dict[str, np.ndarray], dict]:
        """The arrays and JSON header these terms are stored as (:mod:`depara_core.store`).

        >>> t = SimilarityTerms(("a", "b"), np.eye(2), np.ones((2, 2)), baselines={"DDS": np.eye(2)})
        >>> back = SimilarityTerms.from_entry(*t.to_entry())
        >>> back.names, back.baselines["DDS"].tolist(), back.rsa is None
        (('a', 'b'), [[1.0, 0.0], [0.0, 1.0]], True)
        """
        arrays = {"s_V": self.s_V, "s_E": self.s_E}
        if self.rsa is not None:
            arrays["rsa"] = self.rsa
        if self.cka is not None:
            arrays["cka"] = self.cka
        arrays.update({f"baseline{i}": m for i, m in enumerate(self.baselines.values())})
        return arrays, {"names": list(self.names), "node_scale": self.node_scale, "baselines": list(self.baselines)}

    @classmethod
    def from_entry(cls, arrays: Mapping[str, np.ndarray], meta: Mapping) -> SimilarityTerms:
        """Terms back from :meth:`to_entry`'s arrays and header."""
        extra = {name: arrays[f"baseline{i}"] for i, name in enumerate(meta.get("baselines", []))}
        return cls(tuple(meta["names"]), arrays["s_V"], arrays["s_E"], arrays.get("rsa"), arrays.get("cka"), meta["node_scale"], extra)

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods these terms can score, in display order."""
        have = {"RSA": self.rsa is not None, "CKA": self.cka is not None, "DEPARA centred": "DEPARA-E centred" in self.baselines}
        return tuple(m for m in ALL_METHODS if have.get(m, m in METHODS or m in self.baselines))

    def index(self, name: str) -> int:
        if name not in self.names:
            raise DeparaError(f"no model named {name!r} in this zoo", f"choose one of: {', '.join(self.names)}")
        return self.names.index(name)

    def combined(self, lam: float) -> np.ndarray:
        """s(λ) = node_scale·s_V + λ·s_E for every pair."""
        return self.node_scale * self.s_V + lam * self.s_E

    def matrix(self, method: str = "DEPARA", lam: float = 1.0) -> np.ndarray:
        """The score matrix of a method of :data:`ALL_METHODS` (DEPARA: s(λ); DEPARA centred:
        node_scale·s_V + λ·s_E with centred edges)."""
        if method not in ALL_METHODS:
            raise DeparaError(f"unknown method {method!r}", f"choose one of: {', '.join(ALL_METHODS)}")
        if method == "DEPARA":
            return self.combined(lam)
        table = {"DEPARA-V": self.s_V, "DEPARA-E": self.s_E, "RSA": self.rsa, "CKA": self.cka, **self.baselines}
        if method == "DEPARA centred":
            centred = self.baselines.get("DEPARA-E centred")
            m = None if centred is None else self.node_scale * self.s_V + lam * centred
        else:
            m = table.get(method)
        if m is None:
            raise DeparaError(f"{method} was not computed for this zoo", "compute the terms with baselines=True")
        return m

    def fixed_range(self, method: str, lam: float = 1.0) -> tuple[float, float] | None:
        """The range a method's scores can take, for colour scales that compare across settings:
        [0, node_scale + λ] for the λ methods, [-1, 1] for correlations and CKA, None for the
        pseudo-label estimators (:data:`UNBOUNDED`)."""
        if method in LAMBDA_METHODS:
            return 0.0, self.node_scale + lam
        return None if method in UNBOUNDED else (-1.0, 1.0)

    def formula(self, lam: float) -> str:
        """The weighting as shown to people: ``s = s_V + 1·s_E``, or ``s = 0.001·s_V + 0.25·s_E``."""
        return weighting_formula(self.node_scale, lam)

    def method_label(self, method: str, lam: float) -> str:
        """A method's name with the weighting that produced its scores (the λ methods), else the name.

        >>> t = SimilarityTerms(("a", "b"), np.eye(2), np.eye(2), node_scale=1e-3)
        >>> t.method_label("DEPARA", 0.25), t.method_label("DEPARA centred", 1), t.method_label("CKA", 2)
        ('s = 0.001·s_V + 0.25·s_E', 's = 0.001·s_V + 1·s_E (centred edges)', 'CKA')
        """
        if method == "DEPARA":
            return self.formula(lam)
        return f"{self.formula(lam)} (centred edges)" if method == "DEPARA centred" else method

    def rank_sources(self, target: str, lam: float = 1.0, method: str = "DEPARA") -> list[tuple[str, float]]:
        """Sources for ``target``, best first, by descending score (Eq. 5); the target is left out."""
        j = self.index(target)
        col = self.matrix(method, lam)[:, j]
        order = [i for i in np.argsort(-col, kind="stable") if i != j]
        return [(self.names[i], float(col[i])) for i in order]

    def score_table(self, lam: float = 1.0, method: str = "DEPARA") -> dict[str, dict[str, float]]:
        """{target: {source: score}} for every target, without the diagonal."""
        m = self.matrix(method, lam)
        return {t: {s: float(m[i, j]) for i, s in enumerate(self.names) if i != j} for j, t in enumerate(self.names)}


def pairwise_terms(graphs: Mapping[str, Graph], baselines: bool = True, node_scale: float = 1.0) -> SimilarityTerms:
    """s_V and s_E (and, with ``baselines``, RSA, CKA and every estimator of :data:`BASELINES`)
    for every pair of graphs, keyed by model name.

    s_E goes through standardised edge ranks, so the M(M-1)/2 Spearman correlations are one
    matrix product; tests check it against ``scipy.stats.spearmanr``.
    """
    names = tuple(graphs)
    gs = [graphs[k] for k in names]
    if len(gs) < 2:
        raise DeparaError("a zoo needs at least two models to compare", "add another model")
    for g in gs[1:]:
        check_comparable(gs[0], g)
    s_v = _node_matrix(gs)
    s_e = spearman_matrix(np.stack([upper_triangle(g.edges) for g in gs]))
    rsa = cka = None
    if baselines:
        rsa = spearman_matrix(np.stack([upper_triangle(rsa_dissimilarity(g)) for g in gs]))
        grams = np.stack([center_gram(g.gram).ravel() for g in gs])
        norms = np.linalg.norm(grams, axis=1)
        if np.any(norms == 0):
            bad = [names[i] for i in np.flatnonzero(norms == 0)]
            raise GraphError(f"features of {', '.join(bad)} are constant across probes: CKA is undefined", "choose another layer")
        grams /= norms[:, None]
        cka = grams @ grams.T
        np.fill_diagonal(rsa, 1.0)
        np.fill_diagonal(cka, 1.0)
    return SimilarityTerms(names, s_v, s_e, rsa, cka, node_scale, _baselines(gs) if baselines else {})


def _baselines(gs: Sequence[Graph]) -> dict[str, np.ndarray]:
    centred = spearman_matrix(np.stack([upper_triangle(edges_from_gram(g.gram, center=True)) for g in gs]))
    spectra = [centred_spectrum(g.gram) for g in gs]  # one eigendecomposition per network for the three estimators
    classes = [pseudo_classes(g.gram, spectrum=c) for g, c in zip(gs, spectra)]  # one k-means per network, for both class-based estimators
    out = {
        "DEPARA-E centred": centred,
        "PL-LogME": logme_matrix(gs, spectra=spectra),
        "PL-H-score": h_score_matrix(gs, classes, spectra),
        "PL-NCE": nce_matrix(gs, classes),
    }
    if len(gs[0]) >= 4:  # U-centring (debiased HSIC) needs four probes
        out.update({"debiased CKA": debiased_cka_matrix([g.gram for g in gs]), "DDS": dds_matrix(gs)})
    return {m: out[m] for m in BASELINES if m in out}


def _node_matrix(gs: Sequence[Graph]) -> np.ndarray:
    """s_V for every pair: the per-probe cosines of :func:`probe_cosines`, averaged over probes.

    Graphs whose maps differ in size go pair by pair through :func:`node_similarity` (resampling).
    """
    m = len(gs)
    if len({(g.nodes.shape, g.node_shape, g.sketched) for g in gs}) > 1:
        s_v = np.eye(m)
        for i in range(m):
            for j in range(i + 1, m):
                s_v[i, j] = s_v[j, i] = node_similarity(gs[i], gs[j])
        return s_v
    s_v = probe_cosines([g.nodes for g in gs]).mean(axis=0)
    np.fill_diagonal(s_v, 1.0)
    return s_v
