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
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.config import Settings


def _secret(data_dir: Path, name: str) -> str:
    """A key kept under DATA_DIR, made on first start, so restarts keep working data."""
    path = data_dir / name
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _start_aws(env: dict[str, str] | os._Environ[str], wake: socket.socket) -> subprocess.Popen[bytes]:
    """Embedded AWS (moto, adjusted: see infra/local/aws.py) on loopback for Kinesis, SQS and SES; every
    AWS client points at it. It gets one end of the wake-up channel to the delivery loop."""
    port = int(env.get("MOTO_PORT") or 9100)
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local.aws", "--host", "127.0.0.1", "--port", str(port),
         "--wake-fd", str(wake.fileno())],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(wake.fileno(),),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            break
        time.sleep(0.1)
    if process.poll() is not None:
        raise RuntimeError(f"the local AWS (python -m infra.local.aws) exited with {process.returncode}")
    env.update({
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1",
    })
    env.setdefault("EVENT_STREAM", "zaqar-events")
    env.setdefault("RETRY_QUEUE", "zaqar-retries")
    env.setdefault("SES_SENDER", "noreply@zaqar.local")
    return process


def _worker(sock: socket.socket, wake: socket.socket) -> None:
    wake.close()  # the delivery loop's; REST workers have no use for it
    from app import app
    from infra.local.gateway import Gateway
    from infra.local.http import serve

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        serve(Gateway(app, app.routes).handle, sock)
    os._exit(0)


def _websocket_worker(port: int, wake: socket.socket) -> None:
    from infra.local.websocket_server import main as serve_websockets

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        serve_websockets(port, wake)
    os._exit(0)


def _provision(settings: Settings) -> None:
    import boto3

    from infra.local.pumps import provision

    assert settings.event_stream and settings.retry_queue and settings.ses_sender
    provision(boto3.client("kinesis"), boto3.client("sqs"), boto3.client("ses"), stream=settings.event_stream,
              queue=settings.retry_queue, sender=settings.ses_sender)


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
    env.setdefault("MESSAGE_ENCRYPTION_KEY", _secret(data_dir, "encryption.key"))
    env.setdefault("SIGNING_KEY", _secret(data_dir, "signing.key"))
    env.setdefault("WEBHOOK_ALLOW_LOOPBACK", "true")
    env.setdefault("REQUEST_LOG", "false")  # a terminal, not CloudWatch  # so people can test webhooks on their own machine
    env.setdefault("PUBLIC_URL", f"http://127.0.0.1:{port}")
    ws_port = int(env.get("WS_PORT") or 9000)
    env.setdefault("WEBSOCKET_API_ID", "local")
    env.setdefault("WEBSOCKET_STAGE", "local")
    from infra.local import wake

    aws_end, loop_end = wake.pair()  # the local AWS wakes the delivery loop (see infra/local/wake.py)
    try:
        moto = _start_aws(env, aws_end)
    except RuntimeError:
        if redis_server is not None:
            redis_server.stop()
        raise
    aws_end.close()

    from chalicelib.config import get_settings
    from chalicelib.runtime import build

    settings = get_settings()
    build(settings).pooling.close()  # migrate the catalog and register the default pool once
    _provision(settings)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(512)
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            _worker(sock, loop_end)
        children.append(pid)
    pid = os.fork()
    if pid == 0:
        sock.close()
        _websocket_worker(ws_port, loop_end)
    children.append(pid)
    loop_end.close()

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
        moto.terminate()
        moto.wait(timeout=10)
        if redis_server is not None:
            redis_server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
