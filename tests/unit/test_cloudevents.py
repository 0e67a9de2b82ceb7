"""Events on the wire (chalicelib.events.model): ``Event.cloudevent`` and ``Event.from_cloudevent``.

``cloudevent`` is the structured-mode CloudEvents 1.0 JSON object the stream carries (the publisher encodes it
with ``chalicelib.events.publisher.records``); ``from_cloudevent`` reads it back, for the stream Lambda and
for fan-out jobs waiting on the retry queue. Checked: the attributes the CloudEvents spec requires and the
ones this service adds (``project``, the ``sequence`` extension as a zero-padded string so that it orders as
text too); round trips through JSON and through the publisher's own bytes, for every kind of event; what
happens when a required attribute is missing or is not ours (the errors the stream Lambda catches), with
attributes it does not know, and with times written in other RFC 3339 forms. The functional event-stream
test round-trips one event through a real pool; these need none.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from chalicelib.events.model import NAMESPACE, Event
from chalicelib.events.publisher import records

PROJECT = "3f1c6a2e9b7d4e0a8c5b1d2f4a6e8c0b"
TIME_MS = 1_700_000_000_123  # 2023-11-14T22:13:20.123Z

EVENTS = [
    Event("message.posted", PROJECT, "orders", {"messages": [
        {"id": "6f1d2c3b4a5e4d6c8b7a9f0e1d2c3b4a", "body": {"order": 1001, "note": "caf\u00e9 \u2603"}, "ttl": 3600,
         "delay": 0}], "encrypted": False}, id="8a0f2d6c4b1e4f7a9c3d5e7f1a2b4c6d", time_ms=TIME_MS, sequence=7),
    Event("queue.created", PROJECT, "orders", {"metadata": {"_max_messages_post_size": 65536}}, time_ms=TIME_MS,
          sequence=1),
    Event("claim.updated", PROJECT, "orders", {"claim_id": "c1", "ttl": 120, "grace": 60}, time_ms=1_700_000_000_000,
          sequence=12),
    Event("subscription.confirmed", PROJECT, "orders", {"id": "019bbf1e2a40c4e1d3a59b7f20d86e4c",
                                                        "subscriber": "https://hooks.example.com/z"}, sequence=3),
    Event("queue.deleted", PROJECT, "q-with.dots_and-dashes", {}, time_ms=TIME_MS),  # sequence 0: older versions
    Event("message.deleted", PROJECT, "orders", {"ids": ["a", "b"]}, time_ms=999, sequence=10**19),
]


def wire(**changes: Any) -> dict[str, Any]:
    """The CloudEvent of the first event, with attributes replaced (or removed, given None)."""
    document = EVENTS[0].cloudevent()
    for name, value in changes.items():
        if value is None:
            document.pop(name, None)
        else:
            document[name] = value
    return document


# --- the serialised form ----------------------------------------------------------------------------------------

def test_the_cloudevent_has_the_required_attributes_and_ours() -> None:
    assert EVENTS[0].cloudevent() == {
        "specversion": "1.0",
        "id": "8a0f2d6c4b1e4f7a9c3d5e7f1a2b4c6d",
        "source": "/v2/queues/orders",
        "type": "org.openstack.messaging.message.posted",
        "subject": "orders",
        "time": "2023-11-14T22:13:20.123Z",
        "datacontenttype": "application/json",
        "project": PROJECT,
        "sequence": "00000000000000000007",
        "data": EVENTS[0].data,
    }


def test_an_event_without_a_known_place_has_no_sequence_attribute() -> None:
    assert "sequence" not in EVENTS[4].cloudevent()


def test_the_sequence_orders_the_same_as_text_and_as_a_number() -> None:
    numbers = [1, 2, 9, 10, 11, 99, 100, 12345, 10**19]
    texts = [Event("queue.updated", PROJECT, "q", sequence=n).cloudevent()["sequence"] for n in numbers]
    assert all(len(text) == 20 and text.isdigit() for text in texts)
    assert sorted(texts) == texts
    assert [int(text) for text in texts] == numbers


def test_the_time_keeps_its_milliseconds_and_is_utc() -> None:
    assert EVENTS[2].cloudevent()["time"] == "2023-11-14T22:13:20.000Z"
    assert EVENTS[5].cloudevent()["time"] == "1970-01-01T00:00:00.999Z"


# --- round trips ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("event", EVENTS, ids=[f"{e.type}-{e.sequence}" for e in EVENTS])
def test_every_event_comes_back_as_it_was_through_json(event: Event) -> None:
    assert Event.from_cloudevent(json.loads(json.dumps(event.cloudevent()))) == event


def test_the_publishers_bytes_read_back_as_the_same_events_in_order() -> None:
    [(one, count)] = records(EVENTS[:1])
    assert count == 1 and Event.from_cloudevent(json.loads(one)) == EVENTS[0]
    batch = [e for e in EVENTS if e.queue == "orders"]
    [(data, count)] = records(batch)
    documents = json.loads(data.decode("utf-8"))
    assert count == len(batch) and isinstance(documents, list)
    assert [Event.from_cloudevent(d) for d in documents] == batch
    assert "caf\u00e9".encode() in data  # written as UTF-8, not escaped


def test_a_generated_id_and_time_survive_the_round_trip() -> None:
    event = Event("queue.purged", PROJECT, "orders", {"resource_types": ["messages"]})
    back = Event.from_cloudevent(event.cloudevent())
    assert back == event and len(back.id) == 32


# --- what a reader must have ------------------------------------------------------------------------------------

@pytest.mark.parametrize("attribute", ["type", "source", "id", "project"])
def test_a_missing_required_attribute_is_a_key_error(attribute: str) -> None:
    with pytest.raises(KeyError, match=attribute):
        Event.from_cloudevent(wire(**{attribute: None}))


@pytest.mark.parametrize("kind", ["com.example.order.created", "org.openstack.messagingx.message.posted",
                                  "message.posted", "org.openstack.messaging", ""])
def test_a_type_outside_our_namespace_is_a_value_error(kind: str) -> None:
    with pytest.raises(ValueError, match="not one of our events"):
        Event.from_cloudevent(wire(type=kind))


def test_the_queue_comes_from_the_subject_when_the_source_is_not_a_queue() -> None:
    assert Event.from_cloudevent(wire(source="urn:zaqar:elsewhere", subject="billing")).queue == "billing"
    with pytest.raises(KeyError, match="subject"):
        Event.from_cloudevent(wire(source="urn:zaqar:elsewhere", subject=None))


@pytest.mark.parametrize("data", [[1, 2], "text", 3])
def test_data_that_is_not_an_object_is_an_error_the_stream_lambda_catches(data: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        Event.from_cloudevent(wire(data=data))


@pytest.mark.parametrize("document", [None, [], "a string", 42])
def test_a_document_that_is_not_an_object_is_an_error_the_stream_lambda_catches(document: Any) -> None:
    with pytest.raises((TypeError, KeyError)):
        Event.from_cloudevent(document)


def test_optional_attributes_may_be_missing() -> None:
    before = int(time.time() * 1000)
    bare = Event.from_cloudevent(wire(time=None, data=None, sequence=None, subject=None, specversion=None,
                                      datacontenttype=None))
    after = int(time.time() * 1000)
    assert (bare.type, bare.project, bare.queue, bare.id) == ("message.posted", PROJECT, "orders", EVENTS[0].id)
    assert bare.data == {} and bare.sequence == 0
    assert before <= bare.time_ms <= after  # no time: when it was read
    assert Event.from_cloudevent(wire(data=None)).data == {}
    assert Event.from_cloudevent({**wire(), "data": None}).data == {}


def test_attributes_it_does_not_know_are_ignored() -> None:
    extended = {**wire(), "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                "dataschema": "https://example.com/schema.json", "partitionkey": "p/q", "x-custom": {"a": [1]}}
    assert Event.from_cloudevent(extended) == EVENTS[0]


# --- the sequence extension -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("00000000000000000042", 42), ("42", 42), (42, 42), ("10000000000000000000", 10**19), ("0", 0), (None, 0),
])
def test_the_sequence_is_read_as_a_number(value: object, expected: int) -> None:
    assert Event.from_cloudevent(wire(sequence=value)).sequence == expected  # None: no sequence attribute


@pytest.mark.parametrize("value", ["forty-two", "4.2", "0x2a"])
def test_a_sequence_that_is_not_a_number_is_a_value_error(value: str) -> None:
    with pytest.raises(ValueError):
        Event.from_cloudevent(wire(sequence=value))


# --- times written otherwise ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("stamp", "expected_ms"), [
    ("2023-11-14T22:13:20.123Z", 1_700_000_000_123),
    ("2023-11-14T22:13:20Z", 1_700_000_000_000),
    ("2023-11-14T22:13:20.123456Z", 1_700_000_000_123),  # microseconds: truncated to the millisecond
])
def test_times_in_the_forms_we_write_are_read_to_the_millisecond(stamp: str, expected_ms: int) -> None:
    assert Event.from_cloudevent(wire(time=stamp)).time_ms == expected_ms


@pytest.mark.parametrize(("stamp", "expected_ms"), [
    ("2023-11-14T22:13:20.1Z", 1_700_000_000_100),
    ("2023-11-14T22:13:20+00:00", 1_700_000_000_000),
    ("2023-11-14T23:13:20.100+01:00", 1_700_000_000_100),
    ("2023-11-14T20:43:20.5-01:30", 1_700_000_000_500),
    ("2023-11-14t22:13:20.123456789z", 1_700_000_000_123),
])
def test_other_rfc3339_forms_of_the_same_instant_are_read_alike(stamp: str, expected_ms: int) -> None:
    assert Event.from_cloudevent(wire(time=stamp)).time_ms == expected_ms


def test_an_unreadable_time_becomes_the_time_it_was_read() -> None:
    before = int(time.time() * 1000)
    read = Event.from_cloudevent(wire(time="yesterday")).time_ms
    assert before <= read <= int(time.time() * 1000)


def test_the_namespace_is_zaqars() -> None:
    assert NAMESPACE == "org.openstack.messaging"
    assert Event("message.posted", PROJECT, "q").cloudevent_type == "org.openstack.messaging.message.posted"
