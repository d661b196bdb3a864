"""Probe images: :class:`~.probeset.ProbeSet` with its guarded readers, the built-in sets
(:mod:`.noise`, :mod:`.photos`, :mod:`.scenes`) and their lazy registry (:mod:`.registry`)."""

from depara_core._lazy import lazy_exports

_EXPORTS = {
    "ProbeSet": ".probeset:ProbeSet",
    "load_builtin": ".registry:load_builtin",
    "builtin_probe_sets": ".registry:builtin_probe_sets",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
