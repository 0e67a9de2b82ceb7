"""The websocket API through the Chalice handlers, with API Gateway websocket
events built from the fixture files in tests/events and the management API
replaced by a fake that records what was sent."""

from __future__ import annotations

import contextlib
import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import app as app_module
from chalicelib.api.context import Services
from chalicelib.storage.redis import keys
from infra.local.gateway import LambdaContext

EVENTS = Path(__file__).resolve().parents[1] / "events"


class GoneException(Exception):
    pass


class FakeManagementApi:
    """Records post_to_connection and delete_connection like API Gateway's management API."""

    class exceptions:
        GoneException = GoneException

    def __init__(self) -> None:
        self.sent: dict[str, list[str]] = {}
        self.deleted: list[str] = []
        self.gone: set[str] = set()

    def post_to_connection(self, ConnectionId: str, Data: str) -> None:
        if ConnectionId in self.gone:
            raise GoneException(ConnectionId)
        self.sent.setdefault(ConnectionId, []).append(Data)

    def delete_connection(self, ConnectionId: str) -> None:
        self.deleted.append(ConnectionId)


class FakeSession:
    region_name = "us-east-1"

    def __init__(self, client: FakeManagementApi) -> None:
        self._client = client

    def client(self, service_name: str, **kwargs: Any) -> FakeManagementApi:
        assert service_name == "apigatewaymanagementapi"
        return self._client


@contextlib.contextmanager
def fake_management() -> Iterator[FakeManagementApi]:
    """The app's websocket API pointed at a recording fake of the management API, until the block ends."""
    api = app_module.app.websocket_api
    fake = FakeManagementApi()
    saved = (api.session, api._client, api._endpoint)
    api.session, api._client, api._endpoint = FakeSession(fake), None, None
    try:
        yield fake
    finally:
        api.session, api._client, api._endpoint = saved


@pytest.fixture
def management(services: Services) -> Iterator[FakeManagementApi]:
    with fake_management() as fake:
        yield fake


def _event(name: str, connection_id: str, body: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text()))
    event["requestContext"]["connectionId"] = connection_id
    if body is not None:
        event["body"] = body
    return event


class Ws:
    """One websocket connection, driven through the three Lambda handlers."""

    def __init__(self, management: FakeManagementApi, project: str) -> None:
        self.management = management
        self.id = uuid.uuid4().hex[:16] + "="
        self.headers = {"Client-ID": str(uuid.uuid4()), "X-Project-ID": project}

    def connect(self) -> Ws:
        result = app_module.ws_connect(_event("ws_connect", self.id), LambdaContext())
        assert result == {"statusCode": 200}
        return self

    def raw(self, text: str) -> dict[str, Any]:
        before = len(self.management.sent.get(self.id, []))
        app_module.ws_message(_event("ws_message", self.id, text), LambdaContext())
        sent = self.management.sent.get(self.id, [])
        assert len(sent) == before + 1, "exactly one reply per frame"
        reply: dict[str, Any] = json.loads(sent[-1])
        return reply

    def __call__(self, action: str, body: dict[str, Any] | None = None, **headers: str) -> tuple[int, Any]:
        frame = {"action": action, "headers": {**self.headers, **headers}, "body": body or {}}
        reply = self.raw(json.dumps(frame))
        assert reply["request"]["action"] == action and reply["request"]["api"] == "v2"
        return reply["headers"]["status"], reply["body"]

    def disconnect(self) -> None:
        app_module.ws_disconnect(_event("ws_disconnect", self.id), LambdaContext())


@pytest.fixture
def ws(management: FakeManagementApi, project: str) -> Ws:
    return Ws(management, project).connect()


def test_connect_records_the_connection_for_two_hours(ws: Ws, services: Services, redis_url: str) -> None:
    import redis

    record = services.connections.get(ws.id)
    assert record is not None and not record.authenticated and record.source_ip == "127.0.0.1"
    ttl = redis.Redis.from_url(redis_url).ttl(keys.connection(ws.id))
    assert 7100 < ttl <= 7200
    ws.disconnect()
    assert services.connections.get(ws.id) is None


