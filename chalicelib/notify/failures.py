"""Deliveries that failed for good, kept where their owner can read them: the
project's ``failed-notifications`` queue, one message per failure (a topic's in its owner's)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from chalicelib import errors, topics
from chalicelib.notify.jobs import Job

log = logging.getLogger(__name__)
FAILED_QUEUE = "failed-notifications"

PostFailure = Callable[[str, dict[str, Any]], None]
"""Posts one failure record (a JSON object) to the project's failed-notifications queue."""


class FailureLog:
    def __init__(self, post: PostFailure) -> None:
        self._post = post

    def record(self, job: Job, subscriber: str, reason: str) -> None:
        log.warning("delivery %s to %s failed for good: %s", job.delivery_id, subscriber, reason)
        if job.queue == FAILED_QUEUE:
            return  # never notify about failures to notify about failures
        owner, is_topic = topics.owner(job.project)
        record = {
            "subscription_id": job.subscription_id or None,
            "subscriber": subscriber,
            "topic" if is_topic else "queue": job.queue,
            "event_id": job.event_id,
            "message_id": job.message.get("id"),
            "kind": job.kind,
            "attempts": job.retry + 1,
            "error": reason[:1000],
        }
        try:
            self._post(owner, record)  # a topic's failures go to its owner's queue
        except errors.ServiceError as exc:
            log.error("could not record the failed delivery %s: %s", job.delivery_id, exc.description)
