"""Domain events: what an accepted change produced.

Every write operation in ``chalicelib.api`` returns the events it caused
and hands them to the container's sink. On the wire an event is a
CloudEvents 1.0 JSON object; its id is fixed when the event is made, so a
republished event is recognisably the same event.
"""

from __future__ import annotations

import calendar
import dataclasses
import time
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

NAMESPACE = "org.openstack.messaging"
SOURCE_PREFIX = "/v2/queues/"


@dataclasses.dataclass(frozen=True)
class Event:
    type: str
    """Short type, e.g. ``message.posted``; the CloudEvents type is NAMESPACE + '.' + type."""
    project: str
    queue: str
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)
    time_ms: int = dataclasses.field(default_factory=lambda: int(time.time() * 1000))

    @property
    def cloudevent_type(self) -> str:
        return f"{NAMESPACE}.{self.type}"

    def cloudevent(self) -> dict[str, Any]:
        """The CloudEvents 1.0 (structured JSON) form; the project is an extension attribute."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.time_ms / 1000))
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": SOURCE_PREFIX + self.queue,
            "type": self.cloudevent_type,
            "subject": self.queue,
            "time": f"{stamp}.{self.time_ms % 1000:03d}Z",
            "datacontenttype": "application/json",
            "project": self.project,
            "data": self.data,
        }

    @classmethod
    def from_cloudevent(cls, document: dict[str, Any]) -> Event:
        kind = str(document["type"])
        if not kind.startswith(NAMESPACE + "."):
            raise ValueError(f"not one of our events: {kind}")
        source = str(document["source"])
        stamp = str(document.get("time", ""))
        try:
            seconds = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
            time_ms = seconds * 1000 + int(stamp[20:23] or 0)
        except ValueError:
            time_ms = int(time.time() * 1000)
        return cls(
            type=kind[len(NAMESPACE) + 1 :],
            project=str(document["project"]),
            queue=source[len(SOURCE_PREFIX) :] if source.startswith(SOURCE_PREFIX) else str(document["subject"]),
            data=dict(document.get("data") or {}),
            id=str(document["id"]),
            time_ms=time_ms,
        )


class EventSink(Protocol):
    durable: bool
    """True when events must also go through the pool's outbox (a stream consumes them)."""
    complete: bool
    """True when every change is streamed, not only what subscriptions need."""

    def publish(self, events: Sequence[Event]) -> list[str]:
        """Publish; returns the ids of the events that were accepted. Never raises."""


class NullSink:
    """Drops events: no stream is configured."""

    durable = False
    complete = False

    def publish(self, events: Sequence[Event]) -> list[str]:
        return []


class RecordingSink:
    """Keeps events in memory, for tests."""

    durable = False
    complete = True

    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, events: Sequence[Event]) -> list[str]:
        self.events.extend(events)
        return [event.id for event in events]


def publish_changes(sink: EventSink, events: Sequence[Event]) -> None:
    """Queue, message and claim changes: streamed only when the deployment asks for every change.

    Notifications need none of them (message.posted goes through the
    outbox, subscription events are published by their operations).
    """
    if sink.complete and events:
        sink.publish(events)
