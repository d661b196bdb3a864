"""A real Ray cluster on this machine (a head and worker nodes, each its own processes), for trying
the distributed path, for tests and for benchmarks.

On real machines start the nodes with ``ray start --head`` and ``ray start --address HEAD:6379``
instead; this class runs the same commands with ``--block`` and stops them by process group.

>>> LocalRayCluster(workers=2, cpus_per_node=1).address.startswith("127.0.0.1:")
True
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["LocalRayCluster"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalRayCluster:
    """``with LocalRayCluster(workers=1) as address: ...`` — a head node plus ``workers`` worker nodes.

    The head offers ``head_cpus`` CPUs for tasks (0: it only coordinates), each worker node
    ``cpus_per_node``. Nodes are separate ``ray start --block`` process groups, so a test can kill
    one node's worker processes and watch Ray retry the task elsewhere.
    """

    def __init__(self, workers: int = 1, cpus_per_node: int = 1, head_cpus: int = 0, object_store_bytes: int = 100_000_000,
                 env: dict[str, str] | None = None) -> None:  # fmt: skip
        self.address = f"127.0.0.1:{_free_port()}"
        self.workers, self.cpus_per_node, self.head_cpus = workers, cpus_per_node, head_cpus
        self.object_store_bytes = object_store_bytes
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
        self.nodes: list[subprocess.Popen] = []
        self._tmp: str | None = None

    def _ray(self, *args: str) -> subprocess.Popen:
        ray_bin = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
        log = open(Path(self._tmp) / f"node{len(self.nodes)}.log", "wb")  # noqa: SIM115 - kept open for the node's life
        # several nodes on one address need their own ports (Ray's defaults would collide)
        ports = [f"--{flag}={_free_port()}" for flag in ("node-manager-port", "object-manager-port", "metrics-export-port",
                                                         "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port")]  # fmt: skip
        low = 20000 + 500 * len(self.nodes)
        cmd = [ray_bin, "start", "--block", "--node-ip-address=127.0.0.1", f"--object-store-memory={self.object_store_bytes}",
               "--disable-usage-stats", *ports, f"--min-worker-port={low}", f"--max-worker-port={low + 499}", *args]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        self.nodes.append(proc)
        return proc

    def start(self, timeout: float = 120.0) -> str:
        """Start the head and the workers; returns the address once every node's CPUs are seen."""
        self._tmp = tempfile.mkdtemp(prefix="depara-ray-")
        port = self.address.rsplit(":", 1)[1]
        self._ray("--head", f"--port={port}", f"--num-cpus={self.head_cpus}", "--include-dashboard=false", f"--temp-dir={self._tmp}")
        self._wait_for_cpus(self.head_cpus, timeout, need_head=True)
        for i in range(self.workers):  # one at a time: nodes starting together can time out on a small machine
            self._ray(f"--address={self.address}", f"--num-cpus={self.cpus_per_node}")
            self._wait_for_cpus(self.head_cpus + (i + 1) * self.cpus_per_node, timeout)
        return self.address

    def _wait_for_cpus(self, cpus: float, timeout: float, need_head: bool = False) -> None:
        """Poll the cluster (``ray status`` in a child, so this process never joins it) until it has ``cpus``."""
        ray_bin = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.nodes):
                raise RuntimeError(f"a Ray node exited while starting; see the logs in {self._tmp}")
            out = subprocess.run([ray_bin, "status", f"--address={self.address}"], capture_output=True, text=True, env=self.env)
            if out.returncode == 0 and _cpus_in_status(out.stdout) >= cpus:
                return
            time.sleep(1.0)
        raise TimeoutError(f"the local Ray cluster did not offer {cpus} CPUs within {timeout:.0f} s; see the logs in {self._tmp}")

    def stop(self, grace: float = 5.0, keep_logs: bool = False) -> None:
        """Stop the worker nodes, then the head (SIGTERM, then SIGKILL after ``grace`` seconds)."""
        for proc in reversed(self.nodes):
            _stop_group(proc, grace)
        self.nodes.clear()
        if self._tmp and not keep_logs:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> str:
        try:
            return self.start()
        except BaseException:
            self.stop(keep_logs=True)
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def _cpus_in_status(text: str) -> float:
    """The total CPUs in ``ray status`` output (a line like `` 0.0/2.0 CPU``)."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == "CPU" and "/" in parts[0]:
            return float(parts[0].split("/")[1])
    return 0.0


def _stop_group(proc: subprocess.Popen, grace: float) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass
