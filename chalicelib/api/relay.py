"""The outbox relay: publishes events that were stored but not published.

A request publishes its own event right after the write. When the stream
could not take it, the request flags the queue in its pool's outbox index;
when the request died first, housekeeping finds the stale outbox entry and
flags it. The relay reads only flagged queues, so its work follows what is
pending, not how many queues exist. Republishing is safe: the notifier
recognises an event by its id.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from chalicelib import errors
from chalicelib.api.context import Services
from chalicelib.api.messages import posted_event
from chalicelib.events.model import Event
from chalicelib.storage import base

log = logging.getLogger(__name__)
GRACE_MS = 3000  # leave the request that wrote an event time to publish it itself
PAGE = 100


def restore(project: str, queue: str, document: str) -> Event:
    """An outbox entry as the event it stands for (also the CloudEvent form older versions stored)."""
    parsed = json.loads(document)
    if "specversion" not in parsed:
        return posted_event(project, queue, base.PostedEvent.from_json(document))
    effective = parsed.pop("effective", None)
    event = Event.from_cloudevent(parsed)
    if effective is not None:
        for item, (ttl, delay) in zip(event.data.get("messages", []), effective, strict=False):
            item["ttl"], item["delay"] = ttl, delay
    return event


def _relay_queue(services: Services, store: base.MessageStore, flagged: base.Flagged, written_before: int) -> int:
    project, queue = flagged.project, flagged.queue
    pending = store.outbox_pending(project=project, queue=queue, written_before_ms=written_before)
    events = [restore(project, queue, document) for _id, document in pending]
    done = services.sink.publish(events) if events else []
    store.outbox_done(project=project, queue=queue, ids=done)
    if len(done) == len(pending) and len(pending) < 500:
        store.outbox_unflag(flagged=flagged)
    return len(done)


def run(services: Services, *, deadline_s: float = 50.0, clock: Callable[[], float] = time.monotonic) -> int:
    """Publish what the flagged outboxes of every pool hold; returns how many events were published."""
    if not services.sink.durable:
        return 0
    stop_at = clock() + deadline_s
    published = 0
    seen: set[int] = set()
    for name in services.pooling.pools():
        try:
            store = services.pooling.store(name)
            if id(store) in seen:  # two pool names for one database
                continue
            seen.add(id(store))
            written_before = int(time.time() * 1000) - GRACE_MS
            flagged = store.outbox_flagged(flagged_before_ms=written_before, limit=PAGE)
        except errors.Unavailable as exc:
            log.warning("relay skipped pool %s: %s", name, exc.description)
            continue
        for item in flagged:
            if clock() >= stop_at:
                return published
            try:
                published += _relay_queue(services, store, item, written_before)
            except errors.Unavailable as exc:
                log.warning("relay skipped %s/%s: %s", item.project, item.queue, exc.description)
    return published
