"""Comparing graphs: pairwise similarities (:mod:`.pairwise`), the rank convention (:mod:`.ranks`),
where large work runs (:mod:`.device`),
a zoo's terms (:mod:`.terms`), layer scores (:mod:`.layers`), the task tree (:mod:`.tree`) and the
cached workflows that produce them (:mod:`.workflows`)."""

from depara_core._lazy import lazy_exports

_EXPORTS = {
    "SimilarityTerms": ".terms:SimilarityTerms",
    "pairwise_terms": ".terms:pairwise_terms",
    "LayerScores": ".layers:LayerScores",
    "TaskTree": ".tree:TaskTree",
    "task_tree": ".tree:task_tree",
    "zoo_terms": ".workflows:zoo_terms",
    "select_layers": ".workflows:select_layers",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
