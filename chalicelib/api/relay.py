"""The outbox relay: publishes events that were stored but not published.

A request publishes its queue's outbox right after its write (see
``chalicelib.api.outbox``). When the stream could not take the events, the
request flags the queue in its pool's outbox index; when the request died
first, housekeeping finds the stale outbox entry and flags it. The relay
reads only flagged queues, so its work follows what is pending, not how
many queues exist, and publishes each through the queue's publish lease,
so order holds against requests publishing at the same time.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from chalicelib import errors
from chalicelib.api import outbox
from chalicelib.api.context import Services
from chalicelib.storage import base

log = logging.getLogger(__name__)
GRACE_MS = 3000  # leave the request that wrote an event time to publish it itself
PAGE = 100


def _relay_queue(services: Services, store: base.MessageStore, flagged: base.Flagged) -> int:
    project, queue = flagged.project, flagged.queue
    holder = uuid.uuid4().hex
    pending = store.outbox_lease(project=project, queue=queue, holder=holder)
    if pending is None:
        return 0  # a request is publishing it; the flag stays until the outbox is seen empty
    published = outbox.publish(services, store, project, queue, holder, pending)
    if published.emptied:
        store.outbox_unflag(flagged=flagged)
    return published.events


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
                published += _relay_queue(services, store, item)
            except errors.Unavailable as exc:
                log.warning("relay skipped %s/%s: %s", item.project, item.queue, exc.description)
    return published
