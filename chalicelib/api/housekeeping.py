"""Scheduled housekeeping: what upstream leaves to an operator's ``zaqar-gc`` cron.

Every queue's expired messages and ended claims are reclaimed (requests
also do this lazily, a little at a time), dead letters that could not be
handed over to their dead-letter queue at claim time are handed over, and
outbox events whose request died before publishing them are flagged for
the relay. Pools whose record of who listens fell behind the catalog are
brought up to date.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from chalicelib import errors
from chalicelib.api import listeners
from chalicelib.api.claims import hand_over
from chalicelib.api.context import Caller, Services

log = logging.getLogger(__name__)
PAGE = 200
STALE_OUTBOX_MS = 60_000  # longer than any request can still be running


def run(services: Services, *, deadline_s: float = 50.0, clock: Callable[[], float] = time.monotonic) -> dict[str, int]:
    """Walk every registered queue until done or ``deadline_s`` passed; returns counts."""
    stop_at = clock() + deadline_s
    catalog = services.pooling.catalog
    counts = {"queues": 0, "reclaimed": 0, "dead_letters": 0, "unavailable": 0, "subscriptions_expired": 0}
    counts["subscriptions_expired"] = len(services.subscriptions.delete_expired(now_ms=int(time.time() * 1000)))
    counts["listeners_raised"] = listeners.reconcile(services)
    after: tuple[str, str] | None = None
    while clock() < stop_at:
        rows = catalog.all_queues(after=after, limit=PAGE)
        if not rows:
            break
        for project, queue, pool in rows:
            if clock() >= stop_at:
                break
            after = (project, queue)
            counts["queues"] += 1
            try:
                store = services.pooling.store(pool)
                stale_before = int(time.time() * 1000) - STALE_OUTBOX_MS
                counts["reclaimed"] += store.gc(project=project, queue=queue, stale_before_ms=stale_before)
                letters = store.dead_letter_pending(project=project, queue=queue)
                if letters:
                    hand_over(services, Caller(project=project, client_id="housekeeping"), store, queue, letters)
                    counts["dead_letters"] += len(letters)
            except errors.Unavailable as exc:
                counts["unavailable"] += 1
                log.warning("housekeeping skipped %s/%s: %s", project, queue, exc.description)
        if len(rows) < PAGE:
            break
    return counts
