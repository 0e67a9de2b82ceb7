"""Publishing events to the Kinesis stream.

Partition key: project and queue, so the events of one queue stay in
order. boto3 is imported on first use (REST cold starts that publish
nothing do not pay for it); ``AWS_ENDPOINT_URL`` points it at the local
stack's moto.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from chalicelib.events.model import Event

log = logging.getLogger(__name__)
MAX_RECORDS = 500  # per PutRecords call


def partition_key(event: Event) -> str:
    key = f"{event.project}/{event.queue}"
    return key if len(key.encode()) <= 256 else hashlib.sha256(key.encode()).hexdigest()


class KinesisSink:
    durable = True

    def __init__(self, stream: str, client: Any = None, *, complete: bool = False) -> None:
        self.complete = complete
        self._stream = stream
        self._client = client

    def _kinesis(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            # a publish sits on the request path: fail fast and leave the event to the relay
            config = Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 2, "mode": "standard"})
            self._client = boto3.client("kinesis", config=config)
        return self._client

    def publish(self, events: Sequence[Event]) -> list[str]:
        """Accepted ids; failures are logged and left to the outbox relay."""
        from botocore.exceptions import BotoCoreError, ClientError

        accepted: list[str] = []
        for start in range(0, len(events), MAX_RECORDS):
            batch = list(events[start : start + MAX_RECORDS])
            records = [
                {"Data": json.dumps(e.cloudevent(), separators=(",", ":")).encode(), "PartitionKey": partition_key(e)}
                for e in batch
            ]
            try:
                reply = self._kinesis().put_records(StreamName=self._stream, Records=records)
            except (BotoCoreError, ClientError) as exc:
                log.warning("publishing %d events to %s failed: %s", len(batch), self._stream, exc)
                continue
            accepted += [e.id for e, r in zip(batch, reply["Records"], strict=True) if "ErrorCode" not in r]
        return accepted
