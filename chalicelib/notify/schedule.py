"""Jobs that must wait (a delayed message, a retry) go to the SQS retry queue
with that delay; the ``retry`` Lambda runs them when they become visible.
Nothing here sleeps."""

from __future__ import annotations

from typing import Any

from chalicelib import errors
from chalicelib.notify.jobs import Job

MAX_SQS_DELAY = 900
MAX_SQS_BYTES = 262_144


class JobTooLarge(Exception):
    """The job does not fit in an SQS message (a message near the post size limit): it cannot wait."""


class RetryQueue:
    def __init__(self, queue_name: str | None) -> None:
        self._name = queue_name
        self._sqs: Any = None
        self._url: str | None = None

    @property
    def available(self) -> bool:
        return self._name is not None

    def _queue(self) -> tuple[Any, str]:
        assert self._name is not None
        if self._sqs is None:
            import boto3

            self._sqs = boto3.client("sqs")
        if self._url is None:
            self._url = str(self._sqs.get_queue_url(QueueName=self._name)["QueueUrl"])
        return self._sqs, self._url

    def schedule(self, job: Job, wait_s: int) -> None:
        """Hand the job over to run in ``wait_s`` seconds (at most SQS's 15 minutes).

        Raises Unavailable when SQS cannot take it now, JobTooLarge when it never could.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        body = job.to_json()
        if len(body.encode()) > MAX_SQS_BYTES:
            raise JobTooLarge(f"the delivery is {len(body.encode())} bytes; the retry queue takes {MAX_SQS_BYTES}")
        try:
            sqs, url = self._queue()
            sqs.send_message(QueueUrl=url, MessageBody=body, DelaySeconds=max(0, min(MAX_SQS_DELAY, wait_s)))
        except (BotoCoreError, ClientError) as exc:
            raise errors.Unavailable(f"The retry queue could not take a delivery ({type(exc).__name__}).") from exc
