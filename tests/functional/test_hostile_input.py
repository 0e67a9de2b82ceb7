"""Hostile input, case by case: each answer is a 4xx in Zaqar's format that says what is wrong, before any
backend sees the input; whatever fails unexpectedly is a 500 in Zaqar's format with the request id.

Requests that HTTP clients cannot send (NUL or lone surrogates in headers and path parts, as API Gateway
can still deliver them in its JSON event) are API Gateway events handed to the app directly.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.app import BadRequestError
from chalice.test import Client

import app as app_module
from chalicelib import errors, runtime
from chalicelib.api import inputs, queues
from chalicelib.api.context import Services
from chalicelib.config import Settings
from chalicelib.transport import websocket
from infra.local.gateway import LambdaContext
from tests.conftest import make_settings
from tests.functional.conftest import Api, Reply
from tests.functional.hostile import api_event, deep, pool_settings
from tests.functional.test_websocket import FakeManagementApi, Ws, fake_management

ADMIN = {"X-Roles": "admin"}
LIMIT = inputs.MAX_JSON_DEPTH


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, pool_url: str) -> Settings:
    return pool_settings(tmp_path, redis_url, pool_url, ADMIN_MODE="true", SIGNING_KEY="hostile-signing-key")


def assert_error(reply: Reply, status: int, *words: str, case: object = None) -> dict[str, str]:
    assert reply.status == status, (case, reply.raw)
    body: dict[str, str] = reply.json
    assert set(body) == {"title", "description"}, (case, body)
    for word in words:
        assert word.lower() in body["description"].lower(), (case, body["description"])
    return body


def invoke(api: Api, method: str, template: str, params: dict[str, str] | None = None, *,
           headers: dict[str, str] | None = None, query: dict[str, list[str]] | None = None,
           body: str | None = None, encoded: bool = False) -> Reply:
    """An API Gateway event straight to the app: what API Gateway can deliver that HTTP clients cannot send."""
    sent = {"Client-ID": api.client_id, "X-Project-ID": api.project, "Content-Type": "application/json",
            **ADMIN, **(headers or {})}
    event = api_event(method, template, params, headers=sent, query=query, body=body, encoded=encoded)
    result = app_module.app(event, LambdaContext())
    raw = result.get("body") or ""
    data = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
    return Reply(int(result["statusCode"]), {k.lower(): v for k, v in result["headers"].items()}, data)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


BODY_ROUTES = sorted((method, path) for path, methods in app_module.app.routes.items() for method in methods
                     if method in {"PUT", "POST", "PATCH"})


# -- over-deep JSON ---------------------------------------------------------------------


def test_json_nested_ten_thousand_deep_is_400_on_every_route_with_a_body(api: Api) -> None:
    assert len(BODY_ROUTES) >= 14
    for method, path in BODY_ROUTES:
        concrete = path.replace("{queue_name}", "q1").replace("{topic_name}", "t1").replace("{claim_id}", "0" * 32) \
            .replace("{subscription_id}", "0" * 32).replace("{pool_name}", "p1").replace("{flavor_name}", "f1")
        patch = path in {"/v2/queues/{queue_name}", "/v2/topics/{topic_name}"} and method == "PATCH"
        for text in (deep(10_000), deep(10_000, "{"), '{"messages": [' * 5000):
            reply = api.call(method, concrete, raw=text,
                             headers={**ADMIN, "Content-Type": queues.PATCH_MEDIA_TYPE} if patch else ADMIN)
            assert_error(reply, 400, f"more than {LIMIT} deep", case=(method, path, text[:20]))
    assert api.get("/v2/queues").json["queues"] == []


def test_the_depth_limit_is_exact_and_counts_the_whole_body(api: Api) -> None:
    # {"messages": [{"body": ...}]} is three levels: a body may nest LIMIT - 3 more
    fits = json.dumps({"messages": [{"body": nested(LIMIT - 3)}]})
    assert api.post("/v2/queues/q1/messages", raw=fits).status == 201
    too_deep = json.dumps({"messages": [{"body": nested(LIMIT - 2)}]})
    assert_error(api.post("/v2/queues/q1/messages", raw=too_deep), 400, str(LIMIT))
    stored = api.get("/v2/queues/q1/messages?echo=true").json["messages"]
    assert [m["body"] for m in stored] == [nested(LIMIT - 3)]


def test_brackets_inside_strings_do_not_count(api: Api) -> None:
    text = json.dumps({"messages": [{"body": "[" * 10_000 + '\\"{' * 100}]})
    assert api.post("/v2/queues/q1/messages", raw=text).status == 201


# -- characters no backend can store ----------------------------------------------------


def test_nul_and_lone_surrogates_in_headers_are_400(api: Api) -> None:
    for bad in ("\x00", "\ud800", "\udfff"):
        _bad_headers(api, bad)


def _bad_headers(api: Api, bad: str) -> None:
    reply = invoke(api, "GET", "/v2/queues", headers={"X-Project-ID": f"p{bad}q"})
    assert_error(reply, 400, "X-Project-ID")
    reply = invoke(api, "POST", "/v2/queues/{queue_name}/messages", {"queue_name": "q1"},
                   headers={"Client-ID": f"{api.client_id}{bad}"}, body='{"messages": [{"body": 1}]}')
    assert_error(reply, 400, "client-id")
    assert_error(invoke(api, "GET", "/v2/queues", headers={f"X-Odd{bad}": "1"}), 400, "header name")


def test_control_characters_in_header_values_are_400_but_tab_is_fine(api: Api) -> None:
    for bad in ("\x01", "\n", "\r", "\x7f"):
        reply = invoke(api, "GET", "/v2/queues", headers={"X-Roles": f"admin{bad}x"})
        assert_error(reply, 400, "x-roles", "control", case=bad)
    assert invoke(api, "GET", "/v2/queues", headers={"X-Roles": "admin\tx"}).status == 200


def test_nul_and_lone_surrogates_in_query_parameters_are_400(api: Api) -> None:
    for bad in ("\x00", "\ud800"):
        for path, name in [("/v2/queues", "marker"), ("/v2/queues", "name"),
                           ("/v2/queues/{queue_name}/subscriptions", "marker"),
                           ("/v2/queues/{queue_name}/messages", "ids"), ("/v2/pools", "marker")]:
            reply = invoke(api, "GET", path, {"queue_name": "q1"} if "{" in path else None,
                           query={name: [f"m{bad}"]})
            assert_error(reply, 400, f"'{name}'", case=(path, bad))
        assert_error(invoke(api, "GET", "/v2/queues", query={f"k{bad}": ["v"]}), 400, "query parameter name")


def test_nul_surrogates_and_controls_in_path_parts_are_400(api: Api) -> None:
    for bad in ("\x00", "\ud800", "\n"):
        _bad_path_parts(api, bad)


def _bad_path_parts(api: Api, bad: str) -> None:
    for template, params in [
        ("/v2/queues/{queue_name}", {"queue_name": f"q{bad}"}),
        ("/v2/queues/{queue_name}/messages/{message_id}", {"queue_name": "q1", "message_id": f"m{bad}"}),
        ("/v2/queues/{queue_name}/claims/{claim_id}", {"queue_name": "q1", "claim_id": f"c{bad}"}),
        ("/v2/queues/{queue_name}/subscriptions/{subscription_id}", {"queue_name": "q1", "subscription_id": f"s{bad}"}),
        ("/v2/pools/{pool_name}", {"pool_name": f"p{bad}"}),
        ("/v2/flavors/{flavor_name}", {"flavor_name": f"f{bad}"}),
    ]:
        name = next(n for n, v in params.items() if bad in v)
        assert_error(invoke(api, "GET", template, params), 400, name, case=(template, bad))


JSON_STRINGS = [
    ('{"messages": [{"body": "a\\u0000b"}]}', ["messages[0].body", "NUL"]),
    ('{"messages": [{"body": {"k\\u0000": 1}}]}', ["key", "messages[0].body", "NUL"]),
    ('{"messages": [{"body": "\\ud800"}]}', ["lone surrogate", "U+D800"]),
    ('{"messages": [{"body": {"\\udc00": 1}}]}', ["key", "lone surrogate"]),
    ('{"messages": [{"body": "\\ud83d\\ude00 is a pair, \\ud83d alone is not"}]}', ["lone surrogate"]),
]


def test_nul_and_lone_surrogates_in_json_strings_and_keys_are_400_and_nothing_is_stored(api: Api) -> None:
    for text, words in JSON_STRINGS:
        assert_error(api.post("/v2/queues/q1/messages", raw=text), 400, *words, case=text)
    assert api.get("/v2/queues").json["queues"] == []


def test_a_surrogate_pair_is_a_character_like_any_other(api: Api) -> None:
    assert api.post("/v2/queues/q1/messages", raw='{"messages": [{"body": "\\ud83d\\ude00"}]}').status == 201
    assert api.get("/v2/queues/q1/messages?echo=true").json["messages"][0]["body"] == "\U0001f600"


def test_nul_in_names_markers_and_subscribers_is_400(api: Api) -> None:
    assert_error(api.put("/v2/queues/q1", raw='{"_dead_letter_queue": "d\\u0000q"}'), 400, "NUL")
    reply = api.post("/v2/queues/q1/subscriptions", raw='{"subscriber": "http://example.com/\\u0000"}')
    assert_error(reply, 400, "subscriber", "NUL")
    assert_error(api.put("/v2/flavors/f1", raw='{"pool_list": ["p\\u0000"]}', headers=ADMIN), 400, "pool_list[0]")
    assert api.get("/v2/queues").json["queues"] == []


NUMBERS = [
    ('{"messages": [{"body": NaN}]}', ["NaN"]),
    ('{"messages": [{"body": Infinity}]}', ["Infinity"]),
    ('{"messages": [{"body": -Infinity}]}', ["Infinity"]),
    ('{"messages": [{"body": 1e999}]}', ["1e999", "too large"]),
    ('{"messages": [{"body": ' + "9" * 4301 + "}]}", ["4300 digits"]),
    ('{"messages": [{"body": 1}], }', ["valid JSON"]),
]


def test_numbers_json_cannot_carry_are_400(api: Api) -> None:
    for text, words in NUMBERS:
        assert_error(api.post("/v2/queues/q1/messages", raw=text), 400, *words, case=text)


def test_bodies_that_are_not_utf8_or_not_base64_are_400(api: Api) -> None:
    for raw in (b"\xff\xfe{}", '{"a": 1}'.encode("utf-16"), b'{"messages": [{"body": "\xed\xa0\x80"}]}'):
        reply = invoke(api, "PUT", "/v2/queues/{queue_name}", {"queue_name": "q1"},
                       body=base64.b64encode(raw).decode(), encoded=True)
        assert_error(reply, 400, "UTF-8")
    reply = invoke(api, "PUT", "/v2/queues/{queue_name}", {"queue_name": "q1"}, body="not base64!", encoded=True)
    assert_error(reply, 400, "base64")


def test_a_body_over_a_mebibyte_is_400_before_it_is_parsed(api: Api) -> None:
    reply = api.put("/v2/queues/q1", raw=" " * (inputs.MAX_BODY_BYTES + 1))
    assert_error(reply, 400, str(inputs.MAX_BODY_BYTES))


# -- malformed URIs -----------------------------------------------------------------------


SUBSCRIBERS = [
    ("http://[::1", ["not a valid URI", "IPv6"]),
    ("http://[::1]]", ["not a valid URI", "follows"]),
    ("http://[2606:4700::1111]evil.example/", ["not a valid URI", "follows"]),
    ("http://[v1.x]/", ["IPvFuture"]),
    ("http://example.com:99999/", ["port"]),
    ("http://example.com:0/", ["port 0"]),
    ("https://exa]mple.com/", ["not a valid URI"]),
    ("trust+http://[::1", ["not a valid URI"]),
    ("http://example.com/a\x01b", ["control character"]),
    ("mailto:a@[::1", ["not an email address"]),
    ("gopher://example.com/", ["Unsupported subscriber"]),
]


def test_malformed_subscribers_are_400(api: Api) -> None:
    sid = api.post("/v2/queues/q1/subscriptions", {"subscriber": "http://example.com/ok"}).json["subscription_id"]
    for subscriber, words in SUBSCRIBERS:
        reply = api.post("/v2/queues/q1/subscriptions", {"subscriber": subscriber})
        assert_error(reply, 400, *words, case=subscriber)
        reply = api.patch(f"/v2/queues/q1/subscriptions/{sid}", {"subscriber": subscriber})
        assert_error(reply, 400, *words, case=subscriber)
    listed = api.get("/v2/queues/q1/subscriptions").json["subscriptions"]
    assert [s["subscriber"] for s in listed] == ["http://example.com/ok"]


POOL_URIS = [
    ("redis://[::1", ["closing bracket"]),
    ("redis://[::1]x:6379", ["follows"]),
    ("redis://[zz]:6379", ["not an IPv6 address"]),
    ("redis://127.0.0.1:99999", ["port 99999", "1..65535"]),
    ("redis://127.0.0.1:0/0", ["port 0"]),
    ("redis://127.0.0.1:port/0", ["not a number"]),
    ("redis://127.0.0.1:6379/zero", ["database"]),
    ("redis", ["no scheme"]),
    ("redis:127.0.0.1", ["redis://"]),
    ("redis://", ["no host"]),
    ("ftp://example.com/", ["scheme 'ftp'"]),
    ("unix://", ["socket's path"]),
    ("mongodb://[::1/db", ["closing bracket"]),
    ("mongodb://h1:27017,h2:99999/db", ["port 99999"]),
    ("mongodb+srv://h1,h2/db", ["exactly one host"]),
    ("mongodb+srv://h1:27017/db", ["no port"]),
    ("redis://127.0.0.1 :6379", ["space"]),
]


def test_malformed_pool_uris_are_400_and_no_pool_is_made(api: Api) -> None:
    for uri, words in POOL_URIS:
        reply = api.put("/v2/pools/p1", {"weight": 10, "uri": uri}, headers=ADMIN)
        assert_error(reply, 400, "uri", *words, case=uri)
        assert_error(api.patch("/v2/pools/default", {"uri": uri}, headers=ADMIN), 400, *words, case=uri)
    assert [p["name"] for p in api.get("/v2/pools", headers=ADMIN).json["pools"]] == ["default"]


def test_pool_weights_are_bounded_by_what_the_catalog_stores(api: Api) -> None:
    assert_error(api.patch("/v2/pools/default", {"weight": 2**31}, headers=ADMIN), 400, "weight", "2147483647")
    assert api.patch("/v2/pools/default", {"weight": 2**31 - 1}, headers=ADMIN).status == 200


# -- wrong types anywhere in a body --------------------------------------------------------


def test_purge_with_resource_types_that_are_not_names_is_400(api: Api) -> None:
    api.post_messages("q1", "a")
    for types in ([{}], [1], [None], [["messages"]], [True], {"messages": 1}):
        reply = api.post("/v2/queues/q1/purge", {"resource_types": types})
        assert_error(reply, 400, "resource_types", case=types)
    assert api.get("/v2/queues/q1/stats").json["messages"]["total"] == 1


WRONG_TYPES: list[tuple[str, str, Any, list[str]]] = [
    ("/v2/queues/q1/subscriptions", "POST", {"subscriber": "http://example.com/", "options": []}, ["options", "object"]),
    ("/v2/queues/q1/subscriptions", "POST", {"subscriber": "http://example.com/", "options": "x"}, ["object"]),
    ("/v2/queues/q1/subscriptions", "POST", {"subscriber": "http://example.com/",
                                             "options": {"include_message_id": "yes"}}, ["include_message_id"]),
    ("/v2/queues/q1/subscriptions", "POST", {"subscriber": "http://example.com/",
                                             "options": {"_retry_policy": {"retries_with_no_delay": 10**9}}},
     ["at most 100"]),
    ("/v2/queues/q1/subscriptions", "POST", {"subscriber": ["http://example.com/"]}, ["subscriber"]),
    ("/v2/queues/q1/subscriptions", "POST", {"subscriber": "http://example.com/", "ttl": "60"}, ["integer"]),
    ("/v2/queues/q1", "PUT", {"_max_claim_count": 10**40}, ["_max_claim_count", "2147483647"]),
    ("/v2/queues/q1", "PUT", {"_retry_policy": []}, ["_retry_policy"]),
    ("/v2/queues/q1/share", "POST", {"paths": [{}]}, ["paths"]),
    ("/v2/queues/q1/share", "POST", {"methods": [1]}, ["methods"]),
    ("/v2/queues/q1/share", "POST", {"expires": 1}, ["expires"]),
    ("/v2/queues/q1/claims", "POST", {"ttl": [60]}, ["integer"]),
    ("/v2/pools/p1", "PUT", {"weight": 1, "uri": "redis://127.0.0.1:1/0", "options": []}, ["options"]),
    ("/v2/pools/p1", "PUT", {"weight": "1", "uri": "redis://127.0.0.1:1/0"}, ["weight"]),
    ("/v2/pools/p1", "PUT", {"weight": 1, "uri": ["redis://x"]}, ["uri"]),
    ("/v2/flavors/f1", "PUT", {"pool_list": [1]}, ["pool_list"]),
    ("/v2/flavors/f1", "PUT", {"pool_list": ["default"], "capabilities": [1]}, ["capabilities"]),
]


def test_wrong_types_in_bodies_are_400(api: Api) -> None:
    for path, method, body, words in WRONG_TYPES:
        assert_error(api.call(method, path, body, headers=ADMIN), 400, *words, case=(path, body))


def test_a_patch_operation_that_is_not_a_name_is_400(api: Api) -> None:
    api.put("/v2/queues/q1", {"a": 1})
    for op in ({}, [], 1, None):
        patch = [{"op": op, "path": "/metadata/a", "value": 2}]
        reply = api.patch("/v2/queues/q1", patch, headers={"Content-Type": queues.PATCH_MEDIA_TYPE})
        assert_error(reply, 400, "op", case=op)
    assert api.get("/v2/queues/q1").json["a"] == 1


def test_message_markers_that_are_not_positions_are_400(api: Api) -> None:
    api.post_messages("q1", "a")
    for marker in ("\u0663", "1" * 21, str(2**63), "-1", " 1"):
        reply = invoke(api, "GET", "/v2/queues/{queue_name}/messages", {"queue_name": "q1"},
                       query={"marker": [marker]})
        assert_error(reply, 400, "marker", case=marker)


def test_a_pre_signed_url_with_any_signature_is_refused_not_a_crash(api: Api) -> None:
    headers = {"URL-Signature": "\u00e9" * 64, "URL-Paths": "/v2/queues/q1/messages", "URL-Methods": "GET",
               "URL-Expires": "2099-01-01T00:00:00"}
    assert_error(api.get("/v2/queues/q1/messages", headers=headers), 404, "signed URL")


# -- the boundary: 500s and Chalice's own answers in Zaqar's format -------------------------


def test_an_unexpected_exception_is_a_500_naming_the_request_id_and_logged_with_its_traceback(
        api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(queues, "queue_get", broken)
    with caplog.at_level(logging.ERROR, logger="chalicelib.transport.http"):
        reply = api.get("/v2/queues/q1")
    body = assert_error(reply, 500)
    assert body["title"] == "Internal server error"
    request_id = reply.headers["x-openstack-request-id"]
    assert request_id.startswith("req-") and request_id in body["description"]
    assert request_id in caplog.text and "RuntimeError: a bug" in caplog.text
    assert "a bug" not in body["description"]


def test_a_500_from_an_event_carries_api_gateways_request_id(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queues, "queue_get", lambda *a, **k: 1 / 0)
    event = api_event("GET", "/v2/queues/{queue_name}", {"queue_name": "q1"},
                      headers={"Client-ID": api.client_id, "X-Project-ID": api.project})
    result = app_module.app(event, LambdaContext())
    expected = f"req-{event['requestContext']['requestId']}"
    assert result["statusCode"] == 500 and result["headers"]["X-Openstack-Request-Id"] == expected
    assert expected in json.loads(result["body"])["description"]


def test_chalice_s_own_answers_are_in_zaqar_s_format(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    reply = api.post("/v2/queues")  # a method the route lacks: Chalice answers before any view
    body = assert_error(reply, 405, "POST")
    assert body["title"] == "Method not allowed" and reply.headers["allow"] == "GET"
    assert reply.headers["x-openstack-request-id"].startswith("req-")

    def chalice_error(*args: Any, **kwargs: Any) -> Any:
        raise BadRequestError("Chalice says no")

    monkeypatch.setattr(queues, "queue_get", chalice_error)  # raised inside a view: its status, Zaqar's body
    body = assert_error(api.get("/v2/queues/q1"), 400, "Chalice says no")
    assert body["title"] == "Invalid API request"


def test_a_failure_in_chalice_s_routing_is_a_zaqar_500(api: Api) -> None:
    event = api_event("GET", "/v2/queues/{queue_name}", {"queue_name": "q1"},
                      headers={"Client-ID": api.client_id, "X-Project-ID": api.project})
    event["pathParameters"] = None  # Chalice's own routing fails (it subscripts None) before any view
    result = app_module.app(event, LambdaContext())
    body = json.loads(result["body"])
    assert result["statusCode"] == 500 and set(body) == {"title", "description"}
    assert result["headers"]["X-Openstack-Request-Id"] in body["description"]


def test_a_view_without_zaqar_view_still_answers_zaqar_errors(api: Api) -> None:
    """A route someone adds without the decorator: its exception is Chalice's 500, translated."""
    from chalice.app import Chalice

    from chalicelib.transport import http as rest

    scratch = Chalice(app_name="scratch")
    scratch.register_middleware(rest.zaqar_errors, "http")  # as every app that registers rest.bp gets it

    @scratch.route("/bare", methods=["GET"])
    def bare() -> Any:
        raise RuntimeError("no decorator")

    with Client(scratch) as client:
        response = client.http.get("/bare")
    body = json.loads(response.body)
    assert response.status_code == 500 and set(body) == {"title", "description"}
    assert "req-" in body["description"] and "x-openstack-request-id" in {k.lower() for k in response.headers}


