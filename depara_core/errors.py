"""Errors that reach the user: each says what is wrong and what to do.

>>> try:
...     raise DeparaError("only 2 probe images were given", hint="add at least 3 images")
... except DeparaError as e:
...     print(e)
only 2 probe images were given. What to do: add at least 3 images.
"""

from __future__ import annotations

__all__ = ["DeparaError", "ProbeError", "ModelError", "LayerError", "GraphError", "CacheError", "error_detail"]


class DeparaError(ValueError):
    """Base class of every error the engine raises on bad input.

    ``problem`` names what is wrong; ``hint`` says what to do about it.
    """

    def __init__(self, problem: str, hint: str = "") -> None:
        self.problem = problem.rstrip(".")
        self.hint = hint.rstrip(".")
        text = self.problem + "."
        if self.hint:
            text += f" What to do: {self.hint}."
        super().__init__(text)

    def __reduce__(self):  # keep problem and hint across processes (Ray workers, trial children)
        return (type(self), (self.problem, self.hint))


class ProbeError(DeparaError):
    """The probe images cannot be used as given."""


class ModelError(DeparaError):
    """A model cannot be built, loaded or run."""


class LayerError(ModelError):
    """A layer name does not exist in a model."""


class GraphError(DeparaError):
    """A graph cannot be computed or compared (undefined cosine, NaN, sizes differ)."""


class CacheError(DeparaError):
    """A cache entry or directory cannot be used."""


def error_detail(exc: BaseException) -> str:
    """The last non-empty line of an exception's message, at most 300 characters: TorchScript and
    torch.compile put their own stacks first and the cause last."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
