"""The local stack (``python -m infra.local``) started for real, on a free loopback port."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.local.processes import free_port
from tests.keystone_server import Keystone, stop_group

ROOT = Path(__file__).resolve().parents[2]
SIGNING_KEY = "e2e-signing-key"


def _wait_until_up(port: int, process: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    """Until the stack answers: a few seconds, much longer on a loaded machine."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the local stack exited with {process.returncode}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            conn.request("GET", "/")
            if conn.getresponse().status == 300:
                return
        except OSError:
            time.sleep(0.1)
        finally:
            conn.close()
    raise RuntimeError("the local stack did not come up")


@dataclass(frozen=True)
class Stack:
    http: str
    ws: str
    aws: str
    log: Path | None = None
    """What the stack printed (stdout and stderr): its access log, its warnings."""
    pid: int = 0


def _start_stack(tmp: Path, redis_url: str, **extra: str) -> Iterator[Stack]:
    port, ws_port, moto_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "WS_PORT": str(ws_port),
        "MOTO_PORT": str(moto_port),
        "WEBHOOK_TIMEOUT": "1",
        "SIGNING_KEY": SIGNING_KEY,
        "DATA_DIR": str(tmp),
        "POOL_URL": redis_url,
        "WORKERS": "2",
        "KEYSTONE_TIMEOUT": "60",  # used with AUTH_STRATEGY=keystone: a loaded machine's Keystone can be slow
        **extra,
    }
    for name in ("CATALOG_URL", "AWS_ENDPOINT_URL", "EVENT_STREAM", "RETRY_QUEUE"):
        env.pop(name, None)
    log = tmp / "stack.log"
    with log.open("ab") as output:  # a file, not a pipe: nobody would read the pipe, and a full one blocks
        process = subprocess.Popen([sys.executable, "-m", "infra.local"], cwd=ROOT, env=env,
                                   stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # a group of its own, stopped as a whole
    try:
        try:
            _wait_until_up(port, process)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}:\n{log.read_text(errors='replace')[-3000:]}") from None
        yield Stack(http=f"http://127.0.0.1:{port}", ws=f"ws://127.0.0.1:{ws_port}/", aws=f"http://127.0.0.1:{moto_port}",
                    log=log, pid=process.pid)
    finally:
        stop_group(process, timeout=30)  # SIGTERM, then SIGKILL to what is left of the group, also on Ctrl-C


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Stack]:
    yield from _start_stack(tmp_path_factory.mktemp("stack"), redis_url)


@pytest.fixture(scope="session")
def keystone_stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str, keystone: Keystone) -> Iterator[Stack]:
    """The local stack with AUTH_STRATEGY=keystone against the test Keystone."""
    from tests.keystone_server import PASSWORD

    yield from _start_stack(
        tmp_path_factory.mktemp("keystone-stack"), redis_url, AUTH_STRATEGY="keystone", KEYSTONE_URL=keystone.url,
        KEYSTONE_USERNAME="zaqar", KEYSTONE_PASSWORD=PASSWORD, KEYSTONE_PROJECT="service",
    )


@pytest.fixture
def stack_url(stack: Stack) -> str:
    return stack.http
