"""The complete event stream: every change, once, in each queue's order, also across failures.

The functional services stream every change into a RecordingSink, which
takes events the way the Kinesis sink does: through the queue's outbox and
its publish lease.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import pytest

from chalicelib import runtime
from chalicelib.api import outbox, relay
from chalicelib.api.context import Services
from chalicelib.events.model import Event, RecordingSink
from chalicelib.storage import base
from tests.functional.conftest import PATCH_TYPE, Api
from tests.leases import expire_lease


class Switchable(RecordingSink):
    """A stream that can be down."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def publish(self, events: Sequence[Event]) -> int:
        return 0 if self.down else super().publish(events)


@pytest.fixture
def stream(services: Services) -> Iterator[Switchable]:
    sink = Switchable()
    runtime.install(dataclasses.replace(services, sink=sink))  # the services fixture uninstalls after
    yield sink


def of_queue(sink: RecordingSink, project: str, queue: str) -> list[Event]:
    return [e for e in sink.events if (e.project, e.queue) == (project, queue)]


def assert_once_in_order(events: list[Event]) -> None:
    assert len({e.id for e in events}) == len(events), "an event was published twice"
    sequences = [e.sequence for e in events]
    assert sequences == list(range(sequences[0], sequences[0] + len(events))), sequences


def store_of(services: Services, api: Api, queue: str) -> base.MessageStore:
    store = services.pooling.lookup(project=api.project, queue=queue)
    assert store is not None
    return store


def test_every_kind_of_change_reaches_the_stream_once_in_order(api: Api, stream: Switchable) -> None:
    assert api.put("/v2/queues/audit", {"a": 1}).status == 201
    assert api.patch("/v2/queues/audit", [{"op": "add", "path": "/metadata/b", "value": 2}],
                     headers={"Content-Type": PATCH_TYPE}).status == 200
    first, second, third = api.post_messages("audit", "one", "two", "three")
    claim = api.post("/v2/queues/audit/claims?limit=2", {"ttl": 60, "grace": 90})
    assert claim.status == 201
    claim_href = claim.headers["location"]
    assert api.patch(claim_href, {"ttl": 120}).status == 204
    claim_id = claim_href.rsplit("/", 1)[1]
    assert api.delete(f"/v2/queues/audit/messages/{first}?claim_id={claim_id}").status == 204
    assert api.delete(claim_href).status == 204
    assert api.delete(f"/v2/queues/audit/messages?ids={second}").status == 204
    assert api.delete("/v2/queues/audit/messages?pop=5").status == 200
    sub = api.post("/v2/queues/audit/subscriptions", {"subscriber": "http://example.test/hook", "ttl": 3600})
    sid = sub.json["subscription_id"]
    assert api.patch(f"/v2/queues/audit/subscriptions/{sid}", {"ttl": 7200}).status == 204
    assert api.put(f"/v2/queues/audit/subscriptions/{sid}/confirm", {"confirmed": True}).status == 204
    assert api.delete(f"/v2/queues/audit/subscriptions/{sid}").status == 204
    assert api.post("/v2/queues/audit/purge", {"resource_types": ["messages"]}).status == 204
    assert api.delete("/v2/queues/audit").status == 204

    events = of_queue(stream, api.project, "audit")
    assert [e.type for e in events] == [
        "queue.created", "queue.updated", "message.posted", "claim.created", "claim.updated", "message.deleted",
        "claim.deleted", "message.deleted", "message.deleted", "subscription.created", "subscription.updated",
        "subscription.confirmed", "subscription.deleted", "queue.purged", "queue.deleted",
    ]
    assert_once_in_order(events)
    assert events[0].sequence == 1
    assert events[1].data["metadata"] == {"a": 1, "b": 2}
    assert [m["id"] for m in events[2].data["messages"]] == [first, second, third]
    assert events[3].data == {"claim_id": claim_id, "ids": [first, second]}
    assert events[4].data == {"claim_id": claim_id, "ttl": 120, "grace": 60}  # the default grace of a renewal
    assert [e.data["ids"] for e in events if e.type == "message.deleted"] == [[first], [second], [third]]
    assert events[9].data["id"] == sid
    assert events[13].data == {"resource_types": ["messages"]}
    # the CloudEvent carries the sequence, and a consumer reads it back
    wire = events[5].cloudevent()
    assert wire["sequence"] == f"{events[5].sequence:020d}"
    assert Event.from_cloudevent(wire) == events[5]


