"""Idempotent message posts (beyond upstream, as SQS's deduplication ids): a post repeated with the same
Idempotency-Key within the window answers the same ids and stores and streams nothing twice; the same key
with other messages is a 422; after the window the key is free again. On REST and over the websocket, on
every pool kind."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from chalicelib.api.context import Services
from chalicelib.config import Settings
from chalicelib.events.model import RecordingSink
from tests.conftest import kind_settings
from tests.functional.conftest import Api
from tests.functional.test_websocket import Ws, fake_management, management, ws  # noqa: F401 - fixtures

BODY = {"messages": [{"body": {"order": 1}, "attributes": {"k": "v"}}, {"body": "two", "ttl": 120}]}


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, pool_url: str) -> Settings:
    return kind_settings(tmp_path, redis_url, pool_url, IDEMPOTENCY_WINDOW="1")


def _keyed(api: Api, key: str, body: Any = BODY, queue: str = "q") -> Any:
    return api.post(f"/v2/queues/{queue}/messages", body, headers={"Idempotency-Key": key})


def _posted_events(services: Services, project: str) -> int:
    assert isinstance(services.sink, RecordingSink)
    return sum(1 for e in services.sink.events if e.type == "message.posted" and e.project == project)


def test_a_repeated_keyed_post_answers_the_same_ids_and_stores_and_streams_once(api: Api, services: Services) -> None:
    first = _keyed(api, "order-1-attempt")
    again = _keyed(api, "order-1-attempt")
    assert first.status == again.status == 201
    assert again.json == first.json and again.headers["location"] == first.headers["location"]
    assert api.get("/v2/queues/q/stats").json["messages"]["total"] == 2
    assert _posted_events(services, api.project) == 1
    plain = api.post("/v2/queues/q/messages", BODY)  # no key: a new post, as upstream
    assert plain.status == 201 and plain.json != first.json
    assert api.get("/v2/queues/q/stats").json["messages"]["total"] == 4


def test_the_same_key_with_other_messages_is_a_422_naming_the_key(api: Api) -> None:
    assert _keyed(api, "k-1").status == 201
    other = _keyed(api, "k-1", {"messages": [{"body": {"order": 2}}]})
    assert other.status == 422
    assert other.json["title"] == "Idempotency key reused"
    assert "'k-1'" in other.json["description"] and "1s" in other.json["description"]
    assert api.get("/v2/queues/q/stats").json["messages"]["total"] == 2
    differs_in_attributes = {"messages": [{"body": {"order": 1}, "attributes": {"k": "w"}}, BODY["messages"][1]]}
    assert _keyed(api, "k-1", differs_in_attributes).status == 422


def test_after_the_window_the_key_is_free_again(api: Api) -> None:
    first = _keyed(api, "k-2")
    time.sleep(1.2)
    later = _keyed(api, "k-2", {"messages": [{"body": "new"}]})
    assert later.status == 201 and later.json != first.json
    assert api.get("/v2/queues/q/stats").json["messages"]["total"] == 3


def test_keys_belong_to_their_queue_and_their_kind(api: Api) -> None:
    one = _keyed(api, "k-3")
    other = _keyed(api, "k-3", queue="other")
    topic = api.post("/v2/topics/q/messages", BODY, headers={"Idempotency-Key": "k-3"})
    assert other.status == topic.status == 201
    assert len({str(one.json), str(other.json), str(topic.json)}) == 3


@pytest.mark.parametrize("key", ["", "with space", "é", "x" * 256])
def test_a_malformed_key_is_a_400_and_stores_nothing(api: Api, key: str) -> None:
    reply = _keyed(api, key)
    assert reply.status == 400 and "Idempotency-Key must be 1 to 255 visible ASCII" in reply.json["description"]
    assert api.get("/v2/queues/q/stats").json["messages"]["total"] == 0


def test_over_the_websocket_the_header_of_the_frame_keys_the_post(ws: Ws) -> None:  # noqa: F811
    body = {"queue_name": "q", "messages": [{"body": 1}]}
    status, first = ws("message_post", body, **{"Idempotency-Key": "ws-1"})
    assert status == 201
    assert ws("message_post", body, **{"Idempotency-Key": "ws-1"}) == (201, first)
    status, refused = ws("message_post", {"queue_name": "q", "messages": [{"body": 2}]}, **{"Idempotency-Key": "ws-1"})
    assert status == 422 and "ws-1" in refused["error"]
    assert ws("queue_get_stats", {"queue_name": "q"})[1]["messages"]["total"] == 1
