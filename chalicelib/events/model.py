"""Domain events: what an accepted change produced.

Every write operation in ``chalicelib.api`` returns the events it caused.
Until the notifications issue lands they go to :class:`NullSink`; the
publisher that appends them to the pool's outbox and to Kinesis will take
its place without touching the operations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

NAMESPACE = "org.openstack.messaging"


@dataclasses.dataclass(frozen=True)
class Event:
    type: str
    """Short type, e.g. ``message.posted``; the CloudEvents type is NAMESPACE + '.' + type."""
    project: str
    queue: str
    data: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def cloudevent_type(self) -> str:
        return f"{NAMESPACE}.{self.type}"


class EventSink(Protocol):
    def publish(self, events: Sequence[Event]) -> None: ...


class NullSink:
    """Drops events: the seam the event publisher will fill."""

    def publish(self, events: Sequence[Event]) -> None:
        return None


class RecordingSink:
    """Keeps events in memory, for tests and the local stack's debugging."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, events: Sequence[Event]) -> None:
        self.events.extend(events)