def test_queue_actions(ws: Ws) -> None:
    assert ws("queue_create", {"queue_name": "wsq", "metadata": {"a": 1}}) == (201, "Queue wsq created.")
    assert ws("queue_create", {"queue_name": "wsq"}) == (204, "Queue wsq created.")
    status, metadata = ws("queue_get", {"queue_name": "wsq"})
    assert status == 200 and metadata["a"] == 1 and metadata["_default_message_ttl"] == 3600
    # one short page: no marker (upstream's functional test compares the whole frame)
    assert ws("queue_list", {}) == (200, {"queues": [{"name": "wsq"}]})
    assert ws("queue_list", {"limit": 1}) == (200, {"queues": [{"name": "wsq"}], "marker": "wsq"})
    # the owner's metadata, without the reserved defaults (as upstream's websocket API)
    assert ws("queue_list", {"detailed": True}) == (200, {"queues": [{"name": "wsq", "metadata": {"a": 1}}]})
    status, stats = ws("queue_get_stats", {"queue_name": "wsq"})
    assert (status, stats["messages"]["total"]) == (200, 0)
    assert ws("queue_purge", {"queue_name": "wsq", "resource_types": ["messages"]}) == (204, {})
    assert ws("queue_delete", {"queue_name": "wsq"}) == (204, "Queue wsq removed.")
    status, metadata = ws("queue_get", {"queue_name": "wsq"})  # lazy queues: an absent one reads as empty
    assert status == 200 and "a" not in metadata and metadata["_default_message_ttl"] == 3600
    assert ws("queue_get_stats", {"queue_name": "wsq"}) == (404, {"messages": {"claimed": 0, "free": 0, "total": 0}})


def test_message_actions_page_with_a_marker(ws: Ws) -> None:
    status, body = ws("message_post", {"queue_name": "q", "messages": [{"body": i, "ttl": 300} for i in range(5)]})
    assert status == 201 and len(body["message_ids"]) == 5
    ids = body["message_ids"]
    status, page = ws("message_list", {"queue_name": "q", "limit": 3, "echo": True})
    assert [m["body"] for m in page["messages"]] == [0, 1, 2]
    assert set(page["messages"][0]) == {"id", "claim_id", "ttl", "age", "body"}
    status, rest = ws("message_list", {"queue_name": "q", "limit": 3, "echo": True, "marker": page["marker"]})
    assert [m["body"] for m in rest["messages"]] == [3, 4]
    assert ws("message_get", {"queue_name": "q", "message_id": ids[0]})[1]["messages"]["body"] == 0
    status, many = ws("message_get_many", {"queue_name": "q", "message_ids": [ids[1], "nope"]})
    assert [m["body"] for m in many["messages"]] == [1]
    assert ws("message_get_many", {"queue_name": "q", "message_ids": ["nope"]}) == (200, {"messages": []})
    assert ws("message_delete", {"queue_name": "q", "message_id": ids[0]}) == (204, {})
    assert ws("message_delete_many", {"queue_name": "q", "message_ids": ids[1:3]}) == (204, {})
    status, popped = ws("message_delete_many", {"queue_name": "q", "pop": 1})
    assert status == 200 and [m["body"] for m in popped["messages"]] == [3]
    assert ws("message_get", {"queue_name": "q", "message_id": ids[0]})[0] == 404


