"""The local stack against hostile input and crashes: real processes on free loopback ports.

Malformed requests are answered 400 in Zaqar's format and the stack keeps serving; chunked bodies
are one request with one answer; slow and idle clients are timed out; a REST worker or the
websocket/delivery process killed with SIGKILL is replaced; a port in use is one line naming the
variable to change, with nothing left running; the embedded Redis keeps its port across restarts;
every request is one line of the log.

Timeouts here are generous on purpose: each test asserts what happens, not how fast.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.local.processes import free_port
from tests.e2e.conftest import ROOT, Stack, _start_stack

pytestmark = pytest.mark.e2e

CLIENT = "3d0e4a0c-8a35-4a0e-9a54-94b3bf4a8d7e"
TIMEOUT_S = 2  # HTTP_IDLE_TIMEOUT and HTTP_REQUEST_TIMEOUT of the stack these tests start
PATIENCE_S = 60.0  # how long any one thing may take before a test gives up on it


def _eventually(check: Callable[[], Any], what: str, timeout: float = PATIENCE_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except (OSError, AssertionError, requests.RequestException):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.2)


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, name) of every process on the machine."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            found[int(entry.name)] = (int(stat[stat.rindex(")") + 2:].split()[1]), name)
    return found


def _children(pid: int, name: str) -> set[int]:
    return {child for child, (parent, comm) in _processes().items() if parent == pid and comm == name}


def _marked(marker: str, data_dir: Path | None = None) -> set[int]:
    """Processes whose environment carries marker (the stack and what it started), or that work in data_dir
    (the embedded Redis, which writes its process title over its environment, works in DATA_DIR/redis)."""
    needle = f"ZAQAR_E2E_MARKER={marker}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = Path(os.readlink(entry / "cwd")) if data_dir is not None else None
                if needle in (entry / "environ").read_bytes().split(b"\0") or (
                        cwd is not None and data_dir is not None and cwd.is_relative_to(data_dir)):
                    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.add(int(entry.name))
            except OSError:
                continue
    return found


def _raw(port: int, data: bytes, answers: int | None = None, timeout: float = 10.0) -> bytes:
    """Send data on a new connection and read until the server closes it, answers that many times, or timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
                if answers is not None and _complete(received) >= answers:
                    break
        except (TimeoutError, ConnectionResetError):
            pass
        return received


def _complete(raw: bytes) -> int:
    try:
        return len(_responses(raw))
    except (AssertionError, ValueError, IndexError):
        return 0