# -- PostgreSQL: a client's mistake is not an outage ------------------------------------------


@pytest.fixture
def pg_api(tmp_path: Path, redis_url: str, postgres_url: str, project: str) -> Iterator[Api]:
    built = runtime.build(make_settings(tmp_path, redis_url, CATALOG_URL=postgres_url, ADMIN_MODE="true"))
    runtime.install(built)
    try:
        with Client(app_module.app) as client:
            yield Api(client, project)
    finally:
        runtime.install(None)
        built.pooling.close()


@pytest.mark.postgres
def test_nul_never_reaches_postgresql_as_a_503(pg_api: Api) -> None:
    api = pg_api
    replies = [
        invoke(api, "GET", "/v2/queues", headers={"X-Project-ID": "p\x00"}),
        invoke(api, "GET", "/v2/queues", query={"marker": ["a\x00"]}),
        invoke(api, "GET", "/v2/pools", query={"marker": ["a\x00"]}),
        invoke(api, "GET", "/v2/queues/{queue_name}/subscriptions/{subscription_id}",
               {"queue_name": "q1", "subscription_id": "s\x00"}),
        invoke(api, "GET", "/v2/flavors/{flavor_name}", {"flavor_name": "f\x00"}),
        api.post("/v2/queues/q1/subscriptions", raw='{"subscriber": "http://example.com/\\u0000"}'),
        api.post("/v2/queues/q1/subscriptions", raw='{"subscriber": "http://example.com/", '
                                                    '"options": {"k": "\\u0000"}}'),
        api.put("/v2/flavors/f1", raw='{"pool_list": ["default\\u0000"]}', headers=ADMIN),
        api.patch("/v2/pools/default", {"weight": 2**31}, headers=ADMIN),
    ]
    for reply in replies:
        assert_error(reply, 400)
    assert api.get("/v2/queues").status == 200  # and the catalog was reachable all along