def test_claim_actions(ws: Ws) -> None:
    ws("message_post", {"queue_name": "q", "messages": [{"body": "a"}, {"body": "b"}]})
    status, claim = ws("claim_create", {"queue_name": "q", "limit": 1, "ttl": 120, "grace": 60})
    assert status == 201 and [m["body"] for m in claim["messages"]] == ["a"]
    cid = claim["claim_id"]
    assert claim["messages"][0]["claim_id"] == cid
    status, got = ws("claim_get", {"queue_name": "q", "claim_id": cid})
    assert status == 200 and got["ttl"] == 120 and [m["body"] for m in got["messages"]] == ["a"]
    assert ws("claim_update", {"queue_name": "q", "claim_id": cid, "ttl": 300}) == (204, f"Claim {cid} updated.")
    assert ws("claim_get", {"queue_name": "q", "claim_id": cid})[1]["ttl"] == 300
    message_id = claim["messages"][0]["id"]
    assert ws("message_delete", {"queue_name": "q", "message_id": message_id})[0] == 403
    assert ws("message_delete", {"queue_name": "q", "message_id": message_id, "claim_id": cid}) == (204, {})
    assert ws("claim_delete", {"queue_name": "q", "claim_id": cid}) == (204, f"Claim {cid} deleted.")
    assert ws("claim_get", {"queue_name": "q", "claim_id": cid})[0] == 404
    ws("claim_create", {"queue_name": "q"})
    assert ws("claim_create", {"queue_name": "q"}) == (204, {"claim_id": None})


def test_subscription_actions_and_disconnect_removes_socket_subscriptions(ws: Ws, services: Services) -> None:
    status, made = ws("subscription_create", {"queue_name": "q", "ttl": 600})
    assert status == 201 and made["message"] == "Subscription q created."
    socket_sid = made["subscription_id"]
    status, hook = ws("subscription_create", {"queue_name": "q", "subscriber": "http://example.test/hook"})
    assert status == 201
    again = ws("subscription_create", {"queue_name": "q", "subscriber": "http://example.test/hook"})
    assert (again[0], again[1]["subscription_id"]) == (201, hook["subscription_id"])  # unconfirmed: the same one
    assert ws("subscription_create", {"queue_name": "q"})[0] == 409  # the socket's own is confirmed
    status, got = ws("subscription_get", {"queue_name": "q", "subscription_id": socket_sid})
    assert got["subscriber"] == f"websocket:{ws.id}" and got["confirmed"] is True
    status, listed = ws("subscription_list", {"queue_name": "q"})
    assert {s["id"] for s in listed["subscriptions"]} == {socket_sid, hook["subscription_id"]}
    ws.disconnect()
    other = Ws(ws.management, ws.headers["X-Project-ID"]).connect()
    status, listed = other("subscription_list", {"queue_name": "q"})
    assert [s["id"] for s in listed["subscriptions"]] == [hook["subscription_id"]]
    sid = hook["subscription_id"]
    assert other("subscription_delete", {"queue_name": "q", "subscription_id": sid}) == (204, f"Subscription {sid} removed.")


def test_authenticate_with_noauth_records_the_project(ws: Ws, services: Services) -> None:
    assert ws("authenticate") == (200, {"message": "Authentified."})
    record = services.connections.get(ws.id)
    assert record is not None and record.authenticated and record.project == ws.headers["X-Project-ID"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("not json", ["can't decode text (json) request: expecting value"]),  # upstream's words, then the parser's
        ("[1, 2]", ["object"]),
        ('{"action": "fly", "headers": {}, "body": {}}', ["invalid action"]),
        ('{"action": "queue_get", "body": {"queue_name": "q"}}', ["headers"]),
        ('{"action": "queue_get", "headers": {"X-Project-ID": "p"}, "body": {"queue_name": "q"}}', ["client-id"]),
    ],
)
def test_bad_frames_get_400_and_the_connection_stays_usable(ws: Ws, text: str, words: list[str]) -> None:
    reply = ws.raw(text)
    assert reply["headers"]["status"] == 400
    assert set(reply["body"]) == {"exception", "error"}
    for word in words:
        assert word in reply["body"]["error"].lower()
    assert ws("queue_list")[0] == 200


