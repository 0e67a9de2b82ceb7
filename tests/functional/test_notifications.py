"""Notifications end to end inside one process: REST posts, moto's Kinesis,
SQS and SES, the delivery and retry Lambdas, and a real HTTP receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

import app as app_module
from chalicelib import runtime
from chalicelib.api import relay
from chalicelib.api.context import Services
from chalicelib.events.publisher import KinesisSink
from chalicelib.signing import subscription_secret
from infra.local.pumps import QueuePump, StreamPump, provision
from tests.conftest import installed, make_settings
from tests.functional.conftest import Api
from tests.receiver import Receiver, receiver

SIGNING_KEY = "test-signing-key"
SENDER = "noreply@example.test"


class Flow:
    """The deployment in miniature: stream and retry queue pumped into the Lambdas."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.stream = StreamPump(boto3.client("kinesis"), "zaqar-events", app_module.deliver)
        self.retries = QueuePump(boto3.client("sqs"), "zaqar-retries", app_module.retry)

    def drain(self, rounds: int = 20) -> None:
        for _ in range(rounds):
            if self.stream.poll() + self.retries.poll() == 0:
                return

    def emails(self) -> list[Any]:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        return list(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages)


def _build(tmp_path: Path, redis_url: str, **extra: str) -> Services:
    options = {"EVENT_STREAM": "zaqar-events", "RETRY_QUEUE": "zaqar-retries", "SES_SENDER": SENDER,
               "SIGNING_KEY": SIGNING_KEY, "WEBHOOK_ALLOW_LOOPBACK": "true", "WEBHOOK_TIMEOUT": "1", **extra}
    settings = make_settings(tmp_path, redis_url, **options)
    return runtime.build(settings)


@contextmanager
def local_aws() -> Iterator[None]:
    """moto's Kinesis, SQS and SES with the stream, retry queue and sender that :func:`_build` names."""
    with mock_aws():
        provision(boto3.client("kinesis"), boto3.client("sqs"), boto3.client("ses"), stream="zaqar-events",
                  queue="zaqar-retries", sender=SENDER)
        yield


@pytest.fixture
def aws() -> Iterator[None]:
    with local_aws():
        yield


@pytest.fixture
def flow(aws: None, tmp_path: Path, redis_url: str) -> Iterator[Flow]:
    with installed(_build(tmp_path, redis_url)) as services:
        yield Flow(services)


@pytest.fixture
def api(flow: Flow, project: str) -> Iterator[Api]:
    with Client(app_module.app) as client:
        yield Api(client, project)


@pytest.fixture
def confirming(aws: None, tmp_path: Path, redis_url: str, project: str) -> Iterator[tuple[Api, Flow]]:
    """The same, with REQUIRE_CONFIRMATION on."""
    with installed(_build(tmp_path, redis_url, REQUIRE_CONFIRMATION="true")) as services, \
            Client(app_module.app) as client:
        yield Api(client, project), Flow(services)


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as state:
        yield state


def subscribe(api: Api, queue: str, subscriber: str, **options: Any) -> str:
    """Subscribe, with the message id in each notification (opt-in) unless told otherwise."""
    options = {"include_message_id": True, **options}
    reply = api.post(f"/v2/queues/{queue}/subscriptions", {"subscriber": subscriber, "options": options})
    assert reply.status == 201, reply.raw
    return str(reply.json["subscription_id"])


