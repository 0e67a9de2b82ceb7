"""From events to deliveries: webhooks, email (SES) and websocket pushes.

The stream Lambda turns each ``message.posted`` event into one job per
(live subscription, message); the SQS Lambda runs jobs that had to wait (a
delayed message, or a retry). A job is delivered at most once: a record of
every delivered (event, subscription, message) is kept in Redis for three
days, and checked before each attempt, so a redelivered stream batch or SQS
message is skipped. Failures worth retrying follow the ``_retry_policy``;
a delivery that fails for good is posted, with the reason, to the
project's ``failed-notifications`` queue, where its owner can read it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from chalicelib import errors
from chalicelib.api import crypto
from chalicelib.api.context import Caller, Services
from chalicelib.api.signing import subscription_secret
from chalicelib.events.model import Event
from chalicelib.notify import retry, webhook
from chalicelib.storage.base import Subscription

log = logging.getLogger(__name__)
FAILED_QUEUE = "failed-notifications"
DELIVERED_TTL_S = 3 * 24 * 3600
MAX_SQS_DELAY = 900
SYSTEM_CLIENT = "00000000-0000-4000-8000-00000000000a"


@dataclasses.dataclass(frozen=True)
class Job:
    """One delivery: a message (or a confirmation) for one subscription."""

    kind: str  # "notification" | "confirmation" | "unsubscribe"
    event_id: str
    project: str
    queue: str
    subscription_id: str
    message: dict[str, Any]
    encrypted: bool = False
    retry: int = 0

    @property
    def key(self) -> str:
        return f"zn:{{{self.event_id}}}:{self.subscription_id}:{self.message.get('id', self.kind)}"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Job:
        return cls(**json.loads(text))


class Pusher(Protocol):
    def send(self, connection_id: str, text: str) -> bool: ...


class Notifier:
    def __init__(
        self,
        services: Services,
        *,
        pusher: Pusher | None = None,
        sqs: Any = None,
        ses: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.services = services
        self.settings = services.settings
        self._pusher = pusher
        self._sqs = sqs
        self._ses = ses
        self._queue_url: str | None = None
        self._clock = clock

    # -- clients, created on first use --------------------------------------------

    def _aws(self, name: str) -> Any:
        import boto3

        return boto3.client(name)

    def _retry_queue_url(self) -> str | None:
        if self.settings.retry_queue is None:
            return None
        if self._queue_url is None:
            if self._sqs is None:
                self._sqs = self._aws("sqs")
            self._queue_url = str(self._sqs.get_queue_url(QueueName=self.settings.retry_queue)["QueueUrl"])
        return self._queue_url

    @property
    def can_push(self) -> bool:
        """Whether websocket pushes are configured (an API to push through)."""
        return self._pusher is not None

    # -- from events to jobs --------------------------------------------------------

    def dispatch(self, event: Event) -> None:
        """Start every delivery an event calls for. Raises only when nothing could be scheduled."""
        if event.type == "message.posted":
            now_ms = int(self._clock() * 1000)
            live = self.services.subscriptions.live_for_queue(project=event.project, queue=event.queue, now_ms=now_ms)
            encrypted = bool(event.data.get("encrypted"))
            for subscription in live:
                for message in event.data.get("messages", []):
                    job = Job("notification", event.id, event.project, event.queue, subscription.id, message, encrypted)
                    visible_at = event.time_ms + int(message.get("delay") or 0) * 1000
                    self.start(job, wait_s=max(0, (visible_at - now_ms + 999) // 1000))
        elif event.type in {"subscription.created", "subscription.confirmation_requested"} and self._wants_confirmation(
            event.data
        ):
            sid = str(event.data["id"])
            self.start(Job("confirmation", event.id, event.project, event.queue, sid, {}), wait_s=0)
        elif event.type == "subscription.unconfirmed" and not str(event.data.get("subscriber", "")).startswith(
            "websocket:"
        ):
            sid = str(event.data["id"])
            self.start(Job("unsubscribe", event.id, event.project, event.queue, sid, {}), wait_s=0)

    def _wants_confirmation(self, subscription: dict[str, Any]) -> bool:
        subscriber = str(subscription.get("subscriber", ""))
        return (self.settings.require_confirmation and not subscription.get("confirmed")
                and not subscriber.startswith("websocket:"))

    def start(self, job: Job, *, wait_s: int) -> None:
        """Deliver now, or hand the job to the retry queue when it must wait."""
        if wait_s > 0 and self._retry_queue_url() is not None:
            self._schedule(job, wait_s)
            return
        self.attempt(job)

    def _schedule(self, job: Job, wait_s: int) -> None:
        url = self._retry_queue_url()
        assert url is not None and self._sqs is not None
        self._sqs.send_message(QueueUrl=url, MessageBody=job.to_json(), DelaySeconds=min(MAX_SQS_DELAY, wait_s))

    # -- one attempt ------------------------------------------------------------------

    def attempt(self, job: Job) -> str:
        """Try one delivery; returns what happened (delivered, skipped, scheduled, failed)."""
        if self.services.deliveries.delivered(job.key):
            return "skipped"
        now_ms = int(self._clock() * 1000)
        subscription = self.services.subscriptions.get(
            project=job.project, queue=job.queue, sid=job.subscription_id, now_ms=now_ms
        )
        if subscription is None:
            return "skipped"  # deleted or expired since
        if job.kind == "notification" and self.settings.require_confirmation and not subscription.confirmed:
            return "skipped"
        outcome = self._deliver(job, subscription)
        if outcome.status == "delivered":
            self.services.deliveries.record(job.key, keep_s=DELIVERED_TTL_S)
            return "delivered"
        if outcome.status == "retry":
            wait = self._policy(job, subscription).delay_before(job.retry + 1)
            if wait is not None and self._retry_queue_url() is not None:
                self._schedule(dataclasses.replace(job, retry=job.retry + 1), wait)
                return "scheduled"
        self._record_failure(job, subscription, outcome.detail)
        return "failed"

    def _policy(self, job: Job, subscription: Subscription) -> retry.RetryPolicy:
        queue_policy = None
        store = self.services.pooling.lookup(project=job.project, queue=job.queue)
        if store is not None:
            queue_policy = (store.queue_get(project=job.project, queue=job.queue) or {}).get("_retry_policy")
        return retry.effective(queue_policy, subscription.options.get("_retry_policy"))

    def _deliver(self, job: Job, subscription: Subscription) -> webhook.Outcome:
        payload = self._payload(job, subscription)
        scheme = urlsplit(subscription.subscriber).scheme.lower()
        if scheme in {"http", "https"}:
            return self._webhook(job, subscription, payload)
        if scheme == "mailto":
            return self._email(job, subscription, payload)
        if scheme == "websocket":
            return self._push(subscription, payload)
        return webhook.Outcome("failed", f"no way to deliver to {subscription.subscriber}")

    def _payload(self, job: Job, subscription: Subscription) -> dict[str, Any]:
        if job.kind == "confirmation":
            return self.confirmation(job.project, job.queue, subscription)
        if job.kind == "unsubscribe":
            document = self.confirmation(job.project, job.queue, subscription)
            document.update({
                "Message_Type": "UnsubscribeConfirmation",
                "Message": f"You have unsubscribed successfully to the queue: {job.queue}, "
                           "you can resubscribe it by using confirmed=True.",
            })
            return document
        body = job.message.get("body")
        if job.encrypted and self.settings.message_encryption_key is not None:
            body = json.loads(crypto.decrypt(self.settings.message_encryption_key, str(body)))
        return {
            "body": body,
            "ttl": job.message.get("ttl"),
            "queue_name": job.queue,
            "Message_Type": "Notification",
            "message_id": job.message.get("id"),
            "href": f"/v2/queues/{job.queue}/messages/{job.message.get('id')}",
        }

    def confirmation(self, project: str, queue: str, subscription: Subscription) -> dict[str, Any]:
        """Zaqar's SubscriptionConfirmation, with a pre-signed PUT of the confirm resource."""
        from chalicelib.api import signing

        path = f"/v2/queues/{queue}/subscriptions/{subscription.id}/confirm"
        document: dict[str, Any] = {
            "Message_Type": "SubscriptionConfirmation",
            "Message": f"You have chosen to subscribe to the queue: {queue}",
            "SubscribeBody": {"confirmed": True},
            "UnsubscribeBody": {"confirmed": False},
            "WSGISubscribeURL": self.settings.public_url + path,
            "X-Project-ID": project,
        }
        if self.settings.signing_key is not None:
            signed = signing.sign(self.settings.signing_key, project=project, paths=[path], methods=["PUT"],
                                  expires_ms=subscription.expires_ms)
            document.update({"URL-Signature": signed.signature, "URL-Methods": "PUT", "URL-Paths": path,
                             "URL-Expires": signed.expires})
        return document

    def _webhook(self, job: Job, subscription: Subscription, payload: dict[str, Any]) -> webhook.Outcome:
        message_json = json.dumps(payload)
        template = subscription.options.get("post_data")
        if isinstance(template, str) and job.kind == "notification":
            text = template.replace('"$zaqar_message$"', message_json)
        else:
            text = message_json
        headers = {str(k): str(v) for k, v in (subscription.options.get("post_headers") or {}).items()}
        headers["X-Zaqar-Delivery-Id"] = job.key.split(":", 1)[1]
        secret = None
        if self.settings.signing_key is not None:
            secret = subscription_secret(self.settings.signing_key, subscription.id)
        return webhook.post(subscription.subscriber, text.encode(), headers, timeout=self.settings.webhook_timeout,
                            allow_loopback=self.settings.webhook_allow_loopback, secret=secret)

    def _email(self, job: Job, subscription: Subscription, payload: dict[str, Any]) -> webhook.Outcome:
        if self.settings.ses_sender is None:
            return webhook.Outcome("failed", "no SES_SENDER is configured for email notifications")
        parts = urlsplit(subscription.subscriber)
        query = parse_qs(parts.query)
        if job.kind == "unsubscribe":
            subject = f"You unsubscribed from queue {job.queue}"
            text = str(payload["Message"]) + f"\n\nTo subscribe again, PUT {payload['WSGISubscribeURL']} with " \
                '{"confirmed": true} and the URL-* headers of your confirmation.'
        elif job.kind == "confirmation":
            subject = f"Confirm your subscription to queue {job.queue}"
            text = (f"You have chosen to subscribe to the queue: {job.queue}.\n\nTo confirm, send\n"
                    f"PUT {payload['WSGISubscribeURL']}\nwith the body {{\"confirmed\": true}} and these headers:\n"
                    + "\n".join(f"{k}: {payload[k]}" for k in
                                ("URL-Signature", "URL-Methods", "URL-Paths", "URL-Expires", "X-Project-ID")
                                if k in payload))
        else:
            subject = (query.get("subject") or [str(subscription.options.get("subject") or "")])[0] or (
                f"New message on queue {job.queue}")
            text = json.dumps(payload, indent=2)
        if self._ses is None:
            self._ses = self._aws("ses")
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._ses.send_email(
                Source=str(subscription.options.get("from") or self.settings.ses_sender),
                Destination={"ToAddresses": [parts.path]},
                Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": text}}},
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            retryable = code in {"Throttling", "ServiceUnavailable", "InternalFailure"}
            return webhook.Outcome("retry" if retryable else "failed", f"SES {code}: {exc}")
        except BotoCoreError as exc:
            return webhook.Outcome("retry", f"SES: {exc}")
        return webhook.Outcome("delivered")

    def _push(self, subscription: Subscription, payload: dict[str, Any]) -> webhook.Outcome:
        if self._pusher is None:
            return webhook.Outcome("failed", "websocket pushes are not configured (WEBSOCKET_API_ID)")
        connection = subscription.subscriber.split(":", 1)[1]
        if self._pusher.send(connection, json.dumps(payload)):
            return webhook.Outcome("delivered")
        # the socket is gone: so is what it subscribed
        from chalicelib.api.subscriptions import subscriptions_of_connection_delete

        subscriptions_of_connection_delete(self.services, connection)
        return webhook.Outcome("failed", "the websocket connection is gone")

    def _record_failure(self, job: Job, subscription: Subscription, reason: str) -> None:
        log.warning("delivery to %s failed for good: %s", subscription.id, reason)
        if job.queue == FAILED_QUEUE:
            return  # never notify about failures to notify about failures
        from chalicelib.api import messages

        record = {
            "subscription_id": subscription.id,
            "subscriber": subscription.subscriber,
            "queue": job.queue,
            "event_id": job.event_id,
            "message_id": job.message.get("id"),
            "kind": job.kind,
            "attempts": job.retry + 1,
            "error": reason,
        }
        body = {"messages": [{"body": record, "ttl": self.settings.limits.max_message_ttl}]}
        caller = Caller(project=job.project, client_id=SYSTEM_CLIENT)
        try:
            messages.message_post(self.services, caller, FAILED_QUEUE, body, size=len(json.dumps(body)))
        except errors.ServiceError as exc:
            log.error("could not record the failed delivery %s: %s", job.key, exc.description)
