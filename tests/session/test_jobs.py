"""The session's background computation (:mod:`depara_core.session.jobs`): it runs in its own thread,
reports progress to whoever asks, stops at a batch boundary when asked, and keeps its outcome."""

from __future__ import annotations

import threading

import pytest

from depara_core.cache import GraphCache
from depara_core.errors import DeparaError
from depara_core.models.toy import toy_models
from depara_core.probes.registry import load_builtin
from depara_core.session.config import Config, ProbeChoice
from depara_core.session.jobs import Job
from depara_core.session.workspace import Workspace


def _workspace(tmp_path, probes: int = 24) -> Workspace:
    nets = toy_models(3)
    config = Config("", tuple(m.name for m in nets), ProbeChoice("builtin", "noise", probes))
    return Workspace(config, nets, load_builtin("noise", probes), GraphCache(tmp_path))


def test_a_job_runs_in_its_own_thread_and_keeps_its_result():
    seen = []
    job = Job("demo", ("demo", 1), lambda sink: seen.append(threading.current_thread()) or 42)
    assert job.wait(10) and job.state == "done" and job.result == 42 and job.error is None
    assert seen[0] is not threading.current_thread() and not job.running and job.ended >= job.started


def test_a_failure_is_kept_for_the_page_to_show():
    def fail(sink):
        raise DeparaError("the model does not accept 12x12 images", "choose larger probes")

    job = Job("failing", "k", fail)
    assert job.wait(10) and job.state == "failed" and "12x12" in job.error.problem


def test_stop_ends_the_engine_at_a_batch_and_a_new_run_resumes_to_the_same_graphs(tmp_path):
    ws = _workspace(tmp_path)
    gate = threading.Event()

    def held(sink):  # the job's own sink, holding the engine after its first batch until the test stopped it
        def report(r):
            answer = sink(r)
            if r.fraction > 0:
                gate.wait(10)
            return answer

        return report

    first = Job("graphs", ("graphs", ws.config), lambda sink: ws.compute(held(sink), batch_size=4, build_terms=False))
    while first.report is None or first.report.fraction == 0:
        assert not first.wait(0.01), f"ended before it could be stopped: {first.state} {first.error}"
    first.stop()
    assert first.stopping
    gate.set()
    assert first.wait(30) and first.state == "stopped", (first.state, first.error)
    assert "stopped" in first.error.problem and "resume" in first.error.hint
    assert ws.missing(), "it stopped before the end"

    second = Job("graphs", ("graphs", ws.config), lambda s: ws.compute(s, batch_size=4))
    assert second.wait(60) and second.state == "done", second.error
    assert second.report.fraction == pytest.approx(1.0)
    fresh = _workspace(tmp_path / "fresh")
    fresh.compute(batch_size=4)
    for name in ws.names:
        assert ws.graph(name).nodes == pytest.approx(fresh.graph(name).nodes, abs=1e-6)
        assert ws.graph(name).edges == pytest.approx(fresh.graph(name).edges, abs=1e-6)
