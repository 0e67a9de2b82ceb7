"""Settling deliveries: each (subscription, message) on its own.

The stream Lambda hands every event to :meth:`Notifier.dispatch`, the SQS
Lambda every job that had to wait to :meth:`Notifier.run`. Each delivery
ends in exactly one of: delivered (recorded in the delivery log, so a
redelivered batch or SQS message never sends it twice), scheduled again
through the retry queue (``_retry_policy``), or failed for good (recorded
in the delivery log and posted once to ``failed-notifications``). Nothing a
subscriber configured, and no exception in one delivery, fails the others:
the only error that leaves a method is Unavailable when a job could not be
handed to anything durable (the caller then reports a batch item failure).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from chalicelib import errors
from chalicelib.config import Settings
from chalicelib.events.model import Event
from chalicelib.notify import fanout, payloads
from chalicelib.notify.channels import Channel, Delivery, Outcome
from chalicelib.notify.failures import FailureLog
from chalicelib.notify.jobs import FAN_OUT, NOTIFICATION, Job
from chalicelib.notify.schedule import JobTooLarge, RetryQueue
from chalicelib.rules import retry_policy
from chalicelib.storage.base import Subscription

if TYPE_CHECKING:  # SQLAlchemy stays out of cold starts that deliver nothing
    from chalicelib.storage.deliveries import DeliveryLog
    from chalicelib.storage.subscriptions import SubscriptionStore

log = logging.getLogger(__name__)
SETTLED_TTL_S = 3 * 24 * 3600
STATE_RETRY_S = 5  # our own state could not be read: try the job again this much later

QueuePolicy = Callable[[str, str], Mapping[str, Any] | None]
"""The ``_retry_policy`` of a queue's metadata (project, queue), if any."""