def test_what_the_stream_refused_goes_out_later_once_and_in_order(
        api: Api, stream: Switchable, monkeypatch: pytest.MonkeyPatch) -> None:
    services = runtime.services()
    api.post_messages("orders", "before")
    stream.down = True
    during = [api.post_messages("orders", f"during {n}")[0] for n in range(3)]
    assert api.put("/v2/queues/orders", {"x": 1}).status == 204  # exists already: no change, no event
    assert api.delete(f"/v2/queues/orders/messages/{during[0]}").status == 204
    assert [e.type for e in of_queue(stream, api.project, "orders")] == ["queue.created", "message.posted"]
    flagged = store_of(services, api, "orders").outbox_flagged(flagged_before_ms=2**50, limit=100)
    assert (api.project, "orders") in {(f.project, f.queue) for f in flagged}

    stream.down = False
    monkeypatch.setattr(relay, "GRACE_MS", -10_000)  # the relay's next run, without waiting for its grace time
    assert relay.run(services) == 4
    assert relay.run(services) == 0  # nothing twice
    events = of_queue(stream, api.project, "orders")
    assert [e.type for e in events] == ["queue.created"] + ["message.posted"] * 4 + ["message.deleted"]
    assert [e.data["messages"][0]["id"] for e in events[2:5]] == during
    assert_once_in_order(events)
    flagged = store_of(services, api, "orders").outbox_flagged(flagged_before_ms=2**50, limit=100)
    assert (api.project, "orders") not in {(f.project, f.queue) for f in flagged}


def test_a_publisher_that_died_holding_the_lease_holds_nothing_back_for_long(
        api: Api, stream: Switchable, monkeypatch: pytest.MonkeyPatch) -> None:
    services = runtime.services()
    api.post_messages("orders", "warm up")
    real_publish = outbox.publish
    monkeypatch.setattr(outbox, "publish", lambda *args: outbox.Published(0, False))  # dies after its write
    lost = api.post_messages("orders", "its writer died")[0]
    monkeypatch.setattr(outbox, "publish", real_publish)
    behind = api.post_messages("orders", "written while the lease was held")[0]
    posted = [e for e in of_queue(stream, api.project, "orders") if e.type == "message.posted"]
    assert len(posted) == 1  # neither went out: the dead holder's lease still stands, and order with it

    expire_lease(store_of(services, api, "orders"), api.project, "orders")
    after = api.post_messages("orders", "after the lease ran out")[0]
    events = of_queue(stream, api.project, "orders")
    assert [e.data["messages"][0]["id"] for e in events if e.type == "message.posted"][1:] == [lost, behind, after]
    assert_once_in_order(events)


def test_a_change_that_changed_nothing_streams_nothing(api: Api, stream: Switchable) -> None:
    api.post_messages("orders", "one")
    before = len(stream.events)
    assert api.delete("/v2/queues/orders/claims/0123456789abcdef0123456789abcdef").status == 204
    assert api.delete("/v2/queues/orders/messages/0123456789abcdef0123456789abcdef").status == 204
    assert api.delete("/v2/queues/orders/messages?ids=0123456789abcdef0123456789abcdef").status == 204
    assert len(stream.events) == before


def test_concurrent_writers_publish_one_queue_in_sequence_order(
        api: Api, stream: Switchable, pool_kind: str) -> None:
    if pool_kind == "mongodb":
        pytest.skip("mongomock is not thread-safe: the wire-protocol server runs this for MongoDB")
    import threading

    from chalicelib.api import messages
    from chalicelib.api.context import Caller

    services = runtime.services()
    caller = Caller(project=api.project, client_id="writer")
    api.post_messages("busy", "first")
    start = threading.Barrier(8, timeout=60)

    def writer(n: int) -> None:
        start.wait()
        for i in range(15):
            messages.message_post(services, caller, "busy", {"messages": [{"body": f"{n}-{i}"}]}, size=20)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = [e for e in of_queue(stream, api.project, "busy") if e.type == "message.posted"]
    assert len(events) == 1 + 8 * 15
    assert_once_in_order(events)  # published in the order the pool wrote them, by whichever request held the lease
