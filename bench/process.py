"""A benchmarked server running as a child process."""

from __future__ import annotations

import socket
import subprocess
import tempfile

import psutil

from bench.roundtrips import RoundTripProxy


class ProcessServer:
    """A server started as a child process: its CPU time and its stop."""

    process: subprocess.Popen[bytes]
    _dir: tempfile.TemporaryDirectory[str]
    port: int

    def _prepare(self, redis_url: str, proxy: RoundTripProxy | None, prefix: str) -> str:
        """Pick a port and a working folder; returns the Redis URL to use (the proxy's, if any)."""
        self.proxy = proxy
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self._dir = tempfile.TemporaryDirectory(prefix=prefix)
        return proxy.url if proxy is not None else redis_url

    def cpu_seconds(self) -> float:
        total = 0.0
        parent = psutil.Process(self.process.pid)
        for proc in [parent, *parent.children(recursive=True)]:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._dir.cleanup()
