"""Label-free transferability baselines beyond RSA and linear CKA, from the graphs' stored feature
Gram matrices (no further pass over the models):

- **debiased CKA**: linear CKA with the unbiased HSIC estimator (U-centred Gram matrices,
  Kornblith et al., ICML 2019), which removes linear CKA's upward bias at few probes;
- **DDS**: duality diagram similarity (Dwivedi et al., ECCV 2020) as in the authors' reference code
  (``cvai-roig-lab/duality-diagram-similarity``): a kernel or distance matrix over the probes per
  network, compared by debiased CKA. The kernels that a Gram matrix determines are offered: ``rbf``
  (bandwidth half the median distance, the reference's setting; the default), ``euclidean`` and
  ``pearson`` distance matrices (the latter with features centred over probes, the reference's
  ``centering`` normalisation, as in RSA). The paper's best Taskonomy variant z-scores each feature first and
  uses a Laplacian (L1) kernel; both need the raw features, which graphs do not keep;
- **pseudo-label LogME**: LogME (You et al., ICML 2021), the log marginal evidence of a Bayesian
  linear regression from a source's features, with the *target network's own* top principal
  components on the probes as the regression targets (no labels: the same inputs DEPARA uses).
  Computed in the dual (from the n×n Gram matrix), which gives LogME's evidence exactly: features
  enter LogME only through their singular values and left singular vectors.
- **pseudo-label H-score**: the shrinkage-regularised H-score (Ibrahim et al., NeurIPS 2021: Ledoit-Wolf
  covariance, the reference's ``np.cov`` of the class means) of the source's features for classes
  that k-means finds among the target network's top principal components; in the dual as well
  (the Ledoit-Wolf shrinkage needs only the centred Gram matrix and the feature dimension);
- **pseudo-label NCE**: negative conditional entropy (Tran et al., ICCV 2019) of the target's k-means
  classes given the source's, both found the same way: −H(Y_target | Y_source), at most 0.

Every matrix has sources as rows and targets as columns, like :class:`~.terms.SimilarityTerms`.
The tests check each against a direct computation from the features (the reference algorithms).

>>> import numpy as np
>>> x = np.random.default_rng(0).normal(size=(12, 5))
>>> k = x @ x.T
>>> round(float(debiased_cka(k, k)), 6), round(float(debiased_cka(k, (2 * x + 1) @ (2 * x + 1).T)), 6)
(1.0, 1.0)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np

from depara_core.compare.device import compute_device, read_only_tensor
from depara_core.compare.pairwise import rsa_dissimilarity
from depara_core.engine.gram import center_gram, squared_distances, u_center_gram
from depara_core.engine.graph import Graph
from depara_core.errors import GraphError

__all__ = [
    "BASELINES_VERSION", "DDS_KERNELS", "PSEUDO_LABELS", "PSEUDO_CLASSES", "debiased_cka", "debiased_cka_matrix", "dds_kernel", "dds_matrix",
    "centred_spectrum", "eigh_on", "logme_evidence", "logme_matrix", "ledoit_wolf_shrinkage", "h_score", "pseudo_classes", "h_score_matrix", "nce", "nce_matrix",
]  # fmt: skip

DDS_KERNELS = ("rbf", "euclidean", "pearson")
BASELINES_VERSION = "2"
"""Bumped whenever a baseline's numbers change for the same graphs (it is part of the terms' cache key)."""
PSEUDO_LABELS = 16
"""Principal components of the target network's features used as pseudo-labels by default."""
PSEUDO_CLASSES = 8
"""k-means classes among those components, for the pseudo-label H-score and NCE."""


def debiased_cka(gram_a: np.ndarray, gram_b: np.ndarray) -> float:
    """Debiased CKA of two kernel (or distance) matrices over the same probes."""
    ua, ub = u_center_gram(gram_a), u_center_gram(gram_b)
    den = np.linalg.norm(ua) * np.linalg.norm(ub)
    return float(np.sum(ua * ub) / den) if den > 0 else 0.0


