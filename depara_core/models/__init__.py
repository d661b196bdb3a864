"""Models: specs (:mod:`.spec`), the one source parser (:mod:`.sources`), safe checkpoints
(:mod:`.checkpoints`) and preprocessing from the architecture's own metadata (:mod:`.preprocess`)."""

from depara_core._lazy import lazy_exports

_EXPORTS = {
    "ModelSpec": ".spec:ModelSpec",
    "LayerSpec": ".spec:LayerSpec",
    "LoadedModel": ".spec:LoadedModel",
    "load_model": ".spec:load_model",
    "parse_source": ".sources:parse_source",
    "load_checkpoint": ".checkpoints:load_checkpoint",
    "Preprocess": ".preprocess:Preprocess",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
