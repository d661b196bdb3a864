"""LocalRayCluster: a node that cannot start is started again on fresh ports."""

from __future__ import annotations

import socket

import pytest

import depara_core.distributed.cluster as cluster


@pytest.mark.slow
def test_a_head_whose_port_is_taken_is_started_again_on_another(monkeypatch):
    pytest.importorskip("ray")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    local = cluster.LocalRayCluster(workers=1)
    free, calls = cluster._free_port, []

    def first_one_taken() -> int:  # the first port start() asks for is the head's
        calls.append(1)
        return port if len(calls) == 1 else free()

    monkeypatch.setattr(cluster, "_free_port", first_one_taken)
    try:
        address = local.start(attempts=2)
        assert address != f"127.0.0.1:{port}"
        assert len(local.nodes) == 2 and all(p.poll() is None for p in local.nodes)
        assert local._launched == 3  # the failed head, the head again, the worker
    finally:
        local.stop()
        taken.close()


def test_the_error_quotes_the_log_when_every_attempt_fails(monkeypatch, tmp_path):
    local = cluster.LocalRayCluster(workers=0, env={"PATH": str(tmp_path)})
    # a `ray` that exits at once, saying why: the node's own message must reach the error
    fake = tmp_path / "ray"
    fake.write_text("#!/bin/sh\necho 'the raylet could not bind its port' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(cluster.shutil, "which", lambda *a, **k: str(fake))
    with pytest.raises(RuntimeError, match="(?s)exited while starting, 2 times.*could not bind its port"):
        local.start(attempts=2)
    assert local.nodes == [] and local._launched == 2
    local.stop()
