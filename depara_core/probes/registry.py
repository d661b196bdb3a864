"""The built-in probe sets, by name (lazy: a set's module is imported when it is first loaded).

>>> p = load_builtin("noise", 4)
>>> len(p), p.size
(4, (64, 64))
"""

from __future__ import annotations

from collections.abc import Callable

from depara_core.errors import DeparaError, ProbeError
from depara_core.probes.probeset import ProbeSet
from depara_core.registry import Entry, Registry

__all__ = ["PROBE_SETS", "MAX_BUILTIN_COUNT", "builtin_probe_sets", "load_builtin", "register_probe_set"]

PROBE_SETS = Registry(
    "built-in probe set",
    [
        Entry("noise", "depara_core.probes.noise:smooth_noise", "smooth colour noise, 64x64, seeded", (("licence", "generated"), ("default_count", 200))),
        Entry(
            "photos", "depara_core.probes.photos:natural_photos",
            "natural photos shipped with scikit-image, scikit-learn and matplotlib, random crops, 224x224, seeded",
            (("licence", "CC0 / public domain; china.jpg and flower.jpg CC-BY 2.0"), ("default_count", 200)),
        ),
        Entry(
            "scenes", "depara_core.probes.scenes:default_scene_probes",
            "procedural 3-D scenes (textured ground, sky, 1-5 lit objects), 64x64, seeded", (("licence", "generated"), ("default_count", 200)),
        ),
        Entry(
            "scenes-shifted", "depara_core.probes.scenes:shifted_scene_probes",
            "procedural 3-D scenes, shifted domain (more small saturated objects, plain ground, steep camera, low light), 64x64, seeded",
            (("licence", "generated"), ("default_count", 200)),
        ),
    ],
    group="depara.probe_sets",
)  # fmt: skip


MAX_BUILTIN_COUNT = 20_000
"""The most probes a built-in set generates (about 250 MB at 64x64)."""


def register_probe_set(name: str, target: str, description: str, licence: str, default_count: int = 200) -> None:
    """Add a probe set: ``target`` is ``"module:function"`` with ``function(count) -> ProbeSet``."""
    PROBE_SETS.register(Entry(name, target, description, (("licence", licence), ("default_count", default_count))))


def builtin_probe_sets() -> dict[str, str]:
    """Names of the built-in probe sets with their descriptions and licences."""
    return {e.name: f"{e.description} ({e.meta.get('licence', 'licence not stated')})" for e in PROBE_SETS.entries()}


def load_builtin(name: str, count: int | None = None) -> ProbeSet:
    """Build the built-in probe set ``name`` with ``count`` probes (its default when None)."""
    try:
        entry = PROBE_SETS.get(name)
    except DeparaError as exc:
        raise ProbeError(exc.problem, exc.hint) from None
    if count is not None and (isinstance(count, bool) or int(count) != count or count < 1):
        raise ProbeError(f"probe count {count!r} is not a positive whole number", "ask for 3 or more probes, or leave the count out for the set's default")
    if count is not None and count > MAX_BUILTIN_COUNT:
        raise ProbeError(f"{count} probes were asked for; a built-in set makes at most {MAX_BUILTIN_COUNT:,}", "ask for fewer (about 200 give stable rankings)")
    factory: Callable[[int], ProbeSet] = entry.load()
    return factory(int(count) if count is not None else int(entry.meta.get("default_count", 200)))
