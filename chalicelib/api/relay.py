"""The outbox relay: publishes events that were stored but not published.

A request publishes its events itself right after the write; the relay
catches what a crash or a stream outage left behind, a few seconds later.
Republishing is safe: consumers recognise an event by its id.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from chalicelib import errors
from chalicelib.api.context import Services
from chalicelib.events.model import Event

log = logging.getLogger(__name__)
GRACE_MS = 3000  # leave the request that wrote an event time to publish it itself
PAGE = 200


def restore(document: str) -> Event:
    """An outbox entry as the event it was, with the effective ttl and delay applied."""
    parsed = json.loads(document)
    effective = parsed.pop("effective", None)
    event = Event.from_cloudevent(parsed)
    if effective is not None:
        for item, (ttl, delay) in zip(event.data.get("messages", []), effective, strict=False):
            item["ttl"], item["delay"] = ttl, delay
    return event


def run(services: Services, *, deadline_s: float = 50.0, clock: Callable[[], float] = time.monotonic) -> int:
    """Publish what every queue's outbox still holds; returns how many events were published."""
    if not services.sink.durable:
        return 0
    stop_at = clock() + deadline_s
    written_before = int(time.time() * 1000) - GRACE_MS
    published = 0
    after: tuple[str, str] | None = None
    while clock() < stop_at:
        rows = services.pooling.catalog.all_queues(after=after, limit=PAGE)
        for project, queue, pool in rows:
            after = (project, queue)
            try:
                store = services.pooling.store(pool)
                pending = store.outbox_pending(project=project, queue=queue, written_before_ms=written_before)
                if not pending:
                    continue
                events = [restore(document) for _id, document in pending]
                done = services.sink.publish(events)
                store.outbox_done(project=project, queue=queue, ids=done)
                published += len(done)
            except errors.Unavailable as exc:
                log.warning("relay skipped %s/%s: %s", project, queue, exc.description)
        if len(rows) < PAGE:
            break
    return published
