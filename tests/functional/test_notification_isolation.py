"""One bad subscription, one poisoned record or one bug never costs anyone else
their notification; and writes pay for events only when someone listens.

The setting is test_notifications.py's: REST through the Chalice app, moto's
Kinesis and SQS pumped into the Lambdas, real HTTP receivers on loopback.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from bench.roundtrips import RoundTripProxy
from chalicelib import runtime
from chalicelib.api.context import Services
from chalicelib.events.model import Event
from chalicelib.events.publisher import KinesisSink
from chalicelib.notify import dispatch
from chalicelib.notify.channels import Delivery, Outcome
from chalicelib.notify.jobs import FAN_OUT, Job
from chalicelib.notify.notifier import Notifier
from chalicelib.rules.retry_policy import RetryPolicy
from chalicelib.storage.base import Subscription
from chalicelib.transport import lambdas
from tests.conftest import _delete_project_keys, installed
from tests.functional.conftest import Api
from tests.functional.test_notifications import (  # noqa: F401 - fixtures
    Flow,
    _build,
    api,
    aws,
    flow,
    hook,
    subscribe,
)
from tests.receiver import Receiver, receiver

FAILED = "/v2/queues/failed-notifications/messages?echo=true"


@pytest.fixture
def other_project(redis_url: str) -> Iterator[str]:
    name = f"test-other-{uuid.uuid4().hex[:12]}"
    yield name
    _delete_project_keys(redis_url, name)


def failures(api: Api) -> list[dict[str, Any]]:
    reply = api.get(FAILED)
    return [] if reply.status == 204 else [m["body"] for m in reply.json["messages"]]


def corrupt(services: Services, api: Api, queue: str, sid: str, options: dict[str, Any]) -> None:
    """Store options the API refuses today, as a subscription made before these rules would hold them."""
    changed = services.subscriptions.update(project=api.project, queue=queue, sid=sid, changes={"options": options},
                                            now_ms=2**40)
    assert changed is not None


@pytest.mark.parametrize("bad_options", [
    {"post_headers": {"X-Bad": "a\r\nInjected: 1"}},
    {"post_headers": {"Host": "elsewhere.example"}},
    {"post_data": "x" * 20000 + '"$zaqar_message$"'},
], ids=["crlf-header", "host-override", "huge-template"])
def test_a_subscription_that_cannot_work_fails_alone_and_once(
        api: Api, flow: Flow, hook: Receiver, other_project: str, bad_options: dict[str, Any]) -> None:
    with receiver() as bad_hook, receiver() as elsewhere:
        other = Api(api._client, other_project)
        bad = subscribe(api, "orders", bad_hook.url + "/bad")
        corrupt(flow.services, api, "orders", bad, bad_options)
        subscribe(api, "orders", hook.url + "/sibling")
        subscribe(other, "invoices", elsewhere.url)
        (mid,) = api.post_messages("orders", "for everyone")
        other.post_messages("invoices", "another tenant")
        flow.drain()
        flow.stream._iterators.clear()  # Kinesis delivers the whole stream again
        flow.drain()
        assert [r.json["message_id"] for r in hook.wait_for(1)] == [mid]
        assert [r.json["body"] for r in elsewhere.wait_for(1)] == ["another tenant"]
        assert bad_hook.requests == []
        assert len(hook.requests) == 1 and len(elsewhere.requests) == 1
        [record] = failures(api)
        assert (record["subscription_id"], record["message_id"]) == (bad, mid)
        assert "not sent" in record["error"]
        assert failures(other) == []


class Raising:
    """A channel with a bug for one subscriber."""

    def __init__(self, inner: Any, poisoned: str) -> None:
        self.inner, self.poisoned = inner, poisoned

    def deliver(self, delivery: Delivery) -> Outcome:
        if delivery.subscription.subscriber.startswith(self.poisoned):
            raise RuntimeError("a bug in our own code")
        return self.inner.deliver(delivery)  # type: ignore[no-any-return]


def record_of(*events: Event) -> list[dict[str, Any]]:
    return [{"kinesis": {"sequenceNumber": str(n), "data": base64.b64encode(
        json.dumps(e.cloudevent()).encode()).decode()}} for n, e in enumerate(events, 1)]


def notifier_with(services: Services, **changes: Any) -> Notifier:
    notifier = lambdas.build_notifier(services, None)
    for name, value in changes.items():
        setattr(notifier, name, value)
    return notifier


def test_an_exception_in_one_delivery_is_retried_for_that_subscription_alone(
        api: Api, flow: Flow, hook: Receiver) -> None:
    with receiver() as buggy:
        subscribe(api, "orders", buggy.url)
        sid = subscribe(api, "orders", hook.url + "/fine")
        notifier = notifier_with(flow.services)
        webhooks = notifier._channels["http"]
        notifier._channels = {"http": Raising(webhooks, buggy.url)}
        (mid,) = api.post_messages("orders", "x")
        records = flow.stream._kinesis.get_records(ShardIterator=flow.stream._kinesis.get_shard_iterator(
            StreamName="zaqar-events", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON",
        )["ShardIterator"])["Records"]
        batch = [{"kinesis": {"sequenceNumber": r["SequenceNumber"], "data": base64.b64encode(r["Data"]).decode()}}
                 for r in records]
        assert dispatch.on_stream(notifier, batch) == {"batchItemFailures": []}
        assert [r.json["message_id"] for r in hook.wait_for(1)] == [mid]
        retries = flow.retries._sqs.receive_message(QueueUrl=flow.retries._url, MaxNumberOfMessages=10)
        [waiting] = [Job.from_json(m["Body"]) for m in retries.get("Messages", [])]
        assert waiting.retry == 1 and waiting.subscription_id != sid
        last = dataclasses.replace(waiting, retry=len(RetryPolicy().delays()))
        assert notifier.attempt(last) == "failed"
        assert notifier.attempt(last) == "skipped"  # settled: a redelivery records nothing twice
        [record] = failures(api)
        assert record["subscription_id"] == waiting.subscription_id and "a bug in our own code" in record["error"]
        assert buggy.requests == [] and len(hook.requests) == 1


class FlakyCatalog:
    """The subscription store, failing for one queue as a poisoned record would make it."""

    def __init__(self, inner: Any, poisoned: str) -> None:
        self.inner, self.poisoned = inner, poisoned

    def live_for_queue(self, *, project: str, queue: str, now_ms: int) -> Sequence[Subscription]:
        if queue == self.poisoned:
            raise RuntimeError("this record breaks the fan-out")
        return self.inner.live_for_queue(project=project, queue=queue, now_ms=now_ms)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_poisoned_record_does_not_block_the_shard_and_fails_once(api: Api, flow: Flow, hook: Receiver) -> None:
    subscribe(api, "orders", hook.url)
    notifier = notifier_with(flow.services)
    notifier._subscriptions = FlakyCatalog(flow.services.subscriptions, "poison")  # type: ignore[assignment]
    poison = Event("message.posted", api.project, "poison", {"messages": [{"id": "m0", "body": 1, "ttl": 60}]})
    good = Event("message.posted", api.project, "orders", {"messages": [{"id": "m1", "body": 2, "ttl": 60}]})
    assert dispatch.on_stream(notifier, record_of(poison, good)) == {"batchItemFailures": []}
    assert [r.json["message_id"] for r in hook.wait_for(1)] == ["m1"]
    retries = flow.retries._sqs.receive_message(QueueUrl=flow.retries._url, MaxNumberOfMessages=10)
    [again] = [Job.from_json(m["Body"]) for m in retries.get("Messages", [])]
    assert (again.kind, again.event_id) == (FAN_OUT, poison.id)
    exhausted = dataclasses.replace(again, retry=len(RetryPolicy().delays()))
    assert notifier.run(exhausted) == "dispatched"
    [record] = failures(api)
    assert record["event_id"] == poison.id and "breaks the fan-out" in record["error"]


@pytest.mark.parametrize(("body", "reason"), [
    ({"subscriber": "http://h.example/", "options": {"post_headers": {"X-A": "1\r\nX-B: 2"}}}, "X-A"),
    ({"subscriber": "http://h.example/", "options": {"post_headers": {"X-A": "caf\u00e9"}}}, "X-A"),
    ({"subscriber": "http://h.example/", "options": {"post_headers": {"Bad Name": "1"}}}, "Bad Name"),
    ({"subscriber": "http://h.example/", "options": {"post_headers": {"host": "other"}}}, "host"),
    ({"subscriber": "http://h.example/", "options": {"post_headers": {"Content-Length": "1"}}}, "Content-Length"),
    ({"subscriber": "http://h.example/", "options": {"post_headers": {"X-Zaqar-Signature": "t=1"}}}, "Signature"),
    ({"subscriber": "http://h.example/", "options": {"post_headers": {"x-zaqar-delivery-id": "d"}}}, "elivery"),
    ({"subscriber": "http://h.example/", "options": {"post_data": "x" * 20000}}, "post_data"),
    ({"subscriber": "mailto:a@example.test?subject=Hi%0D%0ABcc:%20x@evil.test"}, "subject"),
    ({"subscriber": "mailto:a@example.test", "options": {"subject": "Hi\nBcc: x@evil.test"}}, "subject"),
    ({"subscriber": "mailto:a@example.test", "options": {"from": "ceo@bank.example"}}, "from"),
    ({"subscriber": "http://100.64.0.1/hook"}, "100.64.0.1"),
    ({"subscriber": "http://[2002:a9fe:a9fe::]/latest/meta-data"}, "169.254.169.254"),
    ({"subscriber": "http://[::ffff:169.254.169.254]/"}, "169.254.169.254"),
    ({"subscriber": "http://[64:ff9b::a9fe:a9fe]/"}, "169.254.169.254"),
    ({"subscriber": "http://[::1"}, "subscriber"),
], ids=["crlf-value", "non-ascii", "bad-name", "host", "content-length", "signature", "delivery-id",
        "post-data-size", "mailto-subject", "options-subject", "foreign-sender", "shared-address-space", "6to4",
        "v4-mapped", "nat64", "broken-url"])
def test_what_cannot_work_or_must_not_happen_is_refused_at_subscribe_time(
        api: Api, body: dict[str, Any], reason: str) -> None:
    reply = api.post("/v2/queues/orders/subscriptions", body)
    assert reply.status == 400, reply.raw
    assert reason.lower() in reply.json["description"].lower()
    assert api.get("/v2/queues/orders/subscriptions").json["subscriptions"] == []


def test_the_configured_sender_and_content_type_overrides_are_accepted(api: Api) -> None:
    assert api.post("/v2/queues/orders/subscriptions", {
        "subscriber": "mailto:a@example.test", "options": {"from": "noreply@example.test"}}).status == 201
    assert api.post("/v2/queues/orders/subscriptions", {
        "subscriber": "http://h.example/", "options": {"post_headers": {"Content-Type": "text/xml"}}}).status == 201


class RecordingKinesis:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def put_record(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"SequenceNumber": str(len(self.calls)), "ShardId": "s"}


@pytest.fixture
def counted(tmp_path: Path, redis_url: str, project: str) -> Iterator[tuple[Api, RoundTripProxy, RecordingKinesis]]:
    proxy = RoundTripProxy(redis_url)
    kinesis = RecordingKinesis()
    built = _build(tmp_path, proxy.url)
    try:
        with installed(Services(**{**built.__dict__, "sink": KinesisSink("zaqar-events", kinesis)})), \
                Client(app_module.app) as client:
            yield Api(client, project), proxy, kinesis
    finally:
        proxy.close()


def test_a_write_to_a_queue_nobody_listens_to_is_one_round_trip_and_no_aws_call(
        counted: tuple[Api, RoundTripProxy, RecordingKinesis]) -> None:
    api, proxy, kinesis = counted
    api.post_messages("quiet", "warm up")  # placement, script loading
    before = proxy.round_trips
    api.post_messages("quiet", "one")
    api.post_messages("quiet", "two", "three")
    assert proxy.round_trips - before == 2
    claim = api.post("/v2/queues/quiet/claims", {"ttl": 60})
    assert claim.status == 201
    assert api.delete(claim.json["messages"][0]["href"]).status == 204
    assert kinesis.calls == []


def test_a_write_to_a_subscribed_queue_publishes_at_once_with_one_more_round_trip(
        counted: tuple[Api, RoundTripProxy, RecordingKinesis]) -> None:
    api, proxy, kinesis = counted
    subscribe(api, "loud", "http://127.0.0.1:9/hook")
    api.post_messages("loud", "warm up")
    kinesis.calls.clear()
    before = proxy.round_trips
    (mid,) = api.post_messages("loud", "heard")
    assert proxy.round_trips - before == 2  # the post, then forgetting the published event
    [call] = kinesis.calls
    event = json.loads(call["Data"])
    assert event["type"] == "org.openstack.messaging.message.posted"
    assert event["data"]["messages"][0]["id"] == mid and event["data"]["messages"][0]["body"] == "heard"


def test_deleting_the_last_subscription_makes_posts_quiet_again(
        counted: tuple[Api, RoundTripProxy, RecordingKinesis]) -> None:
    api, _proxy, kinesis = counted
    sid = subscribe(api, "loud", "http://127.0.0.1:9/hook")
    assert api.delete(f"/v2/queues/loud/subscriptions/{sid}").status == 204
    kinesis.calls.clear()
    api.post_messages("loud", "nobody hears")
    assert kinesis.calls == []


def test_subscriptions_that_outlive_their_queue_are_heard_when_it_comes_back(
        counted: tuple[Api, RoundTripProxy, RecordingKinesis]) -> None:
    api, _proxy, kinesis = counted
    subscribe(api, "phoenix", "http://127.0.0.1:9/hook")
    assert api.delete("/v2/queues/phoenix").status == 204
    kinesis.calls.clear()
    api.post_messages("phoenix", "reborn")
    assert len(kinesis.calls) == 1


def test_housekeeping_tells_a_pool_about_subscriptions_it_does_not_know_of(
        counted: tuple[Api, RoundTripProxy, RecordingKinesis]) -> None:
    from chalicelib.api import listeners

    api, _proxy, kinesis = counted
    subscribe(api, "old", "http://127.0.0.1:9/hook")
    services = runtime.services()
    store = services.pooling.lookup(project=api.project, queue="old")
    assert store is not None
    seen = store.listeners(project=api.project, queue="old")  # as a subscription made before pools kept this
    assert store.listen_lower(project=api.project, queue="old", until_ms=0, generation=seen.generation)
    kinesis.calls.clear()
    api.post_messages("old", "unheard")
    assert kinesis.calls == []
    assert listeners.reconcile(services) >= 1
    api.post_messages("old", "heard again")
    assert len(kinesis.calls) == 1


def test_a_delayed_message_too_large_for_the_retry_queue_fails_alone(api: Api, flow: Flow, hook: Receiver) -> None:
    subscribe(api, "orders", hook.url)
    huge = "\u00e9" * 100_000  # 200 KB of UTF-8 posted; six times that as the JSON an SQS message carries
    raw = json.dumps({"messages": [{"body": huge, "delay": 1}]}, ensure_ascii=False)
    reply = api.post("/v2/queues/orders/messages", raw=raw)
    assert reply.status == 201, reply.raw
    big = reply.json["resources"][0].rsplit("/", 1)[1]
    (small,) = api.post_messages("orders", "small")
    flow.drain()
    assert [r.json["message_id"] for r in hook.wait_for(1)] == [small]
    [record] = failures(api)
    assert record["message_id"] == big and "cannot wait for its delay" in record["error"]
