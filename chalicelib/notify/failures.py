"""Deliveries that failed for good, kept where their owner can read them: the
project's ``failed-notifications`` queue, one message per failure."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from chalicelib import errors
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
        record = {
            "subscription_id": job.subscription_id or None,
            "subscriber": subscriber,
            "queue": job.queue,
            "event_id": job.event_id,
            "message_id": job.message.get("id"),
            "kind": job.kind,
            "attempts": job.retry + 1,
            "error": reason[:1000],
        }
        try:
            self._post(job.project, record)
        except errors.ServiceError as exc:
            log.error("could not record the failed delivery %s: %s", job.delivery_id, exc.description)
