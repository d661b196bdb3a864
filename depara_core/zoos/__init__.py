"""Built-in zoos: named sets of pre-trained models that can be compared out of the box.

A zoo is registered with a factory that returns its model specs; nothing is built or read from
disk until :func:`load_zoo` is called, and even then only the specs are made (the networks are
built by :func:`depara_core.models.load_model`).

>>> "efficientnet-lite" in list_zoos()
True
>>> zoo = load_zoo("efficientnet-lite")
>>> [s.name for s in zoo.specs]
['efficientnet-lite0', 'efficientnet-lite1', 'efficientnet-lite2']
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import DeparaError
from ..models import ModelSpec

if TYPE_CHECKING:
    from ..evaluation import GroundTruth

__all__ = ["Zoo", "register_zoo", "list_zoos", "load_zoo"]

_BUILTIN_MODULES = ("efficientnet_lite", "taskonomy", "minitaskonomy")
"""Modules of this package that register a zoo when imported."""


@dataclass(frozen=True)
class Zoo:
    """A named set of model specs; ``available`` is False when their weights are not installed.

    ``unavailable_reason`` then says what is missing and how to install it. ``ground_truth``
    holds known transfer affinities between the zoo's models, where such a measurement exists.
    """

    name: str
    description: str
    specs: tuple[ModelSpec, ...]
    available: bool = True
    unavailable_reason: str = ""
    ground_truth: GroundTruth | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The models' names, in the zoo's order."""
        return tuple(spec.name for spec in self.specs)


@dataclass(frozen=True)
class _Entry:
    factory: Callable[[], Iterable[ModelSpec]]
    description: str
    check: Callable[[], str] | None
    ground_truth: Callable[[], GroundTruth] | None = None


_ZOOS: dict[str, _Entry] = {}


def register_zoo(
    name: str,
    factory: Callable[[], Iterable[ModelSpec]],
    description: str,
    check: Callable[[], str] | None = None,
    ground_truth: Callable[[], GroundTruth] | None = None,
) -> None:
    """Register a zoo: ``factory()`` returns its specs; ``check()`` returns "" or why it cannot be used.

    A factory that raises :class:`DeparaError` makes the zoo unavailable with that message.
    ``ground_truth()`` returns the measured transfer between the zoo's models, if any.
    See :mod:`depara_core.zoos.efficientnet_lite` for a complete example.
    """
    _ZOOS[name] = _Entry(factory, description, check, ground_truth)


def list_zoos() -> dict[str, str]:
    """Names of the registered zoos with their descriptions."""
    _load_builtin_zoos()
    return {name: entry.description for name, entry in _ZOOS.items()}


def load_zoo(name: str) -> Zoo:
    """The zoo ``name`` with its specs; a zoo whose weights are missing comes back with ``available=False``."""
    _load_builtin_zoos()
    entry = _ZOOS.get(name)
    if entry is None:
        raise DeparaError(f"there is no built-in zoo {name!r}", f"choose one of: {', '.join(sorted(_ZOOS)) or '(none)'}")
    try:
        specs = tuple(entry.factory())
    except DeparaError as exc:
        return Zoo(name, entry.description, (), False, str(exc))
    reason = entry.check() if entry.check is not None else ""
    gt = entry.ground_truth() if entry.ground_truth is not None else None
    return Zoo(name, entry.description, specs, not reason, reason, gt)


def _load_builtin_zoos() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(f"{__name__}.{module}")
