"""A benchmarked server running as a child process."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile

import psutil

from bench.roundtrips import RoundTripProxy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ProcessServer:
    """A server started as a child process: its CPU time and its stop.

    CPU is read from /proc (psutil) for the child and every process under it.
    Processes that stand in for a managed service (``_stand_in`` says which)
    are summed apart, so they can be reported beside the server's own CPU
    instead of inside it.
    """

    process: subprocess.Popen[bytes]
    _dir: tempfile.TemporaryDirectory[str]
    port: int
    stop_grace_s = 15.0

    def _prepare(self, redis_url: str, proxy: RoundTripProxy | None, prefix: str) -> str:
        """Pick a port and a working folder; returns the Redis URL to use (the proxy's, if any)."""
        self.proxy = proxy
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix=prefix)
        return proxy.url if proxy is not None else redis_url

    def _stand_in(self, proc: psutil.Process) -> bool:
        return False

    def processes(self) -> list[psutil.Process]:
        parent = psutil.Process(self.process.pid)
        return [parent, *parent.children(recursive=True)]

    def cpu_split(self) -> tuple[float, float]:
        """(seconds of CPU of the server's own processes, seconds of its stand-ins), user + system."""
        own = stand_in = 0.0
        for proc in self.processes():
            try:
                times = proc.cpu_times()
                if self._stand_in(proc):
                    stand_in += times.user + times.system
                else:
                    own += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return own, stand_in

    def cpu_seconds(self) -> float:
        return self.cpu_split()[0]

    def stop(self) -> None:
        try:
            tree = self.processes()[1:]
        except psutil.NoSuchProcess:
            tree = []
        self.process.terminate()
        try:
            self.process.wait(timeout=self.stop_grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        # whatever the server left behind (it stops its children itself when it can)
        _gone, alive = psutil.wait_procs(tree, timeout=5)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        self._dir.cleanup()
