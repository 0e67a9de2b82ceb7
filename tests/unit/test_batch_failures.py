"""The partial-batch replies (``batchItemFailures``) of the stream and retry-queue Lambdas.

The events are the fixtures tests/events/kinesis_batch.json (three Kinesis records as Lambda delivers them:
one CloudEvent, a JSON array of two, another queue's event, each as the publisher writes it) and
tests/events/sqs_retry_batch.json (three retry-queue messages as Lambda delivers them: two deliveries waiting
for their next attempt and one event waiting to be fanned out again, as ``RetryQueue.schedule`` sends them);
the first tests check that the fixtures are what the code writes. They go through the app's ``deliver`` and
``retry`` handlers (Chalice's event classes, ``chalicelib.transport.lambdas``, ``chalicelib.notify.dispatch``)
into a real ``Notifier`` whose stores, channel and SQS client are in-memory fakes, so the retry queue can be
made unreachable. Checked: a record whose work could not be handed to anything durable is reported by its
itemIdentifier (the Kinesis sequence number, which also stops the stream batch there so a queue's events stay
in order; the SQS messageId, each message on its own), records that succeeded are not, a redelivered batch
sends nothing twice, and malformed records are skipped without failing or blocking the batch.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

import app as app_module
from chalicelib import errors
from chalicelib.config import Settings
from chalicelib.events.model import Event
from chalicelib.events.publisher import partition_key, records
from chalicelib.notify import dispatch
from chalicelib.notify.channels import Delivery, Outcome
from chalicelib.notify.failures import FailureLog
from chalicelib.notify.jobs import FAN_OUT, NOTIFICATION, Job
from chalicelib.notify.notifier import STATE_RETRY_S, Notifier
from chalicelib.notify.schedule import RetryQueue
from chalicelib.storage.base import Subscription
from chalicelib.transport import lambdas
from infra.local.gateway import LambdaContext

EVENTS = Path(__file__).resolve().parents[1] / "events"
PROJECT = "3f1c6a2e9b7d4e0a8c5b1d2f4a6e8c0b"
NOW_S = 1_795_704_001.0  # a second after the fixtures' events were written
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/zaqar-dev-retries"


def fixture(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return copy.deepcopy(event)


def kinesis_batch() -> dict[str, Any]:
    return fixture("kinesis_batch")


def sqs_batch() -> dict[str, Any]:
    return fixture("sqs_retry_batch")


def decoded(record: dict[str, Any]) -> list[dict[str, Any]]:
    document = json.loads(base64.b64decode(record["kinesis"]["data"]))
    return document if isinstance(document, list) else [document]


def message_ids(record: dict[str, Any]) -> list[str]:
    return [m["id"] for d in decoded(record) for m in d["data"].get("messages", [])]


def sequence_numbers(event: dict[str, Any]) -> list[str]:
    return [r["kinesis"]["sequenceNumber"] for r in event["Records"]]


def with_data(record: dict[str, Any], data: bytes | str, sequence: str) -> dict[str, Any]:
    """A copy of ``record`` carrying other data (bytes are base64-encoded, text is used as it is)."""
    changed = copy.deepcopy(record)
    changed["kinesis"]["data"] = base64.b64encode(data).decode() if isinstance(data, bytes) else data
    changed["kinesis"]["sequenceNumber"] = sequence
    changed["eventID"] = f"shardId-000000000000:{sequence}"
    return changed


def with_body(record: dict[str, Any], body: str, message_id: str) -> dict[str, Any]:
    changed = copy.deepcopy(record)
    changed.update(body=body, messageId=message_id, md5OfBody=hashlib.md5(body.encode()).hexdigest())
    return changed


# --- fakes for what the notifier reaches ------------------------------------------------------------------------

def subscription(sid: str, queue: str, subscriber: str) -> Subscription:
    return Subscription(sid, PROJECT, queue, subscriber, 3600, {"include_message_id": True},
                        int(NOW_S * 1000) - 60_000, int(NOW_S * 1000) + 3_540_000, True, None)


ORDERS_HOOK = subscription("019bbf1e2a40c4e1d3a59b7f20d86e4c", "orders", "https://hooks.example.com/zaqar/orders")
INVOICES_HOOK = subscription("019bbf1e2b77a0c9e4f1d2b3a5c6e7f8", "invoices", "https://billing.example.com/hook")


class Subscriptions:
    """The catalog's subscriptions; a queue in ``broken`` makes the fan-out fail as an unreachable catalog does."""

    def __init__(self, *known: Subscription) -> None:
        self.known = list(known)
        self.broken: set[str] = set()

    def live_for_queue(self, *, project: str, queue: str, now_ms: int) -> Sequence[Subscription]:
        if queue in self.broken:
            raise errors.Unavailable("The subscription catalog could not be reached.")
        return [s for s in self.known if (s.project, s.queue) == (project, queue)]

    def get(self, *, project: str, queue: str, sid: str, now_ms: int) -> Subscription | None:
        return next((s for s in self.known if (s.project, s.queue, s.id) == (project, queue, sid)), None)


