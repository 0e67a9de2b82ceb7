"""Batches from the stream and from the retry queue, one record at a time.

Partial failures are reported (``batchItemFailures``): for the stream the
first record that could not be handled stops the batch, so Lambda retries
from there and the events of a queue stay in order; for SQS each failed
message is retried on its own. A record that can never be handled (not an
event of ours, not JSON) is logged and skipped so it cannot block a shard.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Sequence
from typing import Any

from chalicelib import errors
from chalicelib.events.model import Event
from chalicelib.notify.notifier import Job, Notifier

log = logging.getLogger(__name__)


def _transient() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (errors.Unavailable, BotoCoreError, ClientError)


def on_stream(notifier: Notifier, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    transient = _transient()
    for record in records:
        sequence = record["kinesis"]["sequenceNumber"]
        try:
            event = Event.from_cloudevent(json.loads(base64.b64decode(record["kinesis"]["data"])))
        except (ValueError, KeyError, TypeError) as exc:
            log.error("skipping stream record %s that is not one of our events: %s", sequence, exc)
            continue
        try:
            notifier.dispatch(event)
        except transient as exc:
            log.warning("event %s will be retried: %s", event.id, exc)
            return {"batchItemFailures": [{"itemIdentifier": sequence}]}
    return {"batchItemFailures": []}


def on_retry_queue(notifier: Notifier, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    transient = _transient()
    failures = []
    for record in records:
        try:
            job = Job.from_json(record["body"])
        except (ValueError, KeyError, TypeError) as exc:
            log.error("dropping retry message %s that is not a delivery: %s", record.get("messageId"), exc)
            continue
        try:
            notifier.attempt(job)
        except transient as exc:
            log.warning("delivery %s will be retried by SQS: %s", job.key, exc)
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
