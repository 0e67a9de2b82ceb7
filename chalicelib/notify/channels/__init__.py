"""One small deliverer per subscriber scheme, behind one protocol.

A channel turns a delivery into an :class:`Outcome`: ``delivered``,
``retry`` (worth trying again) or ``failed`` (for good). Whatever the
subscriber configured or the far end did is an outcome, never an
exception; the notifier still treats an exception as this delivery's
failure alone.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from chalicelib.notify.jobs import Job
from chalicelib.notify.webhook import Outcome
from chalicelib.storage.base import Subscription

__all__ = ["Channel", "Delivery", "Outcome"]


@dataclasses.dataclass(frozen=True)
class Delivery:
    job: Job
    subscription: Subscription
    payload: dict[str, Any]


class Channel(Protocol):
    def deliver(self, delivery: Delivery) -> Outcome: ...