@pytest.mark.postgres
def test_a_value_postgresql_refuses_is_a_400_not_an_outage(postgres_url: str) -> None:
    from chalicelib.storage.catalog import Catalog

    catalog = Catalog(postgres_url)
    try:
        catalog.migrate()
        with pytest.raises(errors.Invalid) as refused:
            catalog.lookup(project="p\x00", queue="q")
        assert not isinstance(refused.value, errors.Unavailable)
    finally:
        catalog.close()


# -- websocket ---------------------------------------------------------------------------------


@pytest.fixture
def management(services: Services) -> Iterator[FakeManagementApi]:
    with fake_management() as fake:
        yield fake


@pytest.fixture
def ws(management: FakeManagementApi, project: str) -> Ws:
    return Ws(management, project).connect()


def ws_error(reply: dict[str, Any], status: int, *words: str) -> None:
    assert reply["headers"]["status"] == status, reply
    assert set(reply["body"]) == {"exception", "error"}
    for word in words:
        assert word.lower() in reply["body"]["error"].lower(), reply["body"]["error"]


def test_a_deeply_nested_frame_gets_a_400_reply_and_the_connection_stays(ws: Ws) -> None:
    for text in (deep(10_000), deep(10_000, "{"),
                 '{"action": "queue_list", "headers": {}, "body": ' + deep(LIMIT + 1) + "}"):
        ws_error(ws.raw(text), 400, f"more than {LIMIT + 1} deep")
    assert ws("queue_list")[0] == 200
    assert ws.management.deleted == []


