"""Lazy exports for packages: a name is imported from its module only when it is first used.

>>> getattr_, dir_ = lazy_exports("demo", {"sqrt": "math:sqrt"})
>>> getattr_("sqrt")(9.0), dir_()
(3.0, ['sqrt'])
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, targets: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` resolving each name to ``"module:attribute"``.

    Module paths starting with ``.`` are relative to ``package``.
    """

    def __getattr__(name: str) -> object:
        target = targets.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attr = target.partition(":")
        value = importlib.import_module(module, package) if not attr else getattr(importlib.import_module(module, package), attr)
        return value

    def __dir__() -> list[str]:
        return sorted(targets)

    return __getattr__, __dir__