class Notifier:
    def __init__(
        self,
        settings: Settings,
        *,
        subscriptions: SubscriptionStore,
        deliveries: DeliveryLog,
        channels: Mapping[str, Channel],
        retries: RetryQueue,
        failures: FailureLog,
        queue_policy: QueuePolicy,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._subscriptions = subscriptions
        self._deliveries = deliveries
        self._channels = channels
        self._retries = retries
        self._failures = failures
        self._queue_policy = queue_policy
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- events -------------------------------------------------------------------

    def dispatch(self, event: Event, *, attempt: int = 0) -> None:
        """Start every delivery the event calls for.

        When the fan-out itself fails (our catalog unreachable, a bug), the
        event goes to the retry queue and is fanned out again later; after
        the default retry policy it is recorded as failed. Raises
        Unavailable only when even that hand-over failed.
        """
        try:
            found = fanout.jobs(
                event,
                lambda: self._subscriptions.live_for_queue(project=event.project, queue=event.queue,
                                                           now_ms=self._now_ms()),
                now_ms=self._now_ms(), require_confirmation=self.settings.require_confirmation,
                reveal=self._reveal if event.data.get("encrypted") else fanout.plain)
        except Exception as exc:  # one event must not stop the stream for every tenant: retried on its own
            self._fan_out_later(event, attempt, _describe(exc))
            return
        for planned in found:
            self.start(planned.job, wait_s=planned.wait_s, subscription=planned.subscription)

    def _reveal(self, message: Mapping[str, Any]) -> fanout.Content | None:
        """An encrypted message as filters see it; None when it cannot be decrypted (it then goes to its
        subscribers, whose deliveries fail and are recorded, rather than vanish unseen)."""
        try:
            return payloads.revealed(self.settings, message, encrypted=True)
        except payloads.Undecryptable:
            return None

    def _fan_out_later(self, event: Event, attempt: int, reason: str) -> None:
        job = Job(FAN_OUT, event.id, event.project, event.queue, "", event.cloudevent(), retry=attempt)
        wait = retry_policy.RetryPolicy().delay_before(attempt + 1)
        if wait is not None and self._retries.available:
            try:
                self._retries.schedule(job, wait)
                log.warning("event %s will be fanned out again in %ss: %s", event.id, wait, reason)
                return
            except JobTooLarge as exc:
                reason = f"{reason}; {exc}"
        self._failures.record(job, "(every subscription of the queue)", f"notifications not sent: {reason}")

    # -- jobs ---------------------------------------------------------------------

    def run(self, job: Job) -> str:
        """A job from the retry queue: fan an event out again, or attempt a delivery."""
        if job.kind == FAN_OUT:
            try:
                event = Event.from_cloudevent(job.message)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("dropping fan-out job %s that holds no event of ours: %s", job.event_id, exc)
                return "dropped"
            self.dispatch(event, attempt=job.retry + 1)
            return "dispatched"
        return self.attempt(job)

    def start(self, job: Job, *, wait_s: int, subscription: Subscription | None = None) -> None:
        """Deliver now, or hand the job to the retry queue when it must wait."""
        if wait_s > 0 and self._retries.available:
            try:
                self._retries.schedule(job, wait_s)
            except JobTooLarge as exc:
                failed = Outcome("failed", f"cannot wait for its delay: {exc}")
                if subscription is not None:
                    self._settle(job, subscription, failed)
                else:
                    self._failures.record(job, job.subscription_id, failed.detail)
            return
        self.attempt(job, subscription)

    def attempt(self, job: Job, subscription: Subscription | None = None) -> str:
        """Try one delivery and settle it: delivered, skipped, scheduled or failed.

        ``subscription`` is the subscription just read by the fan-out; a job
        that waited reads it again (it may have changed or gone since).
        """
        try:
            if self._deliveries.delivered(job.key):
                return "skipped"
            if subscription is None:
                subscription = self._subscriptions.get(project=job.project, queue=job.queue,
                                                       sid=job.subscription_id, now_ms=self._now_ms())
        except errors.Unavailable as exc:
            if not self._retries.available:
                raise
            log.warning("delivery %s waits %ss: %s", job.delivery_id, STATE_RETRY_S, exc.description)
            try:
                self._retries.schedule(job, STATE_RETRY_S)
            except JobTooLarge:
                raise exc from None  # nothing durable can hold it: the batch is retried
            return "scheduled"
        if subscription is None:
            return "skipped"  # deleted or expired since
        if (job.kind == NOTIFICATION and self.settings.require_confirmation and not subscription.confirmed
                and not subscription.subscriber.startswith(fanout.QUEUE)):  # a queue of the project's own
            return "skipped"
        return self._settle(job, subscription, self._deliver(job, subscription))

    def _deliver(self, job: Job, subscription: Subscription) -> Outcome:
        channel = self._channels.get(urlsplit(subscription.subscriber).scheme.lower())
        if channel is None:
            return Outcome("failed", f"no way to deliver to {subscription.subscriber[:80]}")
        try:
            payload = payloads.for_job(self.settings, job, subscription)
            return channel.deliver(Delivery(job, subscription, payload))
        except payloads.Undecryptable as exc:
            return Outcome("failed", str(exc))
        except Exception as exc:  # a bug in one delivery is that delivery's failure alone
            log.exception("delivery %s raised", job.delivery_id)
            return Outcome("retry", f"internal error: {_describe(exc)}")

    def _settle(self, job: Job, subscription: Subscription, outcome: Outcome) -> str:
        if outcome.status == "retry":
            wait = self._policy(job, subscription).delay_before(job.retry + 1)
            if wait is not None and self._retries.available:
                try:
                    self._retries.schedule(dataclasses.replace(job, retry=job.retry + 1), wait)
                    return "scheduled"
                except JobTooLarge as exc:
                    outcome = Outcome("failed", f"{outcome.detail}; cannot be retried: {exc}")
        if outcome.status != "delivered":
            self._failures.record(job, subscription.subscriber, outcome.detail)
        try:  # failed for good counts as settled too: a redelivered batch must not record it twice
            self._deliveries.record(job.key, keep_s=SETTLED_TTL_S)
        except errors.Unavailable as exc:
            log.warning("delivery %s settled but not logged (a redelivery may repeat it): %s", job.delivery_id,
                        exc.description)
        return "delivered" if outcome.status == "delivered" else "failed"

    def _policy(self, job: Job, subscription: Subscription) -> retry_policy.RetryPolicy:
        try:
            queue_policy = self._queue_policy(job.project, job.queue)
        except errors.Unavailable:
            queue_policy = None
        return retry_policy.effective(queue_policy, subscription.options.get("_retry_policy"))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, errors.ServiceError):
        return exc.description
    return f"{type(exc).__name__}: {exc}"[:300]
