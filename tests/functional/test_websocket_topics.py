"""The websocket API's topic actions (beyond upstream, whose websocket API has none): each ``topic_*`` action
is the queue action of the same name for the topic ``topic_name`` names, kept apart from queues."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from chalice.test import Client

import app as app_module
from chalicelib import topics
from chalicelib.api.context import Services
from chalicelib.transport.ws_actions import ACTIONS
from tests.conftest import _delete_project_keys, installed
from tests.functional.conftest import Api
from tests.functional.test_notifications import Flow, _build, local_aws
from tests.functional.test_websocket import FakeManagementApi, Ws, fake_management

TOPIC_RESERVED = {"_max_messages_post_size": 262144, "_default_message_ttl": 3600, "_default_message_delay": 0}


@pytest.fixture(autouse=True)
def _topic_keys(redis_url: str, project: str) -> Iterator[None]:
    yield
    _delete_project_keys(redis_url, topics.space(project))


@pytest.fixture
def gateway(services: Services) -> Iterator[FakeManagementApi]:
    """API Gateway's management API, recording what the app sends (test_websocket's ``management``)."""
    with fake_management() as fake:
        yield fake


@pytest.fixture
def ws(gateway: FakeManagementApi, project: str) -> Ws:
    return Ws(gateway, project).connect()


def _twin(topic_action: str) -> str:
    """The queue action a topic action runs: topic_create -> queue_create, topic_message_post -> message_post."""
    rest = topic_action[len("topic_"):]
    return rest if rest.startswith(("message_", "subscription_")) else f"queue_{rest}"


def test_every_topic_action_is_a_queue_action_but_claims_deletions_and_redrive() -> None:
    twins = {_twin(name) for name in ACTIONS if name.startswith("topic_")}
    assert twins <= set(ACTIONS)
    assert set(ACTIONS) - twins == {"authenticate", "message_delete", "message_delete_many", "claim_create",
                                    "claim_get", "claim_update", "claim_delete", "queue_redrive",
                                    *(name for name in ACTIONS if name.startswith("topic_"))}


def test_topic_actions(ws: Ws) -> None:
    assert ws("topic_create", {"topic_name": "wst", "metadata": {"a": 1}}) == (201, "Topic wst created.")
    assert ws("topic_create", {"topic_name": "wst"}) == (204, "Topic wst created.")
    assert ws("topic_get", {"topic_name": "wst"}) == (200, {"a": 1, **TOPIC_RESERVED})
    assert ws("topic_list", {}) == (200, {"topics": [{"name": "wst"}]})
    assert ws("topic_list", {"limit": 1}) == (200, {"topics": [{"name": "wst"}], "marker": "wst"})
    assert ws("topic_list", {"detailed": True}) == (200, {"topics": [{"name": "wst", "metadata": {"a": 1}}]})
    assert ws("queue_list", {}) == (200, {"queues": []})  # topics are no queues
    status, stats = ws("topic_get_stats", {"topic_name": "wst"})
    assert (status, stats) == (200, {"messages": {"claimed": 0, "free": 0, "total": 0}})
    assert ws("topic_purge", {"topic_name": "wst", "resource_types": ["messages"]}) == (204, {})
    assert ws("topic_delete", {"topic_name": "wst"}) == (204, "Topic wst removed.")
    assert ws("topic_get", {"topic_name": "wst"}) == (200, TOPIC_RESERVED)
    assert ws("topic_get_stats", {"topic_name": "wst"})[0] == 404


def test_topic_message_actions(ws: Ws) -> None:
    messages = [{"body": i, "ttl": 300, **({"attributes": {"n": i}} if i else {})} for i in range(4)]
    status, body = ws("topic_message_post", {"topic_name": "t", "messages": messages})
    assert status == 201
    ids = body["message_ids"]
    status, page = ws("topic_message_list", {"topic_name": "t", "limit": 3, "echo": True})
    assert status == 200 and [m["body"] for m in page["messages"]] == [0, 1, 2]
    assert [m.get("attributes") for m in page["messages"]] == [None, {"n": 1}, {"n": 2}]
    status, rest = ws("topic_message_list", {"topic_name": "t", "limit": 3, "echo": True, "marker": page["marker"]})
    assert [m["body"] for m in rest["messages"]] == [3]
    status, one = ws("topic_message_get", {"topic_name": "t", "message_id": ids[1]})
    assert status == 200 and (one["messages"]["body"], one["messages"]["attributes"]) == (1, {"n": 1})
    status, many = ws("topic_message_get_many", {"topic_name": "t", "message_ids": [ids[2], "nope"]})
    assert [m["id"] for m in many["messages"]] == [ids[2]]
    status, missing = ws("topic_message_get", {"topic_name": "t", "message_id": "0" * 32})
    assert status == 404 and missing["error"] == f"Message {'0' * 32} does not exist in topic t."
    assert ws("topic_get_stats", {"topic_name": "t"})[1]["messages"]["total"] == 4
    assert ws("message_list", {"queue_name": "t", "echo": True}) == (200, {"messages": []})  # no queue t


def test_topic_messages_cannot_be_claimed_or_deleted_over_the_websocket(ws: Ws) -> None:
    (mid,) = ws("topic_message_post", {"topic_name": "t", "messages": [{"body": "kept"}]})[1]["message_ids"]
    for action in ("topic_claim_create", "topic_message_delete", "topic_message_delete_many"):
        status, body = ws(action, {"topic_name": "t", "message_id": mid})
        assert status == 400 and "Invalid action" in body["error"], action
    # the queue actions read queue_name: a topic's name is no queue's
    assert ws("claim_create", {"topic_name": "t"})[0] == 400
    assert ws("claim_create", {"queue_name": "t"}) == (204, {"claim_id": None})
    status, listed = ws("topic_message_list", {"topic_name": "t", "echo": True})
    assert [m["id"] for m in listed["messages"]] == [mid] and listed["messages"][0]["claim_id"] is None


def test_topic_subscription_actions_and_disconnect_removes_the_sockets_own(ws: Ws) -> None:
    status, made = ws("topic_subscription_create", {"topic_name": "t", "ttl": 600})
    assert status == 201 and made["message"] == "Subscription t created."
    socket_sid = made["subscription_id"]
    status, hook = ws("topic_subscription_create", {"topic_name": "t", "subscriber": "http://example.test/hook"})
    assert status == 201
    status, got = ws("topic_subscription_get", {"topic_name": "t", "subscription_id": socket_sid})
    assert (got["source"], got["subscriber"], got["confirmed"]) == ("t", f"websocket:{ws.id}", True)
    status, conflict = ws("topic_subscription_create", {"topic_name": "t"})
    assert status == 409 and "Topic t already has a confirmed subscription" in conflict["error"]
    status, listed = ws("topic_subscription_list", {"topic_name": "t"})
    assert {s["id"] for s in listed["subscriptions"]} == {socket_sid, hook["subscription_id"]}
    assert ws("subscription_list", {"queue_name": "t"}) == (200, {"subscriptions": []})
    ws.disconnect()
    other = Ws(ws.management, ws.headers["X-Project-ID"]).connect()
    status, listed = other("topic_subscription_list", {"topic_name": "t"})
    assert [s["id"] for s in listed["subscriptions"]] == [hook["subscription_id"]]
    sid = hook["subscription_id"]
    assert other("topic_subscription_delete", {"topic_name": "t", "subscription_id": sid}) == (
        204, f"Subscription {sid} removed.")
    status, gone = other("topic_subscription_get", {"topic_name": "t", "subscription_id": sid})
    assert status == 404 and "does not exist in topic t" in gone["error"]


@pytest.mark.parametrize(("action", "body", "words"), [
    ("topic_create", {"topic_name": "bad name"}, "Topic names may only contain"),
    ("topic_create", {"queue_name": "t"}, "topic_create needs topic_name"),
    ("topic_message_post", {"topic_name": "t"}, "topic_message_post needs messages"),
    ("topic_message_get_many", {"topic_name": "t", "message_ids": []}, "message_ids must be"),
])
def test_bad_topic_frames_get_400(ws: Ws, action: str, body: dict[str, object], words: str) -> None:
    status, reply = ws(action, body)
    assert status == 400 and words in reply["error"], reply


def test_a_project_id_longer_than_254_characters_has_no_topics_over_the_websocket(
        gateway: FakeManagementApi, redis_url: str) -> None:
    project = uuid.uuid4().hex + "p" * (255 - 32)
    try:
        ws = Ws(gateway, project).connect()
        assert ws("queue_create", {"queue_name": "q"})[0] == 201
        status, body = ws("topic_create", {"topic_name": "t"})
        assert status == 400 and "Topics need project ids of at most 254 characters" in body["error"]
        assert ws("topic_list")[0] == 400
    finally:
        _delete_project_keys(redis_url, project)


def test_a_frame_cannot_name_a_topic_space_as_its_project(ws: Ws) -> None:
    ws("topic_create", {"topic_name": "t", "metadata": {"secret": True}})
    for project in (topics.space(ws.headers["X-Project-ID"]), "p\x1f"):
        status, body = ws("queue_list", {}, **{"X-Project-ID": project})
        assert status == 400 and "x-project-id" in body["error"].lower(), body


def test_a_websocket_subscriber_of_a_topic_gets_its_messages_pushed(
        tmp_path: Path, redis_url: str, project: str) -> None:
    with local_aws(), installed(_build(tmp_path, redis_url, WEBSOCKET_API_ID="abcdef1234")) as services, \
            fake_management() as fake, Client(app_module.app) as client:
        api, flow = Api(client, project), Flow(services)
        ws = Ws(fake, project).connect()
        assert ws("topic_subscription_create", {"topic_name": "live"})[0] == 201
        api.post("/v2/topics/live/messages", {"messages": [{"body": {"tick": 1}}]})
        api.post_messages("live", {"tock": "to the queue of the same name"})
        flow.drain()
        pushed = [json.loads(frame) for frame in fake.sent[ws.id][1:]]
        assert pushed == [{"body": {"tick": 1}, "ttl": 3600, "queue_name": "live", "Message_Type": "Notification"}]
        ws.disconnect()
        assert api.get("/v2/topics/live/subscriptions").json["subscriptions"] == []
