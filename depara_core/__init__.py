"""DEPARA Explorer's library: deep attribution graphs for choosing pre-trained models and layers.

>>> import depara_core as dc
>>> nets = dc.toy_models(3)
>>> terms = dc.zoo_terms(nets, dc.load_builtin("noise", 5))
>>> terms.names, terms.s_V.shape
(('m0', 'm1', 'm2'), (3, 3))

Subpackages, one concept each: :mod:`~depara_core.probes` (probe images), :mod:`~depara_core.models`
(specs, the source parser, checkpoints, preprocessing), :mod:`~depara_core.engine` (graphs),
:mod:`~depara_core.compare` (similarities, terms, layer scores, the task tree, workflows),
:mod:`~depara_core.evaluation` (ground truth and ranking metrics), :mod:`~depara_core.viz` (figures;
no torch), :mod:`~depara_core.zoos` and :mod:`~depara_core.session` (what the app needs beyond the
library). Names are imported lazily: ``import depara_core`` loads no torch.
"""

from depara_core._lazy import lazy_exports

__version__ = "0.2.0"

_EXPORTS = {
    "DeparaError": "depara_core.errors:DeparaError",
    "ProbeSet": "depara_core.probes.probeset:ProbeSet",
    "load_builtin": "depara_core.probes.registry:load_builtin",
    "builtin_probe_sets": "depara_core.probes.registry:builtin_probe_sets",
    "ModelSpec": "depara_core.models.spec:ModelSpec",
    "load_model": "depara_core.models.spec:load_model",
    "parse_source": "depara_core.models.sources:parse_source",
    "callable_spec": "depara_core.models.sources:callable_spec",
    "toy_models": "depara_core.models.toy:toy_models",
    "Preprocess": "depara_core.models.preprocess:Preprocess",
    "GraphOptions": "depara_core.engine.graph:GraphOptions",
    "Graph": "depara_core.engine.graph:Graph",
    "compute_graphs": "depara_core.engine.run:compute_graphs",
    "GraphCache": "depara_core.cache:GraphCache",
    "zoo_terms": "depara_core.compare.workflows:zoo_terms",
    "select_layers": "depara_core.compare.workflows:select_layers",
    "task_tree": "depara_core.compare.tree:task_tree",
    "GroundTruth": "depara_core.evaluation.ground_truth:GroundTruth",
    "evaluate": "depara_core.evaluation.ranking:evaluate",
    "load_zoo": "depara_core.zoos:load_zoo",
    "PRESETS": "depara_core.presets:PRESETS",
    "Preset": "depara_core.presets:Preset",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
