"""Parts of the local stack (infra/local), each on its own in this process: the gateway's event builder
and renderer, the HTTP layer (its event loop stepped here), the rate-limited warnings, the access log,
the stage's environment, the HTTP limits, the embedded Redis's start."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from waitress import wasyncore

from infra.local.__main__ import apply_stage, stage_environment
from infra.local.embedded_redis import EmbeddedRedis
from infra.local.gateway import Gateway, error_description, render
from infra.local.http import Limits, ZaqarServer
from infra.local.logs import AccessLog, RateLimit
from infra.local.processes import PortTaken, count_of, listen

ROUTES: dict[str, dict[str, Any]] = {"/v2/queues/{queue_name}": {"GET": None, "PUT": None}, "/": {"GET": None}}


def _app(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 200, "headers": {}, "body": json.dumps({"path": event["path"]})}


HOSTILE_TARGETS = [
    "//[", "http://[::1/v2/queues/q", "http://[zz]:99999/v2", "https://[", "//[::1]:x/", "http://a:b:c/v2",
    "\x00", "/v2/queues/%ff%fe", "/v2/queues/" + "%" * 50, "?" * 10000, "/v2/queues/q?" + "&=" * 5000,
    "*", "", "http://", "/v2/queues/\udcff", "/v2/queues/q#frag", "//////", "/v2/queues/q?a=%zz",
]


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_the_event_builder_never_raises(target: str) -> None:
    gateway = Gateway(_app, ROUTES)
    event = gateway.event("GET", target, [("Host", "x"), ("X-Bin", "\xff\x00")], b"\xff\xfe", "127.0.0.1")
    if "statusCode" in event:
        assert event["statusCode"] in (400, 404, 405)
        assert set(json.loads(event["body"])) == {"title", "description"}
    result = gateway.handle("GET", target, [], b"", "127.0.0.1")
    assert 200 <= result["statusCode"] < 500


def test_a_broken_ipv6_host_is_a_zaqar_400() -> None:
    result = Gateway(_app, ROUTES).handle("GET", "http://[::1/v2/queues/q", [], b"", "127.0.0.1")
    assert result["statusCode"] == 400
    assert json.loads(result["body"])["title"] == "Bad request"


def test_an_app_that_raises_or_answers_garbage_is_a_500_not_a_dead_worker() -> None:
    def raising(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    def garbage(event: dict[str, Any], context: Any) -> Any:
        return "not a proxy result"

    for app in (raising, garbage):
        result = Gateway(app, ROUTES).handle("GET", "/v2/queues/q", [], b"", "127.0.0.1")
        assert result["statusCode"] == 500 and json.loads(result["body"])["description"]


def test_render_drops_what_a_wsgi_server_refuses_and_never_raises() -> None:
    status, headers, body = render({"statusCode": 200, "headers": {"Connection": "close", "X-Bad": "a\r\nb",
                                                                  "Location": "/v2/queues/q"}, "body": "{}"}, "GET")
    assert status == "200 OK" and body == b"{}"
    names = [name for name, _ in headers]
    assert "Connection" not in names and "X-Bad" not in names and "Location" in names
    assert ("Content-Type", "application/json") in headers and ("Content-Length", "2") in headers
    assert render({"statusCode": 204, "headers": {}, "body": ""}, "DELETE")[1] == []
    assert render({"statusCode": 200, "headers": {}, "body": "abc"}, "HEAD")[2] == b""
    assert render({"statusCode": "nope"}, "GET")[0].startswith("500 ")
    assert render({"statusCode": 200, "body": object()}, "GET")[0].startswith("500 ")


def test_error_descriptions_come_from_zaqar_or_api_gateway_bodies() -> None:
    assert error_description(404, {"body": json.dumps({"title": "Not found", "description": "No queue."})}) == "No queue."
    assert error_description(403, {"body": json.dumps({"message": "Forbidden"})}) == "Forbidden"
    assert error_description(200, {"body": json.dumps({"description": "x"})}) is None
    assert error_description(500, {"body": "not json"}) is None


def test_a_repeated_warning_is_let_through_once_a_minute_with_the_count_held_back() -> None:
    now = [1000.0]
    limit = RateLimit(60, clock=lambda: now[0])

    def record(pool: str) -> logging.LogRecord:
        return logging.LogRecord("chalicelib.api.relay", logging.WARNING, __file__, 1, "relay skipped pool %s: %s",
                                 (pool, "unreachable"), None)

    assert limit.filter(record("a"))
    assert limit.filter(record("b"))  # another pool: another message
    for _ in range(59):
        now[0] += 1
        assert not limit.filter(record("a"))
    now[0] += 1.5
    again = record("a")
    assert limit.filter(again)
    assert again.getMessage() == "relay skipped pool a: unreachable (59 more like this in the last 60 s not shown)"


Answer = tuple[str, list[tuple[str, str]], bytes]


def _responses(raw: bytes, head: bool = False) -> list[Answer]:
    """The HTTP responses in raw, in order: status line, headers as sent, body (none when answering HEAD)."""
    found = []
    while raw:
        top, sep, rest = raw.partition(b"\r\n\r\n")
        assert sep, f"not a complete response: {raw[:200]!r}"
        status, *lines = top.decode("latin-1").split("\r\n")
        headers = [(name, value.strip()) for name, _, value in (line.partition(":") for line in lines)]
        length = 0 if head else int(next((v for n, v in headers if n.lower() == "content-length"), "0"))
        assert len(rest) >= length, "a response cut short"
        found.append((status, headers, rest[:length]))
        raw = rest[length:]
    return found


class _Http:
    """A ZaqarServer on a loopback port, its event loop stepped by :meth:`exchange` (no thread, no process)."""

    def __init__(self, gateway: Gateway) -> None:
        self.server = ZaqarServer(gateway.respond, listen("PORT", 0, "the REST API"), Limits(), AccessLog(enabled=False))
        self.port = self.server.socket.getsockname()[1]

    def exchange(self, data: bytes, answers: int, head: bool = False) -> tuple[list[Answer], bool]:
        """Send data on a new connection; the answers, and whether the server kept the connection open."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as client:
            client.sendall(data)
            client.setblocking(False)
            received, closed = b"", False
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                wasyncore.poll(0.01, self.server._map)
                try:
                    chunk = client.recv(65536)
                except BlockingIOError:
                    if len(_responses_so_far(received, head)) >= answers:
                        break  # answered, and still open after one more turn of the loop
                    continue
                if not chunk:
                    closed = True
                    break
                received += chunk
            return _responses(received, head), not closed

    def close(self) -> None:
        wasyncore.close_all(self.server._map)


def _responses_so_far(raw: bytes, head: bool) -> list[Answer]:
    try:
        return _responses(raw, head)
    except (AssertionError, ValueError):
        return []


def _echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answers 204 on /v2/queues/empty, else 200 with what it got, and a header spelled its own way."""
    if event["pathParameters"] == {"queue_name": "empty"}:
        return {"statusCode": 204, "headers": {}, "body": ""}
    return {"statusCode": 200, "headers": {"X-Project-ID": "p", "ETag": "abc"},
            "body": json.dumps({"headers": event["headers"], "body": event["body"]})}


@pytest.fixture
def http() -> Iterator[_Http]:
    server = _Http(Gateway(_echo, {"/v2/queues/{queue_name}": {"GET": None, "PUT": None, "HEAD": None}}))
    try:
        yield server
    finally:
        server.close()


def test_http_keeps_connections_open_unless_the_client_says_otherwise(http: _Http) -> None:
    get = b"GET /v2/queues/empty HTTP/1.1\r\nHost: x\r\n\r\n"
    (answer,), open_after = http.exchange(get, 1)
    assert answer[0] == "HTTP/1.1 204 No Content" and open_after  # waitress alone closes after a 204
    assert [name for name, _ in answer[1]] == ["Date"]  # no Content-Length on a 204, no Connection

    (answer,), open_after = http.exchange(b"GET /v2/queues/q HTTP/1.1\r\nConnection: close\r\n\r\n", 1)
    assert ("Connection", "close") in answer[1] and not open_after

    (answer,), open_after = http.exchange(b"GET /v2/queues/q HTTP/1.0\r\n\r\n", 1)
    assert answer[0] == "HTTP/1.0 200 OK" and ("Connection", "close") in answer[1] and not open_after

    (answer,), open_after = http.exchange(b"GET /v2/queues/q HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1)
    assert ("Connection", "Keep-Alive") in answer[1] and open_after


def test_http_hands_the_app_the_request_and_sends_its_answer_as_it_spelled_it(http: _Http) -> None:
    body = b'{"messages": [{"body": 1}]}'
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (5, body[:5], len(body) - 5, body[5:])
    requests = (b"PUT /v2/queues/q HTTP/1.1\r\nX-Project-ID: p1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                + b"PUT /v2/queues/q HTTP/1.1\r\nclient-id: c\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
    answers, open_after = http.exchange(requests, 2)  # pipelined on one connection, answered in order
    assert open_after and [status for status, _, _ in answers] == ["HTTP/1.1 200 OK"] * 2
    first, second = (json.loads(payload) for _, _, payload in answers)
    assert first == {"headers": {"X-Project-Id": "p1", "Content-Length": str(len(body))}, "body": body.decode()}
    assert second["headers"] == {"Client-Id": "c", "Content-Length": str(len(body))} and second["body"] == body.decode()
    names = [name for name, _ in answers[0][1]]
    assert names[:2] == ["X-Project-ID", "ETag"]  # not re-cased (X-Project-Id, Etag) as waitress would
    assert {"Content-Length", "Content-Type", "Date"} <= set(names)

    (answer,), open_after = http.exchange(b"HEAD /v2/queues/q HTTP/1.1\r\n\r\n", 1, head=True)
    assert open_after and int(dict(answer[1])["Content-Length"]) > 0  # the GET's length, and no body:
    trailing, _ = http.exchange(b"HEAD /v2/queues/q HTTP/1.1\r\n\r\nGET /v2/queues/empty HTTP/1.1\r\n\r\n", 2,
                                head=True)
    assert [status for status, _, _ in trailing] == ["HTTP/1.1 200 OK", "HTTP/1.1 204 No Content"]  # nothing sent between them


def test_the_access_log_is_one_safe_line_per_request(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        log = AccessLog(fd)
        log.request("GET", "/v2/queues/q", 200, 1.234)
        log.request("GET", "/v2/queues/x\r\n12:00:00 FAKE line", 404, 0.5, "No queue\nhere.")
    finally:
        os.close(fd)
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(" GET /v2/queues/q 200 1.2 ms")
    assert lines[1].endswith(" GET /v2/queues/x??12:00:00 FAKE line 404 0.5 ms - No queue?here.")


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise AssertionError("the access log waited for a reader")


def test_the_access_log_drops_lines_rather_than_wait_for_a_full_pipe() -> None:
    read_end, write_end = os.pipe()
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        os.set_blocking(write_end, False)
        with pytest.raises(BlockingIOError):
            while True:
                os.write(write_end, b"x" * 4096)
        os.set_blocking(write_end, True)  # as stdout is: a write to it now would block
        log = AccessLog(write_end)
        signal.setitimer(signal.ITIMER_REAL, 5)
        log.request("GET", "/v2/queues/q", 200, 1.0)
        log.request("GET", "/v2/queues/q", 200, 1.0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        assert log.dropped == 2
        os.set_blocking(read_end, False)
        with pytest.raises(BlockingIOError):
            while os.read(read_end, 65536):
                pass
        log.request("GET", "/v2/queues/r", 200, 1.0)
        line = os.read(read_end, 65536).decode()
        assert line.endswith(" GET /v2/queues/r 200 1.0 ms (2 lines before this one were dropped: the output was not read)\n")
        assert log.dropped == 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        os.close(read_end)
        os.close(write_end)


def test_the_local_stage_fills_in_what_the_environment_does_not_set(tmp_path: Path) -> None:
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps({
        "environment_variables": {"AUTH_STRATEGY": "noauth", "CATALOG_CACHE_TTL": "10"},
        "stages": {"local": {"environment_variables": {"DATA_DIR": "./.local", "ADMIN_MODE": "true",
                                                       "CATALOG_CACHE_TTL": "5"}},
                   "prod": {"environment_variables": {"ADMIN_MODE": "false"}}},
    }))
    assert stage_environment(tmp_path) == {"AUTH_STRATEGY": "noauth", "CATALOG_CACHE_TTL": "5",
                                           "DATA_DIR": str(tmp_path / ".local"), "ADMIN_MODE": "true"}
    env = {"ADMIN_MODE": "false"}
    apply_stage(env, tmp_path)
    assert env["ADMIN_MODE"] == "false" and env["CATALOG_CACHE_TTL"] == "5"


def test_the_repository_local_stage_turns_admin_mode_on() -> None:
    assert stage_environment()["ADMIN_MODE"] == "true"


def test_http_limits_come_from_the_environment_and_bad_values_name_their_variable() -> None:
    limits = Limits.from_environment({"HTTP_IDLE_TIMEOUT": "5", "HTTP_REQUEST_TIMEOUT": "2.5",
                                      "HTTP_MAX_CONNECTIONS": "10"})
    assert (limits.idle_timeout_s, limits.request_timeout_s, limits.max_connections) == (5, 2.5, 10)
    assert limits.connection_limit() <= 10
    for name, value in (("HTTP_IDLE_TIMEOUT", "soon"), ("HTTP_REQUEST_TIMEOUT", "-1"), ("HTTP_MAX_CONNECTIONS", "0")):
        with pytest.raises(ValueError, match=name):
            Limits.from_environment({name: value})


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_worker_count_names_its_variable(value: str) -> None:
    with pytest.raises(ValueError, match=f"WORKERS must be a whole number of at least 1, not '{value}'"):
        count_of({"WORKERS": value}, "WORKERS", 2)
    assert count_of({}, "WORKERS", 2) == 2 and count_of({"WORKERS": "3"}, "WORKERS", 2) == 3


def test_an_embedded_redis_interrupted_while_starting_is_stopped(tmp_path: Path) -> None:
    started = []

    class Interrupted(EmbeddedRedis):
        def _wait(self, timeout: float = 10.0) -> None:
            started.append(self._process)
            super()._wait(timeout)
            raise KeyboardInterrupt  # Ctrl-C (or the stack's SIGTERM) right after it answered

    with pytest.raises(KeyboardInterrupt):
        Interrupted(tmp_path, persistent=False)
    (process,) = started
    assert process.poll() is not None  # stopped (and reaped), not left running


def test_a_port_in_use_names_its_variable() -> None:
    first = listen("PORT", 0, "the REST API")
    try:
        port = first.getsockname()[1]
        with pytest.raises(PortTaken) as taken:
            listen("WS_PORT", port, "the websocket API")
        assert str(taken.value) == (f"port {port} (WS_PORT, the websocket API) on 127.0.0.1 is already in use: "
                                    "set WS_PORT to a free port")
    finally:
        first.close()
