"""What the notifier hands itself across time: one delivery, or one event to fan out again."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

NOTIFICATION = "notification"
CONFIRMATION = "confirmation"
UNSUBSCRIBE = "unsubscribe"
FAN_OUT = "event"
"""A stream event whose fan-out failed; ``message`` holds the CloudEvent."""


@dataclasses.dataclass(frozen=True)
class Job:
    """One delivery (a message, a confirmation) for one subscription, or an event to fan out again."""

    kind: str
    event_id: str
    project: str
    queue: str
    subscription_id: str
    message: dict[str, Any]
    encrypted: bool = False
    retry: int = 0

    @property
    def delivery_id(self) -> str:
        """Stable across retries and redelivered batches: receivers de-duplicate on it."""
        return self.key.split(":", 1)[1]

    @property
    def key(self) -> str:
        """The delivery log's key: one per (event, subscription, message), in one Redis Cluster slot."""
        from chalicelib.storage.redis import keys

        return keys.delivery(self.event_id, self.subscription_id, str(self.message.get("id", self.kind)))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Job:
        """A job as ``to_json`` wrote it; TypeError for anything else (a body with a job's fields but another
        shape would fail later, out of the handler, and take the whole batch with it)."""
        job = cls(**json.loads(text))
        if not isinstance(job.message, dict) or not all(isinstance(getattr(job, name), str) for name in (
                "event_id", "subscription_id", "kind")):
            raise TypeError("not a delivery job: message must be an object and the ids strings")
        return job
