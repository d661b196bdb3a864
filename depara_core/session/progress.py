"""Progress of a session's computation: fraction done and time left, per model."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ['ProgressReport', 'ProgressSink', 'ProgressTracker']


# ---- progress ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProgressReport:
    """Where a computation stands: the model (i of n), its layers, fractions done and time left."""

    model: str
    model_index: int
    model_count: int
    detail: str
    model_fraction: float
    fraction: float
    elapsed: float
    eta: float | None

    @property
    def text(self) -> str:
        left = "" if self.eta is None else f" — about {_duration(self.eta)} left"
        return f"model {self.model_index + 1}/{self.model_count}: {self.detail}{left}"


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds} s" if seconds < 90 else f"{seconds // 60} min {seconds % 60:02d} s"


ProgressSink = Callable[[ProgressReport], "bool | None"]


class ProgressTracker:
    """Turns the engine's ``progress(done, total, message)`` calls into :class:`ProgressReport` for a
    sequence of models weighted by how many layers each still needs; a sink returning False cancels."""

    def __init__(self, work: Sequence[tuple[str, int]], sink: ProgressSink | None) -> None:
        self.work = list(work)
        self.total = max(sum(w for _, w in self.work), 1)
        self.sink = sink
        self.start = time.perf_counter()
        self.index = 0
        self.before = 0

    def begin(self, index: int, detail: str = "starting") -> bool | None:
        self.index = index
        self.before = sum(w for _, w in self.work[:index])
        return self.emit(0.0, detail)

    def finish(self) -> None:
        if self.work:
            self.index, self.before = len(self.work) - 1, self.total - self.work[-1][1]
            self.emit(1.0, "done")

    def emit(self, model_fraction: float, detail: str) -> bool | None:
        if self.sink is None or not self.work:
            return None
        name, weight = self.work[self.index]
        fraction = (self.before + weight * model_fraction) / self.total
        elapsed = time.perf_counter() - self.start
        eta = elapsed * (1 - fraction) / fraction if fraction > 0.02 else None
        report = ProgressReport(name, self.index, len(self.work), f"{name}, {detail}", model_fraction, fraction, elapsed, eta)
        return self.sink(report)

    def __call__(self, done: int, total: int, message: str) -> bool | None:
        detail = message.split(": ", 1)[-1]
        return self.emit(done / max(total, 1), detail)
