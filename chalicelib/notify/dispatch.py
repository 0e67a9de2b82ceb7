"""Batches from the stream and from the retry queue, one record at a time.

Every delivery is settled by the notifier on its own, so a record fails
only when its work could not be handed to anything durable (the retry
queue is unreachable): for the stream that record stops the batch (Lambda
retries from there, so a queue's events stay in order); for SQS each
failed message is retried on its own. A record that is not one of ours
(not JSON, not our event, not a job) is logged and skipped so it cannot
block a shard.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Sequence
from typing import Any

from chalicelib import errors
from chalicelib.events.model import Event
from chalicelib.notify.jobs import Job
from chalicelib.notify.notifier import Notifier

log = logging.getLogger(__name__)


def events_of(record: dict[str, Any]) -> list[Event]:
    """The events a stream record carries: one CloudEvent, or a JSON array of them."""
    document = json.loads(base64.b64decode(record["kinesis"]["data"]))
    documents = document if isinstance(document, list) else [document]
    return [Event.from_cloudevent(d) for d in documents]


def on_stream(notifier: Notifier, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    for record in records:
        sequence = record["kinesis"]["sequenceNumber"]
        try:
            events = events_of(record)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error("skipping stream record %s that is not one of our events: %s", sequence, exc)
            continue
        try:
            for event in events:
                notifier.dispatch(event)
        except errors.Unavailable as exc:
            log.warning("stream record %s will be retried: %s", sequence, exc.description)
            return {"batchItemFailures": [{"itemIdentifier": sequence}]}
    return {"batchItemFailures": []}


def on_retry_queue(notifier: Notifier, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    failures = []
    for record in records:
        try:
            job = Job.from_json(record["body"])
        except (ValueError, KeyError, TypeError) as exc:
            log.error("dropping retry message %s that is not a delivery: %s", record.get("messageId"), exc)
            continue
        try:
            notifier.run(job)
        except errors.Unavailable as exc:
            log.warning("delivery %s will be retried by SQS: %s", job.delivery_id, exc.description)
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
