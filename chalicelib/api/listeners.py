"""Telling a queue's pool whether anyone listens, so that posts to queues
nobody subscribed to cost one round trip and no stream publish.

Subscriptions live in the catalog; each pool keeps, per queue, a horizon
(until when some subscription can receive) and a generation. The horizon is
raised after a subscription is stored (so a reader that sees the raise also
sees the subscription), and lowered only from a fresh view of the catalog
and only if no raise happened since that view began: a race can leave the
horizon too high (a few posts publish an event nobody needs), never too low.
"""

from __future__ import annotations

import logging
import time

from chalicelib import errors
from chalicelib.api.context import Services
from chalicelib.storage.base import MessageStore, Subscription

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return int(time.time() * 1000)


def can_receive(services: Services, subscription: Subscription) -> bool:
    return subscription.confirmed or not services.settings.require_confirmation


def raise_for(services: Services, subscription: Subscription) -> None:
    """After storing a subscription that can receive: the queue's posts must be published. Raises Unavailable."""
    if not can_receive(services, subscription):
        return
    store = services.pooling.lookup(project=subscription.project, queue=subscription.queue)
    if store is not None:  # otherwise the queue's next placement restores it
        store.listen(project=subscription.project, queue=subscription.queue, until_ms=subscription.expires_ms)


def restore(services: Services, project: str, queue: str, store: MessageStore) -> None:
    """A queue was (re)placed on a pool: tell it about subscriptions that outlived the queue. Raises Unavailable."""
    until = services.subscriptions.listening_until(
        project=project, queue=queue, now_ms=_now_ms(), confirmed_only=services.settings.require_confirmation)
    if until:
        store.listen(project=project, queue=queue, until_ms=until)


def lower(services: Services, project: str, queue: str) -> None:
    """After subscriptions went away: stop publishing if nobody is left. Best effort."""
    try:
        store = services.pooling.lookup(project=project, queue=queue)
        if store is None:
            return
        seen = store.listeners(project=project, queue=queue)
        now = _now_ms()
        if seen.until_ms <= now:
            return
        until = services.subscriptions.listening_until(
            project=project, queue=queue, now_ms=now, confirmed_only=services.settings.require_confirmation)
        if until < seen.until_ms:
            store.listen_lower(project=project, queue=queue, until_ms=until, generation=seen.generation)
    except errors.Unavailable as exc:
        log.warning("the subscribers record of %s stays as it was: %s", queue, exc.description)


def reconcile(services: Services, *, page: int = 500) -> int:
    """Raise every pool's horizon that is below what the catalog says (housekeeping).

    Heals what a crash between storing a subscription and telling the pool
    left behind, and subscriptions made before pools kept a horizon.
    Returns how many queues were raised.
    """
    raised = 0
    after: tuple[str, str] | None = None
    while True:
        rows = services.subscriptions.horizons(now_ms=_now_ms(), confirmed_only=services.settings.require_confirmation,
                                               after=after, limit=page)
        for project, queue, until in rows:
            after = (project, queue)
            try:
                store = services.pooling.lookup(project=project, queue=queue)
                if store is not None and store.listeners(project=project, queue=queue).until_ms < until:
                    store.listen(project=project, queue=queue, until_ms=until)
                    raised += 1
            except errors.Unavailable as exc:
                log.warning("could not reconcile the subscribers record of %s: %s", queue, exc.description)
        if len(rows) < page:
            return raised
