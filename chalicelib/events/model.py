"""Domain events: what an accepted change produced.

Writes record their events in their queue's outbox, in the same atomic
step as the change (see ``chalicelib.storage.base.StoredEvent``);
``chalicelib.api.outbox`` publishes them to the container's sink, one
queue's events in order. On the wire an event is a CloudEvents 1.0 JSON
object; its id is fixed when the event is written, and ``sequence`` (the
CloudEvents extension of that name) numbers one queue's events, so a
consumer can tell a republished event and restore order.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime
import time
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from chalicelib import topics

NAMESPACE = "org.openstack.messaging"
SOURCE_PREFIX = "/v2/queues/"
TOPIC_PREFIX = "/v2/topics/"


@dataclasses.dataclass(frozen=True)
class Event:
    type: str
    """Short type, e.g. ``message.posted``; the CloudEvents type is NAMESPACE + '.' + type."""
    project: str
    queue: str
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)
    time_ms: int = dataclasses.field(default_factory=lambda: int(time.time() * 1000))
    sequence: int = 0
    """Place among the queue's events, from 1 (0: not known, as for events of older versions)."""

    @property
    def cloudevent_type(self) -> str:
        return f"{NAMESPACE}.{self.type}"

    def cloudevent(self) -> dict[str, Any]:
        """The CloudEvents 1.0 (structured JSON) form; the project is an extension attribute."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.time_ms / 1000))
        extra = {"sequence": f"{self.sequence:020d}"} if self.sequence else {}
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": topics.path(self.project, self.queue),
            "type": self.cloudevent_type,
            "subject": self.queue,
            "time": f"{stamp}.{self.time_ms % 1000:03d}Z",
            "datacontenttype": "application/json",
            "project": topics.owner(self.project)[0],
            **extra,
            "data": self.data,
        }

    @classmethod
    def from_cloudevent(cls, document: dict[str, Any]) -> Event:
        kind = str(document["type"])
        if not kind.startswith(NAMESPACE + "."):
            raise ValueError(f"not one of our events: {kind}")
        source = str(document["source"])
        project = str(document["project"])
        if source.startswith(TOPIC_PREFIX):
            project, source = topics.space(project), SOURCE_PREFIX + source[len(TOPIC_PREFIX):]
        time_ms = _rfc3339_ms(str(document.get("time", "")))
        if time_ms is None:
            time_ms = int(time.time() * 1000)
        return cls(
            type=kind[len(NAMESPACE) + 1 :],
            project=project,
            queue=source[len(SOURCE_PREFIX) :] if source.startswith(SOURCE_PREFIX) else str(document["subject"]),
            data=dict(document.get("data") or {}),
            id=str(document["id"]),
            time_ms=time_ms,
            sequence=int(document.get("sequence") or 0),
        )


def _rfc3339_ms(stamp: str) -> int | None:
    """Milliseconds since the epoch of an RFC 3339 time (any number of fraction digits, any offset, ``t``/``z``
    in either case; one without an offset is read as UTC), or None when it is none."""
    try:
        moment = datetime.datetime.fromisoformat(stamp.upper())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return calendar.timegm(moment.utctimetuple()) * 1000 + moment.microsecond // 1000


class EventSink(Protocol):
    durable: bool
    """True when a stream takes events: writes then record them in their queue's outbox."""
    complete: bool
    """True when every change is streamed, not only what subscriptions need."""

    def publish(self, events: Sequence[Event]) -> int:
        """Publish events of one queue, in this order; returns how many, from the first, were accepted.

        Never raises: what was not accepted stays in the outbox.
        """


class NullSink:
    """No stream is configured: nothing is recorded, nothing published."""

    durable = False
    complete = False

    def publish(self, events: Sequence[Event]) -> int:
        return 0


class RecordingSink:
    """An in-memory stream of every change, for tests (events go through the outbox like any)."""

    durable = True
    complete = True

    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, events: Sequence[Event]) -> int:
        self.events.extend(events)
        return len(events)
