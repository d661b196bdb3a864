"""Comparing two DEPARA graphs: s_V, s_E and s = s_V + λ·s_E, plus the RSA and linear CKA baselines.

>>> import numpy as np
>>> from depara_core.engine.gram import edges_from_gram
>>> float(np.round(edges_from_gram(np.array([[4.0, 2.0], [2.0, 4.0]]))[0, 1], 3))
0.5
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from depara_core.compare.device import compute_device, read_only_tensor
from depara_core.compare.ranks import spearman
from depara_core.engine.gram import center_gram
from depara_core.engine.graph import Graph
from depara_core.errors import GraphError

__all__ = ['check_comparable', 'upper_triangle', 'comparable_nodes', 'node_cosines', 'node_similarity', 'edge_similarity', 'depara_similarity', 'probe_cosines', 'rsa_dissimilarity', 'rsa_similarity', 'cka_similarity']


def check_comparable(a: Graph, b: Graph) -> None:
    """Graphs compare only on the same probes in the same order."""
    if a.probe_digest != b.probe_digest or a.probe_ids != b.probe_ids:
        raise GraphError(
            f"graphs {a.model}/{a.layer} and {b.model}/{b.layer} were built on different probe sets",
            "compute both on the same probes",
        )


def upper_triangle(m: np.ndarray) -> np.ndarray:
    """The n(n-1)/2 entries above the diagonal, row by row."""
    i, j = np.triu_indices(m.shape[0], k=1)
    return np.asarray(m)[i, j]


def node_cosines(a: Graph, b: Graph) -> np.ndarray:
    """Per-probe cosine between the two graphs' attribution maps.

    Maps of different resolutions (models with different input sizes) are compared on the
    coarser grid: each is area-averaged to it, on the assumption that both preprocessings see the
    same field of view of each probe.
    """
    check_comparable(a, b)
    maps = (a.nodes, b.nodes) if _same_grid(a, b) else comparable_nodes(a, b)
    return probe_cosines(maps)[:, 0, 1]


def probe_cosines(nodes: Sequence[np.ndarray], chunk_bytes: int = 2**28) -> np.ndarray:
    """For each probe, the cosine between every two of the maps given: (probes, m, m), float64.

    ``nodes`` are m arrays (probes, P) of one shape, float16 or float32; an all-zero map has cosine 0
    with every map. One batched product per chunk of probes, in torch: float32 products on all
    cores, where numpy's float16 conversion, norms and divisions took most of a layer's scoring
    time (0.4 s of 0.7 s per VGG layer of 200 probes at 224²).

    >>> a = np.array([[1, 0], [0, 0]], np.float16)
    >>> b = np.array([[1, 1], [1, 0]], np.float16)
    >>> np.round(probe_cosines([a, b])[:, 0, 1], 3).tolist()
    [0.707, 0.0]
    """
    import torch  # imported here: drawing kept results needs no torch

    m, (n, dim) = len(nodes), nodes[0].shape
    step = max(1, chunk_bytes // max(m * dim * 4, 1))
    dev = compute_device(m * n * dim)  # the GPU for a zoo's maps, when there is one
    out = np.empty((n, m, m))
    for lo in range(0, n, step):
        u = torch.stack([read_only_tensor(v[lo : lo + step]).to(dev) for v in nodes], dim=1).float()  # (probes, m, P)
        dots = torch.bmm(u, u.transpose(1, 2))
        norms = dots.diagonal(dim1=1, dim2=2).clamp_min(0).sqrt()
        den = norms[:, :, None] * norms[:, None, :]
        out[lo : lo + step] = torch.where(den > 0, dots / den.clamp_min(1e-30), 0).double().cpu().numpy()
    return out


def _same_grid(a: Graph, b: Graph) -> bool:
    return a.nodes.shape == b.nodes.shape and a.node_shape == b.node_shape and a.sketched == b.sketched


def comparable_nodes(a: Graph, b: Graph) -> tuple[np.ndarray, np.ndarray]:
    """The two graphs' node maps as float32 rows on one grid (see :func:`node_cosines`)."""
    if _same_grid(a, b):
        return a.nodes.astype(np.float32), b.nodes.astype(np.float32)
    if a.sketched or b.sketched or len(a.node_shape) != len(b.node_shape) or a.node_shape[:-2] != b.node_shape[:-2]:
        raise GraphError(
            f"node maps of {a.model}/{a.layer} {a.node_shape} and {b.model}/{b.layer} {b.node_shape} cannot be compared",
            "compute both graphs with the same node options (channels, storage) and unsketched nodes",
        )
    grid = (min(a.node_shape[-2], b.node_shape[-2]), min(a.node_shape[-1], b.node_shape[-1]))
    return _resample(a, grid), _resample(b, grid)


def _resample(g: Graph, grid: tuple[int, int]) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    maps = torch.from_numpy(g.nodes.astype(np.float32)).reshape(len(g), -1, *g.node_shape[-2:])
    if tuple(maps.shape[-2:]) != grid:
        maps = F.adaptive_avg_pool2d(maps, grid)
    return maps.flatten(1).numpy()


def node_similarity(a: Graph, b: Graph) -> float:
    """s_V: the mean over probes of the cosine between the two attribution maps."""
    return float(np.mean(node_cosines(a, b)))


def edge_similarity(a: Graph, b: Graph) -> float:
    """s_E: Spearman correlation of the two graphs' edges over the upper triangle (0 if a graph's
    edges are all equal)."""
    check_comparable(a, b)
    return spearman(upper_triangle(a.edges), upper_triangle(b.edges))


def depara_similarity(a: Graph, b: Graph, lam: float = 1.0, node_scale: float = 1.0) -> float:
    """s = node_scale·s_V + λ·s_E (``node_scale=1e-3`` reproduces the original code's s_V / 1000)."""
    return node_scale * node_similarity(a, b) + lam * edge_similarity(a, b)


def rsa_dissimilarity(g: Graph) -> np.ndarray:
    """1 − Pearson correlation between probes' features, after centring features over probes."""
    k = center_gram(g.gram)
    s = g.feature_sums - g.feature_sums.mean()
    cov = k - np.outer(s, s) / g.feature_dim
    var = np.diag(cov).copy()
    if np.any(var <= 0):
        raise GraphError(f"features of {g.model}/{g.layer} are constant for some probe: Pearson is undefined", "choose another layer")
    return 1.0 - cov / np.sqrt(np.outer(var, var))


def rsa_similarity(a: Graph, b: Graph) -> float:
    """RSA: Spearman between the two 1−Pearson dissimilarity matrices (upper triangles)."""
    check_comparable(a, b)
    return spearman(upper_triangle(rsa_dissimilarity(a)), upper_triangle(rsa_dissimilarity(b)))


def cka_similarity(a: Graph, b: Graph) -> float:
    """Linear CKA from the two feature Gram matrices: HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))."""
    check_comparable(a, b)
    ka, kb = center_gram(a.gram), center_gram(b.gram)
    den = np.sqrt(np.sum(ka * ka) * np.sum(kb * kb))
    if den == 0:
        raise GraphError("features are constant across probes: CKA is undefined", "choose another layer")
    return float(np.sum(ka * kb) / den)
