"""A session's computation in a worker thread: it outlives the page that started it, reports its
progress to whichever page asks, and stops at the end of a batch when asked (what it finished is
kept in the cache, and the engine keeps the unfinished layers' batches so a new run resumes there).

A page starts a :class:`Job`, then polls :attr:`Job.report` to draw progress; when the person
switches pages the job goes on, and the next page finds it in the session and follows it.

>>> import time
>>> def count(sink):
...     for i in range(3):
...         time.sleep(0.01)
...     return "counted"
>>> job = Job("demo", ("demo",), count)
>>> job.wait(5), job.state, job.result
(True, 'done', 'counted')
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Literal

from depara_core.engine.graph import Cancelled
from depara_core.session.progress import ProgressReport, ProgressSink

__all__ = ["Job", "JobState"]

JobState = Literal["running", "done", "stopped", "failed"]


class Job:
    """``run(sink)`` in a daemon thread, started at once. ``key`` says what the job computes (the page
    that finds a job in its session compares it with what it would start). The sink records each
    :class:`ProgressReport` and answers False once :meth:`stop` was called, which the engine turns
    into :class:`~depara_core.engine.graph.Cancelled` at the end of the batch it is in."""

    def __init__(self, label: str, key: Hashable, run: Callable[[ProgressSink], Any]) -> None:
        self.label, self.key = label, key
        self.report: ProgressReport | None = None
        self.state: JobState = "running"
        self.result: Any = None
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self.ended: float | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(run,), name=f"depara-job-{label}", daemon=True)
        self._thread.start()

    def _sink(self, report: ProgressReport) -> bool:
        self.report = report
        return not self._stop.is_set()

    def _main(self, run: Callable[[ProgressSink], Any]) -> None:
        try:
            self.result = run(self._sink)
            self.state = "done"
        except Cancelled as exc:
            self.error, self.state = exc, "stopped"
        except BaseException as exc:  # noqa: BLE001 -- a user's model can fail in any way; the page shows it
            self.error, self.state = exc, "failed"
        finally:
            self.ended = time.monotonic()
            self._done.set()

    # ---- control ---------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the job to stop at the end of its current batch."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set() and self.running

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the job to end; whether it has."""
        return self._done.wait(timeout)