def debiased_cka_matrix(mats: Sequence[np.ndarray]) -> np.ndarray:
    """Debiased CKA between every pair of matrices, as one product of U-centred, normalised matrices."""
    flat = np.stack([u_center_gram(m).ravel() for m in mats])
    norms = np.linalg.norm(flat, axis=1)
    flat = np.divide(flat, norms[:, None], out=np.zeros_like(flat), where=norms[:, None] > 0)
    out = flat @ flat.T
    np.fill_diagonal(out, 1.0)
    return out


def dds_kernel(g: Graph, kernel: Literal["rbf", "euclidean", "pearson"] = "rbf") -> np.ndarray:
    """The probe-by-probe matrix DDS compares for one graph (see the module docstring)."""
    if kernel == "rbf":
        d2 = squared_distances(g.gram)
        med = float(np.median(d2))
        if med <= 0:
            raise GraphError(f"features of {g.model}/{g.layer} are equal for most probes: the RBF bandwidth is undefined", "choose another layer")
        return np.exp(-d2 / (2 * 0.5**2 * med))
    if kernel == "euclidean":
        return np.sqrt(squared_distances(g.gram))
    if kernel == "pearson":
        return rsa_dissimilarity(g)
    raise ValueError(f"unknown DDS kernel {kernel!r}; choose one of {', '.join(DDS_KERNELS)}")


def dds_matrix(graphs: Sequence[Graph], kernel: Literal["rbf", "euclidean", "pearson"] = "rbf") -> np.ndarray:
    """DDS between every pair of graphs: debiased CKA of their :func:`dds_kernel` matrices."""
    return debiased_cka_matrix([dds_kernel(g, kernel) for g in graphs])


