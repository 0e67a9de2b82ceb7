"""From queue outboxes to the stream, one queue's events in order.

A write records its event in its queue's outbox in the same atomic step as
the change (see ``chalicelib.storage.base.StoredEvent``). Whoever holds the
queue's publish lease publishes: the request that wrote the event when the
lease was free (a post takes it in its own script), otherwise the request
already publishing, which goes on until the outbox is empty. When the
stream refuses, the lease is given up and the queue flagged for the relay;
when the holder dies, the lease runs out and the next writer or the relay
takes over. Each event is published at least once and, barring a holder
that outlives its lease, in sequence order; a consumer that must see
every event once de-duplicates on its id (or on source and sequence).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any, NamedTuple

from chalicelib import attributes, errors
from chalicelib.api.context import Services
from chalicelib.events.model import Event
from chalicelib.storage import base

log = logging.getLogger(__name__)
ROUNDS = 8
"""Batches one holder publishes before it leaves the rest to the next writer or the relay."""


def posted_event(project: str, queue: str, posted: base.PostedEvent, sequence: int = 0) -> Event:
    """The message.posted event an outbox entry stands for (bodies parsed unless encrypted)."""
    messages = [_posted_message(m, encrypted=posted.encrypted) for m in posted.messages]
    return Event(base.POSTED, project, queue, {"messages": messages, "encrypted": posted.encrypted},
                 id=posted.id, time_ms=posted.time_ms, sequence=sequence)


def _posted_message(entry: base.PostedEntry, *, encrypted: bool) -> dict[str, Any]:
    """One message of a message.posted event: its body parsed and its attributes beside it (an encrypted
    queue's message keeps both in its ciphertext)."""
    if encrypted:
        return {"id": entry.id, "body": entry.body, "ttl": entry.ttl, "delay": entry.delay}
    stored = attributes.unpack(entry.body)
    item = {"id": entry.id, "body": json.loads(stored.body), "ttl": entry.ttl, "delay": entry.delay}
    if stored.attributes:
        item["attributes"] = stored.attributes
    if stored.via:
        item["via"] = stored.via
    return item


def event_of(project: str, queue: str, text: str) -> Event:
    """The event an outbox entry stands for (also the CloudEvent form that older versions stored)."""
    parsed = json.loads(text)
    if "specversion" in parsed:
        effective = parsed.pop("effective", None)
        event = Event.from_cloudevent(parsed)
        if effective is not None:
            for item, (ttl, delay) in zip(event.data.get("messages", []), effective, strict=False):
                item["ttl"], item["delay"] = ttl, delay
        return event
    stored = base.StoredEvent.from_json(text)
    if stored.posted is not None:
        return posted_event(project, queue, stored.posted, stored.sequence)
    return Event(stored.kind, project, queue, stored.data, id=stored.id, time_ms=stored.time_ms,
                 sequence=stored.sequence)


class Published(NamedTuple):
    events: int
    emptied: bool
    """The outbox was seen empty at the end (nothing left for the relay)."""


def change_event_id(services: Services) -> str | None:
    """An event id for a queue, message or claim change, when the deployment streams every change."""
    return uuid.uuid4().hex if services.sink.durable and services.sink.complete else None


def publish(services: Services, store: base.MessageStore, project: str, queue: str, holder: str,
            pending: list[str]) -> Published:
    """As the lease ``holder``: publish ``pending`` and whatever is written meanwhile.

    Never raises for the pool or the stream: what is left stays in the
    outbox, flagged when the stream refused it.
    """
    published = 0
    try:
        for _round in range(ROUNDS):
            if not pending:
                return Published(published, True)
            events = [event_of(project, queue, text) for text in pending]
            accepted = services.sink.publish(events)
            published += accepted
            done = [event.id for event in events[:accepted]]
            if accepted < len(events):
                store.outbox_release(project=project, queue=queue, holder=holder, published=done, keep=False)
                store.outbox_flag(project=project, queue=queue)
                return Published(published, False)
            pending = store.outbox_release(project=project, queue=queue, holder=holder, published=done, keep=True)
        if pending:  # writers outpace this holder: hand over
            store.outbox_release(project=project, queue=queue, holder=holder, published=[], keep=False)
            store.outbox_flag(project=project, queue=queue)
    except errors.Unavailable as exc:
        log.warning("events of %s/%s stay in the outbox until its lease runs out: %s", project, queue,
                    exc.description)
    return Published(published, False)


def drain(services: Services, store: base.MessageStore, project: str, queue: str) -> int:
    """Publish the queue's outbox unless someone else is publishing it; returns how many events."""
    holder = uuid.uuid4().hex
    try:
        pending = store.outbox_lease(project=project, queue=queue, holder=holder)
    except errors.Unavailable as exc:
        log.warning("the outbox of %s/%s could not be read: %s", project, queue, exc.description)
        return 0
    return publish(services, store, project, queue, holder, pending).events if pending else 0


def after_change(services: Services, store: base.MessageStore, project: str, queue: str,
                 event_id: str | None) -> None:
    """After a write that may have recorded ``event_id``: publish it (no-op when nothing was asked)."""
    if event_id is not None:
        drain(services, store, project, queue)


def record(services: Services, store: base.MessageStore | None, project: str, queue: str, kind: str,
           data: Mapping[str, Any]) -> None:
    """An event whose change lives in the catalog (a subscription's): into the queue's outbox, then out.

    The catalog change is already made, so when the pool cannot take the
    event (or the queue has no pool) it is published directly, unordered.
    """
    if not services.sink.durable:
        return
    event = Event(kind, project, queue, dict(data))
    if store is not None:
        try:
            store.outbox_record(project=project, queue=queue, event_id=event.id, kind=kind, data=data)
        except errors.Unavailable as exc:
            log.warning("event %s of %s/%s published outside the outbox: %s", event.id, project, queue,
                        exc.description)
        else:
            drain(services, store, project, queue)
            return
    services.sink.publish([event])
