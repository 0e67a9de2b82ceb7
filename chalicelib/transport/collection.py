"""The two collections of named message streams, ``/v2/queues`` and ``/v2/topics``, as both transports
serve them: the REST handlers and websocket actions of queues are written once, for a :class:`Collection`,
and topics are the same handlers and actions for :data:`TOPICS` (see :mod:`chalicelib.api.topics`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.api import topics
from chalicelib.api.context import Caller, Services


def _as_queue(services: Services, caller: Caller) -> Caller:
    return caller


def _as_given(services: Services, metadata: Mapping[str, Any]) -> dict[str, Any]:
    return dict(metadata)


@dataclasses.dataclass(frozen=True)
class Collection:
    name: str
    """``queues`` or ``topics``: the path segment, the key of a list's items."""
    noun: str
    """``Queue`` or ``Topic``, in the websocket API's replies."""
    field: str
    """The websocket body field that names one: ``queue_name`` or ``topic_name``."""
    scope: Callable[[Services, Caller], Caller]
    """The caller whose project holds this collection (refusing who can have none)."""
    reported: Callable[[Services, Mapping[str, Any]], dict[str, Any]]
    """Metadata as this collection reports it, from the queue view of it (every reserved default in)."""

    def path(self, name: str) -> str:
        return f"/v2/{self.name}/{name}"


QUEUES = Collection("queues", "Queue", "queue_name", _as_queue, _as_given)
TOPICS = Collection("topics", "Topic", "topic_name", topics.scoped, topics.reported)
