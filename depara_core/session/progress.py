"""Progress of a session's computation: fraction done and time left, per model."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from depara_core.units import format_duration

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
        left = "" if self.eta is None else f" — about {format_duration(self.eta)} left"
        return f"model {self.model_index + 1}/{self.model_count}: {self.detail}{left}"


ProgressSink = Callable[[ProgressReport], "bool | None"]


class ProgressTracker:
    """Turns the engine's ``progress(done, total, message)`` calls into :class:`ProgressReport` for a
    sequence of models weighted by how many layers each still needs; a sink returning False cancels.

    Time left is the time per unit of work measured in this run so far. A model's first report says
    where a stopped run left it (the engine reports where each layer group starts): that jump is
    shown as done but not counted as work done in this run, so a resumed run's estimate stays honest.

    >>> ticks = iter([0.0, 0.0, 1.0, 3.0, 5.0])
    >>> t = ProgressTracker([("a", 1)], sink=lambda r: print(r.fraction, r.eta), clock=lambda: next(ticks))
    >>> t.begin(0)
    0.0 None
    >>> t(4, 8, "resumed"), t(6, 8, "batch"), t(8, 8, "batch")  # half was kept; 2 s per quarter
    0.5 None
    0.75 2.0
    1.0 0.0
    (None, None, None)
    >>> t.model_share_done()  # what this run computed of model "a"
    0.5
    """

    def __init__(self, work: Sequence[tuple[str, int]], sink: ProgressSink | None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.work = list(work)
        self.total = max(sum(w for _, w in self.work), 1)
        self.sink = sink
        self.clock = clock
        self.start = clock()
        self.index = 0
        self.before = 0
        self._anchor: float | None = None  # when the first engine report came
        self._credited = 0.0  # work done in this run since then
        self._last: float | None = None  # work at the previous engine report of this model
        self._model_credited = 0.0  # of that, the current model's

    def begin(self, index: int, detail: str = "starting") -> bool | None:
        self.index = index
        self.before = sum(w for _, w in self.work[:index])
        self._last = None
        self._model_credited = 0.0
        return self.emit(0.0, detail)

    def model_share_done(self) -> float:
        """The share of the current model's work done in this run (less than 1 when a stopped run had
        kept part of it), e.g. to time the run per probe pass."""
        weight = self.work[self.index][1] if self.work else 0
        return min(self._model_credited / weight, 1.0) if weight > 0 else 0.0

    def finish(self) -> None:
        if self.work:
            self.index, self.before = len(self.work) - 1, self.total - self.work[-1][1]
            self.emit(1.0, "done")

    def _work(self, model_fraction: float) -> float:
        return self.before + self.work[self.index][1] * model_fraction

    def emit(self, model_fraction: float, detail: str, now: float | None = None) -> bool | None:
        if self.sink is None or not self.work:
            return None
        now = self.clock() if now is None else now
        name = self.work[self.index][0]
        fraction = self._work(model_fraction) / self.total
        eta = None
        if self._anchor is not None and self._credited > 0 and now > self._anchor:
            eta = (now - self._anchor) * (1 - fraction) * self.total / self._credited
        report = ProgressReport(name, self.index, len(self.work), f"{name}, {detail}", model_fraction, fraction, now - self.start, eta)
        return self.sink(report)

    def __call__(self, done: int, total: int, message: str) -> bool | None:
        now = self.clock()
        model_fraction = done / max(total, 1)
        work = self._work(model_fraction)
        if self._anchor is None:
            self._anchor = now
        elif self._last is not None:
            self._credited += max(work - self._last, 0.0)
            self._model_credited += max(work - self._last, 0.0)
        self._last = work
        detail = message.split(": ", 1)[-1]
        return self.emit(model_fraction, detail, now)
