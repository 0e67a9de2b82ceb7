"""The keystone auth strategy against a real Keystone (tests/keystone_server.py)."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib import runtime, signing
from chalicelib.api.context import Services
from chalicelib.transport.keystone import EARLY_S
from tests import keystone_server
from tests.conftest import installed, make_settings
from tests.keystone_server import PASSWORD, Keystone

pytestmark = pytest.mark.keystone
SIGNING_KEY = "keystone-test-signing-key"


def keystone_settings(tmp_path: Path, redis_url: str, keystone: Keystone) -> dict[str, str]:
    return {"AUTH_STRATEGY": "keystone", "KEYSTONE_URL": keystone.url, "KEYSTONE_USERNAME": "zaqar",
            "KEYSTONE_PASSWORD": PASSWORD, "KEYSTONE_PROJECT": "service", "KEYSTONE_CACHE_TTL": "0",
            "ADMIN_MODE": "true", "SIGNING_KEY": SIGNING_KEY,
            "KEYSTONE_TIMEOUT": "60"}  # a loaded machine's Keystone can take more than the default 5 s to answer


def _installed(tmp_path: Path, redis_url: str, keystone: Keystone) -> contextlib.AbstractContextManager[Services]:
    services = runtime.build(make_settings(tmp_path, redis_url, **keystone_settings(tmp_path, redis_url, keystone)))
    return installed(services, redis_url=redis_url, projects=keystone.projects.values())


@pytest.fixture
def ks(tmp_path: Path, redis_url: str, keystone: Keystone) -> Iterator[Services]:
    with _installed(tmp_path, redis_url, keystone) as services:
        yield services


class As:
    """Requests with one user's token (or none)."""

    def __init__(self, client: Client, token: str | None, **headers: str) -> None:
        self.client = client
        self.headers = {"Client-ID": str(uuid.uuid4()), "Content-Type": "application/json", **headers}
        if token:
            self.headers["X-Auth-Token"] = token

    def __call__(self, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
        payload = b"" if body is None else json.dumps(body).encode()
        reply = self.client.http.request(method, path, headers={**self.headers, **headers}, body=payload)
        return reply.status_code, json.loads(reply.body) if reply.body else None


@pytest.fixture
def client(ks: Services) -> Iterator[Client]:
    with Client(app_module.app) as chalice_client:
        yield chalice_client


def test_requests_need_a_valid_token(client: Client, keystone: Keystone) -> None:
    status, body = As(client, None)("GET", "/v2/queues")
    assert status == 401 and "X-Auth-Token" in body["description"]
    status, body = As(client, "not-a-token")("GET", "/v2/queues")
    assert status == 401 and "invalid" in body["description"]
    alice = As(client, keystone.token("alice", "alpha"))
    assert alice("PUT", "/v2/queues/kq")[0] == 201
    assert alice("GET", "/v2/queues")[1]["queues"][0]["name"] == "kq"


def test_the_token_decides_the_project(client: Client, keystone: Keystone) -> None:
    token = keystone.token("alice", "alpha")
    assert As(client, token, **{"X-Project-ID": keystone.projects["beta"]})("GET", "/v2/queues")[0] == 403
    assert As(client, token, **{"X-Project-ID": keystone.projects["alpha"]})("GET", "/v2/queues")[0] == 200


def test_tenants_are_isolated(client: Client, keystone: Keystone) -> None:
    alice = As(client, keystone.token("alice", "alpha"))
    bob = As(client, keystone.token("bob", "beta"))
    alice("POST", "/v2/queues/private/messages", {"messages": [{"body": "alpha only"}]})
    status, seen = bob("GET", "/v2/queues/private")  # an empty queue of bob's own, not alice's
    assert status == 200 and "_default_message_ttl" in seen
    assert bob("GET", "/v2/queues/private/messages?echo=true")[1]["messages"] == []
    assert bob("GET", "/v2/queues")[1]["queues"] == []
    assert bob("POST", "/v2/queues/private/claims")[0] == 204
    bob("DELETE", "/v2/queues/private")
    _status, listed = alice("GET", "/v2/queues/private/messages?echo=true")
    assert [m["body"] for m in listed["messages"]] == ["alpha only"]


def test_admin_endpoints_need_the_admin_role(client: Client, keystone: Keystone) -> None:
    assert As(client, keystone.token("alice", "alpha"))("GET", "/v2/health")[0] == 403
    status, report = As(client, keystone.token("admin", "admin"))("GET", "/v2/health")
    assert status == 200 and report["catalog_reachable"] is True


def test_revoked_tokens_are_refused(client: Client, keystone: Keystone) -> None:
    token = keystone.token("alice", "alpha")
    assert As(client, token)("GET", "/v2/queues")[0] == 200
    keystone.revoke(token)
    assert As(client, token)("GET", "/v2/queues")[0] == 401


def _accepted_while_fresh(alice: Callable[[], tuple[str, float]], request: Callable[[str], int]) -> tuple[str, float]:
    """A new token of alice's that ``request`` found good (200): on a loaded machine the first check can come
    so late that the token is already past the end of its trust (then a new one is tried)."""
    for _attempt in range(3):
        token, expires = alice()
        status = request(token)
        if status == 200:
            return token, expires
        assert time.time() >= expires - EARLY_S, f"a token {expires - time.time():.1f} s from its expiry got {status}"
    pytest.fail("three short-lived tokens in a row expired before their first use")


def test_expired_tokens_are_refused(tmp_path: Path, redis_url: str, short_lived_keystone: Keystone) -> None:
    """Against the Keystone whose tokens live SHORT_TOKEN_SECONDS, the service's own token included."""
    with _installed(tmp_path, redis_url, short_lived_keystone), Client(app_module.app) as client:
        def alice() -> tuple[str, float]:
            return short_lived_keystone.issue("alice", "alpha")

        def request(token: str) -> int:
            return As(client, token)("GET", "/v2/queues")[0]

        token, expires = _accepted_while_fresh(alice, request)
        assert expires - time.time() <= keystone_server.SHORT_TOKEN_SECONDS
        time.sleep(max(0.0, expires - EARLY_S - time.time()) + 1)  # within the last 5 s a token is no longer trusted
        assert request(token) == 401
        _accepted_while_fresh(alice, request)  # with the service's own token renewed if it had run out too


def test_pre_signed_urls_allow_exactly_what_was_signed(client: Client, keystone: Keystone) -> None:
    alice = As(client, keystone.token("alice", "alpha"))
    alice("POST", "/v2/queues/shared/messages", {"messages": [{"body": "hello"}]})
    status, grant = alice("POST", "/v2/queues/shared/share", {"methods": ["GET", "POST"]})
    assert status == 200 and grant["paths"] == ["/v2/queues/shared/messages"]
    assert grant["project"] == keystone.projects["alpha"]
    signed = {"URL-Signature": grant["signature"], "URL-Paths": ",".join(grant["paths"]),
              "URL-Methods": ",".join(grant["methods"]), "URL-Expires": grant["expires"],
              "X-Project-ID": grant["project"]}
    holder = As(client, None, **signed)
    status, listed = holder("GET", "/v2/queues/shared/messages?echo=true")
    assert status == 200 and [m["body"] for m in listed["messages"]] == ["hello"]
    assert holder("POST", "/v2/queues/shared/messages", {"messages": [{"body": "via link"}]})[0] == 201
    assert holder("DELETE", "/v2/queues/shared/messages?pop=1")[0] == 404  # method not signed
    assert holder("POST", "/v2/queues/shared/claims")[0] == 404  # path not signed
    assert holder("GET", "/v2/queues/other/messages")[0] == 404
    assert As(client, None, **{**signed, "URL-Signature": "0" * 64})("GET", "/v2/queues/shared/messages")[0] == 404
    assert As(client, None, **{**signed, "URL-Methods": "GET,POST,DELETE"})(
        "DELETE", "/v2/queues/shared/messages?pop=1")[0] == 404  # widened after signing
    past = signing.sign(SIGNING_KEY, project=grant["project"], paths=grant["paths"], methods=["GET"],
                        expires_ms=int((time.time() - 60) * 1000))
    expired = {**signed, "URL-Signature": past.signature, "URL-Expires": past.expires, "URL-Methods": "GET"}
    assert As(client, None, **expired)("GET", "/v2/queues/shared/messages")[0] == 404
    assert holder("POST", "/v2/queues/shared/share", {})[0] in {403, 404}


def test_bad_share_requests_are_400(client: Client, keystone: Keystone) -> None:
    alice = As(client, keystone.token("alice", "alpha"))
    for body in ({"paths": ["queues"]}, {"methods": ["FLY"]}, {"expires": 123}, {"expires": "2001-01-01T00:00:00"},
                 {"colour": "red"}):
        assert alice("POST", "/v2/queues/q/share", body)[0] == 400, body


def test_websocket_frames_need_an_authenticated_connection(ks: Services, keystone: Keystone) -> None:
    from tests.functional.test_websocket import FakeManagementApi, FakeSession, Ws

    websocket_api = app_module.app.websocket_api
    fake = FakeManagementApi()
    saved = (websocket_api.session, websocket_api._client, websocket_api._endpoint)
    websocket_api.session, websocket_api._client, websocket_api._endpoint = FakeSession(fake), None, None
    try:
        ws = Ws(fake, keystone.projects["alpha"]).connect()
        status, body = ws("queue_list")
        assert status == 403 and "authenticate" in body["error"].lower()
        status, body = ws("authenticate", **{"X-Auth-Token": "bogus"})
        assert status == 401 and "Authentication failed" in body["error"]
        assert ws("authenticate", **{"X-Auth-Token": keystone.token("alice", "alpha")}) == (
            200, {"message": "Authentified."})
        assert ws("queue_create", {"queue_name": "wsk"})[0] == 201
        ws.headers["X-Project-ID"] = keystone.projects["beta"]
        assert ws("queue_list")[0] == 403
        bob = Ws(fake, keystone.projects["beta"]).connect()
        bob("authenticate", **{"X-Auth-Token": keystone.token("bob", "beta")})
        status, seen = bob("queue_get", {"queue_name": "wsk"})  # reads as an empty queue of bob's own
        assert status == 200 and "_default_message_ttl" in seen
        assert bob("message_post", {"queue_name": "wsk", "messages": [{"body": 1}]})[0] == 201
        ws.headers["X-Project-ID"] = keystone.projects["alpha"]
        assert ws("queue_get_stats", {"queue_name": "wsk"})[1]["messages"]["total"] == 0
    finally:
        websocket_api.session, websocket_api._client, websocket_api._endpoint = saved
