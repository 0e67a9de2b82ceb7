"""The local stack: ``python -m infra.local`` (what ``make run`` starts).

REST on 127.0.0.1:$PORT (8888) in front of the same Chalice app Lambda
runs; an embedded Redis under $DATA_DIR unless $POOL_URL names one; a
SQLite catalog under $DATA_DIR unless $CATALOG_URL names another database.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import sys
import time
from pathlib import Path
from types import FrameType


def _encryption_key(data_dir: Path) -> str:
    path = data_dir / "encryption.key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _worker(sock: socket.socket) -> None:
    from app import app
    from infra.local.gateway import Gateway
    from infra.local.http import serve

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        serve(Gateway(app, app.routes).handle, sock)
    os._exit(0)


def _websocket_worker(port: int) -> None:
    from infra.local.websocket_server import main as serve_websockets

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        serve_websockets(port)
    os._exit(0)


def main() -> int:
    env = os.environ
    data_dir = Path(env.get("DATA_DIR") or "./.local").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env["DATA_DIR"] = str(data_dir)
    port = int(env.get("PORT") or 8888)
    workers = max(1, int(env.get("WORKERS") or os.cpu_count() or 2))
    redis_server = None
    if not env.get("POOL_URL"):
        from infra.local.embedded_redis import EmbeddedRedis

        redis_server = EmbeddedRedis(data_dir / "redis")
        env["POOL_URL"] = redis_server.url
    env.setdefault("MESSAGE_ENCRYPTION_KEY", _encryption_key(data_dir))

    from chalicelib.config import get_settings
    from chalicelib.runtime import build

    settings = get_settings()
    build(settings).pooling.close()  # migrate the catalog and register the default pool once

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(512)
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            _worker(sock)
        children.append(pid)
    ws_port = int(env.get("WS_PORT") or 9000)
    pid = os.fork()
    if pid == 0:
        sock.close()
        _websocket_worker(ws_port)
    children.append(pid)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"Zaqar REST API on http://127.0.0.1:{port}/v2 ({workers} workers)", flush=True)
    print(f"Zaqar websocket API on ws://127.0.0.1:{ws_port}/", flush=True)
    print(f"  pool {settings.pool_url}, catalog {settings.catalog_url}, data in {data_dir}", flush=True)
    try:
        while True:
            pid, _status = os.wait()
            if pid in children:
                print(f"worker {pid} exited; stopping", file=sys.stderr, flush=True)
                break
    except KeyboardInterrupt:
        pass
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for pid in children:
            while time.monotonic() < deadline:
                try:
                    if os.waitpid(pid, os.WNOHANG)[0]:
                        break
                except ChildProcessError:
                    break
                time.sleep(0.05)
        if redis_server is not None:
            redis_server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
