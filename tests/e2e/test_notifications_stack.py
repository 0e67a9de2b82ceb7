"""Notifications through the local stack: moto's Kinesis, SQS and SES, the
delivery loop, and real receivers on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest
import requests
from websockets.sync.client import connect

from tests.e2e.conftest import Stack
from tests.receiver import receiver

pytestmark = pytest.mark.e2e


class Rest:
    def __init__(self, stack: Stack, project: str) -> None:
        self.base = stack.http
        self.headers = {"Client-ID": str(uuid.uuid4()), "X-Project-ID": project}

    def __call__(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(method, self.base + path, headers=self.headers, json=body, timeout=10)


def _signed_by(secret: str, headers: dict[str, str], body: bytes) -> bool:
    parts = dict(item.split("=", 1) for item in headers["X-Zaqar-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def test_a_posted_message_arrives_once_with_its_id_and_a_valid_signature(stack: Stack, project: str) -> None:
    rest = Rest(stack, project)
    with receiver() as hook:
        made = rest("POST", "/v2/queues/n1/subscriptions",
                    {"subscriber": hook.url, "options": {"include_message_id": True}}).json()
        mid = rest("POST", "/v2/queues/n1/messages", {"messages": [{"body": {"n": 1}}]}).json()["resources"][0]
        (got,) = hook.wait_for(1)
        time.sleep(1.5)  # time for a duplicate to show up, if there were one
        assert len(hook.requests) == 1
        assert got.json["message_id"] == mid.rsplit("/", 1)[1] and got.json["body"] == {"n": 1}
        assert _signed_by(made["signing_secret"], got.headers, got.body)


def test_a_receiver_failing_twice_gets_it_exactly_once(stack: Stack, project: str) -> None:
    rest = Rest(stack, project)
    with receiver() as hook:
        hook.statuses = [500, 500]
        rest("POST", "/v2/queues/n2/subscriptions", {"subscriber": hook.url})
        rest("POST", "/v2/queues/n2/messages", {"messages": [{"body": "retry me"}]})
        received = hook.wait_for(3)
        time.sleep(1.5)
        assert [r.json["body"] for r in hook.requests] == ["retry me"] * 3
        assert len(received) == 3


def test_a_receiver_that_never_answers_in_time_ends_in_failed_notifications(stack: Stack, project: str) -> None:
    rest = Rest(stack, project)
    policy = {"retries_with_no_delay": 1, "minimum_delay_retries": 0, "minimum_delay": 0, "maximum_delay": 10,
              "maximum_delay_retries": 0}
    with receiver() as hook:
        hook.delay_s = 2.0  # longer than the stack's WEBHOOK_TIMEOUT of 1 s
        sid = rest("POST", "/v2/queues/n3/subscriptions",
                   {"subscriber": hook.url, "options": {"_retry_policy": policy}}).json()["subscription_id"]
        rest("POST", "/v2/queues/n3/messages", {"messages": [{"body": "too slow"}]})
        deadline = time.monotonic() + 40
        failed: list[Any] = []
        while time.monotonic() < deadline and not failed:
            time.sleep(0.5)
            failed = rest("GET", "/v2/queues/failed-notifications/messages?echo=true").json()["messages"]
        assert len(hook.requests) == 4  # the first attempt and three retries (0 s, 0 s, 5 s)
        (record,) = [m["body"] for m in failed]
        assert record["subscription_id"] == sid and record["attempts"] == 4 and "timed out" in record["error"]


def test_websocket_subscribers_get_pushes(stack: Stack, project: str) -> None:
    rest = Rest(stack, project)
    headers = {"Client-ID": str(uuid.uuid4()), "X-Project-ID": project}
    with connect(stack.ws) as sock:
        sock.send(json.dumps({"action": "subscription_create", "headers": headers, "body": {"queue_name": "n4"}}))
        assert json.loads(sock.recv(timeout=10))["headers"]["status"] == 201
        rest("POST", "/v2/queues/n4/messages", {"messages": [{"body": "pushed"}]})
        pushed = json.loads(sock.recv(timeout=10))
        assert pushed["Message_Type"] == "Notification" and pushed["body"] == "pushed"


def test_emails_reach_ses(stack: Stack, project: str) -> None:
    rest = Rest(stack, project)
    rest("POST", "/v2/queues/n5/subscriptions", {"subscriber": f"mailto:{project}@example.test"})
    rest("POST", "/v2/queues/n5/messages", {"messages": [{"body": "by mail"}]})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        mails = requests.get(f"{stack.aws}/moto-api/data.json", timeout=10).json()["ses"]["Message"]
        ours = [m for m in mails if f"{project}@example.test" in json.dumps(m)]
        if ours:
            break
        time.sleep(0.3)
    assert ours and "by mail" in json.dumps(ours[0])