class Deliveries:
    """The delivery log; ``down`` makes it unreachable."""

    def __init__(self) -> None:
        self.settled: set[str] = set()
        self.down = False

    def delivered(self, key: str) -> bool:
        if self.down:
            raise errors.Unavailable("The delivery log could not be reached.")
        return key in self.settled

    def record(self, key: str, *, keep_s: int) -> None:
        if self.down:
            raise errors.Unavailable("The delivery log could not be reached.")
        self.settled.add(key)


class Channel:
    """A webhook channel that records what it is given; messages in ``failing`` get an outcome worth a retry."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.failing: set[str] = set()

    def deliver(self, delivery: Delivery) -> Outcome:
        message_id = str(delivery.job.message.get("id"))
        self.sent.append((delivery.subscription.subscriber, message_id))
        if message_id in self.failing:
            return Outcome("retry", "HTTP 503", 503)
        return Outcome("delivered", "200", 200)

    def ids(self) -> list[str]:
        return [message_id for _subscriber, message_id in self.sent]


class SQS:
    """The part of boto3's SQS client RetryQueue uses; ``down`` makes every send fail as an outage does."""

    def __init__(self) -> None:
        self.sent: list[tuple[Job, int]] = []
        self.down = False

    def send_message(self, *, QueueUrl: str, MessageBody: str, DelaySeconds: int) -> dict[str, str]:
        if self.down:
            raise ClientError({"Error": {"Code": "AWS.SimpleQueueService.ServiceUnavailable",
                                         "Message": "Service Unavailable"}}, "SendMessage")
        assert QueueUrl == QUEUE_URL
        self.sent.append((Job.from_json(MessageBody), DelaySeconds))
        return {"MessageId": f"m{len(self.sent)}"}


class FakeRetryQueue(RetryQueue):
    def __init__(self, sqs: SQS) -> None:
        super().__init__("zaqar-dev-retries")
        self.sqs = sqs

    def _queue(self) -> tuple[Any, str]:
        return self.sqs, QUEUE_URL


@dataclasses.dataclass
class World:
    notifier: Notifier
    subscriptions: Subscriptions
    deliveries: Deliveries
    channel: Channel
    sqs: SQS
    failures: list[dict[str, Any]]

    def deliver(self, event: dict[str, Any]) -> dict[str, Any]:
        """The app's stream Lambda."""
        reply: dict[str, Any] = app_module.deliver(event, LambdaContext("deliver"))
        return reply

    def retry(self, event: dict[str, Any]) -> dict[str, Any]:
        """The app's retry-queue Lambda."""
        reply: dict[str, Any] = app_module.retry(event, LambdaContext("retry"))
        return reply


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    subscriptions = Subscriptions(ORDERS_HOOK, INVOICES_HOOK)
    deliveries, channel, sqs = Deliveries(), Channel(), SQS()
    failures: list[dict[str, Any]] = []
    notifier = Notifier(
        Settings.from_mapping({"RETRY_QUEUE": "zaqar-dev-retries"}),
        subscriptions=subscriptions,  # type: ignore[arg-type]
        deliveries=deliveries,  # type: ignore[arg-type]
        channels={"https": channel},
        retries=FakeRetryQueue(sqs),
        failures=FailureLog(lambda project, record: failures.append(record)),
        queue_policy=lambda project, queue: None,
        clock=lambda: NOW_S,
    )
    monkeypatch.setattr(lambdas, "notifier", lambda websocket_api: notifier)
    yield World(notifier, subscriptions, deliveries, channel, sqs, failures)


