"""Email (``mailto:``) through SES, from the configured sender (or an allowed
``options.from``). The subject and addresses are checked again here: a
subscription stored before those rules existed fails instead of reaching SES."""

from __future__ import annotations

import json
from typing import Any

from chalicelib import errors
from chalicelib.config import Settings
from chalicelib.notify.channels import Delivery, Outcome
from chalicelib.notify.jobs import CONFIRMATION, UNSUBSCRIBE
from chalicelib.rules import options

_RETRYABLE = {"Throttling", "ThrottlingException", "ServiceUnavailable", "InternalFailure"}
CONFIRM_HEADERS = ("URL-Signature", "URL-Methods", "URL-Paths", "URL-Expires", "X-Project-ID")


def compose(delivery: Delivery, default_subject: str | None) -> tuple[str, str]:
    """(subject, text) of the email for a delivery."""
    job, payload = delivery.job, delivery.payload
    if job.kind == UNSUBSCRIBE:
        return (f"You unsubscribed from queue {job.queue}",
                f"{payload['Message']}\n\nTo subscribe again, PUT {payload['WSGISubscribeURL']} with "
                '{"confirmed": true} and the URL-* headers of your confirmation.')
    if job.kind == CONFIRMATION:
        lines = "\n".join(f"{k}: {payload[k]}" for k in CONFIRM_HEADERS if k in payload)
        return (f"Confirm your subscription to queue {job.queue}",
                f"You have chosen to subscribe to the queue: {job.queue}.\n\nTo confirm, send\n"
                f"PUT {payload['WSGISubscribeURL']}\nwith the body {{\"confirmed\": true}} and these headers:\n{lines}")
    return default_subject or f"New message on queue {job.queue}", json.dumps(payload, indent=2)


class EmailChannel:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._ses: Any = None

    def _client_for_ses(self) -> Any:
        if self._ses is None:
            import boto3

            self._ses = boto3.client("ses")
        return self._ses

    def deliver(self, delivery: Delivery) -> Outcome:
        sender = self._settings.ses_sender
        if sender is None:
            return Outcome("failed", "no SES_SENDER is configured for email notifications")
        subscription = delivery.subscription
        try:
            options.check_mailto(subscription.subscriber, subscription.options, sender=sender,
                                 allowed_senders=self._settings.ses_allowed_senders)
        except errors.InvalidBody as exc:
            return Outcome("failed", f"not sent: {exc.description}")
        recipient, subject = options.mail_parts(subscription.subscriber, subscription.options)
        subject, text = compose(delivery, subject)
        chosen = subscription.options.get("from")
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client_for_ses().send_email(
                Source=str(chosen) if isinstance(chosen, str) and chosen else sender,
                Destination={"ToAddresses": [recipient]},
                Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": text}}},
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            return Outcome("retry" if code in _RETRYABLE else "failed", f"SES {code}: {exc}")
        except BotoCoreError as exc:
            return Outcome("retry", f"SES: {exc}")
        return Outcome("delivered")