def _responses(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The HTTP/1.1 responses in raw, in order (status, lower-cased headers, body)."""
    found = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        assert sep, f"not a complete response: {raw[:200]!r}"
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        assert len(rest) >= length, "a response cut short"
        found.append((status, headers, rest[:length]))
        raw = rest[length:]
    return found


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


@pytest.fixture(scope="module")
def marker() -> str:
    return uuid.uuid4().hex


@pytest.fixture(scope="module")
def tough(tmp_path_factory: pytest.TempPathFactory, redis_url: str, marker: str) -> Iterator[Stack]:
    """A stack of this module's own (tests here kill its workers), with short HTTP timeouts."""
    yield from _start_stack(tmp_path_factory.mktemp("tough-stack"), redis_url, HTTP_IDLE_TIMEOUT=str(TIMEOUT_S),
                            HTTP_REQUEST_TIMEOUT=str(TIMEOUT_S), ZAQAR_E2E_MARKER=marker)


def _ping(stack: Stack) -> bool:
    headers = {"Client-ID": CLIENT, "X-Project-ID": "pinger"}
    return requests.get(f"{stack.http}/v2/ping", headers=headers, timeout=10).status_code == 204


def _log_lines(stack: Stack) -> list[str]:
    assert stack.log is not None
    return stack.log.read_text(errors="replace").splitlines()


# -- hostile requests ---------------------------------------------------------------------------

MALFORMED = {
    "an IPv6 bracket in a path of two slashes": b"GET //[ HTTP/1.1\r\nHost: x\r\n\r\n",
    "an absolute URI with a broken IPv6 host": b"GET http://[::1/v2/queues HTTP/1.1\r\nHost: x\r\n\r\n",
    "an absolute URI with garbage for a host": b"GET http://[zz]x:99999/v2 HTTP/1.1\r\nHost: x\r\n\r\n",
    "no version": b"GET /v2/ping\r\nHost: x\r\n\r\n",
    "garbage for a request line": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    "a header without a colon": b"GET /v2/ping HTTP/1.1\r\nHost x\r\n\r\n",
    "a Content-Length that is not a number": b"POST /v2/queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
    "an unknown transfer coding": b"POST /v2/queues/q/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    "a broken chunk": b"POST /v2/queues/q/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "headers too large": b"GET /v2/ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n",
}


@pytest.mark.parametrize("request_bytes", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_request_gets_a_zaqar_error_and_the_stack_keeps_serving(tough: Stack, request_bytes: bytes) -> None:
    answers = _responses(_raw(_port(tough.http), request_bytes, answers=1))
    assert len(answers) == 1
    status, headers, body = answers[0]
    assert 400 <= status < 600 and status != 500
    assert headers["content-type"] == "application/json"
    document = json.loads(body)
    assert set(document) == {"title", "description"} and document["description"]
    assert _ping(tough)


def test_malformed_requests_on_every_worker_leave_them_all_serving(tough: Stack) -> None:
    """Every kind of broken request, twenty times over (more than there are workers, so each worker gets
    some), each round followed by a good one: every good one is answered, and no worker died."""
    port = _port(tough.http)
    before = _children(tough.pid, "zaqar-rest")
    for _ in range(20):
        for request_bytes in MALFORMED.values():
            _raw(port, request_bytes, answers=1)
        assert _ping(tough)
    assert _children(tough.pid, "zaqar-rest") == before  # none of them died (and was replaced)


def test_a_chunked_body_is_one_request_with_one_answer(tough: Stack) -> None:
    body = json.dumps({"messages": [{"body": {"chunked": True}, "ttl": 300}]}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:25], body[25:])) + b"0\r\n\r\n"
    headers = (f"Client-ID: {CLIENT}\r\nX-Project-ID: chunked-{uuid.uuid4().hex}\r\n"
               "Content-Type: application/json\r\nHost: x\r\n").encode()
    post = b"POST /v2/queues/chunky/messages HTTP/1.1\r\n" + headers + b"Transfer-Encoding: chunked\r\n\r\n" + chunks
    listing = b"GET /v2/queues/chunky/messages?echo=true HTTP/1.1\r\n" + headers + b"Connection: close\r\n\r\n"
    answers = _responses(_raw(_port(tough.http), post + listing, answers=2))  # one keep-alive connection, pipelined
    assert [status for status, _, _ in answers] == [201, 200]
    assert [m["body"] for m in json.loads(answers[1][2])["messages"]] == [{"chunked": True}]


def test_keep_alive_serves_many_requests_on_one_connection(tough: Stack) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", _port(tough.http), timeout=10)
    try:
        for _ in range(50):
            conn.request("GET", "/v2/ping", headers={"Client-ID": CLIENT, "X-Project-ID": "pinger"})
            response = conn.getresponse()
            response.read()
            assert response.status == 204 and not response.will_close
    finally:
        conn.close()


# -- slow and idle clients -------------------------------------------------------------------------


def _closed_within(sock: socket.socket, seconds: float) -> tuple[float, bytes]:
    """Wait for the server to close sock; returns after how long, and what it sent before."""
    started = time.monotonic()
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        raise AssertionError(f"the server kept the connection open for more than {seconds:.0f} s") from None
    except ConnectionResetError:
        pass
    return time.monotonic() - started, received


def test_a_client_that_sends_nothing_is_disconnected(tough: Stack) -> None:
    with socket.create_connection(("127.0.0.1", _port(tough.http)), timeout=10) as sock:
        _, received = _closed_within(sock, PATIENCE_S)
        assert received == b""


def test_a_client_that_stops_halfway_through_its_headers_is_answered_408(tough: Stack) -> None:
    with socket.create_connection(("127.0.0.1", _port(tough.http)), timeout=10) as sock:
        sock.sendall(b"GET /v2/ping HTTP/1.1\r\nHost: x\r\n")
        _, received = _closed_within(sock, PATIENCE_S)
    (status, _, body), = _responses(received)
    assert status == 408 and json.loads(body)["title"] == "Request Timeout"