def failed(reply: dict[str, Any]) -> list[str]:
    assert set(reply) == {"batchItemFailures"}
    return [item["itemIdentifier"] for item in reply["batchItemFailures"]]


# --- the fixtures are what the service writes -------------------------------------------------------------------

def test_the_kinesis_fixture_holds_records_as_the_publisher_writes_them() -> None:
    batch = kinesis_batch()["Records"]
    assert [len(decoded(r)) for r in batch] == [1, 2, 1]
    numbers = [int(n) for n in sequence_numbers(kinesis_batch())]
    assert numbers == sorted(numbers) and len(set(numbers)) == 3
    for record in batch:
        events = [Event.from_cloudevent(d) for d in decoded(record)]
        [(data, count)] = records(events)
        assert base64.b64decode(record["kinesis"]["data"]) == data and count == len(events)
        assert record["kinesis"]["partitionKey"] == partition_key(events[0])
        assert record["eventID"] == f"shardId-000000000000:{record['kinesis']['sequenceNumber']}"
        assert record["eventSource"] == "aws:kinesis" and record["eventSourceARN"].endswith(":stream/zaqar-dev-events")
    # one queue's events carry consecutive sequences
    orders = [Event.from_cloudevent(d) for r in batch for d in decoded(r) if d["subject"] == "orders"]
    assert [e.sequence for e in orders] == [1, 2, 3]


def test_the_sqs_fixture_holds_jobs_as_the_retry_queue_sends_them() -> None:
    batch = sqs_batch()["Records"]
    jobs = [Job.from_json(r["body"]) for r in batch]
    assert [r["body"] for r in batch] == [j.to_json() for j in jobs]
    assert [r["md5OfBody"] for r in batch] == [hashlib.md5(r["body"].encode()).hexdigest() for r in batch]
    assert [(j.kind, j.retry) for j in jobs] == [(NOTIFICATION, 1), (NOTIFICATION, 4), (FAN_OUT, 0)]
    assert all(r["eventSource"] == "aws:sqs" and r["eventSourceARN"].endswith(":zaqar-dev-retries") for r in batch)
    # the waiting deliveries are those of the stream fixture's first event, the fan-out job its last one
    first, last = kinesis_batch()["Records"][0], kinesis_batch()["Records"][2]
    assert [j.message for j in jobs[:2]] == decoded(first)[0]["data"]["messages"]
    assert jobs[0].event_id == jobs[1].event_id == decoded(first)[0]["id"]
    assert Event.from_cloudevent(jobs[2].message) == Event.from_cloudevent(decoded(last)[0])


# --- the stream Lambda ------------------------------------------------------------------------------------------

def test_a_stream_batch_that_went_well_reports_no_failure(world: World) -> None:
    event = kinesis_batch()
    assert failed(world.deliver(event)) == []
    records_ = event["Records"]
    assert world.channel.ids() == message_ids(records_[0]) + message_ids(records_[1]) + message_ids(records_[2])
    assert world.sqs.sent == [] and world.failures == []


def test_a_delivery_that_cannot_be_scheduled_again_reports_its_record_and_stops_the_batch(world: World) -> None:
    event = kinesis_batch()
    first, second, third = event["Records"]
    world.channel.failing.add(message_ids(second)[0])
    world.sqs.down = True
    assert failed(world.deliver(event)) == [second["kinesis"]["sequenceNumber"]]
    assert world.channel.ids() == message_ids(first) + message_ids(second)
    assert not set(message_ids(third)) & set(world.channel.ids())  # after the failed record: left for the retry
    assert world.failures == []  # not given up on: the record comes again


