"""DEPARA Explorer's engine: deep attribution graphs for choosing pre-trained models and layers.

>>> import torch, depara_core as dc
>>> nets = [dc.load_model(dc.callable_spec(f"m{i}", lambda i=i: torch.manual_seed(i) and torch.nn.Sequential(
...     torch.nn.Conv2d(3, 4, 3), torch.nn.Tanh()))) for i in range(3)]
>>> terms = dc.zoo_terms(nets, dc.load_builtin("noise", 5))
>>> [name for name, _ in terms.rank_sources("m0", lam=1.0)]  # doctest: +SKIP
['m2', 'm1']
"""

from .attribution import get_method, method_names
from .cache import ENGINE_VERSION, GraphCache, default_cache_dir
from .errors import CacheError, DeparaError, GraphError, LayerError, ModelError, ProbeError
from .evaluation import GroundTruth, RankingMetrics, evaluate, oracle_scores, random_baseline, taskonomy_ground_truth, taskonomy_sort_gt
from .graphs import Cancelled, Graph, GraphOptions, compute_graphs, iter_graphs
from .models import LayerSpec, LoadedModel, ModelSpec, callable_spec, load_model, parse_model_arg, timm_spec, torchscript_spec, torchvision_spec
from .pipeline import select_layers, zoo_graphs, zoo_terms
from .preprocess import IDENTITY, IMAGENET, Preprocess
from .probes import ProbeSet, builtin_probe_sets, load_builtin
from .selection import LayerScores, SimilarityTerms, TaskTree, layer_scores, pairwise_terms, task_tree
from .similarity import cka_similarity, depara_similarity, edge_similarity, node_similarity, rsa_similarity

__version__ = "0.1.0"

__all__ = [
    "ENGINE_VERSION", "Cancelled", "CacheError", "DeparaError", "Graph", "GraphCache", "GraphError", "GraphOptions",
    "GroundTruth", "IDENTITY", "IMAGENET", "LayerError", "LayerScores", "LayerSpec", "LoadedModel", "ModelError",
    "ModelSpec", "Preprocess", "ProbeError", "ProbeSet", "RankingMetrics", "SimilarityTerms", "TaskTree",
    "builtin_probe_sets", "callable_spec", "cka_similarity", "compute_graphs", "default_cache_dir",
    "depara_similarity", "edge_similarity", "evaluate", "get_method", "iter_graphs", "layer_scores", "load_builtin",
    "load_model", "method_names", "node_similarity", "oracle_scores", "pairwise_terms", "parse_model_arg",
    "random_baseline", "rsa_similarity", "select_layers", "task_tree", "taskonomy_ground_truth", "taskonomy_sort_gt",
    "timm_spec", "torchscript_spec", "torchvision_spec", "zoo_graphs", "zoo_terms",
]  # fmt: skip
