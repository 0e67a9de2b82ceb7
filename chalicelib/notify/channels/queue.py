"""Fan-out to queues (``queue:NAME``): each matching message is posted to the queue NAME of the
subscription's project (created lazily like any queue), body, attributes and ttl kept.

Exactly once per (message, subscription): the post carries the delivery id as its idempotency key, bound
as long as the delivery log remembers settled deliveries, so a redelivered stream batch, or a retry after
a crash between the post and the log's record, answers the first post's ids and stores nothing. A
forwarded message remembers where it came from and is not forwarded again by the queue it lands in (one
hop: two queues subscribed to each other cannot loop); its other subscribers still get it.
"""

from __future__ import annotations

from collections.abc import Callable

from chalicelib import errors
from chalicelib.notify.channels import Delivery, Outcome
from chalicelib.notify.jobs import NOTIFICATION

SCHEME = "queue"

Forward = Callable[[Delivery, str], None]
"""Posts the delivery's message to the named queue of the subscription's project, keyed by its delivery id."""


def target(subscriber: str) -> str:
    """The queue a ``queue:NAME`` subscriber names."""
    return subscriber.split(":", 1)[1]


class QueueChannel:
    def __init__(self, forward: Forward) -> None:
        self._forward = forward

    def deliver(self, delivery: Delivery) -> Outcome:
        if delivery.job.kind != NOTIFICATION:
            return Outcome("delivered")  # a queue confirms nothing and needs no notice: nothing to send
        try:
            self._forward(delivery, target(delivery.subscription.subscriber))
        except errors.Unavailable as exc:
            return Outcome("retry", exc.description)
        except errors.ServiceError as exc:  # the target refuses it (too large, encrypted without a key...)
            return Outcome("failed", f"not forwarded: {exc.description}")
        return Outcome("delivered")
