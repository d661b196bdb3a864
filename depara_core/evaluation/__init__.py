"""Scoring rankings against measured transfer: ground truth (:mod:`.ground_truth`, :mod:`.taskonomy`,
:mod:`.layers`), the one ranking evaluator (:mod:`.ranking`), method tables (:mod:`.methods`) and
λ cross-validation (:mod:`.lambda_cv`)."""

from depara_core._lazy import lazy_exports

_EXPORTS = {
    "GroundTruth": ".ground_truth:GroundTruth",
    "RankingEvaluator": ".ranking:RankingEvaluator",
    "evaluate": ".ranking:evaluate",
    "taskonomy_ground_truth": ".taskonomy:taskonomy_ground_truth",
    "LayerTruth": ".layers:LayerTruth",
    "suggest_lambda": ".lambda_cv:suggest_lambda",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