def verify(secret: str, received: Any) -> bool:
    parts = dict(item.split("=", 1) for item in received.headers["X-Zaqar-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def test_a_posted_message_reaches_the_webhook_once_with_its_id_and_a_valid_signature(
    api: Api, flow: Flow, hook: Receiver
) -> None:
    sid = subscribe(api, "orders", hook.url + "/in", post_headers={"X-Tenant": "t1"})
    secret = api.get(f"/v2/queues/orders/subscriptions/{sid}").json["signing_secret"]
    assert secret == subscription_secret(SIGNING_KEY, sid)
    (mid,) = api.post_messages("orders", {"order": 7}, ttl=300)
    flow.drain()
    flow.stream._iterators.clear()  # Kinesis delivers the whole stream again
    flow.drain()
    (got,) = hook.wait_for(1)
    assert len(hook.requests) == 1
    assert got.path == "/in" and got.headers["X-Tenant"] == "t1"
    assert got.json == {"body": {"order": 7}, "ttl": 300, "queue_name": "orders", "Message_Type": "Notification",
                        "message_id": mid, "href": f"/v2/queues/orders/messages/{mid}"}
    assert verify(subscription_secret(SIGNING_KEY, sid), got)
    assert not verify("another-secret", got)


def test_by_default_the_notification_is_upstreams_body_exactly(api: Api, flow: Flow, hook: Receiver) -> None:
    # upstream's receivers and its tempest tests compare the whole body: the id and href are opt-in
    subscribe(api, "orders", hook.url, include_message_id=False)
    api.post_messages("orders", {"order": 8}, ttl=300)
    flow.drain()
    (got,) = hook.wait_for(1)
    assert got.json == {"body": {"order": 8}, "ttl": 300, "queue_name": "orders", "Message_Type": "Notification"}
    assert got.headers["X-Zaqar-Delivery-Id"]


def test_a_receiver_failing_twice_gets_the_message_exactly_once_after_retries(
    api: Api, flow: Flow, hook: Receiver
) -> None:
    hook.statuses = [500, 503]
    subscribe(api, "orders", hook.url)
    api.post_messages("orders", "hello")
    flow.drain()
    received = hook.wait_for(3)
    assert [r.json["body"] for r in received] == ["hello"] * 3
    flow.drain()
    assert len(hook.requests) == 3


def test_a_delivery_refused_for_good_lands_in_failed_notifications(api: Api, flow: Flow, hook: Receiver) -> None:
    hook.statuses = [404]
    sid = subscribe(api, "orders", hook.url)
    (mid,) = api.post_messages("orders", "lost")
    flow.drain()
    failed = api.get("/v2/queues/failed-notifications/messages?echo=true").json["messages"]
    assert len(failed) == 1
    record = failed[0]["body"]
    assert (record["subscription_id"], record["message_id"], record["error"]) == (sid, mid, "HTTP 404")


def test_post_data_templates_are_honoured(api: Api, flow: Flow, hook: Receiver) -> None:
    subscribe(api, "orders", hook.url, post_data='{"wrapped": "$zaqar_message$", "v": 1}')
    api.post_messages("orders", "x")
    flow.drain()
    (got,) = hook.wait_for(1)
    assert got.json["v"] == 1 and got.json["wrapped"]["body"] == "x"


def test_email_notifications_go_through_ses(api: Api, flow: Flow) -> None:
    subscribe(api, "orders", "mailto:ops@example.test?subject=New%20order")
    api.post_messages("orders", {"order": 9})
    flow.drain()
    (mail,) = flow.emails()
    assert mail.destinations["ToAddresses"] == ["ops@example.test"]
    assert mail.subject == "New order" and mail.source == SENDER
    assert json.loads(mail.body)["body"] == {"order": 9}


def test_unsubscribed_queues_and_deleted_subscriptions_get_nothing(api: Api, flow: Flow, hook: Receiver) -> None:
    sid = subscribe(api, "orders", hook.url)
    api.delete(f"/v2/queues/orders/subscriptions/{sid}")
    api.post_messages("orders", "nobody listens")
    api.post_messages("other", "nor here")
    flow.drain()
    assert hook.requests == []


def test_the_relay_publishes_what_a_crash_left_in_the_outbox(api: Api, flow: Flow, hook: Receiver) -> None:
    subscribe(api, "orders", hook.url)
    broken = KinesisSink("no-such-stream")  # the write succeeds, the publish fails: as a crash in between
    runtime.install(Services(**{**flow.services.__dict__, "sink": broken}))
    api.post_messages("orders", "survivor")
    flow.drain()
    assert hook.requests == []
    runtime.install(flow.services)
    relay.GRACE_MS, saved = 0, relay.GRACE_MS
    try:
        assert relay.run(flow.services) == 1
        assert relay.run(flow.services) == 0
    finally:
        relay.GRACE_MS = saved
    flow.drain()
    assert [r.json["body"] for r in hook.wait_for(1)] == ["survivor"]


def test_delayed_messages_are_notified_when_visible(api: Api, flow: Flow, hook: Receiver) -> None:
    subscribe(api, "orders", hook.url)
    api.post_messages("orders", "later", delay=1)
    flow.stream.poll()
    assert hook.requests == []
    for _ in range(30):
        flow.retries.poll(wait_s=1)
        if hook.requests:
            break
    assert [r.json["body"] for r in hook.requests] == ["later"]


def test_webhooks_to_forbidden_addresses_are_refused(api: Api, flow: Flow) -> None:
    for target in ("http://169.254.169.254/latest/meta-data", "http://10.1.2.3/hook", "http://[fd00::1]/x"):
        reply = api.post("/v2/queues/orders/subscriptions", {"subscriber": target})
        assert reply.status == 400 and "not allowed" in reply.json["description"], target


def test_loopback_is_refused_when_not_allowed(aws: None, tmp_path: Path, redis_url: str, project: str) -> None:
    with installed(_build(tmp_path, redis_url, WEBHOOK_ALLOW_LOOPBACK="false")) as services:
        with Client(app_module.app) as client, receiver() as hook:
            api = Api(client, project)
            assert api.post("/v2/queues/q/subscriptions", {"subscriber": hook.url}).status == 400
            named = hook.url.replace("127.0.0.1", "localhost")
            subscribe(api, "q", named)  # a name: checked on its addresses when delivering
            api.post_messages("q", "x")
            Flow(services).drain()
            assert hook.requests == []
            failed = api.get("/v2/queues/failed-notifications/messages?echo=true").json["messages"]
            assert "loopback" in failed[0]["body"]["error"]


def test_confirmation_is_sent_signed_and_the_signed_confirm_works_where_a_tampered_one_does_not(
    confirming: tuple[Api, Flow], hook: Receiver
) -> None:
    api, flow = confirming
    sid = subscribe(api, "orders", hook.url)
    flow.drain()
    api.post_messages("orders", "before confirming")
    flow.drain()
    (confirmation,) = hook.wait_for(1)
    doc = confirmation.json
    assert doc["Message_Type"] == "SubscriptionConfirmation"
    signed = {k: doc[k] for k in ("URL-Signature", "URL-Methods", "URL-Paths", "URL-Expires", "X-Project-ID")}
    path = doc["URL-Paths"]
    tampered = {**signed, "URL-Signature": "0" * 64}
    assert api.put(path, {"confirmed": True}, headers=tampered).status == 404
    other_path = {**signed, "URL-Paths": path.replace(sid, "0" * 32)}
    assert api.put(path, {"confirmed": True}, headers=other_path).status == 404
    assert api.put(path, {"confirmed": True}, headers=signed).status == 204
    api.post_messages("orders", "after confirming")
    flow.drain()
    bodies = [r.json.get("body") for r in hook.wait_for(2)]
    assert bodies == [None, "after confirming"]
    assert api.put(path, {"confirmed": False}, headers=signed).status == 204
    flow.drain()
    farewell = hook.wait_for(3)[-1].json
    assert farewell["Message_Type"] == "UnsubscribeConfirmation" and "unsubscribed" in farewell["Message"]
    api.post_messages("orders", "after unsubscribing")
    flow.drain()
    assert len(hook.requests) == 3


def test_subscribing_again_while_unconfirmed_sends_the_confirmation_again(
    confirming: tuple[Api, Flow], hook: Receiver
) -> None:
    api, flow = confirming
    sid = subscribe(api, "orders", hook.url)
    flow.drain()
    assert subscribe(api, "orders", hook.url) == sid  # upstream: 201, the same subscription
    flow.drain()
    sent = [r.json for r in hook.wait_for(2)]
    assert [d["Message_Type"] for d in sent] == ["SubscriptionConfirmation"] * 2
    assert {d["URL-Paths"] for d in sent} == {f"/v2/queues/orders/subscriptions/{sid}/confirm"}


def test_email_confirmation_reaches_ses(confirming: tuple[Api, Flow]) -> None:
    api, flow = confirming
    sid = subscribe(api, "orders", "mailto:me@example.test")
    flow.drain()
    (mail,) = flow.emails()
    assert mail.destinations["ToAddresses"] == ["me@example.test"]
    assert "Confirm" in mail.subject and f"/subscriptions/{sid}/confirm" in mail.body
    assert "URL-Signature" in mail.body


def test_a_websocket_subscriber_gets_pushes_and_loses_its_subscription_when_it_leaves(
    aws: None, tmp_path: Path, redis_url: str, project: str
) -> None:
    from tests.functional.test_websocket import Ws, fake_management

    with installed(_build(tmp_path, redis_url, WEBSOCKET_API_ID="abcdef1234")) as services, \
            fake_management() as fake, Client(app_module.app) as client:
        api = Api(client, project)
        flow = Flow(services)
        ws = Ws(fake, project).connect()
        assert ws("subscription_create", {"queue_name": "live"})[0] == 201
        api.post_messages("live", {"tick": 1})
        flow.drain()
        pushed = [json.loads(frame) for frame in fake.sent[ws.id][1:]]
        assert pushed == [{"body": {"tick": 1}, "ttl": 3600, "queue_name": "live",
                           "Message_Type": "Notification"}]
        ws.disconnect()
        assert api.get("/v2/queues/live/subscriptions").json["subscriptions"] == []
        api.post_messages("live", {"tick": 2})
        flow.drain()
        assert len(fake.sent[ws.id]) == 2
