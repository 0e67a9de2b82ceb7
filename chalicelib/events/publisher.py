"""Publishing events to the Kinesis stream.

Partition key: project and queue, so the events of one queue land on one
shard. The events handed over together (one queue's, in order) go out as
few records as fit: one CloudEvent, or a JSON array of them, each record
written only after the one before was accepted, because Kinesis keeps
the order of records on a shard but not of the records of one PutRecords
call. boto3 is imported on first use (REST cold starts that publish
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
MAX_RECORD_BYTES = 1024 * 1024  # Kinesis: data blob plus partition key


def partition_key(event: Event) -> str:
    key = f"{event.project}/{event.queue}"
    return key if len(key.encode()) <= 256 else hashlib.sha256(key.encode()).hexdigest()


def _encoded(event: Event) -> bytes:
    return json.dumps(event.cloudevent(), separators=(",", ":"), ensure_ascii=False).encode()


def records(events: Sequence[Event], limit: int = MAX_RECORD_BYTES) -> list[tuple[bytes, int]]:
    """(data, how many events it carries) for each record, in order; an event too large for any record is
    given as (b"", 1): it cannot be published and must not hold the queue's later events back."""
    if not events:
        return []
    room = limit - len(partition_key(events[0]).encode())
    out: list[tuple[bytes, int]] = []
    group: list[bytes] = []
    size = 1  # the array's brackets, less the first comma
    for event in events:
        data = _encoded(event)
        if len(data) > room:
            log.error("event %s of %s/%s is %d bytes: over the stream's record limit, not published",
                      event.id, event.project, event.queue, len(data))
            if group:
                out.append((_join(group), len(group)))
                group, size = [], 1
            out.append((b"", 1))
            continue
        if group and size + len(data) + 1 > room:
            out.append((_join(group), len(group)))
            group, size = [], 1
        group.append(data)
        size += len(data) + 1
    if group:
        out.append((_join(group), len(group)))
    return out


def _join(group: list[bytes]) -> bytes:
    return group[0] if len(group) == 1 else b"[" + b",".join(group) + b"]"


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

    def publish(self, events: Sequence[Event]) -> int:
        """How many of the events, from the first, the stream accepted; failures are logged."""
        from botocore.exceptions import BotoCoreError, ClientError

        done = 0
        for data, count in records(events):
            if data:
                try:
                    self._kinesis().put_record(StreamName=self._stream, Data=data,
                                               PartitionKey=partition_key(events[done]))
                except (BotoCoreError, ClientError) as exc:
                    log.warning("publishing %d events of %s to %s failed: %s", len(events) - done,
                                partition_key(events[done]), self._stream, exc)
                    return done
            done += count
        return done