def test_a_frame_as_deep_as_a_rest_body_may_be_is_accepted(ws: Ws) -> None:
    status, _ = ws("message_post", {"queue_name": "q", "messages": [{"body": nested(LIMIT - 3)}]})
    assert status == 201


def test_a_lone_surrogate_or_nul_in_a_marker_is_400(ws: Ws) -> None:
    headers = json.dumps(ws.headers)
    for marker in ('"\\ud800"', '"m\\u0000"', '"\\udfff\\ud800"'):
        for action in ("queue_list", "subscription_list", "message_list"):
            text = f'{{"action": "{action}", "headers": {headers}, "body": {{"queue_name": "q", "marker": {marker}}}}}'
            ws_error(ws.raw(text), 400, "marker")
    assert ws("queue_list")[0] == 200


def test_bad_characters_in_frame_headers_are_400(ws: Ws) -> None:
    for headers, words in [({"X-Project-ID": "p\x00"}, ["X-Project-ID", "NUL"]),
                           ({"X-Project-ID": "p\ud800"}, ["lone surrogate"]),
                           ({"Client-ID": "c\nx"}, ["Client-ID", "control"])]:
        frame = {"action": "queue_create", "headers": {**ws.headers, **headers}, "body": {"queue_name": "q"}}
        ws_error(ws.raw(json.dumps(frame)), 400, *words)
    assert ws("queue_get_stats", {"queue_name": "q"})[0] == 404