def _spectrum(gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-zero eigenvalues (squared singular values of the features) and their eigenvectors, in
    float64; on the GPU for large matrices when there is one (:func:`~.device.compute_device`): the
    eigendecompositions are most of the baselines' time (two per graph, O(n³) each)."""
    g = np.asarray(gram, np.float64)
    device = compute_device(g.size)
    s, u = np.linalg.eigh(g) if device.type == "cpu" else eigh_on(g, device)
    keep = s > max(float(s.max()), 0.0) * 1e-10
    return s[keep], u[:, keep]


def eigh_on(matrix: np.ndarray, device) -> tuple[np.ndarray, np.ndarray]:
    """``numpy.linalg.eigh`` of a symmetric float64 matrix computed by torch on ``device`` (ascending
    eigenvalues, eigenvectors as columns), returned as host arrays."""
    import torch  # imported where used: figures draw kept results without loading torch

    s, u = torch.linalg.eigh(read_only_tensor(np.asarray(matrix, np.float64)).to(device))
    return s.cpu().numpy(), u.cpu().numpy()


def centred_spectrum(gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_spectrum` of the centred Gram matrix: the principal components' variances (times n)
    and directions. LogME's pseudo-labels, the pseudo-classes and the H-score all start from it;
    :func:`~depara_core.compare.terms.pairwise_terms` computes it once per graph for all three."""
    return _spectrum(center_gram(gram))


def _principal_components(gram: np.ndarray, count: int, spectrum: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Scores of the top ``count`` principal components of the features over the probes (n, k)."""
    s, u = spectrum if spectrum is not None else centred_spectrum(gram)
    top = np.argsort(-s)[:count]
    return u[:, top] * np.sqrt(s[top])


def logme_evidence(s: np.ndarray, u: np.ndarray, y: np.ndarray, max_iter: int = 11, tol: float = 0.01) -> np.ndarray:
    """LogME's evidence per probe for each column of ``y`` (n, k), from the features' non-zero
    eigenvalues ``s`` and eigenvectors ``u`` of their Gram matrix.

    The fixed-point iteration of α (prior precision) and β (noise precision) follows the reference
    algorithm step by step (start at 1, at most 11 steps, stop when α/β changes by under 1%), so
    that the numbers equal the primal computation on the features.
    """
    n = u.shape[0]
    y = np.asarray(y, np.float64).reshape(n, -1)
    z = u.T @ y  # coordinates of the labels in the features' span (r, k)
    z2 = z * z
    outside = np.maximum(np.sum(y * y, axis=0) - z2.sum(axis=0), 0.0)  # label energy no feature reaches
    k = y.shape[1]
    alpha, beta, lam = np.ones(k), np.ones(k), np.ones(k)
    m2, res2 = np.zeros(k), np.zeros(k)
    active = np.ones(k, dtype=bool)
    sc = s[:, None]
    for _ in range(max_iter):
        gamma = (sc / (sc + lam)).sum(axis=0)
        den = alpha + beta * sc
        new_m2 = (beta**2 * sc * z2 / den**2).sum(axis=0)  # ‖m‖², m the posterior mean weights
        new_res2 = (alpha**2 * z2 / den**2).sum(axis=0) + outside  # ‖y − F m‖²
        new_alpha = gamma / (new_m2 + 1e-5)
        new_beta = (n - gamma) / (new_res2 + 1e-5)
        alpha, beta = np.where(active, new_alpha, alpha), np.where(active, new_beta, beta)
        m2, res2 = np.where(active, new_m2, m2), np.where(active, new_res2, res2)
        new_lam = alpha / beta
        converged = np.abs(new_lam - lam) / lam < tol
        lam = np.where(active & ~converged, new_lam, lam)
        active &= ~converged
        if not active.any():
            break
    evidence = (
        len(s) / 2 * np.log(alpha)
        + n / 2 * np.log(beta)
        - 0.5 * np.log(alpha + beta * sc).sum(axis=0)
        - beta / 2 * res2
        - alpha / 2 * m2
        - n / 2 * np.log(2 * np.pi)
    )
    return evidence / n


def logme_matrix(graphs: Sequence[Graph], pseudo_labels: int = PSEUDO_LABELS, spectra: Sequence[tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
    """Pseudo-label LogME of every source (rows) for every target (columns): the mean evidence of
    the source's features for the target's top ``pseudo_labels`` principal components
    (``spectra``: the graphs' :func:`centred_spectrum`, where the caller has them)."""
    own = [_spectrum(g.gram) for g in graphs]  # of the uncentred Gram: LogME's linear model has no intercept
    for g, (s, _) in zip(graphs, own):
        if len(s) == 0:
            raise GraphError(f"features of {g.model}/{g.layer} are zero for every probe: LogME is undefined", "choose another layer")
    labels = [_principal_components(g.gram, pseudo_labels, c) for g, c in zip(graphs, spectra or [None] * len(graphs))]
    every = np.concatenate(labels, axis=1)  # every target's components at once: each column is fitted on its own
    ends = np.cumsum([y.shape[1] for y in labels])
    out = np.empty((len(graphs), len(graphs)))
    for i, (s, u) in enumerate(own):
        evidence = logme_evidence(s, u, every)
        out[i] = [float(np.mean(evidence[end - y.shape[1] : end])) if y.shape[1] else 0.0 for y, end in zip(labels, ends)]
    return out


def ledoit_wolf_shrinkage(centred_gram: np.ndarray, feature_dim: int) -> tuple[float, float]:
    """Ledoit-Wolf shrinkage of the features' covariance (as :func:`sklearn.covariance.ledoit_wolf`)
    and the mean variance it shrinks towards, from the *centred* Gram matrix of n probes and the
    features' dimension: every sum that estimator needs is a sum over the Gram's entries."""
    k = np.asarray(centred_gram, np.float64)
    n, d = len(k), int(feature_dim)
    trace = float(np.trace(k))
    mu = trace / (n * d)
    row_norms4 = float(np.sum(np.diag(k) ** 2))  # Σ_k ‖x_k‖⁴
    cov_sq = float(np.sum(k * k)) / n**2  # ‖XᵀX‖²_F / n² = ‖XXᵀ‖²_F / n²
    beta = (row_norms4 / n - cov_sq) / (d * n)
    delta = (cov_sq - 2.0 * mu * trace / n + d * mu**2) / d
    beta = min(beta, delta)
    return (0.0 if beta <= 0 else beta / delta), mu


def h_score(gram: np.ndarray, labels: np.ndarray, feature_dim: int) -> float:
    """Shrinkage-regularised H-score tr(Σ_α⁻¹ (1−α) cov(E[f|y])) of features with Gram matrix ``gram``
    for class ``labels`` (Σ_α: the Ledoit-Wolf covariance; cov with n − 1, as the reference code).

    In the eigenbasis of the centred Gram (Fc = U S Vᵀ) both covariances are diagonal or live in V's
    span, so the trace is a sum over the n probes' components: no d×d matrix is formed."""
    weights, u = _h_score_basis(gram, feature_dim)
    return float((_between(u, *_class_indicators([np.asarray(labels).ravel()])) @ weights)[0])


def _h_score_basis(gram: np.ndarray, feature_dim: int, spectrum: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per component of the centred Gram, its weight in the H-score, and the components (n, r)."""
    k = center_gram(gram)
    n = len(k)
    alpha, mu = ledoit_wolf_shrinkage(k, feature_dim)
    lam, u = spectrum if spectrum is not None else _spectrum(k)
    if len(lam) == 0 or mu <= 0:
        raise GraphError("the features are constant across probes: the H-score is undefined", "choose another layer")
    return (1 - alpha) / (n - 1) * lam / ((1 - alpha) * lam / n + alpha * mu), u


def _class_indicators(labellings: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The one-hot class indicators of several labellings of the probes side by side (n, classes in
    all), and where each labelling's columns start."""
    blocks = [np.eye(int(y.max()) + 1)[y] for y in (np.unique(labels, return_inverse=True)[1] for labels in labellings)]
    return np.concatenate(blocks, axis=1), np.cumsum([0] + [b.shape[1] for b in blocks[:-1]])


def _between(u: np.ndarray, onehot: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """diag(Uᵀ P_j U) for each labelling j of :func:`_class_indicators` (P_j: the projection onto
    its class means), one row per labelling: every labelling in one matrix product."""
    per_class = (onehot.T @ u) ** 2 / onehot.sum(axis=0)[:, None]
    return np.add.reduceat(per_class, starts, axis=0)


def pseudo_classes(
    gram: np.ndarray, classes: int = PSEUDO_CLASSES, components: int = PSEUDO_LABELS, spectrum: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """Classes of the probes from a network's own features: k-means (k-means++, fixed seed) of their
    top principal components. Fewer classes come back when clusters stay empty."""
    from scipy.cluster.vq import kmeans2

    pcs = _principal_components(gram, components, spectrum)
    if pcs.shape[1] == 0:
        return np.zeros(len(gram), dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty cluster: that class is simply absent
        _, labels = kmeans2(pcs, min(classes, len(gram)), iter=50, minit="++", seed=np.random.default_rng(0))
    return np.unique(labels, return_inverse=True)[1]


def h_score_matrix(
    graphs: Sequence[Graph], labels: Sequence[np.ndarray] | None = None, spectra: Sequence[tuple[np.ndarray, np.ndarray]] | None = None
) -> np.ndarray:
    """Pseudo-label H-score of every source (rows) for every target's classes (columns; by default
    :func:`pseudo_classes` of each graph)."""
    labels = labels if labels is not None else [pseudo_classes(g.gram) for g in graphs]
    onehot, starts = _class_indicators(labels)
    out = np.empty((len(graphs), len(graphs)))
    for i, src in enumerate(graphs):
        weights, u = _h_score_basis(src.gram, src.feature_dim, spectra[i] if spectra is not None else None)  # once per source, for every target
        out[i] = _between(u, onehot, starts) @ weights
    return out


def nce(source_labels: np.ndarray, target_labels: np.ndarray) -> float:
    """Negative conditional entropy −H(Y_target | Y_source) (nats) of two labellings of the probes."""
    _, a = np.unique(source_labels, return_inverse=True)
    _, b = np.unique(target_labels, return_inverse=True)
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    joint /= joint.sum()
    p_source = joint.sum(axis=1, keepdims=True)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log((joint / p_source)[nz])))


def nce_matrix(graphs: Sequence[Graph], labels: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Pseudo-label NCE of every source's classes (rows) for every target's (columns; by default
    :func:`pseudo_classes` of each graph)."""
    labels = labels if labels is not None else [pseudo_classes(g.gram) for g in graphs]
    return np.array([[nce(a, b) for b in labels] for a in labels])
