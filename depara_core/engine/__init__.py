"""The graph engine: attribution nodes (Eq. 3) and feature edges (Eq. 4) of layers over probes.

Modules: :mod:`.graph` (options and the Graph type), :mod:`.run` (the one-forward-many-layers run
loop), :mod:`.plan` (memory plan), :mod:`.gram` (Gram-matrix algebra), :mod:`.capture` (hooks), :mod:`.compiled` (the compile option's per-layer segments),
:mod:`.attribution` (registered attribution methods), :mod:`.sketch` (count sketch of large maps).
"""

from depara_core._lazy import lazy_exports

_EXPORTS = {
    "Graph": ".graph:Graph",
    "GraphOptions": ".graph:GraphOptions",
    "Cancelled": ".graph:Cancelled",
    "compute_graphs": ".run:compute_graphs",
    "iter_graphs": ".run:iter_graphs",
    "plan_computation": ".plan:plan_computation",
    "get_method": ".attribution:get_method",
    "method_names": ".attribution:method_names",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