FRAME_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("queue_purge", {"queue_name": "q", "resource_types": [{}]}, ["resource_types"]),
    ("subscription_create", {"queue_name": "q", "subscriber": "http://[::1"}, ["not a valid URI"]),
    ("subscription_create", {"queue_name": "q", "subscriber": "http://x/", "options": []}, ["object"]),
    ("message_delete", {"queue_name": "q", "message_id": "m", "claim_id": {"a": 1}}, ["claim_id"]),
    ("message_post", {"queue_name": "q", "messages": [{"body": 1, "ttl": 60.5}]}, ["integer"]),
    ("message_post", {"queue_name": "q", "messages": [{"body": 1, "ttl": 1e300}]}, ["ttl", "1209600"]),
]


def test_wrong_types_and_malformed_uris_in_frames_are_400(ws: Ws) -> None:
    for action, body, words in FRAME_CASES:
        status, reply = ws(action, body)
        assert status == 400 and set(reply) == {"exception", "error"}, (action, reply)
        for word in words:
            assert word.lower() in reply["error"].lower(), (action, reply["error"])


def test_an_unexpected_exception_in_an_action_is_a_500_reply_with_the_request_id(
        ws: Ws, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(websocket.ACTIONS, "queue_get", lambda frame: (_ for _ in ()).throw(RuntimeError("a bug")))
    with caplog.at_level(logging.ERROR, logger="chalicelib.transport.websocket"):
        status, body = ws("queue_get", {"queue_name": "q"})
    assert status == 500 and body["exception"] == "InternalError"
    request_id = "req-CZntAFj9oAMFnJA="  # the requestId of tests/events/ws_message.json
    assert request_id in body["error"] and request_id in caplog.text and "RuntimeError: a bug" in caplog.text
    assert ws("queue_list")[0] == 200


class RecordingSender:
    def __init__(self, *, fails: bool = False) -> None:
        self.sent: list[str] = []
        self.tried: list[str] = []
        self.fails = fails

    def send(self, connection_id: str, text: str) -> bool:
        self.tried.append(text)
        if self.fails:
            raise ConnectionError("the management API is down")
        self.sent.append(text)
        return True

    def close(self, connection_id: str) -> None:
        pass


def test_services_that_cannot_be_built_answer_their_503_and_a_bug_its_500() -> None:
    def unavailable() -> Services:
        raise errors.Unavailable("The catalog database could not be reached.")

    def broken() -> Services:
        raise RuntimeError("a bug")

    sender = RecordingSender()
    websocket.on_frame(unavailable, sender, "c1", '{"action": "queue_list"}', request_id="r1")
    websocket.on_frame(broken, sender, "c1", '{"action": "queue_list"}', request_id="r2")
    replies = [json.loads(text) for text in sender.sent]
    assert [r["headers"]["status"] for r in replies] == [503, 500]
    assert replies[0]["body"]["exception"] == "Unavailable"
    assert "req-r2" in replies[1]["body"]["error"]


def test_a_reply_that_cannot_be_sent_does_not_raise_into_api_gateway(
        services: Services, caplog: pytest.LogCaptureFixture) -> None:
    sender, connection = RecordingSender(fails=True), uuid.uuid4().hex
    with caplog.at_level(logging.ERROR, logger="chalicelib.transport.websocket"):
        websocket.on_frame(lambda: services, sender, connection, '{"action": "queue_list"}', request_id="r3")
    (reply,) = sender.tried  # the one reply was attempted, its failure logged, nothing raised
    assert json.loads(reply)["request"]["action"] == "queue_list"
    assert connection in caplog.text and "the management API is down" in caplog.text
