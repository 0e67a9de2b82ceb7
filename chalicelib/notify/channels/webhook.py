"""Webhooks (``http://``, ``https://``): Zaqar's payload, or the subscription's
``post_data`` template around it, POSTed with its ``post_headers``, a delivery
id and an HMAC signature."""

from __future__ import annotations

import json

from chalicelib import errors
from chalicelib.config import Settings
from chalicelib.notify import webhook
from chalicelib.notify.channels import Delivery, Outcome
from chalicelib.notify.jobs import NOTIFICATION
from chalicelib.rules import options
from chalicelib.signing import subscription_secret

TEMPLATE_SLOT = '"$zaqar_message$"'


class WebhookChannel:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def deliver(self, delivery: Delivery) -> Outcome:
        return self.send(delivery, delivery.subscription.subscriber)

    def send(self, delivery: Delivery, url: str, *, auth_token: str | None = None) -> Outcome:
        """The delivery as a POST to ``url`` (with ``X-Auth-Token: auth_token`` when given)."""
        subscription = delivery.subscription
        text = json.dumps(delivery.payload)
        try:  # the HTTP client checks the headers itself
            template = options.check_post_data(subscription.options.get("post_data"))
        except errors.InvalidBody as exc:  # stored before this rule existed
            return Outcome("failed", f"not sent: {exc.description}")
        if template is not None and delivery.job.kind == NOTIFICATION:
            text = template.replace(TEMPLATE_SLOT, text)
        key = self._settings.signing_key
        return webhook.post(
            url, text.encode(), subscription.options.get("post_headers") or {}, timeout=self._settings.webhook_timeout,
            allow_loopback=self._settings.webhook_allow_loopback, delivery_id=delivery.job.delivery_id,
            secret=None if key is None else subscription_secret(key, subscription.id), auth_token=auth_token,
        )