@pytest.mark.parametrize(
    ("action", "body", "status"),
    [
        ("queue_create", {}, 400),
        ("queue_create", {"queue_name": "bad name"}, 400),
        ("message_post", {"queue_name": "q", "messages": []}, 400),
        ("message_post", {"queue_name": "q", "messages": [{"body": 1, "ttl": 1}]}, 400),
        ("message_list", {"queue_name": "q", "limit": 50}, 400),
        ("message_list", {"queue_name": "q", "echo": "yes"}, 400),
        ("message_delete_many", {"queue_name": "q"}, 400),
        ("message_get_many", {"queue_name": "q", "message_ids": "abc"}, 400),
        ("claim_create", {"queue_name": "q", "ttl": 5}, 400),
        ("claim_get", {"queue_name": "q", "claim_id": "0" * 32}, 404),
        ("subscription_create", {"queue_name": "q", "subscriber": "ftp://x"}, 400),
        ("subscription_get", {"queue_name": "q", "subscription_id": "nope"}, 404),
        ("queue_list", {"marker": {"a": 1}}, 400),
        ("message_list", {"queue_name": "q", "marker": [1]}, 400),
        ("subscription_list", {"queue_name": "q", "marker": {"a": 1}}, 400),
    ],
)
def test_action_errors_carry_zaqar_statuses(ws: Ws, action: str, body: dict[str, Any], status: int) -> None:
    got_status, reply = ws(action, body)
    assert got_status == status
    assert set(reply) == {"exception", "error"} and reply["error"]


def test_an_oversize_frame_gets_413(ws: Ws) -> None:
    frame = {"action": "message_post", "headers": ws.headers,
             "body": {"queue_name": "q", "messages": [{"body": "x" * (130 * 1024)}]}}
    reply = ws.raw(json.dumps(frame))
    assert reply["headers"]["status"] == 413
    assert "128" in reply["body"]["error"] or "131072" in reply["body"]["error"]
    assert ws("queue_get_stats", {"queue_name": "q"})[0] == 404


def test_a_connection_gone_before_its_reply_is_cleaned_up(ws: Ws, services: Services) -> None:
    ws("subscription_create", {"queue_name": "q"})
    ws.management.gone.add(ws.id)
    app_module.ws_message(_event("ws_message", ws.id, json.dumps(
        {"action": "queue_list", "headers": ws.headers, "body": {}})), LambdaContext())
    assert services.connections.get(ws.id) is None
    assert services.subscriptions.delete_for_connection(ws.id) == []


def test_housekeeping_closes_connections_whose_authentication_expired(ws: Ws, services: Services) -> None:
    import time

    from chalicelib.transport import lambdas

    ws("subscription_create", {"queue_name": "q"})
    services.connections.authenticate(ws.id, project=ws.headers["X-Project-ID"], expires=time.time() - 1)
    # the expiry index is shared by every connection of the Redis (other runs' too): at least ours
    assert lambdas.close_expired_connections(app_module.app.websocket_api) >= 1
    assert ws.id in ws.management.deleted
    assert json.loads(ws.management.sent[ws.id][-1]) == {"error": "Authentication expired."}
    assert services.connections.get(ws.id) is None
    assert services.subscriptions.delete_for_connection(ws.id) == []


def test_a_frame_after_the_token_expired_is_refused_and_the_connection_closed(
    management: FakeManagementApi, project: str, tmp_path: Path, redis_url: str
) -> None:
    import time

    from chalicelib import runtime
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, redis_url, AUTH_STRATEGY="keystone", KEYSTONE_URL="http://127.0.0.1:9",
                             KEYSTONE_USERNAME="zaqar", KEYSTONE_PASSWORD="unused", KEYSTONE_PROJECT="service")
    runtime.install(runtime.build(settings))
    try:
        ws = Ws(management, project).connect()
        assert ws("queue_list")[0] == 403  # not authenticated yet
        runtime.services().connections.authenticate(ws.id, project=project, expires=time.time() + 60)
        assert ws("queue_list")[0] == 200
        runtime.services().connections.authenticate(ws.id, project=project, expires=time.time() - 1)
        status, body = ws("queue_list")
        assert (status, body["error"]) == (401, "Authentication expired.")
        assert management.deleted == [ws.id]
    finally:
        runtime.install(None)
