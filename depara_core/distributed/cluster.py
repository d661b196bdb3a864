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
        self.address = f"127.0.0.1:{_free_port()}"  # the head's port is chosen again if it must restart
        self.workers, self.cpus_per_node, self.head_cpus = workers, cpus_per_node, head_cpus
        self.object_store_bytes = object_store_bytes
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
        self.nodes: list[subprocess.Popen] = []
        self._tmp: str | None = None
        self._launched = 0

    def _ray(self, *args: str) -> tuple[subprocess.Popen, Path]:
        ray_bin = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
        self._launched += 1
        path = Path(self._tmp) / f"node{len(self.nodes)}-{self._launched}.log"
        log = open(path, "wb")  # noqa: SIM115 - kept open for the node's life
        # several nodes on one address need their own ports (Ray's defaults would collide)
        ports = [f"--{flag}={_free_port()}" for flag in ("node-manager-port", "object-manager-port", "metrics-export-port",
                                                         "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port")]  # fmt: skip
        low = 20000 + 500 * len(self.nodes)
        cmd = [ray_bin, "start", "--block", "--node-ip-address=127.0.0.1", f"--object-store-memory={self.object_store_bytes}",
               "--disable-usage-stats", *ports, f"--min-worker-port={low}", f"--max-worker-port={low + 499}", *args]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        self.nodes.append(proc)
        return proc, path

    def start(self, timeout: float = 120.0, attempts: int = 3) -> str:
        """Start the head and the workers; returns the address once every node's CPUs are seen.

        A node that exits while starting (most often a port that another process took between our
        choosing it and Ray binding it) is started again on fresh ports, up to ``attempts`` times;
        the error then quotes the end of its log.
        """
        self._tmp = tempfile.mkdtemp(prefix="depara-ray-")

        def head() -> list[str]:
            self.address = f"127.0.0.1:{_free_port()}"
            port = self.address.rsplit(":", 1)[1]
            return ["--head", f"--port={port}", f"--num-cpus={self.head_cpus}", "--include-dashboard=false", f"--temp-dir={self._tmp}"]

        self._start_node(head, self.head_cpus, timeout, attempts)
        for i in range(self.workers):  # one at a time: nodes starting together can time out on a small machine
            self._start_node(lambda: [f"--address={self.address}", f"--num-cpus={self.cpus_per_node}"],
                             self.head_cpus + (i + 1) * self.cpus_per_node, timeout, attempts)  # fmt: skip
        return self.address

    def _start_node(self, node_args, cpus: float, timeout: float, attempts: int) -> None:
        """Start one node (``node_args()`` gives its own flags, asked again on each attempt) and wait for ``cpus``."""
        for attempt in range(1, attempts + 1):
            proc, log = self._ray(*node_args())
            try:
                self._wait_for_cpus(cpus, timeout)
                return
            except _NodeExited as exited:
                if exited.proc is not proc:
                    raise RuntimeError(f"a Ray node started earlier exited; see the logs in {self._tmp}") from None
                _stop_group(proc, grace=0.0)
                self.nodes.remove(proc)
                if attempt == attempts:
                    tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
                    raise RuntimeError(f"a Ray node exited while starting, {attempts} times; the end of its log ({log}):\n{tail}") from None

    def _wait_for_cpus(self, cpus: float, timeout: float) -> None:
        """Poll the cluster (``ray status`` in a child, so this process never joins it) until it has ``cpus``."""
        ray_bin = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.nodes:
                if proc.poll() is not None:
                    raise _NodeExited(proc)
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


class _NodeExited(Exception):
    """A node's ``ray start --block`` ended while we waited for it."""

    def __init__(self, proc: subprocess.Popen) -> None:
        super().__init__(proc.args)
        self.proc = proc


def _cpus_in_status(text: str) -> float:
    """The total CPUs in ``ray status`` output (a line like `` 0.0/2.0 CPU``)."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == "CPU" and "/" in parts[0]:
            return float(parts[0].split("/")[1])
    return 0.0


def _stop_group(proc: subprocess.Popen, grace: float) -> None:
    if proc.poll() is not None:  # `ray start` ended; what it started may live on in its group
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass
