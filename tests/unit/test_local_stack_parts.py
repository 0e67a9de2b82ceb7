"""Parts of the local stack (infra/local) that need no process: the gateway's event builder and
renderer, the rate-limited warnings, the access log, the stage's environment, the HTTP limits."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from infra.local.__main__ import apply_stage, stage_environment
from infra.local.gateway import Gateway, error_description, render
from infra.local.http import Limits
from infra.local.logs import AccessLog, RateLimit
from infra.local.processes import PortTaken, listen

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
