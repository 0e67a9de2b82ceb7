"""A trust+http subscriber on the local stack with Keystone auth, as zaqar-tempest-plugin's
test_trust_subscription does it: the subscriber is the stack's own messages endpoint, so the notification
only arrives if the trust-scoped token the webhook carries is accepted as the subscriber's own."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import _delete_project_keys
from tests.e2e.conftest import Stack, _start_stack
from tests.keystone_server import PASSWORD, Keystone

pytestmark = [pytest.mark.e2e, pytest.mark.keystone]
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
DELIVERY_WAIT_S = 120  # a bound for a loaded machine, not an expectation: the loop ends at the first message


@pytest.fixture(scope="module")
def trust_stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str, keystone: Keystone) -> Iterator[Stack]:
    yield from _start_stack(
        tmp_path_factory.mktemp("trust-stack"), redis_url, AUTH_STRATEGY="keystone", KEYSTONE_URL=keystone.url,
        KEYSTONE_USERNAME="zaqar", KEYSTONE_PASSWORD=PASSWORD, KEYSTONE_PROJECT="service",
        TRUSTEE_USERNAME="zaqar", TRUSTEE_PASSWORD=PASSWORD, REQUIRE_CONFIRMATION="false",
    )
    _delete_project_keys(redis_url, keystone.projects["alpha"])


def _call(stack: Stack, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(stack.http + path, data=data, method=method, headers={
        "X-Auth-Token": token, "Client-ID": str(uuid.uuid4()), "Content-Type": "application/json"})
    try:
        with _OPENER.open(request, timeout=10) as reply:
            raw = reply.read()
            return reply.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        exc.close()
        return exc.code, json.loads(raw) if raw else None


def test_a_trust_subscriber_can_post_to_the_service_as_the_subscriber(trust_stack: Stack, keystone: Keystone) -> None:
    token = keystone.token("alice", "alpha")
    run = uuid.uuid4().hex[:8]  # queues of this run's own: an earlier run's notification cannot pass for this one
    source, inbox = f"trust-source-{run}", f"trust-inbox-{run}"
    target = f"{trust_stack.http}/v2/queues/{inbox}/messages"
    post_data = json.dumps({"messages": [{"body": "$zaqar_message$", "ttl": 60}]})
    headers = {"X-Project-ID": keystone.projects["alpha"], "Client-ID": str(uuid.uuid4())}
    status, reply = _call(trust_stack, "POST", f"/v2/queues/{source}/subscriptions", token, {
        "subscriber": f"trust+{target}", "ttl": 1200, "options": {"post_data": post_data, "post_headers": headers}})
    assert status == 201, reply
    assert _call(trust_stack, "POST", f"/v2/queues/{source}/messages", token,
                 {"messages": [{"body": {"order": 7}, "ttl": 300}]})[0] == 201
    deadline = time.monotonic() + DELIVERY_WAIT_S
    found: list[Any] = []
    while not found and time.monotonic() < deadline:
        status, listed = _call(trust_stack, "GET", f"/v2/queues/{inbox}/messages?echo=true", token)
        found = listed["messages"] if status == 200 and listed else []
        time.sleep(0.2)
    assert found, "the notification never reached the subscriber's queue"
    body = found[0]["body"]
    assert (body["Message_Type"], body["queue_name"], body["body"], body["ttl"]) == (
        "Notification", source, {"order": 7}, 300)
