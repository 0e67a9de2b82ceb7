"""A benchmarked server running as a child process."""

from __future__ import annotations

import subprocess
import tempfile

import psutil


class ProcessServer:
    """A server started as a child process: its CPU time and its stop."""

    process: subprocess.Popen[bytes]
    _dir: tempfile.TemporaryDirectory[str]

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