def test_lambda_resuming_at_the_failed_record_sends_nothing_twice(world: World) -> None:
    event = kinesis_batch()
    first, second, third = event["Records"]
    world.channel.failing.add(message_ids(second)[0])
    world.sqs.down = True
    [at] = failed(world.deliver(event))
    world.sqs.down = False
    resumed = {"Records": event["Records"][sequence_numbers(event).index(at):]}  # as ReportBatchItemFailures does
    assert failed(world.deliver(resumed)) == []
    assert world.channel.ids() == message_ids(first) + message_ids(second) * 2 + message_ids(third)
    [(job, delay)] = world.sqs.sent
    assert (job.message["id"], job.retry, delay) == (message_ids(second)[0], 1, 0)  # the policy's first retry
    # the whole batch again (a retried invocation): what was delivered is not sent again; only the one the
    # receiver has not got yet (its retry waits on the queue) is tried again
    world.channel.sent.clear()
    assert failed(world.deliver(kinesis_batch())) == []
    assert world.channel.ids() == message_ids(second)


def test_a_fan_out_that_cannot_be_handed_over_reports_its_record(world: World) -> None:
    event = kinesis_batch()
    third = event["Records"][2]
    world.subscriptions.broken.add("invoices")
    assert failed(world.deliver(event)) == []  # the fan-out waits on the retry queue
    [(job, delay)] = world.sqs.sent
    assert (job.kind, job.event_id, delay) == (FAN_OUT, decoded(third)[0]["id"], 0)
    world.sqs.down = True
    assert failed(world.deliver(kinesis_batch())) == [third["kinesis"]["sequenceNumber"]]


OURS = Event("message.posted", PROJECT, "orders").cloudevent()
NOT_OURS: dict[str, bytes | str] = {
    "not-base64": "%%% not base64 %%%",
    "not-utf8": b"\xff\xfe\x00 not utf-8",
    "not-json": b"not json",
    "a-number": b"42",
    "an-array-of-numbers": b"[1, 2]",
    "foreign-type": b'{"specversion": "1.0", "id": "x", "source": "/orders", "type": "com.example.order.created"}',
    "no-project": json.dumps({k: v for k, v in OURS.items() if k != "project"}).encode(),
    "data-not-an-object": json.dumps({**OURS, "data": [1]}).encode(),
    "sequence-not-a-number": json.dumps({**OURS, "sequence": "x"}).encode(),
}


@pytest.mark.parametrize("what", list(NOT_OURS))
def test_a_record_that_is_not_ours_is_skipped_and_the_batch_goes_on(world: World, what: str) -> None:
    event = kinesis_batch()
    first, second, third = event["Records"]
    bad = with_data(first, NOT_OURS[what], "49657236817632468914071226314187000000000000000000000000")
    event["Records"] = [first, bad, second, third]
    assert failed(world.deliver(event)) == [], what
    assert world.channel.ids() == message_ids(first) + message_ids(second) + message_ids(third)


def test_a_record_whose_array_holds_one_bad_event_is_skipped_whole(world: World) -> None:
    event = kinesis_batch()
    first, second, third = event["Records"]
    documents = decoded(second)
    documents[1].pop("id")
    event["Records"][1] = with_data(second, json.dumps(documents).encode(), second["kinesis"]["sequenceNumber"])
    assert failed(world.deliver(event)) == []
    assert world.channel.ids() == message_ids(first) + message_ids(third)


def test_a_skipped_record_before_a_failing_one_is_not_reported(world: World) -> None:
    event = kinesis_batch()
    first, second, third = event["Records"]
    event["Records"] = [with_data(first, b"garbage", first["kinesis"]["sequenceNumber"]), second, third]
    world.channel.failing.add(message_ids(third)[0])
    world.sqs.down = True
    assert failed(world.deliver(event)) == [third["kinesis"]["sequenceNumber"]]


def test_an_empty_batch_reports_no_failure(world: World) -> None:
    assert failed(world.deliver({"Records": []})) == []
    assert failed(world.retry({"Records": []})) == []


# --- the retry-queue Lambda -------------------------------------------------------------------------------------

def test_a_retry_batch_that_went_well_reports_no_failure(world: World) -> None:
    event = sqs_batch()
    jobs = [Job.from_json(r["body"]) for r in event["Records"]]
    assert failed(world.retry(event)) == []
    fanned_out = [m["id"] for m in jobs[2].message["data"]["messages"]]
    assert world.channel.ids() == [jobs[0].message["id"], jobs[1].message["id"], *fanned_out]
    assert world.sqs.sent == [] and world.failures == []


