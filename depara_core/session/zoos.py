"""Which zoo and probes a new session opens with.

>>> zoo_probe_default(None)
('photos', 32)
"""

from __future__ import annotations

from collections.abc import Mapping

from depara_core.errors import DeparaError
from depara_core.zoos import Zoo, list_zoos, load_zoo

__all__ = ["DEFAULT_ZOO", "FALLBACK_PROBES", "available_zoos", "default_zoo", "zoo_probe_default"]

DEFAULT_ZOO = "mini-taskonomy"
"""The zoo a new user sees computed first; the first available zoo stands in while it is missing."""

FALLBACK_PROBES: tuple[str, int] = ("photos", 32)
"""Probes for models added without a zoo."""


def available_zoos() -> dict[str, Zoo]:
    """Every registered zoo, loaded (specs only); unavailable ones keep their reason."""
    out = {}
    for name in list_zoos():
        try:
            out[name] = load_zoo(name)
        except DeparaError as exc:
            out[name] = Zoo(name, "", (), False, str(exc))
    return out


def default_zoo(zoos: Mapping[str, Zoo] | None = None) -> str:
    """:data:`DEFAULT_ZOO` when it is available, else the first available zoo ("" if none is)."""
    zoos = available_zoos() if zoos is None else zoos
    if DEFAULT_ZOO in zoos and zoos[DEFAULT_ZOO].available:
        return DEFAULT_ZOO
    return next((name for name, z in zoos.items() if z.available), "")


def zoo_probe_default(zoo: Zoo | None) -> tuple[str, int]:
    """The probe set and count a zoo opens with (its ``default_probes``)."""
    return FALLBACK_PROBES if zoo is None else zoo.default_probes