def test_a_client_trickling_its_request_is_cut_off(tough: Stack) -> None:
    """Never idle for long, but never done either: the request deadline ends it, not the idle timeout."""
    payload = iter(b"GET /v2/ping HTTP/1.1\r\nX-Slow: " + b"a" * 100000)
    received = b""
    with socket.create_connection(("127.0.0.1", _port(tough.http)), timeout=10) as sock:
        sock.settimeout(0.2)
        deadline = time.monotonic() + PATIENCE_S
        while True:
            assert time.monotonic() < deadline, "the server let a trickling client go on for a minute"
            try:
                sock.send(bytes([next(payload)]))
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
    assert not received or received.startswith(b"HTTP/1.1 408 ")


def test_slow_clients_hold_no_worker(stack: Stack) -> None:
    """Fifty clients stuck in the middle of their requests (the shared stack gives them 30 s), and the
    workers answer everyone else meanwhile."""
    port = _port(stack.http)
    slow = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(50)]
    try:
        for sock in slow:
            sock.sendall(b"POST /v2/queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        for _ in range(20):
            assert _ping(stack)
        still_open = 0
        for sock in slow:
            sock.setblocking(False)
            try:
                still_open += sock.recv(1) == b"x"  # never: either nothing yet (open) or closed
            except BlockingIOError:
                still_open += 1
        assert still_open == len(slow)  # the pings did not have to wait for the slow ones to be timed out
    finally:
        for sock in slow:
            sock.close()


# -- crashes ------------------------------------------------------------------------------------


def test_a_rest_worker_killed_with_sigkill_is_replaced(tough: Stack) -> None:
    workers = _eventually(lambda: _children(tough.pid, "zaqar-rest"), "REST workers running")
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    for _ in range(20):  # the other worker answers meanwhile (a new connection may reach either)
        _eventually(lambda: _ping(tough), "the stack answers after a worker was killed")
    after = _eventually(lambda: (c := _children(tough.pid, "zaqar-rest")) and len(c) == len(workers) and c,
                        "a replacement worker")
    assert victim not in after
    assert any(f"REST worker {victim} was killed by SIGKILL; starting another" in line for line in _log_lines(tough))


def test_the_websocket_process_killed_with_sigkill_is_replaced(tough: Stack) -> None:
    from websockets.sync.client import connect

    (victim,) = _eventually(lambda: _children(tough.pid, "zaqar-ws"), "the websocket/delivery process")
    os.kill(victim, signal.SIGKILL)
    _eventually(lambda: (c := _children(tough.pid, "zaqar-ws")) and victim not in c, "a new websocket process")

    def list_over_websocket() -> bool:
        with connect(tough.ws, open_timeout=10) as ws:
            ws.send(json.dumps({"action": "queue_list", "headers": {"Client-ID": CLIENT, "X-Project-ID": "ws"},
                                "body": {}}))
            return bool(json.loads(ws.recv(timeout=10))["headers"]["status"] == 200)

    _eventually(list_over_websocket, "the websocket API answers again")
    assert _ping(tough)


# -- the request log ----------------------------------------------------------------------------


def test_each_request_is_one_line_of_the_log(tough: Stack) -> None:
    queue = f"logged-{uuid.uuid4().hex[:12]}"
    headers = {"Client-ID": CLIENT, "X-Project-ID": "logged"}
    assert requests.put(f"{tough.http}/v2/queues/{queue}", headers=headers, timeout=10).status_code == 201
    claim = f"{tough.http}/v2/queues/{queue}/claims/{'0' * 24}?signature=secret"
    assert requests.get(claim, headers=headers, timeout=10).status_code == 404
    pattern = re.compile(r"^\d\d:\d\d:\d\d (\S+) (\S+) (\d{3}) (\d+\.\d) ms(?: - (.*))?$")
    # written before the answer is sent: both are there once both were answered, and nothing else about them
    lines = [line for line in _log_lines(tough) if f"/v2/queues/{queue}" in line]
    assert len(lines) == 2, lines
    put, get = (pattern.match(line) for line in lines)
    assert put is not None and get is not None, lines
    assert put.group(1, 2, 3) == ("PUT", f"/v2/queues/{queue}", "201") and put.group(5) is None
    assert get.group(1, 2, 3) == ("GET", f"/v2/queues/{queue}/claims/{'0' * 24}", "404")  # the query is left out
    assert get.group(5) and "does not exist" in get.group(5)  # the error's description
    assert "secret" not in "".join(lines)


# -- ports and processes ---------------------------------------------------------------------------


def _stack_env(tmp: Path, marker: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PORT": str(free_port()), "WS_PORT": str(free_port()), "MOTO_PORT": str(free_port()),
           "DATA_DIR": str(tmp), "WORKERS": "1", "ZAQAR_E2E_MARKER": marker, **extra}
    for name in ("CATALOG_URL", "AWS_ENDPOINT_URL", "EVENT_STREAM", "RETRY_QUEUE", "REDIS_PORT"):
        env.pop(name, None)
    return env


def _run_to_exit(env: dict[str, str], timeout: float = PATIENCE_S) -> tuple[int, str]:
    finished = subprocess.run([sys.executable, "-m", "infra.local"], cwd=ROOT, env=env, capture_output=True,
                              timeout=timeout)
    return finished.returncode, (finished.stdout + finished.stderr).decode(errors="replace")


@pytest.mark.parametrize("variable", ["PORT", "WS_PORT", "MOTO_PORT"])
def test_a_port_in_use_is_one_line_naming_the_variable(tmp_path: Path, redis_url: str, variable: str) -> None:
    marker = uuid.uuid4().hex
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = _stack_env(tmp_path, marker, POOL_URL=redis_url, **{variable: str(port)})
        status, output = _run_to_exit(env)
    assert status != 0
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert variable in lines[0] and str(port) in lines[0] and "in use" in lines[0]
    assert "Traceback" not in output
    assert _marked(marker, tmp_path) == set()


def test_the_embedded_redis_keeps_its_port_across_restarts(tmp_path: Path, redis_url: str) -> None:
    def pool_port(stack: Stack, start: int) -> int:
        assert stack.log is not None
        log = stack.log
        found = _eventually(lambda: re.findall(r"pool redis://127\.0\.0\.1:(\d+)/0", log.read_text())[start:],
                            "the banner naming the pool")
        return int(found[0])

    ports = []
    for _ in range(2):
        stacks = _start_stack(tmp_path, redis_url, POOL_URL="")  # no POOL_URL: the embedded Redis
        stack = next(stacks)
        try:
            ports.append(pool_port(stack, len(ports)))
            headers = {"Client-ID": CLIENT, "X-Project-ID": "kept"}
            requests.post(f"{stack.http}/v2/queues/kept/messages", headers=headers, timeout=10,
                          json={"messages": [{"body": len(ports), "ttl": 3600}]}).raise_for_status()
            listed = requests.get(f"{stack.http}/v2/queues/kept/messages?echo=true", headers=headers, timeout=10)
            assert [m["body"] for m in listed.json()["messages"]] == list(range(1, len(ports) + 1))
        finally:
            stacks.close()
    assert ports[0] == ports[1]
    assert (tmp_path / "redis" / "port").read_text().strip() == str(ports[0])

    marker = uuid.uuid4().hex
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports[0]))
        taken.listen(1)
        status, output = _run_to_exit(_stack_env(tmp_path, marker, POOL_URL=""))
    assert status != 0
    (line,) = output.strip().splitlines()
    assert "REDIS_PORT" in line and str(ports[0]) in line and "in use" in line
    assert _marked(marker, tmp_path) == set()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_stopping_the_stack_however_leaves_no_process_behind(tmp_path: Path, how: signal.Signals) -> None:
    marker = uuid.uuid4().hex
    env = _stack_env(tmp_path, marker, POOL_URL="")
    with (tmp_path / "stack.log").open("wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "infra.local"], cwd=ROOT, env=env, stdout=output,
                                   stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{env['PORT']}"
        _eventually(lambda: requests.get(f"{url}/v2/ping", headers={"Client-ID": CLIENT, "X-Project-ID": "p"},
                                         timeout=5).status_code == 204, "the stack answers")
        started = _marked(marker, tmp_path)
        assert len(started) >= 5  # the stack, its Redis and AWS, a REST worker, the websocket process
        process.send_signal(how)
        status = process.wait(timeout=PATIENCE_S)
        if how != signal.SIGKILL:
            assert status == 0, (tmp_path / "stack.log").read_text()
        _eventually(lambda: not _marked(marker, tmp_path), "every process of the stack gone")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