def test_a_retry_that_cannot_be_scheduled_again_reports_its_message_alone(world: World) -> None:
    event = sqs_batch()
    first, second, third = event["Records"]
    world.channel.failing.add(Job.from_json(first["body"]).message["id"])
    world.sqs.down = True
    assert failed(world.retry(event)) == [first["messageId"]]
    # SQS retries each message on its own: the ones after it were still handled
    assert len(world.channel.sent) == 1 + 1 + 1
    world.sqs.down = False
    world.channel.sent.clear()
    assert failed(world.retry({"Records": [first]})) == []
    [(job, delay)] = world.sqs.sent
    assert (job.retry, delay) == (2, 0)  # the default policy's second retry is immediate too
    world.channel.sent.clear()
    assert failed(world.retry({"Records": [second, third]})) == []
    assert world.channel.sent == []  # already delivered: a redelivered message sends nothing twice


def test_each_failing_message_is_reported_by_its_own_message_id(world: World) -> None:
    event = sqs_batch()
    first, second, third = event["Records"]
    for record in (first, second):
        world.channel.failing.add(Job.from_json(record["body"]).message["id"])
    world.subscriptions.broken.add("invoices")
    world.sqs.down = True
    assert failed(world.retry(event)) == [first["messageId"], second["messageId"], third["messageId"]]


def test_when_our_state_is_unreachable_the_job_waits_or_is_reported(world: World) -> None:
    event = sqs_batch()
    first = event["Records"][0]
    world.deliveries.down = True
    assert failed(world.retry({"Records": [first]})) == []  # handed back to the retry queue for a while
    [(job, delay)] = world.sqs.sent
    assert job == Job.from_json(first["body"]) and delay == STATE_RETRY_S
    world.sqs.down = True
    assert failed(world.retry({"Records": [first]})) == [first["messageId"]]
    assert world.channel.sent == []


@pytest.mark.parametrize("body", [
    "not json",
    "",
    "null",
    "[1, 2, 3]",
    '"a string"',
    '{"kind": "notification"}',
    json.dumps({**dataclasses.asdict(Job(NOTIFICATION, "e", PROJECT, "orders", "s", {"id": "m"})), "extra": 1}),
])
def test_a_message_that_is_not_a_job_is_dropped_without_failing_the_batch(world: World, body: str) -> None:
    event = sqs_batch()
    first, second, third = event["Records"]
    event["Records"] = [first, with_body(second, body, "0d2f4b6c-8e0a-4c1d-9f3e-5a7b9c1d3e5f"), third]
    assert failed(world.retry(event)) == []
    assert len(world.channel.sent) == 1 + 1  # the first delivery and the fanned-out one


def test_a_message_without_a_body_is_dropped(world: World) -> None:
    event = sqs_batch()
    del event["Records"][1]["body"]
    assert failed(world.retry(event)) == []
    assert len(world.channel.sent) == 2


def test_a_fan_out_job_holding_no_event_of_ours_is_dropped(world: World) -> None:
    event = sqs_batch()
    third = event["Records"][2]
    job = Job.from_json(third["body"])
    foreign = dataclasses.replace(job, message={**job.message, "type": "com.example.thing"})
    event["Records"][2] = with_body(third, foreign.to_json(), third["messageId"])
    assert failed(world.retry(event)) == []
    assert world.notifier.run(foreign) == "dropped"


@pytest.mark.parametrize("message", ["a string", ["a", "list"], 7])
def test_a_job_whose_message_is_not_an_object_is_dropped_without_failing_the_batch(world: World,
                                                                                   message: object) -> None:
    event = sqs_batch()
    second = event["Records"][1]
    broken = {**json.loads(second["body"]), "message": message}
    event["Records"][1] = with_body(second, json.dumps(broken), second["messageId"])
    assert failed(world.retry(event)) == []
    assert len(world.channel.sent) == 2


# --- the pure functions the handlers call -----------------------------------------------------------------------

def test_events_of_reads_one_cloudevent_or_an_array_of_them() -> None:
    first, second, _third = kinesis_batch()["Records"]
    assert [e.type for e in dispatch.events_of(first)] == ["message.posted"]
    assert [(e.type, e.sequence) for e in dispatch.events_of(second)] == [("subscription.created", 2),
                                                                           ("message.posted", 3)]
